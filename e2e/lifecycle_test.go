package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pause holds a deployment past its step's pause, resume lets it finish,
// and abort puts all traffic back on live and stops the candidate; the
// history says who did what.
func TestPauseResumeAbort(t *testing.T) {
	// The step's pause is long enough that `pause` lands within it even
	// when polling a -race binary on a loaded machine is slow to see the
	// shift begin.
	const stepPause = 15 * time.Second
	e := newEnv(t, fmt.Sprintf("{weight: 20, pause: %s}", stepPause))
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(3)

	e.mustCLI(0, "deploy", "web", "v2")
	e.waitFor("v2 shifting at 20%", 30*time.Second, func(s status) bool { return s.Phase == "shifting" })
	paused := time.Now()
	e.mustCLI(0, "pause", "web")
	// Hold until the step's pause would have ended, and a second more,
	// checking all along that the deployment stays paused at its step.
	stepEnd := e.stepUntil()
	if stepEnd.IsZero() {
		stepEnd = paused.Add(stepPause)
	}
	for end := stepEnd.Add(time.Second); ; {
		asked := time.Now() // the last status checked must be asked for after end
		if st := e.status(); st.Phase != "paused" || st.Candidate == nil || st.Weights[st.Candidate.Color] != 20 {
			t.Fatalf("a paused deployment must hold its step (its pause ends at %s, status asked at %s): %+v",
				stepEnd.Format(time.RFC3339Nano), asked.Format(time.RFC3339Nano), st)
		}
		if asked.After(end) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.mustCLI(0, "resume", "web")
	// Resuming extends the step by the time held, so most of its pause is
	// still to run.
	e.waitFor("v2 promoted after resume", stepPause+30*time.Second, func(s status) bool {
		return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v2"
	})

	e.mustCLI(0, "deploy", "web", "v3")
	e.waitFor("v3 shifting", 30*time.Second, func(s status) bool { return s.Phase == "shifting" })
	e.mustCLI(0, "abort", "web")
	st := e.waitFor("v2 alone again", 20*time.Second, func(s status) bool {
		return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v2" && s.Weights[s.Live.Color] == 100
	})
	if st.Candidate != nil {
		t.Fatalf("after abort there is still a candidate: %+v", st)
	}
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed across pause, resume and abort (last: %v)", f, tr.lastErr.Load())
	}

	out := e.mustCLI(0, "history", "web", "--json")
	var hist []struct {
		Version string `json:"version"`
		Outcome string `json:"outcome"`
		Events  []struct {
			Type  string `json:"type"`
			Actor string `json:"actor"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		t.Fatalf("history --json: %v", err)
	}
	if len(hist) < 3 || hist[0].Version != "v3" || hist[0].Outcome != "aborted" || hist[1].Version != "v2" || hist[1].Outcome != "promoted" {
		t.Fatalf("history = %+v", hist)
	}
	var sawPause, sawResume bool
	for _, ev := range hist[1].Events {
		sawPause = sawPause || (ev.Type == "paused" && ev.Actor == "user")
		sawResume = sawResume || (ev.Type == "resumed" && ev.Actor == "user")
	}
	if !sawPause || !sawResume {
		t.Fatalf("v2's history should record the user's pause and resume: %+v", hist[1].Events)
	}
}

// After keep_previous the old pool is retired: it stops being reported as
// previous and its processes exit; before that, rollback is instant.
func TestPreviousPoolRetired(t *testing.T) {
	e := newEnvKeep(t, "3s") // all at once
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	v1PIDs := recordedPIDs(t, e.dir)
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	st := e.status()
	if st.Previous == nil || st.Previous.Version != "v1" {
		t.Fatalf("right after promotion v1 should be kept warm: %+v", st)
	}
	if _, err := time.Parse(time.RFC3339, st.Previous.Until); err != nil {
		t.Fatalf("previous.until %q is not RFC 3339: %v", st.Previous.Until, err)
	}
	e.waitFor("v1 retired", 30*time.Second, func(s status) bool { return s.Previous == nil })
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range v1PIDs {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("v1 instance pid %d still runs after retirement", pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	code, out := e.cli("rollback", "web")
	if code != 1 || !strings.Contains(strings.ToLower(out), "previous") {
		t.Fatalf("rollback with nothing kept: exit %d, want 1 with a message about the previous pool:\n%s", code, out)
	}
}

// A release whose instances cannot start fails before any user traffic
// moves: deploy --wait exits 3, the message carries the instance's own
// output, and the live pool keeps serving every request.
func TestBrokenReleaseFailsCleanly(t *testing.T) {
	e := newEnv(t, "{weight: 20, pause: 1s}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(3)
	e.mustCLI(3, "deploy", "web", "broken", "--wait")
	st := e.status()
	if st.Phase != "idle" || st.Live == nil || st.Live.Version != "v1" || st.Weights[st.Live.Color] != 100 || st.Candidate != nil {
		t.Fatalf("after a failed start v1 must be alone and untouched: %+v", st)
	}
	out := e.mustCLI(0, "history", "web", "--json")
	var hist []struct {
		Version, Outcome, Reason string
	}
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		t.Fatal(err)
	}
	if hist[0].Version != "broken" || hist[0].Outcome != "failed" {
		t.Fatalf("history[0] = %+v, want broken failed", hist[0])
	}
	for _, want := range []string{"web", "broken", "configured as broken"} {
		if !strings.Contains(hist[0].Reason, want) {
			t.Errorf("the failure reason should name %q (service, version and the instance's output): %q", want, hist[0].Reason)
		}
	}
	tr.halt()
	if f := tr.failed.Load(); f != 0 || tr.served("v1") == 0 {
		t.Fatalf("v1 must keep serving: %d failed, %d served (last: %v)", f, tr.served("v1"), tr.lastErr.Load())
	}
}

// A pre_traffic smoke test that checks the candidate's version through
// PREVIEW_URL passes on the first deployment (preview reaches blue, the
// first candidate) and on the next (green).
func TestSmokeTestThroughPreview(t *testing.T) {
	e := newEnv(t) // all at once
	script := filepath.Join(e.dir, "smoke.sh")
	ran := filepath.Join(e.dir, "smoke.ran")
	// bash's /dev/tcp, so the test needs no curl on the machine.
	os.WriteFile(script, []byte(`hp=${PREVIEW_URL#http://}
exec 3<>/dev/tcp/${hp%:*}/${hp##*:}
printf 'GET /?format=json HTTP/1.0\r\nHost: preview\r\n\r\n' >&3
grep -q "\"version\":\"$VERSION\"" <&3 || { echo "preview did not answer with $VERSION"; exit 1; }
echo "$VERSION $COLOR" >> `+ran+`
`), 0o755)
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "    hooks:\n      pre_traffic: [\"bash %s\"]\n", script)
	f.Close()

	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	got, _ := os.ReadFile(ran)
	if string(got) != "v1 blue\nv2 green\n" {
		t.Fatalf("the smoke test saw %q through the preview, want v1 on blue then v2 on green", got)
	}
}

// stepUntil returns when the running deployment's current step's pause
// ends, from `cutover status --json`; zero if the status has none.
func (e *env) stepUntil() time.Time {
	e.t.Helper()
	out := e.mustCLI(0, "status", "web", "--json")
	var st struct {
		Deployment *struct {
			StepUntil time.Time `json:"step_until"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Deployment == nil {
		return time.Time{}
	}
	return st.Deployment.StepUntil
}
