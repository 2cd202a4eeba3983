// Package preflight is cutover's release safety: the checks that run
// before a single instance of a new version starts, and on demand
// (`cutover preflight`, `cutover diff`).
//
//   - Database headroom: does the candidate pool's connection pool fit on
//     top of what the database serves now, within its limit minus a
//     reserve? (Headroom; PostgreSQL through pgx, behind the small
//     Database interface so that MySQL can follow.)
//   - Migration compatibility: does the SQL the release runs break the
//     version still serving? (LintFiles; PostgreSQL's own parser.)
//   - Drift: do the two colours run the same thing, apart from the
//     version? (Drift, over runtime.Describer.)
//
// A Checker is safe for concurrent use; it holds no connection between
// runs. Secrets (the database URL, secret environment values) never reach
// a report, a log line or an error.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// The checks a finding belongs to.
const (
	CheckDatabase   = "database"
	CheckMigrations = "migrations"
	CheckDrift      = "drift"
)

// Finding is one thing a check found wrong.
type Finding struct {
	Check string `json:"check"`
	Rule  string `json:"rule"`
	// File and Line locate a migration finding; Statement is the
	// statement on one line.
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Statement string `json:"statement,omitempty"`
	Message   string `json:"message"`
	// Fix is the safe alternative (for migrations, the expand/contract way).
	Fix string `json:"fix,omitempty"`
	// Allowed says what accepted the finding on purpose (the service's
	// allow list or a cutover:allow comment); allowed findings are shown
	// but do not fail the check.
	Allowed string `json:"allowed,omitempty"`
}

// String renders a finding on one line: "file:line: rule: message".
func (f Finding) String() string {
	var b strings.Builder
	if f.File != "" {
		fmt.Fprintf(&b, "%s:%d: ", f.File, f.Line)
	}
	fmt.Fprintf(&b, "%s %s: %s", f.Check, f.Rule, f.Message)
	if f.Allowed != "" {
		fmt.Fprintf(&b, " (allowed by %s)", f.Allowed)
	}
	return b.String()
}

// Options configure a service's checks; a nil section is not checked.
type Options struct {
	Service string
	// Instances is how many instances a colour runs.
	Instances  int
	Database   *DatabaseOptions
	Migrations *MigrationOptions
	Drift      *DriftOptions
	// Env returns the service's environment as an instance of the release
	// would get it (env, env_file, secrets, the release's own env), to
	// find the database URL and the pool size variable. Its errors name
	// a file or variable, never a value.
	Env func(release map[string]string) (map[string]string, error)
	// Describer says what each colour runs, for the drift check; nil when
	// the runtime cannot tell (drift is then reported as not checked).
	Describer runtime.Describer
	// Open connects to a database; nil means Connect.
	Open func(ctx context.Context, dialect, url string) (Database, error)
	// Timeout bounds each check's I/O; default 10s.
	Timeout time.Duration
}

// MigrationOptions are preflight.migrations.
type MigrationOptions struct {
	// Dir is a directory of *.sql files or a glob, ${VERSION} substituted,
	// already resolved against the config file's directory.
	Dir     string
	Dialect string
	// Allow lists rule ids accepted for the service.
	Allow []string
}

// DriftOptions are preflight.drift.
type DriftOptions struct {
	// IgnoreEnv names environment variables that may differ.
	IgnoreEnv []string
}

// Checker runs a service's checks.
type Checker struct {
	opts Options
}

// New returns a checker for opts.
func New(opts Options) *Checker {
	if opts.Open == nil {
		opts.Open = Connect
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	return &Checker{opts: opts}
}

// Request is one preflight: the version to deploy, the colour it goes to
// and the live pool it will run beside (nil when none runs, or unknown:
// Run then finds them through the Describer).
type Request struct {
	Version   string
	Candidate route.Color
	Live      *runtime.PoolRef
	// NoLive says Live is nil because no pool is live (a first
	// deployment), not because it is unknown.
	NoLive bool
	Env    map[string]string
}

// Report is the result of a preflight, as `cutover preflight --json`
// prints it.
type Report struct {
	Service    string          `json:"service"`
	Version    string          `json:"version"`
	Findings   []Finding       `json:"findings"`
	Database   *HeadroomReport `json:"database,omitempty"`
	Migrations *LintReport     `json:"migrations,omitempty"`
	Drift      *DriftReport    `json:"drift,omitempty"`
}

// LintReport says what the lint read.
type LintReport struct {
	Files      []string `json:"files"`
	Statements int      `json:"statements"`
}

// Failed returns the findings that fail the preflight: those not allowed.
func (r *Report) Failed() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Allowed == "" {
			out = append(out, f)
		}
	}
	return out
}

// Summary is one sentence for a deployment's history.
func (r *Report) Summary() string {
	failed := r.Failed()
	var parts []string
	if r.Database != nil && r.Database.Sum != "" {
		parts = append(parts, r.Database.Sum)
	}
	if r.Migrations != nil {
		parts = append(parts, fmt.Sprintf("%d migration statements in %d files", r.Migrations.Statements, len(r.Migrations.Files)))
	}
	if d := r.Drift; d != nil && d.A.Version == "" {
		parts = append(parts, fmt.Sprintf("drift: no live pool to compare %s %s with", d.B.Color, d.B.Version))
	} else if d != nil {
		parts = append(parts, fmt.Sprintf("drift: %d settings of %s %s and %s %s compared, %d differ",
			d.Compared, d.A.Color, d.A.Version, d.B.Color, d.B.Version, len(d.Differences)))
	}
	head := "preflight passed"
	if len(failed) > 0 {
		rules := []string{}
		for _, f := range failed {
			if !slices.Contains(rules, f.Check+" "+f.Rule) {
				rules = append(rules, f.Check+" "+f.Rule)
			}
		}
		head = fmt.Sprintf("preflight failed: %d %s (%s)", len(failed), plural(len(failed), "finding"), strings.Join(rules, ", "))
	}
	if len(parts) == 0 {
		return head
	}
	return head + "; " + strings.Join(parts, "; ")
}

// Run runs every configured check for req.
func (c *Checker) Run(ctx context.Context, req Request) (*Report, error) {
	rep := &Report{Service: c.opts.Service, Version: req.Version, Findings: []Finding{}}
	if d := c.opts.Database; d != nil {
		h, fs := c.headroom(ctx, req)
		rep.Database = h
		rep.Findings = append(rep.Findings, fs...)
	}
	if m := c.opts.Migrations; m != nil {
		files, err := MigrationFiles(m.Dir, req.Version)
		if err != nil {
			return nil, err
		}
		fs, n := LintFiles(files, m.Allow)
		rep.Migrations = &LintReport{Files: files, Statements: n}
		if rep.Migrations.Files == nil {
			rep.Migrations.Files = []string{}
		}
		rep.Findings = append(rep.Findings, fs...)
	}
	if c.opts.Drift != nil {
		d, err := c.drift(ctx, req)
		if err != nil {
			rep.Findings = append(rep.Findings, Finding{Check: CheckDrift, Rule: "not-checked", Message: err.Error()})
		} else if d != nil {
			rep.Drift = d
			rep.Findings = append(rep.Findings, d.Findings...)
		}
	}
	return rep, nil
}

// errNoDescriber is the drift check's answer when the runtime cannot say
// what a colour runs.
var errNoDescriber = errors.New("the runtime cannot describe what a colour runs")

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
