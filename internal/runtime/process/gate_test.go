package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// appEvent is one line the test app wrote to APP_EVENTS.
type appEvent struct {
	what, instance string
	at             time.Time
}

func readEvents(t *testing.T, path string) []appEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []appEvent
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if len(f) != 3 || err != nil {
			t.Fatalf("bad event line %q", line)
		}
		out = append(out, appEvent{f[0], f[1], time.Unix(0, ns)})
	}
	return out
}

func eventAt(t *testing.T, evs []appEvent, what, instance string) time.Time {
	t.Helper()
	for _, e := range evs {
		if e.what == what && e.instance == instance {
			return e.at
		}
	}
	t.Fatalf("no %q event of %s in %v", what, instance, evs)
	return time.Time{}
}

func count(evs []appEvent, what string) int {
	n := 0
	for _, e := range evs {
		if e.what == what {
			n++
		}
	}
	return n
}

// By default the instances of a pool start one after another, each only
// once the one before passed its health check; start.parallel: N starts
// them all at once, as before. Each instance has the whole start timeout:
// three that take 400ms each start within a 1s timeout.
func TestStartIsOneAfterAnother(t *testing.T) {
	for _, parallel := range []int{1, 3} {
		t.Run("parallel="+strconv.Itoa(parallel), func(t *testing.T) {
			events := filepath.Join(t.TempDir(), "events")
			svc := testService(3, map[string]string{"APP_EVENTS": events, "APP_HEALTHY_AFTER": "400"})
			svc.Parallel, svc.StartTimeout = parallel, time.Second
			h := newHarness(t, svc, "", nil)
			if _, err := h.d.Start(context.Background(), route.Green, runtime.Release{Version: "v1"}); err != nil {
				t.Fatal(err)
			}
			evs := readEvents(t, events)
			if n := count(evs, "start"); n != 3 {
				t.Fatalf("%d starts, want 3 (none restarted): %v", n, evs)
			}
			for slot := 2; slot <= 3; slot++ {
				prev := eventAt(t, evs, "healthy", instanceID("web", route.Green, slot-1))
				start := eventAt(t, evs, "start", instanceID("web", route.Green, slot))
				if after := start.After(prev); after != (parallel == 1) {
					t.Errorf("slot %d started %s after slot %d was healthy; with parallel %d it must start %s",
						slot, start.Sub(prev), slot-1, parallel, map[bool]string{true: "after", false: "before"}[parallel == 1])
				}
			}
		})
	}
}

// An app that migrates its schema at start, unsafely under concurrency
// (issue 11's RSS reader): one at a time, the first instance migrates and
// the next finds the schema current, so none exits. Started all at once,
// one loses the race and exits; the start gate restarts it instead of
// failing the pool.
func TestStartOfAnAppThatMigratesAtStart(t *testing.T) {
	for _, tc := range []struct {
		parallel int
		restarts bool
	}{{1, false}, {2, true}} {
		t.Run("parallel="+strconv.Itoa(tc.parallel), func(t *testing.T) {
			db := t.TempDir()
			events := filepath.Join(db, "events")
			svc := testService(2, map[string]string{"APP_MIGRATE": db, "APP_EVENTS": events})
			svc.Parallel = tc.parallel
			h := newHarness(t, svc, "", nil)
			ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if len(ins) != 2 {
				t.Fatalf("Start returned %d instances, want 2", len(ins))
			}
			logs := readLogs(t, h)
			if n := strings.Count(logs, "app: migrating the schema"); n != 1 {
				t.Errorf("the schema was migrated %d times, want once:\n%s", n, logs)
			}
			starts := count(readEvents(t, events), "start")
			raced := strings.Contains(logs, "duplicate key value")
			if tc.restarts {
				if starts < 3 || !raced {
					t.Errorf("started all at once: %d starts, race lost: %v; want an instance that lost the race, restarted:\n%s", starts, raced, logs)
				}
			} else if starts != 2 || raced {
				t.Errorf("one at a time: %d starts, race lost: %v; want 2 starts and no race:\n%s", starts, raced, logs)
			}
		})
	}
}

func readLogs(t *testing.T, h *harness) string {
	t.Helper()
	var b strings.Builder
	if err := h.d.Logs(context.Background(), nil, false, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// An instance that exits before it is healthy is restarted with backoff
// within the start timeout; the pool starts.
func TestStartRestartsAnInstanceThatExitsEarly(t *testing.T) {
	events := filepath.Join(t.TempDir(), "events")
	h := newHarness(t, testService(1, map[string]string{"APP_EVENTS": events, "APP_FAIL_FIRST": "2"}), "", nil)
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if n := count(readEvents(t, events), "start"); n != 3 {
		t.Errorf("%d starts, want 3 (two that exited, then the one that serves)", n)
	}
	if ev, _ := h.rec.Last(route.Blue); len(ev.Instances) != 1 || ev.Instances[0].PID != ins[0].PID {
		t.Errorf("listener saw %+v, want the one healthy instance %d", ev, ins[0].PID)
	}
	if got := recordedPIDs(t, h.d)[route.Blue]; len(got) != 1 || got[0] != ins[0].PID {
		t.Errorf("record holds %v, want only the serving pid %d", got, ins[0].PID)
	}
	logs := readLogs(t, h)
	for _, want := range []string{"failing start 1 of the first 2", "failing start 2 of the first 2"} {
		if !strings.Contains(logs, want) {
			t.Errorf("instance log lacks %q:\n%s", want, logs)
		}
	}
}

// The failure names the instance that exited, how and with what output,
// apart from the one that was merely not healthy yet when the start was
// given up and the one never started; and everything launched is gone.
func TestStartFailureTellsExitedFromNotYetHealthy(t *testing.T) {
	svc := testService(3, map[string]string{"APP_NEVER_HEALTHY": "1", "APP_EXIT_AFTER_1": "1"})
	svc.Parallel = 2
	h := newHarness(t, svc, "", func(o *Options) { o.CrashLoopRestarts = 2 })
	_, err := h.d.Start(context.Background(), route.Green, runtime.Release{Version: "v1"})
	if err == nil {
		t.Fatal("Start succeeded")
	}
	msg := err.Error()
	t.Logf("Start: %s", msg)
	var se *startError
	if !errors.As(err, &se) {
		t.Fatalf("error is %T, want a *startError", err)
	}
	states := []slotState{se.slots[0].state, se.slots[1].state, se.slots[2].state}
	if states[0] != slotExited || states[1] != slotGivenUp || states[2] != slotNotStarted {
		t.Errorf("slot states %v, want exited, given up, not started", states)
	}
	headline, _, _ := strings.Cut(msg, "\n")
	for _, want := range []string{
		"instance web-green-1 exited 3 times before it was healthy, the last time with exit code 3",
		"(of 3 instances: 1 failed, 1 still starting, 1 not started)",
	} {
		if !strings.Contains(headline, want) {
			t.Errorf("first line lacks %q: %s", want, headline)
		}
	}
	if strings.Contains(headline, "web-green-2") {
		t.Errorf("first line blames web-green-2, which only was not healthy yet: %s", headline)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  web-green-1 \(pid \d+, port \d+\), last output:\n(    \| .*\n)*    \| app exiting on purpose$`),
		regexp.MustCompile(`(?m)^  web-green-2 \(pid \d+, port \d+\): was still starting \(last probe: .*status 503\) when the start was given up: instance web-green-1 failed; last output:$`),
		regexp.MustCompile(`(?m)^  web-green-3: not started$`),
	} {
		if !want.MatchString(msg) {
			t.Errorf("error does not match %s", want)
		}
	}
	for _, m := range pidInError.FindAllStringSubmatch(msg, -1) {
		pid, _ := strconv.Atoi(m[1])
		if alive(pid) {
			t.Errorf("pid %d still alive after the failed start", pid)
		}
	}
	if left := h.d.findMarked(); len(left) != 0 {
		t.Errorf("processes left after the failed start: %+v", left)
	}
}
