package deploy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// These tests run real `sh -c` hooks from the executor, in real time: a
// child process is not a durable block for synctest.

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// settled reports whether the service is idle with no work left: no run,
// no job, nothing kept.
func settled(h *harness) bool {
	st := h.c.state()
	return st.Phase == PhaseIdle && st.Run == nil && st.Job == nil && st.Previous == nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// record returns the history record with id.
func (h *harness) record(id string) Deployment {
	h.t.Helper()
	d, found, err := h.c.Deployment(id)
	if err != nil || !found {
		h.t.Fatalf("deployment %s: found %v, %v", id, found, err)
	}
	return d
}

// hookEvents returns the record's hook events whose message starts with prefix.
func hookEvents(d Deployment, prefix string) []Event {
	var out []Event
	for _, ev := range d.Events {
		if ev.Type == EventHook && strings.HasPrefix(ev.Message, prefix) {
			out = append(out, ev)
		}
	}
	return out
}

// syncBuffer is a log destination the Run and job goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logTo sends the controller's log to a buffer; call it before start.
func (h *harness) logTo() *syncBuffer {
	var buf syncBuffer
	h.c.log = slog.New(slog.NewTextHandler(&buf, nil)).With("service", h.svc.Name)
	return &buf
}

// pre_provision runs once, before anything of the candidate starts, with
// the service's env and cutover's variables (which win), and its output
// goes to history and the daemon log.
func TestPreProvisionRunsBeforeTheCandidateStarts(t *testing.T) {
	dir := t.TempDir()
	envOut := filepath.Join(dir, "env")
	svc := testService()
	svc.Hooks.Env = map[string]string{"DATABASE_URL": "postgres://db/app", "VERSION": "not-this"}
	svc.Hooks.PreProvision = Commands(`echo "$SERVICE $VERSION $COLOR $DEPLOYMENT $PREVIEW_URL $DATABASE_URL" >> ` + envOut + `; echo "expand: added column language"`)
	h := newHarness(t, svc, newFakeStore())
	logs := h.logTo()
	var mu sync.Mutex
	var runningAtHook []map[route.Color]string
	h.onEvent = func(ev Event) {
		if ev.Type == EventHook && strings.HasPrefix(ev.Message, "pre_provision hook 1 of 1") {
			mu.Lock()
			runningAtHook = append(runningAtHook, h.rt.pools())
			mu.Unlock()
		}
	}
	h.start()
	d1 := h.deploy("v1", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)
	d2 := h.deploy("v2", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)

	want := fmt.Sprintf("web v1 blue %s http://127.0.0.1:8081 postgres://db/app\nweb v2 green %s http://127.0.0.1:8081 postgres://db/app\n", d1.ID, d2.ID)
	if got := readFile(t, envOut); got != want {
		t.Errorf("the hooks saw\n%s\nwant\n%s", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runningAtHook) != 2 || len(runningAtHook[0]) != 0 || !maps1(runningAtHook[1], route.Blue, "v1") {
		t.Errorf("pools running when pre_provision passed: %v, want none, then only blue v1", runningAtHook)
	}
	rec := h.record(d2.ID)
	evs := hookEvents(rec, "pre_provision hook 1 of 1")
	if rec.Outcome != OutcomePromoted || len(evs) != 1 || evs[0].Output != "expand: added column language\n" {
		t.Fatalf("v2: %s, pre_provision events %+v", rec.Outcome, evs)
	}
	if !strings.Contains(logs.String(), `output="expand: added column language\n"`) {
		t.Errorf("the daemon log lacks the hook's output:\n%s", logs.String())
	}
}

// maps1 reports whether m holds exactly c: v.
func maps1(m map[route.Color]string, c route.Color, v string) bool {
	return len(m) == 1 && m[c] == v
}

// A failed pre_provision fails the deployment before any instance
// starts: nothing is started, drained or stopped, the kept previous pool
// in the candidate's colour is still kept (and can be rolled back to), and
// history holds the hook's output.
func TestFailedPreProvisionStartsNothing(t *testing.T) {
	h := newHarness(t, testService(), newFakeStore())
	var mu sync.Mutex
	var finished []Deployment
	h.c.opts.Finished = func(d Deployment) { mu.Lock(); finished = append(finished, d); mu.Unlock() }
	h.start()
	h.deploy("v1", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)
	h.deploy("v2", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle) // green v2 live, blue v1 kept
	h.edit(func(s *Settings) {
		s.Hooks.PreProvision = Commands(`echo "migrating to $VERSION"; echo 'ERROR: column "language" already exists' >&2; exit 1`)
	})
	calls := len(h.router.callLog())
	d := h.deploy("v3", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)

	rec := h.record(d.ID)
	if rec.Outcome != OutcomeFailed || !strings.Contains(rec.Reason, `column "language" already exists`) || !strings.Contains(rec.Reason, "exit status 1") {
		t.Fatalf("v3: %s %q", rec.Outcome, rec.Reason)
	}
	failed := hookEvents(rec, "pre_provision hook 1 of 1")
	if len(failed) != 1 || failed[0].Output != "migrating to v3\nERROR: column \"language\" already exists\n" {
		t.Errorf("failed hook events %+v, want one with the whole output", failed)
	}
	if got := h.router.callLog()[calls:]; len(got) != 0 {
		t.Errorf("runtime and router calls after the failed pre_provision: %v", got)
	}
	st := h.c.Status()
	if st.Live.Version != "v2" || st.Previous == nil || st.Previous.Color != route.Blue || st.Previous.Version != "v1" || h.rt.pools()[route.Blue] != "v1" {
		t.Fatalf("after the failure: %+v, pools %v", st, h.rt.pools())
	}
	mu.Lock()
	if n := len(finished); n != 3 || finished[2].ID != d.ID || finished[2].Outcome != OutcomeFailed {
		t.Errorf("finished records %+v, want v3's failure reported once", finished)
	}
	mu.Unlock()
	if err := h.c.Rollback(context.Background()); err != nil {
		t.Fatalf("rollback to the kept blue v1 after the failure: %v", err)
	}
}

// post_promote runs after post_traffic once the candidate has all
// traffic; post_retire runs once the kept previous pool is stopped, with
// the retired pool named, and is recorded in the promoting deployment's
// history. Each runs once; a failure is recorded with its output and never
// undoes the promotion.
func TestPostPromoteAndPostRetire(t *testing.T) {
	for _, tc := range []struct {
		name              string
		promote, retire   string
		want              string
		promoted, retired string // what the hook events of v2's record say
	}{
		{"pass", "echo promote $VERSION >> $OUT", `echo "retire $VERSION $COLOR $RETIRED_VERSION $RETIRED_COLOR $DEPLOYMENT" >> $OUT; echo contracted`,
			"traffic v1\npromote v1\ntraffic v2\npromote v2\nretire v2 green v1 blue %s\n", "post_promote hooks passed", "post_retire hooks passed"},
		{"fail", "echo promote $VERSION >> $OUT; echo tag failed >&2; exit 2", `echo "retire $VERSION" >> $OUT; echo contracted; exit 3`,
			"traffic v1\npromote v1\ntraffic v2\npromote v2\nretire v2\n", "the promotion stands", "the previous pool stays retired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ran")
			svc := testService()
			svc.Policy.KeepPrevious, svc.Policy.QuietPeriod = 300*time.Millisecond, 100*time.Millisecond
			svc.Hooks.Env = map[string]string{"OUT": out}
			svc.Hooks.PostTraffic = Commands("echo traffic $VERSION >> $OUT")
			svc.Hooks.PostPromote = Commands(tc.promote)
			svc.Hooks.PostRetire = Commands(tc.retire)
			h := newHarness(t, svc, newFakeStore())
			var mu sync.Mutex
			var blueAtRetireHook []string
			h.onEvent = func(ev Event) {
				if ev.Type == EventHook && strings.HasPrefix(ev.Message, "post_retire hook 1 of 1") {
					mu.Lock()
					blueAtRetireHook = append(blueAtRetireHook, h.rt.pools()[route.Blue])
					mu.Unlock()
				}
			}
			h.start()
			h.deploy("v1", StrategyAllAtOnce)
			waitReal(t, h, PhaseIdle)
			d2 := h.deploy("v2", StrategyAllAtOnce)
			waitFor(t, "v2 promoted and blue v1 retired", func() bool { return settled(h) })
			time.Sleep(500 * time.Millisecond) // nothing runs twice

			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, d2.ID)
			}
			if got := readFile(t, out); got != want {
				t.Errorf("hooks ran:\n%s\nwant\n%s", got, want)
			}
			st := h.c.Status()
			if st.Live == nil || st.Live.Color != route.Green || st.Live.Version != "v2" || st.Weights["green"] != 100 || h.rt.pools()[route.Blue] != "" {
				t.Fatalf("after retirement: %+v, pools %v", st, h.rt.pools())
			}
			mu.Lock()
			if len(blueAtRetireHook) != 1 || blueAtRetireHook[0] != "" {
				t.Errorf("blue when post_retire's result came: %q, want stopped", blueAtRetireHook)
			}
			mu.Unlock()
			rec := h.record(d2.ID)
			if rec.Outcome != OutcomePromoted {
				t.Errorf("v2's outcome %s", rec.Outcome)
			}
			promoted, retired := hookEvents(rec, "post_promote"), hookEvents(rec, "post_retire")
			if !slices.ContainsFunc(promoted, func(e Event) bool { return strings.Contains(e.Message, tc.promoted) }) {
				t.Errorf("v2's post_promote events %+v lack %q", promoted, tc.promoted)
			}
			if !slices.ContainsFunc(retired, func(e Event) bool { return strings.Contains(e.Message, tc.retired) }) ||
				!slices.ContainsFunc(retired, func(e Event) bool { return e.Output == "contracted\n" }) {
				t.Errorf("v2's post_retire events %+v lack %q or the output", retired, tc.retired)
			}
			if tc.name == "fail" && (len(promoted) != 1 || promoted[0].Output != "tag failed\n") {
				t.Errorf("failed post_promote events %+v, want one with its output", promoted)
			}
		})
	}
}

// A daemon that stops in the middle of a hook list runs again only the
// hook that was interrupted, never one that passed, nor an earlier job's
// hooks (hook lines append to $OUT; the interrupted one sleeps the first
// time only).
func TestRestartRerunsOnlyTheInterruptedHook(t *testing.T) {
	const sleepOnce = `test -e "$OUT.once" || { touch "$OUT.once"; sleep 300; }`
	for _, tc := range []struct {
		name    string
		hooks   func(*Hooks)
		job     JobKind
		hook    int // the persisted job's passed hooks
		running bool
		want    string
	}{
		{"in pre_provision", func(h *Hooks) {
			h.PreProvision = Commands("echo 1 >> $OUT", "echo 2 >> $OUT; "+sleepOnce, "echo 3 >> $OUT")
		}, JobPreProvision, 1, false, "1\n2\n2\n3\n"},
		{"in post_promote, after post_traffic", func(h *Hooks) {
			h.PostTraffic = Commands("echo traffic >> $OUT")
			h.PostPromote = Commands("echo promote >> $OUT; "+sleepOnce, "echo tag >> $OUT")
		}, JobPostPromote, 0, true, "traffic\npromote\npromote\ntag\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ran")
			svc := testService()
			svc.Hooks.Env = map[string]string{"OUT": out}
			tc.hooks(&svc.Hooks)
			store := newFakeStore()
			h := newHarness(t, svc, store)
			h.start()
			d := h.deploy("v1", StrategyAllAtOnce)
			waitFor(t, "the hook that sleeps", func() bool { _, err := os.Stat(out + ".once"); return err == nil })
			h.stop() // the daemon dies; the hook dies with it

			st, _, _ := store.LoadState("web")
			if st.Job == nil || st.Job.Kind != tc.job || st.Job.Hook != tc.hook {
				t.Fatalf("persisted job %+v, want %s with %d hooks passed", st.Job, tc.job, tc.hook)
			}
			h2 := newHarness(t, svc, store)
			if tc.running {
				h2.rt.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}) // the live pool, adopted
			}
			h2.start()
			waitFor(t, "the resumed deployment to finish", func() bool { st := h2.c.state(); return st.Run == nil && st.Job == nil })
			if got := readFile(t, out); got != tc.want {
				t.Errorf("hooks ran:\n%s\nwant\n%s", got, tc.want)
			}
			if st := h2.c.Status(); st.Live == nil || st.Live.Version != "v1" || h2.record(d.ID).Outcome != OutcomePromoted {
				t.Errorf("after the restart: %+v, outcome %s", st, h2.record(d.ID).Outcome)
			}
		})
	}
}

// Every hook run keeps the end of its output, passed or failed, within
// HookOutputLimit, starting at a whole character.
func TestHookOutputKept(t *testing.T) {
	for _, tc := range []struct {
		name, line, suffix string
		fails              bool
	}{
		{"short", "echo checked /login: 200", "checked /login: 200\n", false},
		{"long, passed", "seq 1 5000", "4999\n5000\n", false},
		{"long, failed", "seq 1 5000 >&2; exit 1", "4999\n5000\n", true},
		{"multibyte cut", `i=0; while [ $i -lt 3000 ]; do printf 'é'; i=$((i+1)); done; echo end`, "éend\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHook(context.Background(), tc.line, nil, time.Minute)
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v", err)
			}
			if len(out) > HookOutputLimit+len("…") || !strings.HasSuffix(out, tc.suffix) || !utf8.ValidString(out) {
				t.Errorf("output of %d bytes, valid UTF-8 %v, ends %q", len(out), utf8.ValidString(out), out[max(0, len(out)-20):])
			}
			if long := len(tc.suffix) < len(out)/2; long && !strings.HasPrefix(out, "…") {
				t.Errorf("cut output does not say so: starts %q", out[:10])
			}
			if tc.fails && (len(err.Error()) > 400 || !strings.Contains(err.Error(), "5000")) {
				t.Errorf("error repeats %d bytes of output: %q", len(err.Error()), err)
			}
		})
	}
}
