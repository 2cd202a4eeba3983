package cli

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// timedWriter keeps every line written and when, as a pipe's reader sees them.
type timedWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines []timedLine
}

type timedLine struct {
	at   time.Time
	text string
}

func (w *timedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			w.lines = append(w.lines, timedLine{time.Now(), strings.TrimSuffix(l, "\n")})
		}
	}
	return len(b), nil
}

func (w *timedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// serveAPI serves b on ln until the returned stop is called.
func serveAPI(t *testing.T, b api.Backend, ln net.Listener) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = api.NewServer(b, api.Options{}).Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// runFollowing runs `cutover deploy web v2 --wait` against url with line
// output and the given heartbeat.
func runFollowing(t *testing.T, url string, heartbeat time.Duration) (int, *timedWriter, *timedWriter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stdout, stderr := &timedWriter{}, &timedWriter{}
	env := map[string]string{"CUTOVER_API": url}
	a := &app{ctx: ctx, getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(""),
		stdout: stdout, stderr: stderr, loc: time.UTC, heartbeat: heartbeat}
	return a.run([]string{"deploy", "web", "v2", "--wait"}), stdout, stderr
}

// shifting is web at step 1 of 2 with 10% on green, its step ending in
// 30 s, and a verdict: what a heartbeat reports.
func shifting(started time.Time) deploy.Status {
	return deploy.Status{Service: "web", Phase: deploy.PhaseShifting,
		Live: &deploy.PoolRef{Color: route.Blue, Version: "v1"}, Candidate: &deploy.PoolRef{Color: route.Green, Version: "v2"},
		Weights:    map[string]float64{"blue": 90, "green": 10},
		Deployment: &deploy.DeploymentRef{ID: "d-7", Version: "v2", Step: 1, Steps: 2, StartedAt: started, StepUntil: started.Add(30 * time.Second)},
		Analysis: &deploy.Verdict{Result: deploy.ResultInconclusive, Reason: "green 120 requests",
			Candidate: deploy.Figures{Color: route.Green, Requests: 120, ErrorRate: 0.0125}}}
}

// promote ends d-7 as promoted: history, status and the event.
func promote(b *apitest.Backend, d deploy.Deployment) {
	d.Outcome, d.EndedAt = deploy.OutcomePromoted, time.Now()
	b.SetHistory("web", []deploy.Deployment{d})
	b.SetStatus(deploy.Status{Service: "web", Phase: deploy.PhaseIdle, Live: &deploy.PoolRef{Color: route.Green, Version: "v2"},
		Weights: map[string]float64{"blue": 0, "green": 100}})
	b.Emit(deploy.Event{Time: time.Now(), Service: "web", Deployment: d.ID, Type: deploy.EventPromoted, Message: "green v2 is live"})
}

func running(now time.Time) deploy.Deployment {
	return deploy.Deployment{ID: "d-7", Service: "web", Version: "v2", Color: route.Green, FromVersion: "v1",
		StartedAt: now, Outcome: deploy.OutcomeRunning}
}

// While nothing changes, line output still says where the deployment
// stands at least every heartbeat: step, time left and the candidate's
// figures. (The 5 s default is scaled down to keep the test short; the
// default itself is checked in TestHeartbeatDefault.)
func TestHeartbeatWhileNothingChanges(t *testing.T) {
	const every = 400 * time.Millisecond
	b := apitest.New("web")
	b.OnDeploy = func(service, version, strategy string) (deploy.Deployment, error) {
		d := running(time.Now())
		b.SetHistory("web", []deploy.Deployment{d})
		b.SetStatus(shifting(d.StartedAt))
		go func() {
			time.Sleep(3*every + every/2) // status unchanged: three heartbeats are due
			promote(b, d)
		}()
		return d, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveAPI(t, b, ln)
	code, stdout, stderr := runFollowing(t, "http://"+ln.Addr().String(), every)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var beats int
	for _, l := range stdout.lines {
		if strings.Contains(l.text, "  progress    ") {
			beats++
			for _, want := range []string{"step 1/2 at 10% on green", "s left in the step", "green 120 requests, 1.25% errors, inconclusive"} {
				if !strings.Contains(l.text, want) {
					t.Errorf("heartbeat %q lacks %q", l.text, want)
				}
			}
		}
	}
	if beats < 2 {
		t.Errorf("%d heartbeats in %s of an unchanged status, want at least 2:\n%s", beats, 3*every, stdout)
	}
	// The promise is about silence: no gap between lines longer than the
	// heartbeat (plus scheduling slack).
	for i := 1; i < len(stdout.lines); i++ {
		if gap := stdout.lines[i].at.Sub(stdout.lines[i-1].at); gap > every+200*time.Millisecond {
			t.Errorf("%s of silence before %q", gap, stdout.lines[i].text)
		}
	}
}

// Line output's heartbeat is 5 s unless a test sets another.
func TestHeartbeatDefault(t *testing.T) {
	a := &app{stdout: &timedWriter{}, getenv: func(string) string { return "" }, loc: time.UTC}
	p, ok := a.newProgress(false, deploy.Deployment{}, false).(*lineProgress)
	if !ok || p.every != 5*time.Second {
		t.Fatalf("line progress %#v, want a heartbeat of 5s", p)
	}
	if (&app{heartbeat: time.Second}).heartbeatEvery() != time.Second {
		t.Error("the heartbeat knob is ignored")
	}
}

// When the daemon goes away mid-deployment, deploy --wait says so, keeps
// its heartbeat, opens the event stream again when the daemon is back,
// says so, and ends with the outcome's exit code.
func TestFollowReconnectsToTheEventStream(t *testing.T) {
	const every = 300 * time.Millisecond
	b := apitest.New("web")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	stop := serveAPI(t, b, ln)
	restarted := make(chan struct{})
	b.OnDeploy = func(service, version, strategy string) (deploy.Deployment, error) {
		d := running(time.Now())
		b.SetHistory("web", []deploy.Deployment{d})
		b.SetStatus(shifting(d.StartedAt))
		go func() {
			defer close(restarted)
			time.Sleep(200 * time.Millisecond)
			stop() // the daemon dies: the stream and the polls fail
			time.Sleep(3 * every)
			// The restarted daemon resumes the deployment and records it.
			d.Events = []deploy.Event{{Time: time.Now(), Service: "web", Deployment: d.ID, Type: deploy.EventResumed,
				Message: "daemon restarted: resuming shifting at step 1 (10%)", Actor: deploy.ActorDaemon}}
			b.SetHistory("web", []deploy.Deployment{d})
			ln2, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("listen again on %s: %v", addr, err)
				return
			}
			serveAPI(t, b, ln2)
			for deadline := time.Now().Add(10 * time.Second); b.Subscribers() == 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			promote(b, d)
		}()
		return d, nil
	}
	code, stdout, stderr := runFollowing(t, "http://"+addr, every)
	<-restarted
	out := stdout.String()
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"connection  lost the daemon's event stream; reconnecting",
		"progress    no answer from the daemon for",
		"connection  reconnected to the daemon's event stream after",
		"resumed     daemon restarted: resuming shifting at step 1 (10%) (by daemon)",
		"web v2: promoted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "lost the daemon's"), strings.Index(out, "reconnected to"); i < 0 || j < i {
		t.Errorf("reconnected before it was lost:\n%s", out)
	}
}
