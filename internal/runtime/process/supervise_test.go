package process

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

func TestCrashedInstanceIsReplaced(t *testing.T) {
	h := newHarness(t, testService(2, nil), "", nil)
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	victim := ins[0]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.rec.WaitPool(t, route.Blue, 5*time.Second, "one instance after the crash", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 1 && ev.Instances[0].PID == ins[1].PID
	})
	ev := h.rec.WaitPool(t, route.Blue, 10*time.Second, "two healthy instances again", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2
	})
	repl := ev.Instances[0]
	if repl.ID != victim.ID || repl.PID == victim.PID {
		t.Fatalf("replacement %+v, want a new pid in slot %s", repl, victim.ID)
	}
	if info := getInfo(t, repl.Addr); info.PID != repl.PID {
		t.Errorf("replacement at %s answered from pid %d, want %d", repl.Addr, info.PID, repl.PID)
	}
	if len(h.rec.FailedEvents()) != 0 {
		t.Errorf("one crash reported as failure: %+v", h.rec.FailedEvents())
	}
	rec, err := h.d.readRecords()
	if err != nil || len(rec.Pools) != 1 || len(rec.Pools[0].Instances) != 2 {
		t.Fatalf("record after replacement: %+v, %v", rec, err)
	}
	if !slices.Contains([]int{rec.Pools[0].Instances[0].PID, rec.Pools[0].Instances[1].PID}, repl.PID) {
		t.Errorf("record does not hold the replacement pid %d: %+v", repl.PID, rec)
	}
}

func TestCrashLoopIsReported(t *testing.T) {
	svc := testService(1, map[string]string{"APP_EXIT_AFTER": "400"})
	h := newHarness(t, svc, "", func(o *Options) {
		o.CrashLoopRestarts = 2
		o.RestartBackoff = 10 * time.Millisecond
	})
	if _, err := h.d.Start(context.Background(), route.Green, runtime.Release{Version: "v9"}); err != nil {
		t.Fatal(err)
	}
	f := h.rec.WaitFailed(t, route.Green, 20*time.Second)
	if f.Version != "v9" {
		t.Errorf("failed version %q, want v9", f.Version)
	}
	for _, want := range []string{"service web", "green v9", "crash-looping", "3 exits", "app exiting on purpose"} {
		if !strings.Contains(f.Err.Error(), want) {
			t.Errorf("failure lacks %q:\n%v", want, f.Err)
		}
	}
	// No more restarts after the failure.
	n := len(h.rec.PoolEvents())
	time.Sleep(700 * time.Millisecond)
	if got := len(h.rec.PoolEvents()); got != n {
		t.Errorf("pool still changing after the crash loop was reported: %d -> %d events", n, got)
	}
	if got := h.d.Instances(route.Green); len(got) != 0 {
		t.Errorf("crash-looping pool has instances %v", got)
	}
	// A new Start of the failed version tries again from scratch.
	h.d.opts.Env = nil
	ins, err := h.d.Start(context.Background(), route.Green, runtime.Release{Version: "v9"})
	if err != nil || len(ins) != 1 {
		t.Fatalf("restart after failure: %v, %v", ins, err)
	}
}

var grandchildPID = regexp.MustCompile(`grandchild pid=(\d+)`)

func TestGracefulStop(t *testing.T) {
	svc := testService(1, map[string]string{"APP_GRANDCHILD": "1"})
	h := newHarness(t, svc, "", nil)
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := h.d.Logs(context.Background(), nil, false, &logs); err != nil {
		t.Fatal(err)
	}
	m := grandchildPID.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no grandchild in the logs:\n%s", logs.String())
	}
	gc, _ := strconv.Atoi(m[1])
	killOnCleanup(t, gc)
	if !alive(gc) {
		t.Fatalf("grandchild %d not running before Stop", gc)
	}

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ins[0].Addr + "/slow?ms=1200")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in flight
	start := time.Now()
	if err := h.d.Stop(context.Background(), route.Blue); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	r := <-done
	if r.err != nil || r.body != "slow done\n" {
		t.Errorf("in-flight request: %q, %v; want it to complete", r.body, r.err)
	}
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Errorf("Stop took %s; want it to wait for the in-flight request, not the stop timeout", took)
	}
	if alive(ins[0].PID) {
		t.Errorf("instance %d alive after Stop", ins[0].PID)
	}
	if alive(gc) {
		t.Errorf("grandchild %d outlived its instance", gc)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	svc := testService(1, map[string]string{"APP_IGNORE_TERM": "1", "APP_GRANDCHILD": "1"})
	svc.StopTimeout = 600 * time.Millisecond
	h := newHarness(t, svc, "", nil)
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.d.Stop(context.Background(), route.Blue); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 600*time.Millisecond || took > 4*time.Second {
		t.Errorf("Stop took %s, want the 600ms stop timeout then SIGKILL", took)
	}
	if alive(ins[0].PID) {
		t.Errorf("instance %d ignored SIGTERM and survived Stop", ins[0].PID)
	}
}

func TestAdoptAfterRestart(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(2, nil), stateDir, nil)
	started, err := a.d.Start(context.Background(), route.Green, runtime.Release{Version: "v3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, in := range started {
		if !alive(in.PID) {
			t.Fatalf("Close stopped instance %d", in.PID)
		}
	}

	b := newHarness(t, testService(2, nil), stateDir, nil)
	adopted, err := b.d.Adopt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids(adopted), pids(started)) {
		t.Fatalf("adopted pids %v, want %v", pids(adopted), pids(started))
	}
	ev, ok := b.rec.Last(route.Green)
	if !ok || ev.Version != "v3" || !slices.Equal(pids(ev.Instances), pids(started)) {
		t.Fatalf("listener after Adopt: %+v", ev)
	}
	for _, in := range adopted {
		if info := getInfo(t, in.Addr); info.PID != in.PID {
			t.Errorf("adopted %s answers from pid %d", in.ID, info.PID)
		}
	}
	// The adopted ports stay reserved: a new pool gets other ports.
	blue, err := b.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v4"})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range blue {
		for _, g := range adopted {
			if in.Addr == g.Addr {
				t.Errorf("blue %s got adopted green's address %s", in.ID, in.Addr)
			}
		}
	}
	// B supervises them: a killed adopted instance is replaced.
	if err := syscall.Kill(adopted[1].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev = b.rec.WaitPool(t, route.Green, 10*time.Second, "slot 2 replaced", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2 && ev.Instances[1].PID != adopted[1].PID
	})
	if ev.Instances[0].PID != adopted[0].PID {
		t.Errorf("slot 1 changed: %d -> %d", adopted[0].PID, ev.Instances[0].PID)
	}
	// And B stops adopted instances like its own.
	if err := b.d.Stop(context.Background(), route.Green); err != nil {
		t.Fatal(err)
	}
	waitGone(t, adopted[0].PID, 2*time.Second)
}

func TestAdoptReplacesDeadAndReusedPIDs(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(3, nil), stateDir, nil)
	started, err := a.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	a.d.Close()
	for _, in := range started {
		killOnCleanup(t, in.PID)
	}
	// Slots 1 and 2 died while no daemon ran.
	for _, in := range started[:2] {
		syscall.Kill(-in.PID, syscall.SIGKILL)
		waitGone(t, in.PID, 2*time.Second)
	}
	// Slot 2's pid now belongs to another program (a live process with the
	// recorded pid but another start time): it must be neither adopted nor
	// signalled.
	other := startSleep(t)
	rec, err := a.d.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	for i := range rec.Pools[0].Instances {
		if rec.Pools[0].Instances[i].Slot == 2 {
			rec.Pools[0].Instances[i].PID = other
		}
	}
	if err := writeAtomic(a.d.recordPath(), rec); err != nil {
		t.Fatal(err)
	}

	b := newHarness(t, testService(3, nil), stateDir, nil)
	adopted, err := b.d.Adopt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(adopted) != 1 || adopted[0].PID != started[2].PID {
		t.Fatalf("adopted %+v, want only slot 3 (pid %d)", adopted, started[2].PID)
	}
	ev := b.rec.WaitPool(t, route.Blue, 10*time.Second, "dead slots replaced", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 3
	})
	for _, in := range ev.Instances[:2] {
		if in.PID == started[0].PID || in.PID == other {
			t.Errorf("slot %s not replaced: pid %d", in.ID, in.PID)
		}
		if info := getInfo(t, in.Addr); info.Env["VERSION"] != "v1" {
			t.Errorf("replacement %s runs %q", in.ID, info.Env["VERSION"])
		}
	}
	if !alive(other) {
		t.Errorf("the unrelated process %d that reused a recorded pid was killed", other)
	}
}

// TestAdoptDoesNotWaitForHungInstances is a restart where an instance of
// each pool is alive but no longer answers its health check: Adopt gates
// both pools at once, for about as long as the router's checks would take
// to eject an instance rather than the start timeout, and reports only the
// healthy instances; the hung ones are replaced in the background once the
// start timeout has passed without them recovering.
func TestAdoptDoesNotWaitForHungInstances(t *testing.T) {
	stateDir := t.TempDir()
	svc := testService(2, nil)
	svc.StartTimeout = 6 * time.Second
	a := newHarness(t, svc, stateDir, nil)
	ctx := context.Background()
	blue, green := startBothAndClose(t, a)
	for _, in := range []string{blue[0].Addr, green[0].Addr} {
		hang(t, in)
	}

	// Health.Timeout 1s x the default UnhealthyThreshold 3 = a 3s gate; the
	// start timeout is 6s, and gating the pools one after the other 6s.
	b := newHarness(t, svc, stateDir, nil)
	start := time.Now()
	adopted, err := b.d.Adopt(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > 5*time.Second {
		t.Errorf("Adopt took %s; hung instances must not hold it past the health check's own bound", took)
	}
	if want := []int{blue[1].PID, green[1].PID}; !slices.Equal(pids(adopted), want) {
		t.Fatalf("adopted pids %v, want the healthy %v", pids(adopted), want)
	}
	seen := map[route.Color]bool{}
	for _, ev := range b.rec.PoolEvents() {
		if !seen[ev.Color] && len(ev.Instances) != 1 {
			t.Errorf("first report of %s after Adopt = %+v, want only the healthy instance", ev.Color, ev.Instances)
		}
		seen[ev.Color] = true
	}
	for _, c := range []struct {
		color route.Color
		hung  int
	}{{route.Blue, blue[0].PID}, {route.Green, green[0].PID}} {
		ev := b.rec.WaitPool(t, c.color, 15*time.Second, "hung instance replaced", func(ev runtimetest.PoolEvent) bool {
			return len(ev.Instances) == 2
		})
		if since := time.Since(start); since < svc.StartTimeout {
			t.Errorf("%s's hung instance replaced %s after adoption began, before the %s start timeout",
				c.color, since, svc.StartTimeout)
		}
		if ev.Instances[0].PID == c.hung {
			t.Errorf("%s slot 1 still runs the hung pid %d", c.color, c.hung)
		}
		waitGone(t, c.hung, 10*time.Second)
	}
}

// TestAdoptWaitsForAnInstanceThatRecovers is a restart during which an
// instance's health check fails for a while (a database hiccup): Adopt
// does not wait for it, but it is not killed either; it joins its pool,
// the same process, once it answers again within the start timeout.
func TestAdoptWaitsForAnInstanceThatRecovers(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(2, nil), stateDir, nil)
	ctx := context.Background()
	blue, err := a.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	a.d.Close()
	for _, in := range blue {
		killOnCleanup(t, in.PID)
	}
	// Longer than the 3s adopt gate, shorter than the 10s start timeout.
	hangFor(t, blue[0].Addr, 5*time.Second)

	b := newHarness(t, testService(2, nil), stateDir, nil)
	adopted, err := b.d.Adopt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{blue[1].PID}; !slices.Equal(pids(adopted), want) {
		t.Fatalf("Adopt returned pids %v, want only the healthy %v", pids(adopted), want)
	}
	if got := recordedPIDs(t, b.d)[route.Blue]; !slices.Equal(got, pids(blue)) {
		t.Errorf("recorded pids while slot 1 is checked: %v, want %v", got, pids(blue))
	}
	ev := b.rec.WaitPool(t, route.Blue, 10*time.Second, "recovered instance joins", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2
	})
	if !slices.Equal(pids(ev.Instances), pids(blue)) {
		t.Errorf("pool after the recovery runs %v, want the same processes %v", pids(ev.Instances), pids(blue))
	}
	if !alive(blue[0].PID) {
		t.Errorf("the instance that recovered (pid %d) was killed", blue[0].PID)
	}
}

// startSleep starts `sleep 60` in its own process group, killed at cleanup.
func startSleep(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Wait()
	})
	return p.Pid
}

func TestAdoptWithoutRecord(t *testing.T) {
	h := newHarness(t, testService(1, nil), "", nil)
	adopted, err := h.d.Adopt(context.Background())
	if err != nil || len(adopted) != 0 {
		t.Fatalf("Adopt on an empty state dir: %v, %v", adopted, err)
	}
	if err := os.WriteFile(h.d.recordPath(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, testService(1, nil), h.stateDir, nil)
	if _, err := h2.d.Adopt(context.Background()); err == nil || !strings.Contains(err.Error(), "service web") {
		t.Fatalf("Adopt of a corrupt record: %v, want a loud error", err)
	}
}

// syncBuffer is shared with other packages' tests.
type syncBuffer = testsupport.Buffer

func TestLogs(t *testing.T) {
	h := newHarness(t, testService(2, nil), "", nil)
	ctx := context.Background()
	ins, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	if err := h.d.Logs(ctx, nil, false, &all); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"green-1 | app starting pid=" + strconv.Itoa(ins[0].PID),
		"green-2 | app starting pid=" + strconv.Itoa(ins[1].PID),
		"green-2 | app: a line on stderr",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, all.String())
		}
	}
	blue := route.Blue
	var none bytes.Buffer
	if err := h.d.Logs(ctx, &blue, false, &none); err != nil || none.Len() != 0 {
		t.Errorf("blue logs = %q, %v; want nothing", none.String(), err)
	}

	fctx, cancel := context.WithCancel(ctx)
	var follow syncBuffer
	done := make(chan error, 1)
	green := route.Green
	go func() { done <- h.d.Logs(fctx, &green, true, &follow) }()
	syscall.Kill(ins[0].PID, syscall.SIGKILL)
	ev := h.rec.WaitPool(t, route.Green, 10*time.Second, "replacement", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2 && ev.Instances[0].PID != ins[0].PID
	})
	want := "green-1 | app starting pid=" + strconv.Itoa(ev.Instances[0].PID)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(follow.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("follow did not show %q:\n%s", want, follow.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs follow returned %v after cancel", err)
	}
}

func TestLogRotation(t *testing.T) {
	svc := testService(1, map[string]string{"APP_NOISE": "400"})
	h := newHarness(t, svc, "", func(o *Options) {
		o.LogMaxBytes = 2000
		o.LogKeep = 2
		o.LogCheckInterval = 20 * time.Millisecond
	})
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	path := h.d.logPath(route.Blue, 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path + ".1")
		if err == nil && fi.Size() > 2000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log not rotated: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cur, _ := os.Stat(path)
	if cur.Size() > 2000 {
		t.Errorf("current log is %d bytes after rotation", cur.Size())
	}
	// The instance keeps writing to the same file after truncation.
	syscall.Kill(ins[0].PID, syscall.SIGTERM) // prints "app: SIGTERM, draining" and is replaced
	deadline = time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("app: SIGTERM, draining")) {
			if bytes.HasPrefix(b, make([]byte, 1)) {
				t.Errorf("log file starts with NUL bytes: the child does not append")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("output after rotation not in %s:\n%s", path, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var all bytes.Buffer
	if err := h.d.Logs(context.Background(), nil, false, &all); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(all.String(), "blue-1 | noise line 399") {
		t.Errorf("Logs lacks output kept in the rotated file:\n%.2000s", all.String())
	}
}
