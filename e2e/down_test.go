package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// downStatus is what these tests read of `cutover status --json`
// besides the harness's status.
type downStatus struct {
	Down     bool `json:"down"`
	Stopping bool `json:"stopping"`
	Starting bool `json:"starting"`
	Live     *struct {
		Version string `json:"version"`
	} `json:"live"`
}

// cliFromConfig runs the CLI the way a user in the config's directory
// does: no CUTOVER_API, the daemon found through -c (api.listen).
func (e *env) cliFromConfig(args ...string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append(args, "-c", e.cfg)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUTOVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	case err != nil:
		e.t.Fatalf("cutover %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String()
}

func (e *env) downStatus() downStatus {
	e.t.Helper()
	var st downStatus
	if out := e.mustCLI(0, "status", "web", "--json"); json.Unmarshal([]byte(out), &st) != nil {
		e.t.Fatalf("status --json: %s", out)
	}
	return st
}

// recordedNow returns the pids the instance record holds now (none when
// it is gone or empty).
func (e *env) recordedNow() []int {
	data, err := os.ReadFile(e.recordFile())
	if err != nil {
		return nil
	}
	return pidsIn(data)
}

// alive returns those of pids that are still running processes.
func alive(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			out = append(out, pid)
		}
	}
	return out
}

// mustFallback fails the test unless the public router answers 503 (the
// fallback page).
func (e *env) mustFallback(when string) {
	e.t.Helper()
	code, v, err := e.getPublic()
	if err != nil || code != 503 || v != "" {
		e.t.Fatalf("public router %s: %d from %q (%v), want the fallback page's 503", when, code, v, err)
	}
}

// cutover down stops every instance and keeps the state: the public port
// serves the fallback page, deployments are refused, a daemon killed and
// started again starts nothing, and cutover up brings v1 back.
func TestDownAndUpAcrossARestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	e.mustServe("v1")
	pids := recordedPIDs(t, e.dir)

	code, out := e.cliFromConfig("down", "web")
	if code != 0 || !strings.Contains(out, "web: down;") {
		t.Fatalf("cutover down web -c %s: exit %d\n%s", e.cfg, code, out)
	}
	if left := alive(pids); len(left) != 0 {
		t.Fatalf("instances %v still run after cutover down returned (all were %v)", left, pids)
	}
	if now := e.recordedNow(); len(now) != 0 {
		t.Errorf("instance record still names pids %v", now)
	}
	e.mustFallback("while down")
	if st := e.downStatus(); !st.Down || st.Stopping || st.Live == nil || st.Live.Version != "v1" {
		t.Fatalf("status while down: %+v, want down with v1 live recorded", st)
	}
	if out := e.mustCLI(0, "status", "web"); !strings.Contains(out, "down") || !strings.Contains(out, "cutover up web") {
		t.Errorf("status table does not show the service down:\n%s", out)
	}
	out = e.mustCLI(1, "deploy", "web", "v2")
	if !strings.Contains(out, "service is down") || !strings.Contains(out, "`cutover up web`") {
		t.Errorf("deploy while down is not refused naming cutover up:\n%s", out)
	}
	code, body := e.apiAs("POST", "/v1/services/web/rollback", e.api, "", nil)
	if code != 409 || !strings.Contains(body, "cutover up web") {
		t.Errorf("rollback while down: %d %s, want 409 naming cutover up", code, body)
	}

	e.kill9()
	e.start()
	time.Sleep(2 * time.Second) // a pool started in the background would be running by now
	if st := e.downStatus(); !st.Down || st.Starting {
		t.Fatalf("status after kill -9 and a restart: %+v, want still down", st)
	}
	if now := e.recordedNow(); len(now) != 0 {
		t.Fatalf("the restarted daemon started instances %v of a service that is down", now)
	}
	e.mustFallback("after the restart")

	out = e.mustCLI(0, "up", "web")
	if !strings.Contains(out, "web: up;") {
		t.Errorf("up said:\n%s", out)
	}
	e.mustServe("v1")
	if st := e.downStatus(); st.Down {
		t.Errorf("status after up: %+v", st)
	}
	hist := e.mustCLI(0, "history", "web")
	for _, want := range []string{" down ", " up "} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks the %s:\n%s", strings.TrimSpace(want), hist)
		}
	}
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	e.mustServe("v2")
}
