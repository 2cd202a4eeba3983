package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file is the preflight section of a service: the release safety
// checks that run before a deployment starts anything (package preflight).

// Preflight configures a service's release safety checks; a nil section
// is not checked.
type Preflight struct {
	Database   *PreflightDatabase
	Migrations *PreflightMigrations
	Drift      *PreflightDrift
}

// PreflightDatabase is preflight.database: will the candidate's connection
// pools fit on the database beside live's?
type PreflightDatabase struct {
	// URLEnv names the variable of the service's env, env_file or secrets
	// that holds the database URL; required. The URL is never logged.
	URLEnv string
	// Dialect is "postgres" (the default).
	Dialect string
	// ConnectionsPerInstance is one instance's pool size; 0 reads PoolEnv,
	// then the URL's pool_max_conns.
	ConnectionsPerInstance int
	// PoolEnv names the app's pool size variable (e.g. DATABASE_MAX_CONNS).
	PoolEnv string
	// Reserve is the headroom kept free: ReservePercent (a fraction; "10%"
	// in the file) of the usable connections, or ReserveAbsolute
	// connections ("5").
	ReservePercent  float64
	ReserveAbsolute int
}

// PreflightMigrations is preflight.migrations: the SQL the new version
// runs, linted for statements that break the version still serving.
type PreflightMigrations struct {
	// Dir is a directory of *.sql files or a glob; ${VERSION} is the
	// version being deployed. Resolved against the config file's directory.
	Dir string
	// Dialect is "postgres" (the default and only one).
	Dialect string
	// Allow lists rule ids accepted for this service.
	Allow []string
}

// PreflightDrift is preflight.drift: the two colours must run the same
// settings but for the version.
type PreflightDrift struct {
	// IgnoreEnv names variables that may differ between colours.
	IgnoreEnv []string
}

// LintRules are the rule ids preflight.migrations.allow accepts (package
// preflight's Rules; the config package cannot import it, a test keeps
// the two lists equal).
var LintRules = []string{
	"drop-column", "drop-table", "rename-column", "rename-table", "alter-column-type", "set-not-null",
	"add-column-not-null", "drop-default", "add-constraint", "create-index", "table-rewrite", "lock-table", "reindex",
	"concurrently-in-transaction",
}

func (d *decoder) preflight(n *yaml.Node, key string, s *Service) {
	if isNull(n) {
		return
	}
	p := &Preflight{}
	s.Preflight = p
	d.mapping(n, key, fields{
		"database": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			db := &PreflightDatabase{Dialect: "postgres", ReservePercent: 0.1}
			p.Database = db
			d.mapping(n, key, fields{
				"url_env":                  d.str(&db.URLEnv),
				"dialect":                  d.str(&db.Dialect),
				"connections_per_instance": d.int(&db.ConnectionsPerInstance),
				"pool_env":                 d.str(&db.PoolEnv),
				"reserve":                  d.reserve(db),
			})
		},
		"migrations": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			m := &PreflightMigrations{Dialect: "postgres"}
			p.Migrations = m
			d.mapping(n, key, fields{"dir": d.str(&m.Dir), "dialect": d.str(&m.Dialect), "allow": d.strs(&m.Allow)})
		},
		"drift": func(key string, n *yaml.Node) {
			dr := &PreflightDrift{}
			p.Drift = dr
			d.mapping(n, key, fields{"ignore_env": d.strs(&dr.IgnoreEnv)})
		},
	})
}

// reserve decodes preflight.database.reserve: "10%" (of the usable
// connections) or a number of connections.
func (d *decoder) reserve(db *PreflightDatabase) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			return
		}
		want := `a percentage like 10% or a number of connections like 5`
		if n.Kind != yaml.ScalarNode {
			d.problem(n, key, "must be %s, got %s", want, describe(n))
			return
		}
		v := strings.TrimSpace(n.Value)
		if pct, ok := strings.CutSuffix(v, "%"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
			if err != nil || !(f >= 0 && f < 100) { // NaN too
				d.problem(n, key, "must be %s (0%% to under 100%%), got %s", want, describe(n))
				return
			}
			db.ReservePercent, db.ReserveAbsolute = f/100, 0
			return
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			d.problem(n, key, "must be %s, got %s", want, describe(n))
			return
		}
		db.ReservePercent, db.ReserveAbsolute = 0, i
	}
}

// resolve makes the migrations dir absolute.
func (p *Preflight) resolve(abs func(*string)) {
	if p != nil && p.Migrations != nil {
		abs(&p.Migrations.Dir)
	}
}

func (v *validator) preflight(key string, s *Service) {
	p := s.Preflight
	if p == nil {
		return
	}
	if db := p.Database; db != nil {
		k := key + ".database"
		if strings.TrimSpace(db.URLEnv) == "" {
			v.add(k+".url_env", "required: the variable of the service's env, env_file or secrets that holds the database URL")
		} else if env, envFile, secrets, ok := s.Runtime.InstanceEnv(); !ok {
			v.add(k+".url_env", "needs runtime.process or runtime.docker, whose env, env_file and secrets hold the variable")
		} else if env[db.URLEnv] == "" && envFile == "" {
			if _, ok := secrets[db.URLEnv]; !ok {
				v.add(k+".url_env", "%s is not in the runtime's env or secrets, and there is no env_file that could hold it", db.URLEnv)
			}
		}
		if db.Dialect != "postgres" && db.Dialect != "postgresql" {
			v.add(k+".dialect", "must be postgres (got %q); MySQL is not supported yet", db.Dialect)
		}
		switch {
		case db.ConnectionsPerInstance < 0:
			v.add(k+".connections_per_instance", "must be at least 1 (got %d)", db.ConnectionsPerInstance)
		case db.ConnectionsPerInstance > 0 && db.PoolEnv != "":
			v.add(k+".pool_env", "set either connections_per_instance or pool_env, not both")
		}
	}
	if p.Drift != nil && s.Runtime.Static != nil {
		v.add(key+".drift", "the static runtime cannot say what a colour runs (its instances are managed elsewhere); remove drift")
	}
	if m := p.Migrations; m != nil {
		k := key + ".migrations"
		if strings.TrimSpace(m.Dir) == "" {
			v.add(k+".dir", "required: a directory of .sql files or a glob (${VERSION} is the version deployed)")
		}
		if m.Dialect != "postgres" && m.Dialect != "postgresql" {
			v.add(k+".dialect", "must be postgres (got %q)", m.Dialect)
		}
		for i, r := range m.Allow {
			if !slices.Contains(LintRules, r) {
				v.add(fmt.Sprintf("%s.allow[%d]", k, i), "unknown rule %q (rules: %s)", r, strings.Join(LintRules, ", "))
			}
		}
	}
}
