package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// interfaceExample is the example from shared/INTERFACE.md, verbatim.
const interfaceExample = `api:
  listen: 127.0.0.1:7070          # control API (+ dashboard later); default 127.0.0.1:7070
  token_file: ""                  # optional; when set, every mutating call needs "Authorization: Bearer <token>"
state_dir: .cutover               # default: .cutover beside the config file
services:
  web:                            # service name: [a-z0-9-]{1,63}
    listen: 127.0.0.1:8080        # public router address
    preview_listen: 127.0.0.1:8081  # reaches only the candidate pool (the idle colour during a deployment)
    instances: 2                  # per colour
    runtime:
      process:
        command: ["./app", "--listen", "127.0.0.1:${PORT}", "--version", "${VERSION}"]
        env: {APP_ENV: production}  # each instance also gets PORT, VERSION, COLOR, SERVICE, INSTANCE
        dir: .
        stop_timeout: 10s
      # or, for instances managed elsewhere:
      # static:
      #   versions:
      #     v1: ["10.0.1.5:8080", "10.0.1.6:8080"]
    health:
      path: /healthz
      interval: 1s
      timeout: 2s
      healthy_threshold: 2
      unhealthy_threshold: 3
    drain_timeout: 30s
    strategy:                      # no steps = all at once
      steps:
        - {weight: 10, pause: 30s}  # weight = percent of traffic on the candidate; pause without duration = wait for ` + "`cutover promote`" + `
        - {weight: 50, pause: 30s}
      analysis:
        interval: 1s
        max_error_rate: 1%
        max_p99_latency: 1s
        min_requests: 50
    keep_previous: 1h              # how long the old pool stays warm for instant rollback
    hooks:
      pre_traffic: ["./smoke-test.sh"]   # env: SERVICE, VERSION, COLOR, PREVIEW_URL
      post_traffic: []
      on_rollback: []
    fallback_page: ./maintenance.html
`

// writeFiles creates files (name -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadInterfaceExample(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"cutover.yaml":      interfaceExample,
		"maintenance.html":  "<h1>back soon</h1>",
		"smoke-test.sh":     "#!/bin/sh\n",
		"app":               "#!/bin/sh\n",
		"unrelated/file.md": "",
	})
	c, err := Load(filepath.Join(dir, "cutover.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.File != filepath.Join(dir, "cutover.yaml") || c.StateDir != filepath.Join(dir, ".cutover") {
		t.Errorf("File, StateDir = %q, %q", c.File, c.StateDir)
	}
	if c.API != (API{Listen: "127.0.0.1:7070"}) {
		t.Errorf("API = %+v", c.API)
	}
	if !reflect.DeepEqual(c.ServiceNames, []string{"web"}) {
		t.Errorf("ServiceNames = %v", c.ServiceNames)
	}
	want := defaultService("web")
	want.Listen, want.PreviewListen, want.Instances = "127.0.0.1:8080", "127.0.0.1:8081", 2
	want.Runtime.Process = &Process{
		Command:      []string{"./app", "--listen", "127.0.0.1:${PORT}", "--version", "${VERSION}"},
		Env:          map[string]string{"APP_ENV": "production"},
		Dir:          dir,
		StopTimeout:  10 * time.Second,
		StartTimeout: 60 * time.Second,
	}
	want.Strategy.Steps = []Step{{Weight: 10, Pause: 30 * time.Second, Line: 29}, {Weight: 50, Pause: 30 * time.Second, Line: 30}}
	want.Hooks.PreTraffic, want.Hooks.PostTraffic, want.Hooks.OnRollback = []Hook{{Command: "./smoke-test.sh"}}, []Hook{}, []Hook{}
	want.FallbackPage = filepath.Join(dir, "maintenance.html")
	if got := c.Services["web"]; !reflect.DeepEqual(got, want) {
		t.Errorf("service web:\n got %+v\nwant %+v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "cutover.yaml")
	writeFiles(t, dir, map[string]string{"sub/cutover.yaml": `
services:
  web:
    listen: :8080
    runtime: {process: {command: [./app]}}
`})
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.API.Listen != "127.0.0.1:7070" || c.API.TokenFile != "" {
		t.Errorf("API = %+v", c.API)
	}
	if want := filepath.Join(dir, "sub", ".cutover"); c.StateDir != want {
		t.Errorf("StateDir = %q, want %q", c.StateDir, want)
	}
	s := c.Services["web"]
	want := &Service{
		Name: "web", Listen: ":8080", StickyCookie: "cutover_web", Instances: 1, Start: Start{Parallel: 1},
		Runtime: Runtime{Process: &Process{Command: []string{"./app"}, Dir: filepath.Join(dir, "sub"),
			StopTimeout: 10 * time.Second, StartTimeout: 60 * time.Second}},
		Health:       Health{Path: "/healthz", Interval: time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3},
		Timeouts:     Timeouts{ReadHeader: 10 * time.Second, Idle: 120 * time.Second, UpstreamHeader: 60 * time.Second},
		DrainTimeout: 30 * time.Second,
		Strategy: Strategy{
			Analysis: Analysis{Interval: time.Second, MaxErrorRate: 0.01, MaxP99Latency: time.Second, MinRequests: 50,
				CloudWatch: CloudWatchMetrics{Period: time.Minute, Delay: time.Minute}},
			ProgressDeadline: 10 * time.Minute,
		},
		KeepPrevious: time.Hour,
		QuietPeriod:  10 * time.Second,
		Hooks:        Hooks{Timeout: 5 * time.Minute},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", s, want)
	}
}

// base is a valid service that cases extend.
const base = `services:
  web:
    listen: 127.0.0.1:8080
    runtime: {process: {command: [./app]}}
`

// TestParseValues checks how accepted values are decoded.
func TestParseValues(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"percent with sign", base + "    strategy: {analysis: {max_error_rate: 0.5%}}\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Strategy.Analysis.MaxErrorRate, 0.005)
		}},
		{"bare number is percent", base + "    strategy: {analysis: {max_error_rate: 2}}\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Strategy.Analysis.MaxErrorRate, 0.02)
		}},
		{"bare fraction is percent", base + "    strategy: {analysis: {max_error_rate: 0.5}}\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Strategy.Analysis.MaxErrorRate, 0.005)
		}},
		{"explicit zero latency disables", base + "    strategy: {analysis: {max_p99_latency: 0}}\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Strategy.Analysis.MaxP99Latency, time.Duration(0))
		}},
		{"pause forms", base + `    strategy:
      steps:
        - {weight: 1}
        - {weight: 2, pause: }
        - {weight: 3, pause: ""}
        - {weight: 4, pause: manual}
        - {weight: 5, pause: 0s}
        - {weight: "12.5%", pause: 1m30s}
`, func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Strategy.Steps, []Step{
				{Weight: 1, Manual: true, Line: 7}, {Weight: 2, Manual: true, Line: 8}, {Weight: 3, Manual: true, Line: 9},
				{Weight: 4, Manual: true, Line: 10}, {Weight: 5, Line: 11}, {Weight: 12.5, Pause: 90 * time.Second, Line: 12},
			})
		}},
		{"trusted proxies normalised", base + "    trusted_proxies: [10.0.0.1, \"::1\", 10.0.0.0/8]\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].TrustedProxies, []string{"10.0.0.1/32", "::1/128", "10.0.0.0/8"})
		}},
		{"single hook string", base + "    hooks: {pre_traffic: ./smoke.sh}\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Hooks.PreTraffic, []Hook{{Command: "./smoke.sh"}})
		}},
		{"argv and env scalars as text", base[:len(base)-len("    runtime: {process: {command: [./app]}}\n")] +
			"    runtime: {process: {command: [./app, --port, 8080], env: {N: 3, B: true}}}\n", func(t *testing.T, c *Config) {
			p := c.Services["web"].Runtime.Process
			assertEq(t, p.Command, []string{"./app", "--port", "8080"})
			assertEq(t, p.Env, map[string]string{"N": "3", "B": "true"})
		}},
		{"anchors and aliases", `services:
  web:
    listen: 127.0.0.1:8080
    runtime: &rt {process: {command: [./app]}}
    health: &h {path: /ready, interval: 5s}
  api:
    listen: 127.0.0.1:8090
    runtime: *rt
    health: *h
`, func(t *testing.T, c *Config) {
			assertEq(t, c.Services["api"].Health, c.Services["web"].Health)
			assertEq(t, c.Services["api"].Health.Interval, 5*time.Second)
			assertEq(t, c.Services["api"].Runtime.Process.Command, []string{"./app"})
		}},
		{"port 0 never conflicts", `services:
  a: {listen: "127.0.0.1:0", preview_listen: "127.0.0.1:0", runtime: {static: {}}}
  b: {listen: "127.0.0.1:0", runtime: {static: {versions: {"1.2": ["10.0.0.1:80"]}}}}
`, func(t *testing.T, c *Config) {
			assertEq(t, c.ServiceNames, []string{"a", "b"})
			assertEq(t, c.Services["b"].Runtime.Static.Versions, map[string][]string{"1.2": {"10.0.0.1:80"}})
		}},
		{"allowed hosts", "api:\n  allowed_hosts: [cutover.example.com, \"ci.example.com:7443\", \"*.ops.example\", 10.0.0.5, \"[fd00::2]:7070\"]\n" + base,
			func(t *testing.T, c *Config) {
				assertEq(t, c.API.AllowedHosts.List(), []string{"cutover.example.com", "ci.example.com:7443", "*.ops.example", "10.0.0.5", "[fd00::2]:7070"})
				if c.API.AllowedHosts != Hosts("cutover.example.com", "ci.example.com:7443", "*.ops.example", "10.0.0.5", "[fd00::2]:7070") ||
					c.API.AllowedHosts == Hosts("cutover.example.com", "ci.example.com:7443") {
					t.Error("equal lists must compare equal with ==, different ones not")
				}
			}},
		{"fine weights", base + "    strategy: {steps: [{weight: 0.01}, {weight: 0.1}, {weight: 33.33}, {weight: \"99.99%\"}, {weight: 100}]}\n",
			func(t *testing.T, c *Config) {
				var got []float64
				for _, st := range c.Services["web"].Strategy.Steps {
					got = append(got, st.Weight)
				}
				assertEq(t, got, []float64{0.01, 0.1, 33.33, 99.99, 100})
			}},
		{"public api with token", "api: {listen: \":7070\", token_file: token}\n" + base, func(t *testing.T, c *Config) {
			assertEq(t, c.API.TokenFile, filepath.Join(filepath.Dir(c.File), "token"))
		}},
		{"start parallel", base + "    instances: 4\n    start: {parallel: 4}\n", func(t *testing.T, c *Config) {
			assertEq(t, c.Services["web"].Start, Start{Parallel: 4})
		}},
		{"instance environment", `services:
  web:
    listen: 127.0.0.1:8080
    runtime:
      process:
        command: [./app]
        env_file: app.env
        secrets:
          DB_PASSWORD: {file: token}
          API_KEY: {env: WEB_API_KEY}
        inherit_env: [HTTP_PROXY, AWS_REGION]
`, func(t *testing.T, c *Config) {
			p, dir := c.Services["web"].Runtime.Process, filepath.Dir(c.File)
			assertEq(t, p.EnvFile, filepath.Join(dir, "app.env"))
			assertEq(t, p.Secrets, map[string]Secret{
				"DB_PASSWORD": {File: filepath.Join(dir, "token")}, "API_KEY": {Env: "WEB_API_KEY"},
			})
			assertEq(t, p.InheritEnv, []string{"HTTP_PROXY", "AWS_REGION"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"token": "secret\n", "app.env": "# settings\nexport A=1\nB='two words'\n"})
			c, err := Parse(filepath.Join(dir, "cutover.yaml"), []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func assertEq[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

// TestParseProblems checks the exact problem lines users see. "F" stands
// for the config file's path.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty file", "", []string{"F: services: at least one service is required"}},
		{"not a mapping", "- a\n", []string{
			"F:1: must be a mapping, got a list",
			"F: services: at least one service is required",
		}},
		{"syntax error", "services:\n  web: [\n", []string{"F:2: invalid YAML: did not find expected node content"}},
		{"second document", base + "---\napi: {}\n", []string{"F:5: holds a second YAML document (after ---); a config file holds one"}},
		{"unknown key with suggestion", base + "    helth: {path: /}\n", []string{
			`F:5: services.web.helth: unknown key (did you mean "health"?)`,
		}},
		{"unknown top-level key", "colour: blue\n" + base, []string{
			`F:1: colour: unknown key (known keys: [api services state_dir])`,
		}},
		{"duplicate key", base + "    listen: 127.0.0.1:9090\n", []string{
			"F:5: services.web.listen: set twice (first on line 3)",
		}},
		{"wrong type", base + "    instances: two\n", []string{`F:5: services.web.instances: must be an integer, got "two"`}},
		{"zero instances", base + "    instances: 0\n", []string{"F:5: services.web.instances: must be at least 1 (got 0)"}},
		{"bool", base + "    h2c: yes please\n", []string{`F:5: services.web.h2c: must be true or false, got "yes please"`}},
		{"bad duration", base + "    drain_timeout: 30 seconds\n", []string{
			`F:5: services.web.drain_timeout: must be a duration like 500ms, 30s, 1m30s or 1h, got "30 seconds"`,
		}},
		{"bare number duration", base + "    keep_previous: 3600\n", []string{
			`F:5: services.web.keep_previous: must be a duration like 500ms, 30s, 1m30s or 1h, got 3600`,
		}},
		{"negative duration", base + "    quiet_period: -1s\n", []string{"F:5: services.web.quiet_period: must not be negative (got -1s)"}},
		{"zero timeout", base + "    health: {timeout: 0s}\n", []string{"F:5: services.web.health.timeout: must be greater than 0 (got 0s)"}},
		{"thresholds", base + "    health:\n      healthy_threshold: 0\n      unhealthy_threshold: -2\n", []string{
			"F:6: services.web.health.healthy_threshold: must be at least 1 (got 0)",
			"F:7: services.web.health.unhealthy_threshold: must be at least 1 (got -2)",
		}},
		{"health path", base + "    health: {path: healthz}\n", []string{
			`F:5: services.web.health.path: must be an absolute URL path like /healthz (got "healthz")`,
		}},
		{"bad percent", base + "    strategy: {analysis: {max_error_rate: lots}}\n", []string{
			`F:5: services.web.strategy.analysis.max_error_rate: must be a percentage like 1% or 0.5, got "lots"`,
		}},
		{"percent over 100", base + "    strategy: {analysis: {max_error_rate: 150%}}\n", []string{
			`F:5: services.web.strategy.analysis.max_error_rate: must be between 0% and 100% (got 150%)`,
		}},
		{"weights", base + `    strategy:
      steps:
        - {weight: 50, pause: 30s}
        - {weight: 30}
        - {weight: 0}
        - {weight: 101}
        - {pause: 1s}
        - {weight: 60, pause: soon}
`, []string{
			"F:8: services.web.strategy.steps[1].weight: must be greater than the previous step's 50 (got 30)",
			"F:9: services.web.strategy.steps[2].weight: must be greater than 0 and at most 100 (got 0)",
			"F:10: services.web.strategy.steps[3].weight: must be greater than 0 and at most 100 (got 101)",
			"F:11: services.web.strategy.steps[4].weight: must be greater than 0 and at most 100 (got 0)",
			`F:12: services.web.strategy.steps[5].pause: must be a duration like 500ms, 30s, 1m30s or 1h, or "manual", got "soon"`,
		}},
		// A refused weight is not what later steps are judged against: 60
		// follows 50, the last weight that was accepted (issue 9).
		{"invalid weight is not the next one's floor", base + `    strategy:
      steps:
        - {weight: 150, pause: 30s}
        - {weight: 60, pause: 30s}
`, []string{
			"F:7: services.web.strategy.steps[0].weight: must be greater than 0 and at most 100 (got 150)",
		}},
		// The router splits traffic in 10000 buckets: 0.01% is the smallest
		// share it can give, and the step every weight is a multiple of.
		{"weight finer than the router", base + `    strategy:
      steps:
        - {weight: 0.001}
        - {weight: 0.01}
        - {weight: 12.345}
        - {weight: "99.99%"}
        - {weight: 99.999}
`, []string{
			"F:7: services.web.strategy.steps[0].weight: must be at least 0.01, the smallest share of traffic the router can give (got 0.001)",
			"F:9: services.web.strategy.steps[2].weight: must be a multiple of 0.01: the router splits traffic in steps of 0.01% (got 12.345)",
			"F:11: services.web.strategy.steps[4].weight: must be a multiple of 0.01: the router splits traffic in steps of 0.01% (got 99.999)",
		}},
		{"allowed hosts", `api:
  allowed_hosts:
    - cutover.example.com
    - "*"
    - http://ci.example.com/
    - "ci.example.com:99999"
    - ""
    - "*.10.0.0.5"
    - bad host
    - "fd00::2:7070"
    - "*.ops.example.com:7443"
    - "[fd00::2]:7070"
` + base, []string{
			`F:4: api.allowed_hosts[1]: "*" would answer any Host and undo the protection against DNS rebinding: list the names clients use`,
			`F:5: api.allowed_hosts[2]: must be a host name or IP address, optionally with :port, like cutover.example.com, cutover.example.com:7070, *.example.com or 10.0.0.5 (got "http://ci.example.com/")`,
			`F:6: api.allowed_hosts[3]: port must be 1-65535 (got "ci.example.com:99999")`,
			`F:7: api.allowed_hosts[4]: must not be empty`,
			`F:8: api.allowed_hosts[5]: a wildcard must be followed by a domain name, not an IP address (got "*.10.0.0.5")`,
			`F:9: api.allowed_hosts[6]: must be a host name or IP address, optionally with :port, like cutover.example.com, cutover.example.com:7070, *.example.com or 10.0.0.5 (got "bad host")`,
		}},
		{"allowed hosts not a list", "api: {allowed_hosts: cutover.example.com}\n" + base, []string{
			`F:1: api.allowed_hosts: must be a list, got "cutover.example.com"`,
		}},
		{"service name", "services:\n  Web_1: {listen: \":80\", runtime: {static: {}}}\n", []string{
			`F:2: services.Web_1: service name must be 1-63 characters of a-z, 0-9 and '-' (got "Web_1")`,
		}},
		{"missing listen and runtime", "services:\n  web: {}\n", []string{
			"F:2: services.web.listen: required (an address like 127.0.0.1:8080)",
			"F:2: services.web.runtime: needs one of process (local processes), docker (containers), static (fixed addresses) or asg (Auto Scaling groups)",
		}},
		{"listen not host:port", "services:\n  web:\n    listen: 8080\n    runtime: {static: {}}\n", []string{
			"F:3: services.web.listen: must be a string, got 8080",
		}},
		{"listen without port", "services:\n  web:\n    listen: localhost\n    runtime: {static: {}}\n", []string{
			`F:3: services.web.listen: must be host:port with a numeric port, like 127.0.0.1:8080 or :8080 (got "localhost")`,
		}},
		{"duplicate listens", `api: {listen: "127.0.0.1:9000"}
services:
  a: {listen: "127.0.0.1:8080", preview_listen: "127.0.0.1:9000", runtime: {static: {}}}
  b: {listen: ":8080", runtime: {static: {}}}
  c: {listen: "localhost:8081", preview_listen: "127.0.0.1:8081", runtime: {static: {}}}
`, []string{
			"F:3: services.a.preview_listen: 127.0.0.1:9000 is already used by api.listen (line 1)",
			"F:4: services.b.listen: :8080 is already used by services.a.listen (line 3)",
			"F:5: services.c.preview_listen: 127.0.0.1:8081 is already used by services.c.listen (line 5)",
		}},
		{"both runtimes", "services:\n  web:\n    listen: :80\n    runtime:\n      process: {command: [a]}\n      static: {}\n", []string{
			"F:5: services.web.runtime: sets both process and static; choose one",
		}},
		{"empty command", "services:\n  web:\n    listen: :80\n    runtime:\n      process: {command: []}\n", []string{
			`F:5: services.web.runtime.process.command: must not be empty (argv, like ["./app", "--port", "${PORT}"])`,
		}},
		{"command not a list", "services:\n  web:\n    listen: :80\n    runtime:\n      process: {command: ./app --port 1}\n", []string{
			`F:5: services.web.runtime.process.command: must be a list, got "./app --port 1"`,
		}},
		{"process dir missing", "services:\n  web:\n    listen: :80\n    runtime:\n      process: {command: [a], dir: nowhere}\n", []string{
			"F:5: services.web.runtime.process.dir: cannot use D/nowhere: no such file or directory",
		}},
		{"static addresses", `services:
  web:
    listen: :80
    runtime:
      static:
        versions:
          v1: []
          v2: ["10.0.0.1", ":8080", "10.0.0.2:0", "10.0.0.3:80"]
`, []string{
			"F:7: services.web.runtime.static.versions.v1: lists no addresses",
			`F:8: services.web.runtime.static.versions.v2[0]: must be host:port with a numeric port, like 127.0.0.1:8080 or :8080 (got "10.0.0.1")`,
			`F:8: services.web.runtime.static.versions.v2[1]: needs a host, like 10.0.1.5:8080 (got ":8080")`,
			`F:8: services.web.runtime.static.versions.v2[2]: needs a port other than 0 (got "10.0.0.2:0")`,
		}},
		{"missing files", `api: {token_file: token.txt}
services:
  web:
    listen: :80
    tls: {cert: cert.pem}
    runtime: {static: {}, upstream_tls: {ca_file: ca.pem}}
    fallback_page: down.html
`, []string{
			"F:1: api.token_file: cannot use D/token.txt: no such file or directory",
			"F:5: services.web.tls.cert: cannot use D/cert.pem: no such file or directory",
			"F:5: services.web.tls.key: required when tls is set (a PEM file)",
			"F:6: services.web.runtime.upstream_tls.ca_file: cannot use D/ca.pem: no such file or directory",
			"F:7: services.web.fallback_page: cannot use D/down.html: no such file or directory",
		}},
		{"fallback page is a directory", base + "    fallback_page: .\n", []string{
			"F:5: services.web.fallback_page: D is a directory, not a file",
		}},
		{"trusted proxies", base + "    trusted_proxies: [10.0.0.0/8, example.com]\n", []string{
			`F:5: services.web.trusted_proxies[1]: must be a CIDR like 10.0.0.0/8 or an IP address (got "example.com")`,
		}},
		{"sticky cookie", base + "    sticky_cookie: \"a b\"\n", []string{
			`F:5: services.web.sticky_cookie: must be a cookie name, or "-" to disable stickiness (got "a b")`,
		}},
		{"public api without token", "api: {listen: \"0.0.0.0:7070\"}\n" + base, []string{
			"F:1: api.listen: 0.0.0.0:7070 is reachable from other machines, and the API can deploy and roll back: " +
				"set api.token_file, or listen on 127.0.0.1",
		}},
		{"empty hooks", base + "    hooks:\n      pre_traffic: [\"\", ./ok.sh]\n      on_rollback: [\"  \"]\n", []string{
			"F:6: services.web.hooks.pre_traffic[0]: must not be an empty command",
			"F:7: services.web.hooks.on_rollback[0]: must not be an empty command",
		}},
		{"start parallel", base + "    instances: 2\n    start: {parallel: 3}\n", []string{
			"F:6: services.web.start.parallel: must be at most instances, 2 (got 3)",
		}},
		{"start parallel zero", base + "    start:\n      parallel: 0\n", []string{
			"F:6: services.web.start.parallel: must be at least 1 (got 0)",
		}},
		{"start unknown key", base + "    start: {paralel: 2}\n", []string{
			`F:5: services.web.start.paralel: unknown key (did you mean "parallel"?)`,
		}},
		{"instance environment", `services:
  web:
    listen: :80
    runtime:
      process:
        command: [./app]
        env_file: nowhere.env
        secrets:
          DB: {file: db.secret}
          "BAD-NAME": {env: X}
          BOTH: {file: x, env: Y}
          NEITHER: {}
          PORT: {env: P}
          LIST: [a]
          TYPO: {fiel: x}
          VAR: {env: "not valid"}
        inherit_env: [AWS_REGION, CUTOVER_MARK, "1X", AWS_REGION]
`, []string{
			"F:7: services.web.runtime.process.env_file: cannot use D/nowhere.env: no such file or directory",
			"F:9: services.web.runtime.process.secrets.DB.file: cannot use D/db.secret: no such file or directory",
			`F:10: services.web.runtime.process.secrets.BAD-NAME: "BAD-NAME" is not a valid environment variable name (letters, digits and '_', not starting with a digit)`,
			"F:11: services.web.runtime.process.secrets.BOTH: sets both file and env; choose one",
			"F:12: services.web.runtime.process.secrets.NEITHER: needs file (a file holding the value) or env (a variable of the daemon's environment)",
			"F:13: services.web.runtime.process.secrets.PORT: PORT is set by cutover for every instance and cannot be overridden",
			"F:14: services.web.runtime.process.secrets.LIST: must be {file: PATH} or {env: DAEMON_VAR}, got a list",
			`F:15: services.web.runtime.process.secrets.TYPO.fiel: unknown key (did you mean "file"?)`,
			"F:15: services.web.runtime.process.secrets.TYPO: needs file (a file holding the value) or env (a variable of the daemon's environment)",
			`F:16: services.web.runtime.process.secrets.VAR.env: "not valid" is not a valid environment variable name`,
			"F:17: services.web.runtime.process.inherit_env[1]: CUTOVER_MARK is set by cutover for every instance and cannot be overridden",
			`F:17: services.web.runtime.process.inherit_env[2]: "1X" is not a valid environment variable name (letters, digits and '_', not starting with a digit)`,
			"F:17: services.web.runtime.process.inherit_env[3]: AWS_REGION is listed twice",
		}},
		{"env file with bad lines", base[:len(base)-len("    runtime: {process: {command: [./app]}}\n")] +
			"    runtime: {process: {command: [./app], env_file: bad.env}}\n", []string{
			"F:4: services.web.runtime.process.env_file: D/bad.env:2: expected KEY=VALUE",
			"F:4: services.web.runtime.process.env_file: D/bad.env:4: TOKEN: the double quote is not closed (values span one line; write \\n for a newline)",
			"F:4: services.web.runtime.process.env_file: D/bad.env:5: A set twice (first on line 1)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"bad.env": "A=1\nhunter2\n\nTOKEN=\"s3cr3t\nA=2\n"})
			file := filepath.Join(dir, "cutover.yaml")
			c, err := Parse(file, []byte(tt.yaml))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse returned %v (config %v), want a *ValidationError", err, c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			got := make([]string, len(verr.Problems))
			for i, p := range verr.Problems {
				got[i] = strings.ReplaceAll(strings.ReplaceAll(p.String(), file, "F"), dir, "D")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
			if verr.Error() != strings.Join(func() []string {
				s := make([]string, len(verr.Problems))
				for i, p := range verr.Problems {
					s[i] = p.String()
				}
				return s
			}(), "\n") {
				t.Errorf("Error() is not the problems one per line")
			}
		})
	}
}

// TestManyProblemsAtOnce proves a user fixing a config sees everything
// wrong in one run, in file order.
func TestManyProblemsAtOnce(t *testing.T) {
	const yaml = `api:
  listen: 0.0.0.0:7070
services:
  Web_1:
    lisen: 127.0.0.1:8080
    instances: two
    runtime:
      process: {command: []}
      static: {versions: {v1: ["nohost"]}}
    health: {interval: 1, timeout: -1s, healthy_threshold: 0}
    strategy:
      steps:
        - {weight: 50, pause: 30s}
        - {weight: 30}
      analysis: {max_error_rate: "1 percent"}
  api:
    listen: 127.0.0.1:7070
    hooks: {pre_traffic: [""]}
`
	_, err := Parse("cutover.yaml", []byte(yaml))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	wantKeys := []string{
		"api.listen", "services.Web_1.lisen", "services.Web_1", "services.Web_1.listen",
		"services.Web_1.instances", "services.Web_1.runtime", "services.Web_1.runtime.process.command",
		"services.Web_1.runtime.static.versions.v1[0]", "services.Web_1.health.interval",
		"services.Web_1.health.timeout", "services.Web_1.health.healthy_threshold",
		"services.Web_1.strategy.steps[1].weight", "services.Web_1.strategy.analysis.max_error_rate",
		"services.api.runtime", "services.api.listen", "services.api.hooks.pre_traffic[0]",
	}
	got := map[string]bool{}
	last := 0
	for _, p := range verr.Problems {
		got[p.Key] = true
		if p.Line < last {
			t.Errorf("problems out of file order: %v", p)
		}
		last = p.Line
		if !strings.HasPrefix(p.String(), "cutover.yaml:") {
			t.Errorf("problem without file:line: %s", p)
		}
	}
	for _, k := range wantKeys {
		if !got[k] {
			t.Errorf("no problem reported for %s; got:\n%v", k, err)
		}
	}
	if len(verr.Problems) != len(wantKeys) {
		t.Errorf("got %d problems, want %d:\n%v", len(verr.Problems), len(wantKeys), err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("want a not-exist error naming the file, got %v", err)
	}
}

func TestValidateCodeBuilt(t *testing.T) {
	c := &Config{API: API{Listen: "127.0.0.1:7070"}, StateDir: t.TempDir(), Services: map[string]*Service{"web": defaultService("web")}}
	c.Services["web"].Listen = "127.0.0.1:8080"
	c.Services["web"].Runtime.Static = &Static{}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.Services["web"].Health.Interval = 0
	err := c.Validate()
	if err == nil || err.Error() != "services.web.health.interval: must be greater than 0 (got 0s)" {
		t.Fatalf("Validate = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(interfaceExample))
	f.Add([]byte(base))
	f.Add([]byte("services:\n  web: {listen: ':1', runtime: {static: {versions: {v: [a]}}}, strategy: {steps: [{weight: 5%}]}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("services: {web: &w {listen: ':1'}, api: *w}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("cutover.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", verr)
			}
			return
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) == 0 {
			t.Fatalf("error is not a non-empty *ValidationError: %v", err)
		}
		for _, p := range verr.Problems {
			if p.Msg == "" || p.File != "cutover.yaml" {
				t.Fatalf("bad problem %#v", p)
			}
		}
	})
}

// TestMinWeightIsOneBucket keeps the smallest weight Validate accepts equal
// to one of the router's buckets.
func TestMinWeightIsOneBucket(t *testing.T) {
	if want := 100.0 / route.Buckets; MinWeight != want {
		t.Fatalf("MinWeight = %v, but one of route.Buckets is %v%%", MinWeight, want)
	}
}

func TestHostListRoundTrip(t *testing.T) {
	for _, list := range [][]string{nil, {""}, {"a", "b"}, {`"quoted"`, "new\nline", "a\"b"}} {
		if got := Hosts(list...).List(); !reflect.DeepEqual(got, list) && !(len(got) == 0 && len(list) == 0) {
			t.Errorf("Hosts(%q).List() = %q", list, got)
		}
	}
	if Hosts("a,b") == Hosts("a", "b") || (HostList{}) != Hosts() {
		t.Error("HostList == does not compare the lists")
	}
}
