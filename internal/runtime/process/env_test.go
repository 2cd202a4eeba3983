package process

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// procEnviron reads a process's environment as the kernel holds it.
func procEnviron(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for kv := range bytes.SplitSeq(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
		k, v, _ := strings.Cut(string(kv), "=")
		env[k] = v
	}
	return env
}

// An instance's environment is exactly: PATH, HOME, LANG and TZ of the
// daemon's, inherit_env, env_file, env, secrets and cutover's own
// variables, each overriding the one before. The daemon's CUTOVER_TOKEN,
// cloud credentials and variables not listed never reach it.
func TestInstanceEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"CUTOVER_TOKEN": "daemon-token", "AWS_SECRET_ACCESS_KEY": "daemon-aws-key",
		"CUTOVER_TEST_INHERITED": "inherited", "CUTOVER_TEST_OVERRIDDEN": "inherited",
		"CUTOVER_TEST_UNLISTED": "unlisted", "CUTOVER_TEST_API_KEY": "api-key-from-daemon",
		"LANG": "C.UTF-8", "TZ": "Europe/Paris", "HOME": "/home/daemon",
	} {
		t.Setenv(k, v)
	}
	os.Unsetenv("CUTOVER_TEST_ABSENT")
	dir := t.TempDir()
	envFile := filepath.Join(dir, "web.env")
	writeFile(t, envFile, "# web settings\nexport FROM_FILE=file\nCUTOVER_TEST_OVERRIDDEN=file\n"+
		"FILE_ENV=file\nFILE_SECRET=file\nPORT=1\nQUOTED=\"a \\\"b\\\" # c\"\n")
	dbPassword := filepath.Join(dir, "db-password")
	writeFile(t, dbPassword, "db-password-from-file\n")

	svc := testService(1, map[string]string{"FILE_ENV": "env", "ENV_SECRET": "env", "FROM_ENV": "${COLOR}", "VERSION": "v0"})
	svc.EnvFile = envFile
	svc.Secrets = map[string]Secret{
		"DB_PASSWORD": {File: dbPassword}, "FILE_SECRET": {File: dbPassword},
		"ENV_SECRET": {Env: "CUTOVER_TEST_API_KEY"}, "API_KEY": {Env: "CUTOVER_TEST_API_KEY"},
	}
	svc.InheritEnv = []string{"CUTOVER_TEST_INHERITED", "CUTOVER_TEST_OVERRIDDEN", "CUTOVER_TEST_ABSENT"}
	h := newHarness(t, svc, "", nil)
	ins, err := h.d.Start(context.Background(), route.Green, runtime.Release{Version: "v3"})
	if err != nil {
		t.Fatal(err)
	}
	in := ins[0]
	want := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": "/home/daemon", "LANG": "C.UTF-8", "TZ": "Europe/Paris",
		"CUTOVER_TEST_INHERITED":  "inherited",
		"CUTOVER_TEST_OVERRIDDEN": "file", // env_file over inherit_env
		"FROM_FILE":               "file",
		"QUOTED":                  `a "b" # c`,
		"FILE_ENV":                "env",                   // env over env_file
		"FILE_SECRET":             "db-password-from-file", // secrets over env_file
		"ENV_SECRET":              "api-key-from-daemon",   // secrets over env
		"FROM_ENV":                "green",
		"DB_PASSWORD":             "db-password-from-file",
		"API_KEY":                 "api-key-from-daemon",
		// cutover's own over everything
		"PORT": strings.TrimPrefix(in.Addr, "127.0.0.1:"), "VERSION": "v3", "COLOR": "green", "SERVICE": "web",
		"INSTANCE": "web-green-1", markVar: h.d.mark(),
	}
	got := procEnviron(t, in.PID)
	if !reflect.DeepEqual(got, want) {
		for _, k := range keysOf(got, want) {
			if got[k] != want[k] {
				t.Errorf("instance env %s = %q, want %q", k, got[k], want[k])
			}
		}
	}
	if app := getInfo(t, in.Addr).Env; !reflect.DeepEqual(app, want) {
		t.Errorf("the app sees env %v, want %v", app, want)
	}
}

// keysOf lists the keys of a and b, sorted.
func keysOf(a, b map[string]string) []string {
	all := maps.Clone(a)
	maps.Copy(all, b)
	return slices.Sorted(maps.Keys(all))
}

// lockedBuffer is a bytes.Buffer safe for the driver's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A secret's value (from a file or the daemon's environment) and an
// env_file's values reach the instance's environment and nothing else the
// driver writes: its log (debug level included), the instances' log files
// with their headers, the record file, the listener's reports, errors.
func TestSecretsReachNoOutput(t *testing.T) {
	const (
		fileSecret    = "s3cr3t-from-a-file-7f3a"
		envSecret     = "s3cr3t-from-the-daemon-91bc"
		envFileSecret = "s3cr3t-in-the-env-file-22d1"
	)
	t.Setenv("CUTOVER_TEST_API_KEY", envSecret)
	dir := t.TempDir()
	secretFile, envFile := filepath.Join(dir, "db-password"), filepath.Join(dir, "web.env")
	writeFile(t, secretFile, fileSecret+"\n")
	writeFile(t, envFile, "SESSION_KEY="+envFileSecret+"\n")
	svc := testService(2, nil)
	svc.EnvFile = envFile
	svc.Secrets = map[string]Secret{"DB_PASSWORD": {File: secretFile}, "API_KEY": {Env: "CUTOVER_TEST_API_KEY"}}
	var slogged lockedBuffer
	h := newHarness(t, svc, "", func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&slogged, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	var errs []string

	// A pool starts, one instance crashes and is replaced, the pool stops.
	ins, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	env := procEnviron(t, ins[0].PID)
	if env["DB_PASSWORD"] != fileSecret || env["API_KEY"] != envSecret || env["SESSION_KEY"] != envFileSecret {
		t.Fatalf("the secrets did not reach the instance: %v", env)
	}
	if err := syscall.Kill(ins[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.rec.WaitPool(t, route.Blue, 10*time.Second, "the crashed instance replaced", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2 && ev.Instances[0].PID != ins[0].PID
	})
	// A pool that fails to start: its error carries the instances' output.
	h.d.opts.Env = map[string]string{"APP_NEVER_HEALTHY": "1"}
	h.d.opts.StartTimeout = 300 * time.Millisecond
	if _, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v2"}); err == nil {
		t.Fatal("a never healthy pool started")
	} else {
		errs = append(errs, err.Error())
	}
	// A pool whose secret file is gone.
	os.Remove(secretFile)
	if _, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v3"}); err == nil || !strings.Contains(err.Error(), secretFile) {
		t.Fatalf("Start without the secret file: %v, want an error naming %s", err, secretFile)
	} else {
		errs = append(errs, err.Error())
	}
	records, err := os.ReadFile(h.d.recordPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}

	surfaces := map[string]string{
		"driver log":  slogged.String(),
		"record file": string(records),
		"listener":    fmt.Sprintf("%+v %+v", h.rec.PoolEvents(), h.rec.FailedEvents()),
		"errors":      strings.Join(errs, "\n"),
	}
	logs := 0
	filepath.WalkDir(h.stateDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(path)
			surfaces[path] = string(b)
			if strings.HasSuffix(path, ".log") && strings.Contains(string(b), "=== cutover: web starting") {
				logs++
			}
		}
		return nil
	})
	if logs < 3 || !strings.Contains(surfaces["driver log"], "instance replaced") {
		t.Fatalf("the test saw too little: %d instance logs with a header, driver log:\n%s", logs, surfaces["driver log"])
	}
	for name, text := range surfaces {
		for _, secret := range []string{fileSecret, envSecret, envFileSecret} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the secret %q:\n%s", name, secret, text)
			}
		}
	}
}

// Secrets and the env file are read at every instance start: after a
// rotation, the next instance (here the replacement of one that crashed)
// gets the new values, while the running one keeps its own.
func TestRotatedSecretAppliesToTheNextInstance(t *testing.T) {
	dir := t.TempDir()
	secretFile, envFile := filepath.Join(dir, "token"), filepath.Join(dir, "web.env")
	writeFile(t, secretFile, "old-token\n")
	writeFile(t, envFile, "FEATURE=old\n")
	svc := testService(2, nil)
	svc.EnvFile, svc.Secrets = envFile, map[string]Secret{"TOKEN": {File: secretFile}}
	h := newHarness(t, svc, "", nil)
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, secretFile, "new-token")
	writeFile(t, envFile, "FEATURE=new\n")
	if err := syscall.Kill(ins[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := h.rec.WaitPool(t, route.Blue, 10*time.Second, "the crashed instance replaced", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2 && ev.Instances[0].PID != ins[0].PID
	})
	if env := getInfo(t, ev.Instances[0].Addr).Env; env["TOKEN"] != "new-token" || env["FEATURE"] != "new" {
		t.Errorf("replacement has TOKEN=%q FEATURE=%q, want the rotated new-token and new", env["TOKEN"], env["FEATURE"])
	}
	if env := getInfo(t, ins[1].Addr).Env; env["TOKEN"] != "old-token" || env["FEATURE"] != "old" {
		t.Errorf("the running instance has TOKEN=%q FEATURE=%q, want its own old-token and old", env["TOKEN"], env["FEATURE"])
	}
}
