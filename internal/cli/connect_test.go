package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/cli"
)

// runEnv calls the CLI in-process with exactly the environment env.
func runEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := cli.MainWith(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr, cli.Commands{})
	return result{code, stdout.String(), stderr.String()}
}

// writeFile writes text to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// port is the port of a daemon URL from daemon().
func port(url string) string { return url[strings.LastIndex(url, ":")+1:] }

// calledOn reports whether b received a call starting with want.
func calledOn(b *apitest.Backend, want string) bool {
	for _, c := range b.Calls() {
		if strings.HasPrefix(c, want) {
			return true
		}
	}
	return false
}

// Without --api or CUTOVER_API the CLI finds the daemon in ./cutover.yaml
// or the file -c names: api.listen (a wildcard host is dialled on
// loopback) and the token in api.token_file, relative to the config.
func TestConfigFindsTheDaemon(t *testing.T) {
	b := apitest.New("web")
	url := daemon(t, b, api.Options{Token: "s3cret"})
	p := port(url)
	for _, tt := range []struct {
		name   string
		listen string
		at     string // where the config is written, relative to the working directory
		flags  []string
	}{
		{"./cutover.yaml", "127.0.0.1:" + p, "cutover.yaml", nil},
		{"-c with a wildcard IPv4 host", "0.0.0.0:" + p, "etc/cutover/prod.yaml", []string{"-c", "etc/cutover/prod.yaml"}},
		{"--config with no host", ":" + p, "prod.yaml", []string{"--config", "prod.yaml"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			cfg := writeFile(t, ".", tt.at, fmt.Sprintf("api:\n  listen: %q\n  token_file: token\nservices: {}\n", tt.listen))
			writeFile(t, filepath.Dir(cfg), "token", "s3cret\n")
			r := runEnv(t, nil, append([]string{"status", "web", "--json"}, tt.flags...)...)
			if r.code != 0 || !strings.Contains(r.stdout, `"service": "web"`) {
				t.Fatalf("status: %+v", r)
			}
			r = runEnv(t, nil, append([]string{"promote", "web"}, tt.flags...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("promote with the config's token: %+v", r)
			}
		})
	}
	if !calledOn(b, "[promote web") {
		t.Errorf("the daemon got no promote: %v", b.Calls())
	}
}

// --api, CUTOVER_API and CUTOVER_TOKEN win over the config.
func TestFlagsAndEnvironmentWinOverTheConfig(t *testing.T) {
	fromConfig, elsewhere := apitest.New("web"), apitest.New("web")
	cfgURL := daemon(t, fromConfig, api.Options{Token: "file-token"})
	otherURL := daemon(t, elsewhere, api.Options{Token: "env-token"})
	t.Chdir(t.TempDir())
	writeFile(t, ".", "cutover.yaml", "api:\n  listen: 127.0.0.1:"+port(cfgURL)+"\n  token_file: token\n")
	writeFile(t, ".", "token", "file-token")

	if r := runEnv(t, map[string]string{"CUTOVER_API": otherURL, "CUTOVER_TOKEN": "env-token"}, "pause", "web"); r.code != 0 {
		t.Fatalf("CUTOVER_API and CUTOVER_TOKEN: %+v", r)
	}
	if r := runEnv(t, map[string]string{"CUTOVER_TOKEN": "env-token"}, "--api", otherURL, "resume", "web"); r.code != 0 {
		t.Fatalf("--api and CUTOVER_TOKEN: %+v", r)
	}
	if !calledOn(elsewhere, "[pause web") || !calledOn(elsewhere, "[resume web") || len(fromConfig.Calls()) != 0 {
		t.Errorf("calls went to the config's daemon: config's %v, other %v", fromConfig.Calls(), elsewhere.Calls())
	}
	// CUTOVER_TOKEN wins over the token file even for the config's daemon.
	r := runEnv(t, map[string]string{"CUTOVER_TOKEN": "wrong"}, "abort", "web")
	if r.code != 1 || !strings.Contains(r.stderr, "bearer token") {
		t.Errorf("CUTOVER_TOKEN did not win over api.token_file: %+v", r)
	}
}

// A config that does not parse does not stop a command that does not need
// it: one line on stderr, and the command goes on.
func TestBrokenConfigIsReportedAndIgnored(t *testing.T) {
	url := daemon(t, apitest.New("web"), api.Options{})
	t.Chdir(t.TempDir())
	writeFile(t, ".", "cutover.yaml", "api: [\n  listen: {\n")
	r := runEnv(t, map[string]string{"CUTOVER_API": url}, "status", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "web") {
		t.Fatalf("status with a broken ./cutover.yaml: %+v", r)
	}
	if !strings.HasPrefix(r.stderr, "cutover: config cutover.yaml ignored: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want one line saying the config is ignored, got %q", r.stderr)
	}
	// A -c that names no file is said so too; --api still finds the daemon.
	r = runEnv(t, nil, "status", "web", "-c", "missing.yaml", "--api", url)
	if r.code != 0 || !strings.Contains(r.stderr, "config missing.yaml ignored") {
		t.Errorf("status -c missing.yaml --api URL: %+v", r)
	}
	// With --api and CUTOVER_TOKEN set the config is not even read.
	r = runEnv(t, map[string]string{"CUTOVER_TOKEN": "x"}, "status", "web", "--api", url)
	if r.code != 0 || r.stderr != "" {
		t.Errorf("config read although nothing was needed from it: %+v", r)
	}
}

// Errors say where the address came from and why the token is missing.
func TestConfigErrorsNameTheirSource(t *testing.T) {
	url := daemon(t, apitest.New("web"), api.Options{Token: "tok"})
	t.Chdir(t.TempDir())
	writeFile(t, ".", "cutover.yaml", "api:\n  listen: 127.0.0.1:"+port(url)+"\n  token_file: missing-token\n")
	r := runEnv(t, nil, "promote", "web")
	if r.code != 1 || !strings.Contains(r.stderr, "api.token_file of cutover.yaml is not readable") {
		t.Errorf("unreadable token file: %+v", r)
	}
	writeFile(t, ".", "cutover.yaml", "api:\n  listen: 127.0.0.1:1\n")
	r = runEnv(t, nil, "status")
	if r.code != 1 || !strings.Contains(r.stderr, "http://127.0.0.1:1 (from api.listen of cutover.yaml;") {
		t.Errorf("unreachable daemon from the config: %+v", r)
	}
}
