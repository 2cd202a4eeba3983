package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
)

// Scripts written against the first CLI (Go's flag package) spell long
// flags with one dash; they reach the daemon as they did.
func TestSingleDashFlagsReachTheDaemon(t *testing.T) {
	b := cannedBackend()
	url := daemon(t, b, api.Options{Token: "tok"})

	r := run(t, "http://127.0.0.1:1", "", "-api", url, "status", "api", "-json")
	var st deploy.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || st.Service != "api" {
		t.Fatalf("-api URL status api -json: %d %v %q %s", r.code, err, r.stdout, r.stderr)
	}
	r = run(t, url, "", "history", "-limit=1", "api", "-json")
	var ds []deploy.Deployment
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("history -limit=1 api -json: %v %q %s", err, r.stdout, r.stderr)
	}
	r = run(t, url, "tok", "deploy", "api", "v9", "-strategy", "all-at-once", "-json")
	var d deploy.Deployment
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != 0 || d.Version != "v9" {
		t.Fatalf("deploy -strategy -json: %d %v %q %s", r.code, err, r.stdout, r.stderr)
	}
	if calls := fmt.Sprint(b.Calls()); !strings.Contains(calls, "[deploy api v9 all-at-once user]") {
		t.Errorf("daemon did not get the strategy: %s", calls)
	}
	if r := run(t, url, "", "status", "-colour"); r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --colour") {
		t.Errorf("an unknown single-dash flag is not named by its long form: %+v", r)
	}
}

// Usage errors say what is wrong, show the command's usage line and point
// at its help; none is worded by a Go function name.
func TestUsageErrorMessages(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"stauts"}, []string{`unknown command "stauts"; did you mean status?`, "see cutover help"}},
		{[]string{"--json", "status"}, []string{"unknown flag: --json before the command", "usage: cutover [--api URL] COMMAND"}},
		{[]string{"frobnicate", "--json"}, []string{`unknown command "frobnicate"`}},
		{[]string{"history", "api", "--limit", "x"}, []string{`invalid value "x" for --limit: invalid syntax`, "see cutover help history"}},
		{[]string{"deploy", "web", "v2", "--strategy"}, []string{"flag needs an argument: --strategy", "usage: cutover deploy"}},
		{[]string{"help", "nope"}, []string{`unknown command "nope"`}},
		{[]string{"completion", "tcsh"}, []string{`unknown shell "tcsh"`, "usage: cutover completion"}},
		{[]string{"completion"}, []string{"completion takes 1 argument"}},
	} {
		r := run(t, "", "", tt.args...)
		if r.code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", tt.args, r.code, r.stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tt.args, w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "strconv") {
			t.Errorf("%q: Go function name in a usage error:\n%s", tt.args, r.stderr)
		}
	}
}

// Help is the same whichever way it is asked for, lists both spellings of
// a flag, and goes to stdout with exit 0.
func TestHelpForms(t *testing.T) {
	want := run(t, "", "", "help", "logs")
	if want.code != 0 || !strings.Contains(want.stdout, "usage: cutover logs SERVICE") || !strings.Contains(want.stdout, "-f, --follow") {
		t.Fatalf("help logs: %+v", want)
	}
	for _, args := range [][]string{{"logs", "-h"}, {"logs", "--help"}, {"logs", "-help"}, {"logs", "web", "-h"}} {
		if r := run(t, "", "", args...); r.code != 0 || r.stdout != want.stdout {
			t.Errorf("%q: exit %d\n%s\nwant the output of help logs", args, r.code, r.stdout)
		}
	}
	top := run(t, "", "", "help")
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}} {
		if r := run(t, "", "", args...); r.code != 0 || r.stdout != top.stdout {
			t.Errorf("%q: exit %d\n%s\nwant the output of help", args, r.code, r.stdout)
		}
	}
	if strings.Contains(top.stdout, "demo-app") || !strings.Contains(top.stdout, "completion") {
		t.Errorf("help lists a hidden command or lacks completion:\n%s", top.stdout)
	}
	if r := run(t, "", "", "demo-app", "-h"); r.code != 1 || !strings.Contains(r.stderr, "demo-app is not available") {
		t.Errorf("the hidden demo-app is not a command: %+v", r)
	}
}

// Invocations share nothing: concurrent ones each see their own flags.
func TestConcurrentInvocations(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for n := 1; n <= 8; n++ {
		path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		var cfg strings.Builder
		cfg.WriteString("services:\n")
		for i := range n {
			fmt.Fprintf(&cfg, "  s%d:\n    listen: 127.0.0.1:%d\n    runtime: {static: {versions: {v1: [\"127.0.0.1:9001\"]}}}\n", i, 18000+i)
		}
		if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := run(t, "", "", "validate", "-config", path, "--json")
			var rep struct {
				File     string
				Services int
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.File != path || rep.Services != n {
				t.Errorf("validate %s: %v %+v %s", path, err, rep, r.stderr)
			}
		}()
	}
	wg.Wait()
}
