package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const preflightBase = `services:
  web:
    listen: 127.0.0.1:8080
    instances: 3
    runtime:
      process:
        command: ["./app"]
        env: {DATABASE_URL: "postgres://app@db/app", DATABASE_MAX_CONNS: "15"}
    preflight:
`

// The example section, and the other reserve form.
func TestPreflightParses(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse(filepath.Join(dir, "cutover.yaml"), []byte(preflightBase+`      database:
        url_env: DATABASE_URL         # read from the service's env / env_file; never logged
        connections_per_instance: 20
        reserve: 10%
      migrations:
        dir: ./migrations/${VERSION}
        dialect: postgres
        allow: [create-index]
      drift: {ignore_env: [RELEASE_SHA]}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Services["web"].Preflight
	if p == nil || p.Database == nil || p.Migrations == nil || p.Drift == nil {
		t.Fatalf("preflight = %+v", p)
	}
	if db := p.Database; db.URLEnv != "DATABASE_URL" || db.ConnectionsPerInstance != 20 || db.ReservePercent != 0.1 || db.ReserveAbsolute != 0 || db.Dialect != "postgres" {
		t.Errorf("database = %+v", db)
	}
	if m := p.Migrations; m.Dir != filepath.Join(dir, "migrations", "${VERSION}") || len(m.Allow) != 1 {
		t.Errorf("migrations = %+v (the dir is resolved against the config's directory)", m)
	}
	if d := p.Drift; len(d.IgnoreEnv) != 1 || d.IgnoreEnv[0] != "RELEASE_SHA" {
		t.Errorf("drift = %+v", d)
	}
	c, err = Parse("cutover.yaml", []byte(preflightBase+"      database: {url_env: DATABASE_URL, pool_env: DATABASE_MAX_CONNS, reserve: 5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if db := c.Services["web"].Preflight.Database; db.ReserveAbsolute != 5 || db.ReservePercent != 0 || db.PoolEnv != "DATABASE_MAX_CONNS" {
		t.Errorf("database = %+v", db)
	}
}

func TestPreflightProblems(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "      database: {url_env: DATABASE_URL, conections_per_instance: 2}\n", "cutover.yaml:10: services.web.preflight.database.conections_per_instance: unknown key"},
		{"bad reserve", "      database: {url_env: DATABASE_URL, reserve: lots}\n", "cutover.yaml:10: services.web.preflight.database.reserve: must be a percentage like 10% or a number of connections like 5"},
		{"reserve 100%", "      database: {url_env: DATABASE_URL, reserve: 100%}\n", "services.web.preflight.database.reserve: must be"},
		{"reserve NaN%", "      database: {url_env: DATABASE_URL, reserve: NaN%}\n", "services.web.preflight.database.reserve: must be"},
		{"no url_env", "      database: {connections_per_instance: 2}\n", "cutover.yaml:10: services.web.preflight.database.url_env: required"},
		{"url_env nowhere", "      database: {url_env: DB_URL}\n", "services.web.preflight.database.url_env: DB_URL is not in the runtime's env or secrets"},
		{"both pool sizes", "      database: {url_env: DATABASE_URL, connections_per_instance: 2, pool_env: DATABASE_MAX_CONNS}\n", "pool_env: set either connections_per_instance or pool_env, not both"},
		{"mysql", "      database: {url_env: DATABASE_URL, dialect: mysql}\n", "dialect: must be postgres (got \"mysql\"); MySQL is not supported yet"},
		{"no dir", "      migrations: {allow: []}\n", "services.web.preflight.migrations.dir: required"},
		{"unknown rule", "      migrations:\n        dir: m\n        allow: [drop-colum]\n", "cutover.yaml:12: services.web.preflight.migrations.allow[0]: unknown rule \"drop-colum\""},
		{"drift key", "      drift: {ignore: [X]}\n", "services.web.preflight.drift.ignore: unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("cutover.yaml", []byte(preflightBase+c.yaml))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want problems", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("problems:\n%v\nwant one containing %q", err, c.want)
			}
		})
	}
}

// The static runtime's instances are managed elsewhere: nothing to compare.
func TestPreflightDriftNeedsADescribingRuntime(t *testing.T) {
	_, err := Parse("cutover.yaml", []byte(`services:
  web:
    listen: 127.0.0.1:8080
    runtime: {static: {versions: {v1: ["127.0.0.1:9001"]}}}
    preflight:
      drift: {}
`))
	if err == nil || !strings.Contains(err.Error(), "cutover.yaml:6: services.web.preflight.drift: the static runtime cannot say") {
		t.Fatalf("err = %v", err)
	}
}
