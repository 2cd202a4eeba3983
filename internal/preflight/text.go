package preflight

import (
	"fmt"
	"strings"
)

// Text renders the report for a person: the arithmetic, what was linted
// and compared, then every finding with its fix.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "preflight %s %s\n", r.Service, r.Version)
	if h := r.Database; h != nil {
		fmt.Fprintf(&b, "\ndatabase headroom (%d instances x %d connections, from %s):\n", h.Instances, h.PerInstance, h.PerInstanceFrom)
		for _, l := range h.Arithmetic {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	if m := r.Migrations; m != nil {
		fmt.Fprintf(&b, "\nmigrations: %d statements in %d files\n", m.Statements, len(m.Files))
	}
	if d := r.Drift; d != nil {
		b.WriteString("\n")
		b.WriteString(d.Text())
	}
	failed := r.Failed()
	fmt.Fprintf(&b, "\n%d %s", len(failed), plural(len(failed), "finding"))
	if n := len(r.Findings) - len(failed); n > 0 {
		fmt.Fprintf(&b, " (and %d allowed)", n)
	}
	b.WriteString("\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s\n", f)
		if f.Statement != "" {
			fmt.Fprintf(&b, "    statement: %s\n", f.Statement)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		}
	}
	return b.String()
}

// Text renders a drift report: the differing settings, then the findings.
func (d *DriftReport) Text() string {
	var b strings.Builder
	bWhat := "runs"
	if d.BWouldRun {
		bWhat = "would run"
	}
	if d.A.Version == "" {
		fmt.Fprintf(&b, "drift: nothing live to compare with; %s %s checked alone\n", d.B.Color, d.B.Version)
		return b.String()
	}
	fmt.Fprintf(&b, "drift: %s runs %s, %s %s %s; %d settings compared, %d differ\n",
		d.A.Color, d.A.Version, d.B.Color, bWhat, d.B.Version, d.Compared, len(d.Differences))
	for _, x := range d.Differences {
		note := ""
		switch {
		case x.Expected:
			note = "  (expected)"
		case x.Ignored:
			note = "  (ignored)"
		case x.Secret:
			note = "  (secret: hashes)"
		}
		fmt.Fprintf(&b, "  %-28s %s: %-24s %s: %s%s\n", x.Name, d.A.Color, orNone(x.A), d.B.Color, orNone(x.B), note)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
