package preflight

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// DriftReport compares two colours' descriptions.
type DriftReport struct {
	A runtime.Description `json:"a"`
	B runtime.Description `json:"b"`
	// BWouldRun says B is what that colour would run for a release (the
	// candidate before it starts), not what runs there now.
	BWouldRun bool `json:"b_would_run,omitempty"`
	// Compared is how many settings were compared.
	Compared    int          `json:"compared"`
	Differences []Difference `json:"differences"`
	Findings    []Finding    `json:"findings"`
}

// Difference is one setting that differs; A or B is "" when that colour
// lacks it. Secret values are hashes. Expected differences (version,
// colour, ...) and ignored variables are listed, not findings.
type Difference struct {
	Name     string `json:"name"`
	A        string `json:"a"`
	B        string `json:"b"`
	Secret   bool   `json:"secret,omitempty"`
	Expected bool   `json:"expected,omitempty"`
	Ignored  bool   `json:"ignored,omitempty"`
}

// colourWord finds "blue" or "green" as a word of a name: app-uploads-green,
// orders_blue, s3://bucket-green/x, db.green.internal.
var colourWord = regexp.MustCompile(`(?i)(^|[^a-z0-9])(blue|green)([^a-z0-9]|$)`)

// Compare diffs a and b field by field. ignoreEnv names env variables
// whose differences are expected (fields "env.NAME").
func Compare(a, b runtime.Description, ignoreEnv []string) *DriftReport {
	rep := &DriftReport{A: a, B: b, Differences: []Difference{}, Findings: []Finding{}}
	av, bv := fieldMap(a), fieldMap(b)
	var names []string
	for n := range av {
		names = append(names, n)
	}
	for n := range bv {
		if _, ok := av[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fa, inA := av[n]
		fb, inB := bv[n]
		rep.Compared++
		if inA && inB && fa.Value == fb.Value {
			continue
		}
		d := Difference{Name: n, A: fa.Value, B: fb.Value, Secret: fa.Secret || fb.Secret,
			Expected: fa.Expected || fb.Expected}
		if env, ok := strings.CutPrefix(n, "env."); ok && slices.Contains(ignoreEnv, env) {
			d.Ignored = true
		}
		rep.Differences = append(rep.Differences, d)
		if d.Expected || d.Ignored {
			continue
		}
		rep.Findings = append(rep.Findings, Finding{Check: CheckDrift, Rule: "differs",
			Message: fmt.Sprintf("%s: %s %s, %s %s", n, a.Color, show(fa.Value, inA, d.Secret), b.Color, show(fb.Value, inB, d.Secret)),
			Fix:     "make both colours run the same settings (only the version may differ), or list the variable in preflight.drift.ignore_env"})
	}
	rep.Findings = append(rep.Findings, ColourNames(a, ignoreEnv)...)
	rep.Findings = append(rep.Findings, ColourNames(b, ignoreEnv)...)
	return rep
}

// ColourNames flags the settings of d whose value names a colour (a
// bucket, queue or database called *-blue or *-green): the two colours
// then do not share the state the write-ups say they must, or one colour
// points at the other's. Expected fields (COLOR itself) and secrets
// (whose values are hashes) are not looked at.
func ColourNames(d runtime.Description, ignoreEnv []string) []Finding {
	var out []Finding
	for _, f := range d.Fields {
		if f.Expected || f.Secret || !colourWord.MatchString(f.Value) {
			continue
		}
		if env, ok := strings.CutPrefix(f.Name, "env."); ok && slices.Contains(ignoreEnv, env) {
			continue
		}
		if !strings.HasPrefix(f.Name, "env.") && f.Name != "command" {
			continue
		}
		m := colourWord.FindStringSubmatch(f.Value)
		out = append(out, Finding{Check: CheckDrift, Rule: "colour-name",
			Message: fmt.Sprintf("%s of %s is %q, which names the colour %s: blue and green must share their state (buckets, queues, databases), not each have their own",
				f.Name, d.Color, f.Value, strings.ToLower(m[2])),
			Fix: "point both colours at the same resource; a resource named after a colour is the other pool's or goes stale on the next swap"})
	}
	return out
}

func show(v string, present, secret bool) string {
	switch {
	case !present:
		return "does not set it"
	case secret:
		return "has " + v
	}
	return fmt.Sprintf("%q", v)
}

func fieldMap(d runtime.Description) map[string]runtime.Field {
	m := make(map[string]runtime.Field, len(d.Fields))
	for _, f := range d.Fields {
		m[f.Name] = f
	}
	return m
}

// drift is the preflight's drift check: what live runs now against what
// the candidate would run. With no live pool there is nothing to compare
// against, but the candidate's settings are still looked at for colour
// names.
func (c *Checker) drift(ctx context.Context, req Request) (*DriftReport, error) {
	d := c.opts.Describer
	if d == nil {
		return nil, errNoDescriber
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	live := req.Live
	if live == nil && !req.NoLive {
		running, err := c.running(ctx)
		if err != nil {
			return nil, err
		}
		if len(running) == 1 {
			live = &runtime.PoolRef{Color: running[0].Color, Version: running[0].Version}
		} else if len(running) == 2 {
			// Both run (a kept previous pool); without the daemon's state
			// the live one is unknown: the colours are compared as they are.
			return Compare(running[0], running[1], c.opts.Drift.IgnoreEnv), nil
		}
	}
	cand := req.Candidate
	if live != nil && cand == live.Color {
		cand = live.Color.Other()
	}
	b, err := d.Describe(ctx, cand, &runtime.Release{Version: req.Version, Env: req.Env})
	if err != nil {
		return nil, fmt.Errorf("describe the candidate %s %s: %w", cand, req.Version, err)
	}
	if live == nil {
		rep := &DriftReport{B: b, BWouldRun: true, Differences: []Difference{}, Findings: ColourNames(b, c.opts.Drift.IgnoreEnv)}
		if rep.Findings == nil {
			rep.Findings = []Finding{}
		}
		return rep, nil
	}
	a, err := d.Describe(ctx, live.Color, nil)
	if err != nil {
		return nil, fmt.Errorf("describe live %s: %w", live.Color, err)
	}
	rep := Compare(a, b, c.opts.Drift.IgnoreEnv)
	rep.BWouldRun = true
	return rep, nil
}

// running describes the colours that run something now.
func (c *Checker) running(ctx context.Context) ([]runtime.Description, error) {
	var out []runtime.Description
	for _, col := range route.Colors {
		desc, err := c.opts.Describer.Describe(ctx, col, nil)
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", col, err)
		}
		if desc.Version != "" {
			out = append(out, desc)
		}
	}
	return out, nil
}

// Diff compares what the two colours run now (`cutover diff`). When only
// one colour runs, the other is described as it would run that same
// version under the current configuration: the difference is what changed
// since the pool started. With nothing running it returns an error.
func (c *Checker) Diff(ctx context.Context) (*DriftReport, error) {
	if c.opts.Describer == nil {
		return nil, errNoDescriber
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	running, err := c.running(ctx)
	if err != nil {
		return nil, err
	}
	var ignore []string
	if c.opts.Drift != nil {
		ignore = c.opts.Drift.IgnoreEnv
	}
	switch len(running) {
	case 0:
		return nil, fmt.Errorf("service %s: no colour runs anything to compare", c.opts.Service)
	case 2:
		return Compare(running[0], running[1], ignore), nil
	}
	a := running[0]
	b, err := c.opts.Describer.Describe(ctx, a.Color.Other(), &runtime.Release{Version: a.Version})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", a.Color.Other(), err)
	}
	rep := Compare(a, b, ignore)
	rep.BWouldRun = true
	return rep, nil
}
