package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

func TestHooksGetEnvAndFailLoudly(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	h := newHarness(t, testService(), newFakeStore())
	env := append(h.c.hookEnv(Job{Color: route.Green, Version: "v2", Deployment: "d2"}), "REASON=green error rate 5%")
	detail, err := h.c.runHooks(context.Background(), "on_rollback",
		[]string{`echo "$SERVICE $VERSION $COLOR $PREVIEW_URL $DEPLOYMENT $REASON" > ` + out}, env)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got, want := strings.TrimSpace(string(b)), "web v2 green http://127.0.0.1:8081 d2 green error rate 5%"; got != want {
		t.Errorf("hook saw %q, want %q", got, want)
	}
	if !strings.Contains(detail, "1 on_rollback hooks ran") {
		t.Errorf("detail %q", detail)
	}
	_, err = h.c.runHooks(context.Background(), "pre_traffic", []string{"true", "echo smoke test: 500 on /login >&2; exit 3", "touch " + out + ".never"}, env)
	if err == nil || !strings.Contains(err.Error(), `pre_traffic hook "echo smoke`) || !strings.Contains(err.Error(), "500 on /login") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing hook: %v", err)
	}
	if _, serr := os.Stat(out + ".never"); serr == nil {
		t.Error("hooks after a failing one ran")
	}
	h.svc.Hooks.Timeout = 200 * time.Millisecond
	start := time.Now()
	if _, err := h.c.runHooks(context.Background(), "pre_traffic", []string{"sleep 30"}, env); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("slow hook: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("hook timeout took %v", time.Since(start))
	}
}

// TestFailedPreTrafficHook runs a real `sh -c` hook from the executor. It
// runs in real time: a child process is not a durable block for synctest.
func TestFailedPreTrafficHook(t *testing.T) {
	svc := testService()
	h := newHarness(t, svc, newFakeStore())
	h.start()
	h.deploy("v1", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)
	svc.Hooks.PreTraffic = []string{`test "$COLOR" = green && test -n "$PREVIEW_URL" && echo "smoke test failed on $VERSION" && exit 1`}
	h.deploy("v2", "")
	waitReal(t, h, PhaseIdle)
	d := h.history()[0]
	if d.Outcome != OutcomeFailed || !strings.Contains(d.Reason, "smoke test failed on v2") {
		t.Fatalf("history: %s %q", d.Outcome, d.Reason)
	}
	if got := h.router.splitLog(); !slices.Equal(got, []string{"blue:0"}) {
		t.Errorf("user traffic moved: %v", got)
	}
	if _, ok := h.rt.pools()[route.Green]; ok {
		t.Error("candidate still running")
	}
	if st := h.c.Status(); st.Live.Version != "v1" || st.Weights["blue"] != 100 {
		t.Errorf("status: %+v", st)
	}
}

func waitReal(t *testing.T, h *harness, p Phase) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st := h.c.state(); st.Phase == p && st.Run == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("phase %s not reached: %+v", p, h.c.Status())
}
