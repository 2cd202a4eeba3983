package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// longForm rewrites the flag spellings that Go's flag package accepted,
// which cutover's CLI was first written with, into pflag's: "-json" and
// "-limit=5" are "--json" and "--limit=5" (pflag would read "-json" as
// -j -s -o -n), and "--c" is "-c". Users' scripts may use either.
//
// Values of flags that take one are left as they are ("--strategy -x" is
// the strategy "-x"), and so is everything after "--" and after the name
// of a raw command (demo parses its own arguments), as is cobra's request
// for completions. word is the index in out of the first positional
// argument, the command's name, or -1 if there is none.
func longForm(root *cobra.Command, args []string) (out []string, word int) {
	takesValue, raw := flagArity(root)
	raw[cobra.ShellCompRequestCmd] = true
	raw[cobra.ShellCompNoDescRequestCmd] = true
	out = make([]string, 0, len(args))
	word = -1
	value := false // args[i] is the value of the flag before it
	for i, arg := range args {
		switch name, hasValue := flagName(arg); {
		case value:
			value = false
		case arg == "--":
			return append(out, args[i:]...), word
		case name == "":
			if word < 0 {
				word = len(out)
				if raw[arg] {
					return append(out, args[i:]...), word
				}
			}
		default:
			long := len(name) > 1
			switch dashes := len(arg) - len(strings.TrimLeft(arg, "-")); {
			case long && dashes == 1:
				arg = "-" + arg
			case !long && dashes == 2:
				arg = arg[1:]
			}
			value = !hasValue && takesValue[name]
		}
		out = append(out, arg)
	}
	return out, word
}

// flagName returns the name of the flag that arg is ("json" for "-json",
// "--json" and "--json=true"), or "" if arg is not a flag.
func flagName(arg string) (name string, hasValue bool) {
	rest, ok := strings.CutPrefix(arg, "--")
	if !ok {
		rest, ok = strings.CutPrefix(arg, "-")
	}
	if !ok || rest == "" || rest[0] == '-' {
		return "", false // a positional argument, "-" or "---x"
	}
	name, _, hasValue = strings.Cut(rest, "=")
	return name, hasValue
}

// flagArity returns, for every flag name and shorthand in the tree,
// whether the flag takes a value, and the names of the raw commands.
// A name means the same flag in every command that has it.
func flagArity(root *cobra.Command) (takesValue, raw map[string]bool) {
	takesValue, raw = map[string]bool{}, map[string]bool{}
	add := func(f *pflag.Flag) {
		v := f.NoOptDefVal == ""
		takesValue[f.Name] = v
		if f.Shorthand != "" {
			takesValue[f.Shorthand] = v
		}
	}
	root.PersistentFlags().VisitAll(add)
	for _, c := range root.Commands() {
		c.Flags().VisitAll(add) // its own; LocalFlags would build new sets to say the same
		if c.DisableFlagParsing {
			raw[c.Name()] = true
		}
	}
	return takesValue, raw
}

// usageErr is a usage error whose message is already worded for users.
type usageErr string

func (e usageErr) Error() string { return string(e) }

// flagError words an error of parsing a command's arguments.
func flagError(err error) string {
	var invalid *pflag.InvalidValueError
	var num *strconv.NumError
	if errors.As(err, &invalid) && errors.As(err, &num) {
		// Not pflag's "strconv.ParseInt: parsing ...".
		return fmt.Sprintf("invalid value %q for --%s: %v", invalid.GetValue(), invalid.GetFlag().Name, num.Err)
	}
	return err.Error()
}

// rootError words an error that cutover itself (not a command) met:
// an unknown command, or a flag before the command (at args[word], -1 for
// none) that is not cutover's own.
func rootError(root *cobra.Command, err error, word int, args []string) string {
	var notExist *pflag.NotExistError
	switch {
	case !errors.As(err, &notExist):
		return flagError(err)
	case word < 0:
		return err.Error()
	case subcommand(root, args[word]) == nil:
		return unknownCommandMessage(root, args[word])
	}
	return fmt.Sprintf("%v before the command (a command's flags follow its name)", err)
}
