package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Commands and webhooks mix in one list, in the order written, under every
// hook key; the single-entry shorthand works for both forms.
func TestParseHookForms(t *testing.T) {
	c, err := Parse("", []byte(base+`    hooks:
      pre_provision:
        - ./migrate expand
        - {url: "https://ci.example.com/hooks/deploy", timeout: 10s}
        - {command: ./backfill.sh, timeout: 30m}
      pre_traffic: ./smoke.sh
      post_traffic: []
      post_promote: {url: "http://127.0.0.1:9000/promoted"}
      post_retire: [./migrate contract]
      on_rollback: [{url: "https://chat.example.com/rollback"}, ./page-oncall.sh]
      timeout: 2m
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Hooks{
		PreProvision: []Hook{
			{Command: "./migrate expand"},
			{URL: "https://ci.example.com/hooks/deploy", Timeout: 10 * time.Second},
			{Command: "./backfill.sh", Timeout: 30 * time.Minute},
		},
		PreTraffic:  []Hook{{Command: "./smoke.sh"}},
		PostTraffic: []Hook{},
		PostPromote: []Hook{{URL: "http://127.0.0.1:9000/promoted"}},
		PostRetire:  []Hook{{Command: "./migrate contract"}},
		OnRollback:  []Hook{{URL: "https://chat.example.com/rollback"}, {Command: "./page-oncall.sh"}},
		Timeout:     2 * time.Minute,
	}
	if got := c.Services["web"].Hooks; !reflect.DeepEqual(got, want) {
		t.Errorf("hooks:\n got %+v\nwant %+v", got, want)
	}
}

// Every bad hook entry is reported at once, each at its own line, in
// whichever list and form it is.
func TestParseHookProblems(t *testing.T) {
	yaml := base + `    hooks:
      pre_provision:
        - ./ok.sh
        - {url: "ftp://files.example.com/x"}
        - {url: https://a.example.com, command: ./both.sh}
        - {timeout: 10s}
        - {url: https://a.example.com, timout: 10s}
        - [./nested]
      post_promote:
        - {url: "https://"}
        - {url: https://a.example.com, timeout: soon}
        - ""
      post_retire: {command: "  "}
`
	file := filepath.Join(t.TempDir(), "cutover.yaml")
	_, err := Parse(file, []byte(yaml))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse = %v, want a *ValidationError", err)
	}
	var got []string
	for _, p := range verr.Problems {
		got = append(got, strings.ReplaceAll(p.String(), file, "F"))
	}
	want := []string{
		`F:8: services.web.hooks.pre_provision[1].url: must be an http:// or https:// URL with a host (got "ftp://files.example.com/x")`,
		`F:9: services.web.hooks.pre_provision[2]: sets both url and command; choose one`,
		`F:10: services.web.hooks.pre_provision[3]: needs url (a webhook) or command (a shell command)`,
		`F:11: services.web.hooks.pre_provision[4].timout: unknown key (did you mean "timeout"?)`,
		`F:12: services.web.hooks.pre_provision[5]: must be a shell command (a string) or a webhook like {url: https://hooks.example.com/deploy, timeout: 10s}, got a list`,
		`F:14: services.web.hooks.post_promote[0].url: must be an http:// or https:// URL with a host (got "https://")`,
		`F:15: services.web.hooks.post_promote[1].timeout: must be a duration like 500ms, 30s, 1m30s or 1h, got "soon"`,
		`F:16: services.web.hooks.post_promote[2]: must not be an empty command`,
		`F:17: services.web.hooks.post_retire[0]: must not be an empty command`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// A Config built in code gets the same checks as a file.
func TestValidateCodeBuiltHooks(t *testing.T) {
	c := &Config{API: API{Listen: "127.0.0.1:7070"}, StateDir: t.TempDir(), Services: map[string]*Service{"web": defaultService("web")}}
	s := c.Services["web"]
	s.Listen = "127.0.0.1:8080"
	s.Runtime.Static = &Static{}
	s.Hooks.PostRetire = []Hook{{Command: "./contract.sh"}, {URL: "https://x.example.com", Command: "./y.sh"}, {URL: "x.example.com"}, {}}
	err := c.Validate()
	want := strings.Join([]string{
		"services.web.hooks.post_retire[1]: sets both url and command; choose one",
		`services.web.hooks.post_retire[2].url: must be an http:// or https:// URL with a host (got "x.example.com")`,
		"services.web.hooks.post_retire[3]: must not be an empty command",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("Validate = %v\nwant %s", err, want)
	}
}
