package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
	"github.com/cutover/cutover/internal/testsupport"
)

// killMarkedOnCleanup SIGKILLs, when the test ends, every process that
// carries d's mark, for tests that lose the record file on purpose.
func killMarkedOnCleanup(t *testing.T, d *Driver) {
	t.Cleanup(func() {
		for _, ir := range d.findMarked() {
			_ = syscall.Kill(-ir.PID, syscall.SIGKILL)
		}
	})
}

// The record file is lost while the daemon is down: the instances are found
// again by their marks and adopted, not left running unsupervised.
func TestAdoptFindsInstancesByTheirMarksWhenTheRecordIsLost(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(2, nil), stateDir, nil)
	killMarkedOnCleanup(t, a.d)
	started, err := a.d.Start(context.Background(), route.Green, runtime.Release{Version: "v5"})
	if err != nil {
		t.Fatal(err)
	}
	a.d.Close()
	if err := os.Remove(a.d.recordPath()); err != nil {
		t.Fatal(err)
	}

	b := newHarness(t, testService(2, nil), stateDir, nil)
	surveyed, err := b.d.Survey()
	if err != nil {
		t.Fatal(err)
	}
	if len(surveyed) != 1 || surveyed[0].Color != route.Green || surveyed[0].Version != "v5" || surveyed[0].Instances != 2 {
		t.Errorf("Survey = %+v, want green v5 with 2 instances", surveyed)
	}
	ad, err := b.d.AdoptExpecting(context.Background(), Expect{
		Serving: []runtime.PoolRef{{Color: route.Green, Version: "v5"}},
		Traffic: []route.Color{route.Green},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(ad.Instances); !slices.Equal(got, pids(started)) {
		t.Fatalf("adopted pids %v, want the running %v", got, pids(started))
	}
	if len(ad.Notices) != 1 || !strings.Contains(ad.Notices[0], "green v5 was not in the instance record") {
		t.Errorf("notices = %q, want one saying green v5 was found by its marks", ad.Notices)
	}
	if got := recordedPIDs(t, b.d)[route.Green]; !slices.Equal(got, pids(started)) {
		t.Errorf("record after adoption: %v, want %v", got, pids(started))
	}
}

// A marked process whose colour is recorded with another version belongs
// to no pool: it is stopped rather than left running unsupervised.
func TestAdoptStopsMarkedStrays(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(2, nil), stateDir, nil)
	killMarkedOnCleanup(t, a.d)
	started, err := a.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	a.d.Close()
	rec := records{Schema: recordSchema, Service: "web", Pools: []poolRecord{{Color: route.Blue, Version: "v2", Slots: 2}}}
	if err := writeAtomic(a.d.recordPath(), rec); err != nil {
		t.Fatal(err)
	}

	b := newHarness(t, testService(2, nil), stateDir, nil)
	ad, err := b.d.AdoptExpecting(context.Background(), Expect{Traffic: route.Colors[:]})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ad.Notices, func(n string) bool { return strings.Contains(n, "stopping 2 unrecorded instance(s)") }) {
		t.Errorf("notices = %q, want the two strays named", ad.Notices)
	}
	for _, in := range started {
		waitGone(t, in.PID, 5*time.Second)
	}
}

// A pool the daemon's state says serves, of which nothing was recorded and
// nothing runs, is started again, health-gated, and said so.
func TestAdoptStartsAMissingServingPoolAgain(t *testing.T) {
	b := newHarness(t, testService(2, nil), "", nil)
	killMarkedOnCleanup(t, b.d)
	ad, err := b.d.AdoptExpecting(context.Background(), Expect{
		Serving: []runtime.PoolRef{{Color: route.Blue, Version: "v3"}},
		Traffic: []route.Color{route.Blue},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ad.Notices) != 1 || !strings.Contains(ad.Notices[0], "blue v3 should be running") {
		t.Errorf("notices = %q, want one saying blue v3 is started again", ad.Notices)
	}
	ev := b.rec.WaitPool(t, route.Blue, 10*time.Second, "blue v3 started again", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2
	})
	if ev.Version != "v3" {
		t.Errorf("restarted pool runs %s, want v3", ev.Version)
	}
}

// A pool that carries no traffic (a candidate that was still provisioning)
// is adopted in the background: it never delays the colours traffic goes to.
func TestAdoptExpectingDoesNotWaitForPoolsWithoutTraffic(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(1, nil), stateDir, nil)
	ctx := context.Background()
	blue, green := startBothAndClose(t, a)
	hang(t, green[0].Addr) // green's adopt gate would last 3s

	b := newHarness(t, testService(1, nil), stateDir, nil)
	began := time.Now()
	ad, err := b.d.AdoptExpecting(ctx, Expect{Traffic: []route.Color{route.Blue}})
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids(ad.Instances), pids(blue)) {
		t.Errorf("adopted %v, want blue %v", pids(ad.Instances), pids(blue))
	}
	if gate := b.d.adoptGateTimeout(); took >= gate {
		t.Errorf("AdoptExpecting took %s: it waited for green's %s adopt gate", took, gate)
	}
	// Green is still adopted, and Start of green waits for that adoption.
	if _, err := b.d.Start(ctx, route.Green, runtime.Release{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	if got := recordedPIDs(t, b.d)[route.Green]; !slices.Equal(got, pids(green)) {
		t.Errorf("green record %v, want the adopted %v", got, pids(green))
	}
}

// Start fails, and leaves no process behind, when the record of the pool
// cannot be written (here: a full disk): a pool that a restarted daemon
// could not find must not be reported as started.
func TestStartFailsWhenTheRecordCannotBeWritten(t *testing.T) {
	stateDir := t.TempDir()
	full, _ := testsupport.FullDir(t, filepath.Join(stateDir, "instances"))
	h := newHarness(t, testService(2, nil), stateDir, nil)
	killMarkedOnCleanup(t, h.d)
	_, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err == nil {
		t.Fatal("Start succeeded although the instance record could not be written")
	}
	if !strings.Contains(err.Error(), "record instances") || !errors.Is(err, full) {
		t.Errorf("error %q does not say the record could not be written (%v)", err, full)
	}
	if got := h.d.Instances(route.Blue); len(got) != 0 {
		t.Errorf("blue has %d instances after a failed start", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.d.findMarked()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := h.d.findMarked(); len(left) > 0 {
		t.Errorf("processes left running after the failed start: %+v", left)
	}
}
