package cli_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
)

// completions asks the CLI what a shell would offer for the last of args,
// as the completion scripts do, and returns the candidates without their
// descriptions.
func completions(t *testing.T, url string, args ...string) []string {
	t.Helper()
	r := run(t, url, "", append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, r.code, r.stderr)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(line, ":") { // the last line is the directive
			name, _, _ := strings.Cut(line, "\t")
			out = append(out, name)
		}
	}
	return out
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "complete -o default -F __start_cutover cutover",
		"zsh":        "#compdef cutover",
		"fish":       "complete -c cutover",
		"powershell": "Register-ArgumentCompleter",
	} {
		r := run(t, "", "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: exit %d, script lacks %q or the __complete request (%d bytes)\n%s", shell, r.code, want, len(r.stdout), r.stderr)
		}
	}
}

// What the scripts ask for: commands (not hidden ones), flags, fixed
// values, and service names from the daemon.
func TestCompletionCandidates(t *testing.T) {
	url := daemon(t, cannedBackend(), api.Options{})
	cmds := completions(t, url, "")
	for _, want := range []string{"deploy", "status", "completion", "help"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("commands %v lack %s", cmds, want)
		}
	}
	if slices.Contains(cmds, "demo-app") {
		t.Errorf("commands %v offer the hidden demo-app", cmds)
	}
	if got := completions(t, url, "de"); !slices.Equal(got, []string{"demo", "deploy", "deregister"}) {
		t.Errorf("de: %v", got)
	}
	if got := completions(t, url, "deploy", ""); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"api", "web"}) {
		t.Errorf("deploy SERVICE: %v, want the daemon's services", got)
	}
	if got := completions(t, url, "deploy", "web", "v2", "--strategy", ""); !slices.Contains(got, "all-at-once") {
		t.Errorf("--strategy: %v", got)
	}
	if got := completions(t, url, "logs", "web", "--color", ""); !slices.Equal(got, []string{"blue", "green"}) {
		t.Errorf("--color: %v", got)
	}
	if got := completions(t, url, "logs", "web", "-"); !slices.Contains(got, "--follow") || !slices.Contains(got, "-f") {
		t.Errorf("logs flags: %v", got)
	}
	if got := completions(t, url, "completion", ""); !slices.Equal(got, []string{"bash", "zsh", "fish", "powershell"}) {
		t.Errorf("completion SHELL: %v", got)
	}
	// No daemon: no service names, and no hang.
	if got := completions(t, "http://127.0.0.1:1", "status", ""); len(got) != 0 {
		t.Errorf("status SERVICE without a daemon: %v", got)
	}
}
