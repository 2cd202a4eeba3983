package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// testApp is an invocation with no environment, writing into buffers.
func testApp() (a *app, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	a = &app{ctx: context.Background(), getenv: func(string) string { return "" },
		stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, loc: time.UTC}
	return a, stdout, stderr
}

// parseAs runs args through cutover's command tree with the command
// called name replaced by a recorder, and returns the positional arguments
// and flags that command would have run with.
func parseAs(t *testing.T, name string, args ...string) (pos []string, o opts, api string) {
	t.Helper()
	a, _, stderr := testApp()
	root := a.tree()
	ran := false
	subcommand(root, name).Run = func(cmd *cobra.Command, p []string) { pos, ran = p, true }
	if code := a.execute(root, args); code != 0 || !ran {
		t.Fatalf("%q: exit %d, ran %v: %s", args, code, ran, stderr)
	}
	return pos, a.opts, a.api
}

// Flags may come before, between or after the positional arguments, in
// the spellings of Go's flag package and of pflag alike; "--" ends them.
func TestInterspersedFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		pos  string
		wait bool
		s    string
	}{
		{[]string{"web", "v2", "--wait", "--strategy", "all-at-once"}, "[web v2]", true, "all-at-once"},
		{[]string{"--wait", "web", "--strategy=x", "v2"}, "[web v2]", true, "x"},
		{[]string{"web", "--", "--wait"}, "[web --wait]", false, ""},
		{[]string{"web", "-wait", "v2", "-strategy", "canary10-5m"}, "[web v2]", true, "canary10-5m"},
		{[]string{"-strategy=linear10-1m", "web", "v2", "-wait=false"}, "[web v2]", false, "linear10-1m"},
		{[]string{"web", "v2", "--strategy", "-wait"}, "[web v2]", false, "-wait"}, // a flag's value stays as it is
		{[]string{"web", "--", "-v2"}, "[web -v2]", false, ""},
	} {
		pos, o, _ := parseAs(t, "deploy", append([]string{"deploy"}, tt.args...)...)
		if fmt.Sprint(pos) != tt.pos || o.wait != tt.wait || o.strategy != tt.s {
			t.Errorf("%q: pos %v wait %v strategy %q", tt.args, pos, o.wait, o.strategy)
		}
	}
}

// Every single-dash long flag that Go's flag package accepted still works,
// where it worked before: before the command (-api) or anywhere after it.
func TestSingleDashLongFlags(t *testing.T) {
	for _, tt := range []struct {
		cmd  string
		args []string
		want func(o opts, api string) bool
	}{
		{"status", []string{"-api", "http://x", "status", "-json"}, func(o opts, api string) bool { return api == "http://x" && o.json }},
		{"status", []string{"-api=http://x", "status"}, func(o opts, api string) bool { return api == "http://x" }},
		{"status", []string{"status", "web", "-api", "http://y"}, func(o opts, api string) bool { return api == "http://y" }},
		{"history", []string{"history", "-limit", "3", "web", "-json"}, func(o opts, _ string) bool { return o.limit == 3 && o.json }},
		{"history", []string{"history", "web", "-limit=0"}, func(o opts, _ string) bool { return o.limit == 0 }},
		{"history", []string{"history", "web"}, func(o opts, _ string) bool { return o.limit == 20 }},
		{"logs", []string{"logs", "web", "-color", "green", "-follow"}, func(o opts, _ string) bool { return o.color == "green" && o.follow }},
		{"logs", []string{"logs", "-f", "web"}, func(o opts, _ string) bool { return o.follow }},
		{"logs", []string{"logs", "--f", "web"}, func(o opts, _ string) bool { return o.follow }}, // Go's flag took --f too
		{"validate", []string{"validate", "-config", "a.yaml", "-json"}, func(o opts, _ string) bool { return o.config == "a.yaml" && o.json }},
		{"validate", []string{"validate", "-config=b.yaml"}, func(o opts, _ string) bool { return o.config == "b.yaml" }},
		{"validate", []string{"validate", "-c", "c.yaml"}, func(o opts, _ string) bool { return o.config == "c.yaml" }},
		{"validate", []string{"validate", "--c=d.yaml"}, func(o opts, _ string) bool { return o.config == "d.yaml" }},
		{"validate", []string{"validate"}, func(o opts, _ string) bool { return o.config == DefaultConfig }},
		{"serve", []string{"serve", "-accept-empty-store", "-c", "p.yaml"}, func(o opts, _ string) bool { return o.acceptEmptyStore && o.config == "p.yaml" }},
		{"promote", []string{"promote", "web", "-json"}, func(o opts, _ string) bool { return o.json }},
	} {
		_, o, api := parseAs(t, tt.cmd, tt.args...)
		if !tt.want(o, api) {
			t.Errorf("%q: opts %+v api %q", tt.args, o, api)
		}
	}
}

// A raw command gets its arguments as typed, flags before it excepted.
func TestRawCommandArgsUntouched(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "-keep", "--rps", "50"}, "[-keep --rps 50]"},
		{[]string{"demo", "-h"}, "[-h]"},
		{[]string{"--api", "http://x", "demo", "--keep"}, "[--keep]"},
		{[]string{"demo-app", "-listen", "127.0.0.1:1", "--version", "v2"}, "[-listen 127.0.0.1:1 --version v2]"},
	} {
		name := tt.args[0]
		if name == "--api" {
			name = tt.args[2]
		}
		pos, _, _ := parseAs(t, name, tt.args...)
		if fmt.Sprint(pos) != tt.want {
			t.Errorf("%q: %s got %v, want %s", tt.args, name, pos, tt.want)
		}
	}
}

func TestLongForm(t *testing.T) {
	a, _, _ := testApp()
	root := a.tree()
	for _, tt := range []struct {
		in, out string
		word    int
	}{
		{"status -json", "status --json", 0},
		{"-api http://x status", "--api http://x status", 2},
		{"-api=http://x -h", "--api=http://x -h", -1},
		{"deploy -help", "deploy --help", 0},
		{"deploy --h", "deploy -h", 0},
		{"history web -limit -1", "history web --limit -1", 0},
		{"deploy web v2 --strategy -json", "deploy web v2 --strategy -json", 0},
		{"deploy web v2 -strategy=-json", "deploy web v2 --strategy=-json", 0},
		{"validate -c -json", "validate -c -json", 0},
		{"status -colour", "status --colour", 0}, // unknown: pflag says so by its long name
		{"status -- -json", "status -- -json", 0},
		{"logs web - -5", "logs web - -5", 0},
		{"demo -keep -rps 5", "demo -keep -rps 5", 0},
		{"__complete status -j", "__complete status -j", 0},
	} {
		out, word := longForm(root, strings.Fields(tt.in))
		if strings.Join(out, " ") != tt.out || word != tt.word {
			t.Errorf("longForm(%q) = %q, %d; want %q, %d", tt.in, strings.Join(out, " "), word, tt.out, tt.word)
		}
	}
}
