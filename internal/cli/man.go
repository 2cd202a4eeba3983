package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Why not github.com/spf13/cobra/doc: importing it links go-md2man and
// blackfriday v2 (unmaintained since 2020) into every cutover binary,
// +376 KB, and blackfriday's package init builds its entity table on every
// start (0.3-0.5 ms, 214 KB, 762 allocs), for a command only packagers run.
// The pages need nothing markdown gives: the texts are help's.

// manCommand is the hidden "cutover gen-man DIR", for packagers: it writes
// one man page per command that help lists (cutover.1, cutover-deploy.1, ...)
// into DIR, made from the same texts as help.
func (a *app) manCommand() *cobra.Command {
	return hidden(a.command("gen-man DIR", "write the man pages into DIR", nargs(1, 1),
		func(a *app, _ *opts, pos []string) int { return a.genMan(a.current.Root(), pos[0]) }))
}

func (a *app) genMan(root *cobra.Command, dir string) int {
	date, err := a.manDate()
	if err != nil {
		return a.fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return a.fail(fmt.Errorf("write man pages: %w", err))
	}
	pages := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() { // not hidden, not help
			pages = append(pages, c)
		}
	}
	footer := fmt.Sprintf("%q \"cutover %s\" \"cutover manual\"", date.Format("January 2006"), buildVersion())
	for _, c := range pages {
		path := filepath.Join(dir, manName(c)+".1")
		if err := writeFile(path, func(w io.Writer) error { return writeManPage(w, c, pages, footer) }); err != nil {
			return a.fail(fmt.Errorf("write man page %s: %w", path, err))
		}
	}
	fmt.Fprintf(a.stdout, "%d man pages written to %s\n", len(pages), dir)
	return ExitOK
}

// manDate is the date the pages carry: SOURCE_DATE_EPOCH's, for
// reproducible builds, or today.
func (a *app) manDate() (time.Time, error) {
	epoch := a.getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		return time.Now(), nil
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", epoch)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// manName is the page's name: "cutover", "cutover-deploy".
func manName(c *cobra.Command) string { return strings.ReplaceAll(c.CommandPath(), " ", "-") }

// writeManPage writes c's page in man(7) roff: the name and summary, the
// usage line, the help text kept as it is laid out, the flags, and the
// other pages (all of them from cutover's own page, cutover's from the others).
func writeManPage(w io.Writer, c *cobra.Command, pages []*cobra.Command, footer string) error {
	var b strings.Builder
	name := manName(c)
	fmt.Fprintf(&b, ".TH %q 1 %s\n", strings.ToUpper(name), footer)
	b.WriteString(".nh\n.ad l\n") // no hyphenation, no justification: names and flags stay whole
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(name), roff(c.Short))
	use, _ := strings.CutPrefix(c.UseLine(), c.CommandPath())
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n%s\n", roff(c.CommandPath()), roff(strings.TrimSpace(use)))
	text := c.Long
	if text == "" {
		text = c.Short
	}
	fmt.Fprintf(&b, ".SH DESCRIPTION\n.nf\n%s\n.fi\n", roff(strings.TrimRight(text, "\n")))

	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.AddFlagSet(c.LocalFlags())
	fs.AddFlagSet(c.InheritedFlags())
	opts := ""
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			opts += manFlag(f)
		}
	})
	if opts != "" {
		b.WriteString(".SH OPTIONS\n" + opts)
	}

	var see []string
	for _, p := range pages {
		if p != c && (!c.HasParent() || !p.HasParent()) {
			see = append(see, fmt.Sprintf("\\fB%s\\fR(1)", roff(manName(p))))
		}
	}
	fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", strings.Join(see, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// manFlag is one entry of OPTIONS: "-c, --config string", then its usage
// and default as help shows them.
func manFlag(f *pflag.Flag) string {
	head := fmt.Sprintf("\\fB\\-\\-%s\\fR", roff(f.Name))
	if f.Shorthand != "" {
		head = fmt.Sprintf("\\fB\\-%s\\fR, %s", roff(f.Shorthand), head)
	}
	varname, usage := pflag.UnquoteUsage(f)
	if varname != "" {
		head += " \\fI" + roff(varname) + "\\fR"
	}
	switch f.DefValue {
	case "", "false", "0":
	default:
		if f.Value.Type() == "string" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		} else {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
	}
	return fmt.Sprintf(".TP\n%s\n%s\n", head, roff(usage))
}

// roff escapes text for a roff body line: backslashes and hyphens (which
// roff would print as hyphens, not as the minus signs flags are typed
// with), and a '.' or '\” that starts a line, which roff reads as a request.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// writeFile creates path and fills it with write, reporting a failed
// close too.
func writeFile(path string, write func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(write(f), f.Close())
}
