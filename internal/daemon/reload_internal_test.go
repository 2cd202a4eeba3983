package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

const base = `api:
  listen: 127.0.0.1:7070
state_dir: /tmp/cutover-state
services:
  web:
    listen: 127.0.0.1:8080
    preview_listen: 127.0.0.1:8081
    instances: 2
    runtime:
      process:
        command: ["./app", "--port", "${PORT}"]
    health:
      interval: 1s
    strategy:
      steps:
        - {weight: 10, pause: 30s}
      analysis:
        max_error_rate: 1%
    keep_previous: 1h
    hooks:
      pre_traffic: ["./smoke.sh"]
`

func TestRestartKeys(t *testing.T) {
	tests := []struct {
		name      string
		old, repl string // replaced in base to make the new file
		want      []string
	}{
		{"unchanged", "", "", nil},
		{"lines moved by a comment", "api:", "# moved\n\napi:", nil},
		{"steps", "- {weight: 10, pause: 30s}", "- {weight: 20, pause: 1m}\n        - {weight: 60}", nil},
		{"analysis", "max_error_rate: 1%", "max_error_rate: 5%", nil},
		{"keep_previous", "keep_previous: 1h", "keep_previous: 2h\n    quiet_period: 30s", nil},
		{"hooks", `["./smoke.sh"]`, `["./other.sh"]`, nil},
		{"listen", "listen: 127.0.0.1:8080", "listen: 127.0.0.1:9090", nil},
		{"preview_listen", "127.0.0.1:8081", "127.0.0.1:9091", nil},
		{"instances", "instances: 2", "instances: 3", nil},
		{"start.parallel", "instances: 2", "instances: 2\n    start: {parallel: 2}", nil},
		{"sticky_cookie", "instances: 2", "instances: 2\n    sticky_cookie: shop", []string{"services.web.sticky_cookie"}},
		{"command", `"--port"`, `"--listen"`, []string{"services.web.runtime"}},
		{"health", "interval: 1s\n    strategy", "interval: 2s\n    strategy", nil},
		{"timeouts", "interval: 1s\n    strategy", "interval: 1s\n    timeouts: {idle: 5s, read_header: 2s, upstream_header: 3s}\n    strategy", nil},
		{"api", "listen: 127.0.0.1:7070", "listen: 127.0.0.1:7071", []string{"api"}},
		{"state_dir", "/tmp/cutover-state", "/tmp/other-state", []string{"state_dir"}},
		{"two at once", "instances: 2", "instances: 3\n    drain_timeout: 1m\n    h2c: true", []string{"services.web.h2c"}},
		{"service added", "services:\n", "services:\n  api:\n    listen: 127.0.0.1:8090\n    runtime:\n      static:\n        versions: {v1: [\"127.0.0.1:1\"]}\n",
			nil},
		{"service renamed", "  web:", "  www:", nil},
	}
	old := parse(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := base
			if tc.old != "" {
				if !strings.Contains(base, tc.old) {
					t.Fatalf("base has no %q", tc.old)
				}
				text = strings.Replace(base, tc.old, tc.repl, 1)
			}
			got := restartKeys(old, parse(t, text))
			if !slices.Equal(got, tc.want) {
				t.Errorf("restartKeys = %q, want %q", got, tc.want)
			}
		})
	}
}

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("/tmp/cutover.yaml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return c
}
