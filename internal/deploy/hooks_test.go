package deploy

import (
	"context"
	"errors"
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
	base, err := h.c.hookEnv(Job{Color: route.Green, Version: "v2", Deployment: "d2"})
	if err != nil {
		t.Fatal(err)
	}
	env := append(base, "REASON=green error rate 5%")
	detail, err := h.c.runHooks(context.Background(), hookCall{kind: "on_rollback", env: env},
		Commands(`echo "$SERVICE $VERSION $COLOR $PREVIEW_URL $DEPLOYMENT $REASON" > `+out))
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
	_, err = h.c.runHooks(context.Background(), hookCall{kind: "pre_traffic", env: env}, Commands("true", "echo smoke test: 500 on /login >&2; exit 3", "touch "+out+".never"))
	if err == nil || !strings.Contains(err.Error(), `pre_traffic hook 2 of 3 ("echo smoke`) || !strings.Contains(err.Error(), "500 on /login") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing hook: %v", err)
	}
	if got := hookOutput(err); got != "smoke test: 500 on /login\n" {
		t.Errorf("failing hook's output %q, want what it printed", got)
	}
	if _, serr := os.Stat(out + ".never"); serr == nil {
		t.Error("hooks after a failing one ran")
	}
	h.edit(func(s *Settings) { s.Hooks.Timeout = 200 * time.Millisecond })
	start := time.Now()
	if _, err := h.c.runHooks(context.Background(), hookCall{kind: "pre_traffic", env: env}, Commands("sleep 30")); err == nil || !strings.Contains(err.Error(), "timed out") {
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
	h.edit(func(s *Settings) {
		s.Hooks.PreTraffic = Commands(`test "$COLOR" = green && test -n "$PREVIEW_URL" && echo "smoke test failed on $VERSION" && exit 1`)
	})
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

// The instant rollback is not held up by the promotion's post_traffic
// hooks (they may run for minutes, just when users want to roll back): it
// cancels them, swaps back, and the promoted record says so. Real time:
// the hook is a real process.
func TestRollbackCancelsPostTrafficHooks(t *testing.T) {
	svc := testService()
	svc.Policy.QuietPeriod = 200 * time.Millisecond
	h := newHarness(t, svc, newFakeStore())
	h.start()
	h.deploy("v1", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)
	next := svc
	next.Hooks.PostTraffic = Commands("sleep 300")
	if err := h.c.SetSettings(next); err != nil {
		t.Fatal(err)
	}
	promoted := h.deploy("v2", StrategyAllAtOnce)
	deadline := time.Now().Add(20 * time.Second)
	for st := h.c.state(); st.Job.kind() != JobPostTraffic || st.Live.Version != "v2"; st = h.c.state() {
		if time.Now().After(deadline) {
			t.Fatalf("post_traffic hooks of v2 not running: %+v", h.c.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.c.Rollback(ctx); err != nil {
		t.Fatalf("rollback while post_traffic hooks run: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("rollback took %v", took)
	}
	if st := h.c.Status(); st.Live == nil || st.Live.Color != route.Blue || st.Live.Version != "v1" || st.Weights["blue"] != 100 {
		t.Fatalf("after the rollback: %+v", st)
	}
	waitReal(t, h, PhaseIdle) // the demoted green v2 drains, goes quiet and stops
	if _, ok := h.rt.pools()[route.Green]; ok {
		t.Error("demoted green v2 still running: the hook job was not cancelled")
	}
	hist := h.history()
	if hist[0].Strategy != strategyRollbackTo || hist[0].Version != "v1" {
		t.Errorf("newest record %+v, want the rollback to v1", hist[0])
	}
	var rec Deployment
	for _, d := range hist {
		if d.ID == promoted.ID {
			rec = d
		}
	}
	var told bool
	for _, ev := range rec.Events {
		told = told || ev.Message == "post_traffic hooks cancelled: rolled back by user to blue v1"
	}
	if rec.Outcome != OutcomePromoted || rec.EndedAt.IsZero() || !told {
		t.Errorf("v2's record: %s, ended %v, cancelled hooks recorded %v; events %+v", rec.Outcome, rec.EndedAt, told, rec.Events)
	}
}

// A hook gets the service's env_file, env and secrets (a pre_provision
// migration needs the database password), in that order of precedence,
// never the daemon's API token nor systemd's notification socket; a secret that cannot be read fails the
// hook job naming it, before any command runs.
func TestHookEnvironmentLayers(t *testing.T) {
	t.Setenv("CUTOVER_TOKEN", "daemon-token")
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	out := filepath.Join(t.TempDir(), "env")
	svc := testService()
	svc.Hooks.Env = map[string]string{"A": "env", "B": "env"}
	secretErr := error(nil)
	svc.Hooks.Secrets = func() (map[string]string, map[string]string, error) {
		return map[string]string{"A": "file", "C": "file"}, map[string]string{"B": "secret"}, secretErr
	}
	h := newHarness(t, svc, newFakeStore())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	j := Job{Kind: JobPreProvision, Color: route.Green, Version: "v2"}
	hook := Commands(`echo "$A $B $C ${CUTOVER_TOKEN:-none} ${NOTIFY_SOCKET:-none}" > ` + out)
	base, err := h.c.hookEnv(j)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.runHooks(ctx, hookCall{kind: "pre_provision", env: base}, hook); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got := strings.TrimSpace(string(b)); got != "env secret file none none" {
		t.Errorf("hook saw %q, want env over env_file, secrets over env, no CUTOVER_TOKEN, no NOTIFY_SOCKET", got)
	}
	os.Remove(out)
	secretErr = errors.New("secret DB_PASSWORD: open /etc/db-password: no such file or directory")
	_, err = h.c.jobHooks(ctx, j, State{}, hook) // fails before any hook runs, so nothing reports to Run
	if err == nil || !strings.Contains(err.Error(), "DB_PASSWORD") {
		t.Fatalf("hook job with an unreadable secret: %v", err)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Error("the hook ran although its environment could not be read")
	}
}
