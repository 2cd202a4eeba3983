package e2e

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// arrivals keeps each line a pipe's reader gets, with when it got it.
type arrivals struct {
	mu    sync.Mutex
	part  string
	lines []arrival
}

type arrival struct {
	at   time.Time
	text string
}

func (a *arrivals) Write(b []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.part += string(b)
	for {
		line, rest, ok := strings.Cut(a.part, "\n")
		if !ok {
			break
		}
		a.lines, a.part = append(a.lines, arrival{time.Now(), line}), rest
	}
	return len(b), nil
}

func (a *arrivals) text() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	for _, l := range a.lines {
		b.WriteString(l.text + "\n")
	}
	return b.String() + a.part
}

func (a *arrivals) has(s string) bool { return strings.Contains(a.text(), s) }

// waitOutput waits until out holds s.
func waitOutput(t *testing.T, out *arrivals, s string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !out.has(s); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", s, timeout, out.text())
		}
	}
}

// `cutover deploy web v2 --wait | cat` never goes quiet for more than 5 s,
// follows the deployment across a kill -9 and restart of the daemon,
// saying when it lost the event stream and when it got it back, and
// exits 0 once the deployment is promoted.
func TestDeployWaitAcrossADaemonRestart(t *testing.T) {
	e := newEnv(t, "{weight: 30}") // a manual gate: the deployment waits for promote
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")

	out := &arrivals{}
	cmd := exec.Command(binary, "deploy", "web", "v2", "--wait")
	cmd.Env = append(os.Environ(), "CUTOVER_API=http://"+e.api)
	cmd.Stdout, cmd.Stderr = out, out // a pipe each: not a terminal
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	waitOutput(t, out, "step 1 of 1: 30% on green v2 until promoted", 30*time.Second)
	waitOutput(t, out, "progress    step 1/1 at 30% on green, waiting for `cutover promote web`", 7*time.Second)
	e.kill9()
	waitOutput(t, out, "lost the daemon's event stream; reconnecting", 5*time.Second)
	time.Sleep(6 * time.Second) // the daemon stays away: heartbeats say so
	e.start()
	waitOutput(t, out, "reconnected to the daemon's event stream", 20*time.Second)
	e.mustCLI(0, "promote", "web")

	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("deploy --wait: %v\n%s", waitErr, out.text())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("deploy --wait did not end after the promotion:\n%s", out.text())
	}
	text := out.text()
	for _, want := range []string{
		"progress    no answer from the daemon for",
		"resumed     daemon restarted: resuming shifting at step 1 (30%) (by daemon)",
		"web v2: promoted",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("deploy --wait said:\n%s", text)
	for i := 1; i < len(out.lines); i++ {
		if gap := out.lines[i].at.Sub(out.lines[i-1].at); gap > 5*time.Second+500*time.Millisecond {
			t.Errorf("%s without output before %q", gap.Round(100*time.Millisecond), out.lines[i].text)
		}
	}
}
