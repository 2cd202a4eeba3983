package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/cli"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/preflight"
)

// lintOnly builds a checker of the service's migrations alone (the binary
// gets the daemon's, with every check and the runtime's describer).
func lintOnly(cfg *config.Config, name string) (*preflight.Checker, error) {
	m := cfg.Services[name].Preflight.Migrations
	return preflight.New(preflight.Options{Service: name, Migrations: &preflight.MigrationOptions{Dir: m.Dir, Allow: m.Allow}}), nil
}

func runPreflight(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// No daemon: the CLI's look-up of the live colour finds nothing here.
	env := map[string]string{"CUTOVER_API": "http://127.0.0.1:1"}
	code := cli.MainWith(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr,
		cli.Commands{Preflight: lintOnly})
	return result{code, stdout.String(), stderr.String()}
}

// cutover preflight reads the config file, prints every finding with
// file:line, rule and fix, and exits 1; 0 once the migration is safe; 2
// for a usage error or a service the file lacks.
func TestPreflightCommandLint(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cutover.yaml")
	os.WriteFile(cfgFile, []byte(`services:
  web:
    listen: 127.0.0.1:8080
    runtime: {process: {command: ["./app"]}}
    preflight:
      migrations:
        dir: ./migrations/${VERSION}
`), 0o644)
	os.MkdirAll(filepath.Join(dir, "migrations", "v2"), 0o755)
	sqlFile := filepath.Join(dir, "migrations", "v2", "001.sql")
	os.WriteFile(sqlFile, []byte("-- v2\nALTER TABLE users RENAME COLUMN name TO full_name;\nCREATE INDEX users_name ON users (full_name);\n"), 0o644)

	r := runPreflight(t, "preflight", "web", "v2", "-c", cfgFile)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		sqlFile + ":2: migrations rename-column: ALTER TABLE users RENAME COLUMN name TO full_name",
		"fix: expand/contract: add the new column, write both, backfill, switch reads to the new one, drop the old one in a later release",
		sqlFile + ":3: migrations create-index", "fix: CREATE INDEX CONCURRENTLY",
		"2 findings", "migrations: 2 statements in 1 files",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runPreflight(t, "preflight", "web", "v2", "-c", cfgFile, "--json")
	var rep preflight.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 1 || err != nil || len(rep.Findings) != 2 || rep.Findings[0].Line != 2 || rep.Findings[0].Rule != "rename-column" {
		t.Fatalf("--json: exit %d, %v, %+v", r.code, err, rep.Findings)
	}

	// The expand step instead: clean.
	os.WriteFile(sqlFile, []byte("ALTER TABLE users ADD COLUMN full_name text;\nCREATE INDEX CONCURRENTLY users_name ON users (full_name);\n"), 0o644)
	if r := runPreflight(t, "preflight", "web", "v2", "-c", cfgFile); r.code != 0 || !strings.Contains(r.stdout, "0 findings") {
		t.Fatalf("safe migration: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Allowed findings are shown but do not count: exit 0.
	os.WriteFile(sqlFile, []byte("ALTER TABLE users DROP COLUMN legacy; -- cutover:allow drop-column\n"), 0o644)
	if r := runPreflight(t, "preflight", "web", "v2", "-c", cfgFile); r.code != 0 || !strings.Contains(r.stdout, "0 findings (and 1 allowed)") ||
		!strings.Contains(r.stdout, "(allowed by -- cutover:allow comment)") {
		t.Fatalf("allowed finding: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A migration PostgreSQL would refuse is a finding (exit 1), not a
	// usage error.
	os.WriteFile(sqlFile, []byte("ALTER TABLE users ADD COLUMN;\n"), 0o644)
	if r := runPreflight(t, "preflight", "web", "v2", "-c", cfgFile); r.code != 1 || !strings.Contains(r.stdout, sqlFile+":1: migrations parse-error") {
		t.Fatalf("parse error: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"preflight", "web", "v2", "extra", "-c", cfgFile}, {"preflight", "web", "v2", "-c", cfgFile, "--no-such-flag"},
		{"preflight", "web"}, {"preflight", "api", "v2", "-c", cfgFile}, {"preflight", "web", "v2", "-c", filepath.Join(dir, "none.yaml")},
		{"diff"}, {"diff", "api", "-c", cfgFile},
	} {
		if r := runPreflight(t, args...); r.code != 2 {
			t.Errorf("cutover %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}
