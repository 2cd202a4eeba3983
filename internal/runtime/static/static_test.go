package static

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// backend is a real HTTP server on 127.0.0.1 whose health can be switched.
func backend(t *testing.T, healthy bool) (addr string, h *atomic.Bool) {
	h = new(atomic.Bool)
	h.Store(healthy)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !h.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), h
}

func newDriver(t *testing.T, versions map[string][]string) (*Driver, *runtimetest.Recorder) {
	rec := runtimetest.NewRecorder()
	return newDriverWith(t, versions, nil, rec), rec
}

// newDriverWith builds a driver of service web over versions that
// persists to st (none when nil) and reports to lis.
func newDriverWith(t *testing.T, versions map[string][]string, st Store, lis runtime.Listener) *Driver {
	t.Helper()
	d, err := New(Options{
		Service: "web", Versions: versions,
		Gate:       runtime.GateOptions{Path: "/healthz", Timeout: time.Second},
		ProbeEvery: 50 * time.Millisecond,
		Listener:   lis, Store: st, StartTimeout: 600 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func addrs(ins []runtime.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.Addr)
	}
	return out
}

func TestStartRegisterStop(t *testing.T) {
	a1, _ := backend(t, true)
	a2, _ := backend(t, true)
	a3, _ := backend(t, true)
	d, rec := newDriver(t, map[string][]string{"v1": {a1, a2}})
	ctx := context.Background()

	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(addrs(ins), ","); got != a1+","+a2 {
		t.Fatalf("Start = %s, want %s,%s", got, a1, a2)
	}
	if ins[0].ID != "web-blue-1" || ins[1].ID != "web-blue-2" || ins[0].PID != 0 || ins[0].Version != "v1" {
		t.Errorf("instances %+v", ins)
	}
	if ev, _ := rec.Last(route.Blue); len(ev.Instances) != 2 || ev.Version != "v1" {
		t.Errorf("listener saw %+v", ev)
	}

	if err := d.Register("v1", a3); err != nil {
		t.Fatal(err)
	}
	ev := rec.WaitPool(t, route.Blue, 3*time.Second, "the registered address joins", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 3
	})
	if got := addrs(ev.Instances); got[2] != a3 || ev.Instances[2].ID != "web-blue-3" {
		t.Errorf("after Register the listener saw %+v", ev)
	}
	if err := d.Deregister("v1", a1); err != nil {
		t.Fatal(err)
	}
	ev, _ = rec.Last(route.Blue)
	if got := strings.Join(addrs(ev.Instances), ","); got != a2+","+a3 || ev.Instances[0].ID != "web-blue-2" {
		t.Errorf("after Deregister the listener saw %+v", ev)
	}
	if err := d.Deregister("v1", a1); err == nil {
		t.Error("Deregister of an address not registered succeeded")
	}
	if err := d.Register("v1", "no-port"); err == nil {
		t.Error("Register of an address without a port succeeded")
	}

	// A version registered at run time can be started.
	n := len(rec.PoolEvents())
	if err := d.Register("v2", a1); err != nil {
		t.Fatal(err)
	}
	if len(rec.PoolEvents()) != n {
		t.Error("registering a version no colour runs reported a pool")
	}
	green, err := d.Start(ctx, route.Green, runtime.Release{Version: "v2"})
	if err != nil || len(green) != 1 || green[0].Addr != a1 {
		t.Fatalf("Start green v2 = %+v, %v", green, err)
	}
	if got := d.Instances(route.Blue); len(got) != 2 {
		t.Errorf("blue changed when green started: %+v", got)
	}

	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	if ev, _ := rec.Last(route.Blue); len(ev.Instances) != 0 {
		t.Errorf("after Stop the listener saw %+v", ev)
	}
	if got := d.Instances(route.Blue); len(got) != 0 {
		t.Errorf("Instances after Stop = %+v", got)
	}
}

func TestStartFailsWhenNoAddressIsHealthy(t *testing.T) {
	down1, health := backend(t, false)
	down2, _ := backend(t, false)
	d, rec := newDriver(t, map[string][]string{"v1": {down1, down2}})
	ctx := context.Background()

	_, err := d.Start(ctx, route.Green, runtime.Release{Version: "v3"})
	if err == nil || !strings.Contains(err.Error(), "service web: static runtime has no addresses for version v3") {
		t.Errorf("Start of an unknown version: %v", err)
	}
	_, err = d.Start(ctx, route.Green, runtime.Release{Version: "v1"})
	if err == nil {
		t.Fatal("Start with no healthy address succeeded")
	}
	for _, want := range []string{"service web", "green", "v1", "no address is healthy",
		"address " + down1, "address " + down2, "status 503", "start timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if len(rec.PoolEvents()) != 0 || len(d.Instances(route.Green)) != 0 {
		t.Errorf("a failed start was reported: %+v", rec.PoolEvents())
	}
	// Once one is healthy, the same start passes with it.
	health.Store(true)
	if ins, err := d.Start(ctx, route.Green, runtime.Release{Version: "v1"}); err != nil || len(ins) != 1 || ins[0].Addr != down1 {
		t.Errorf("Start after recovery: %+v, %v", ins, err)
	}
}

// TestStartWithSomeAddressesDown deploys to the healthy addresses, and the
// one that was down joins the pool once it recovers; a stopped pool stops
// probing.
func TestStartWithSomeAddressesDown(t *testing.T) {
	up, _ := backend(t, true)
	down, health := backend(t, false)
	d, rec := newDriver(t, map[string][]string{"v1": {up, down}})
	ctx := context.Background()

	start := time.Now()
	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatalf("Start with one healthy address of two: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Start took %s, want about the 600ms start timeout", took)
	}
	if got := strings.Join(addrs(ins), ","); got != up {
		t.Fatalf("Start = %s, want only the healthy %s", got, up)
	}
	if ev, _ := rec.Last(route.Blue); strings.Join(addrs(ev.Instances), ",") != up {
		t.Fatalf("listener saw %+v, want only %s", ev, up)
	}
	time.Sleep(200 * time.Millisecond)
	if got := addrs(d.Instances(route.Blue)); len(got) != 1 {
		t.Fatalf("the unhealthy address joined while still down: %v", got)
	}
	health.Store(true)
	ev := rec.WaitPool(t, route.Blue, 3*time.Second, "the recovered address joins", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2
	})
	if ev.Instances[1].Addr != down || ev.Instances[1].ID != "web-blue-2" {
		t.Errorf("pool after recovery %+v", ev.Instances)
	}

	// A colour that stopped no longer takes addresses that recover.
	health.Store(false)
	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, route.Green, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, route.Green); err != nil {
		t.Fatal(err)
	}
	n := len(rec.PoolEvents())
	health.Store(true)
	time.Sleep(300 * time.Millisecond)
	if got := rec.PoolEvents(); len(got) != n {
		t.Errorf("a stopped pool was reported again: %+v", got[n:])
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a service name succeeded")
	}
	_, err := New(Options{Service: "web", Versions: map[string][]string{"v1": {"10.0.0.1"}}})
	if err == nil || !strings.Contains(err.Error(), "v1") {
		t.Errorf("New with an address without port: %v", err)
	}
}

// TestRestoreDoesNotGate is the daemon restart: a pool that was deployed
// healthy comes back with every address at once, even though one of them
// is down now, so the service keeps serving from the others.
func TestRestoreDoesNotGate(t *testing.T) {
	up, _ := backend(t, true)
	down, _ := backend(t, false)
	d, rec := newDriver(t, map[string][]string{"v1": {up, down}})

	start := time.Now()
	ins, err := d.Restore(route.Blue, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Restore took %s; it must not wait for health", took)
	}
	if got := strings.Join(addrs(ins), ","); got != up+","+down {
		t.Errorf("Restore = %s, want %s,%s", got, up, down)
	}
	ev, ok := rec.Last(route.Blue)
	if !ok || ev.Version != "v1" || strings.Join(addrs(ev.Instances), ",") != up+","+down {
		t.Errorf("listener after Restore saw %+v", ev)
	}
	// Restoring again, or starting the same version, keeps the pool.
	n := len(rec.PoolEvents())
	if again, err := d.Restore(route.Blue, "v1"); err != nil || len(again) != 2 || again[0].ID != ins[0].ID {
		t.Errorf("second Restore = %+v, %v", again, err)
	}
	if again, err := d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}); err != nil || len(again) != 2 {
		t.Errorf("Start after Restore = %+v, %v", again, err)
	}
	if len(rec.PoolEvents()) != n {
		t.Errorf("restoring a pool that runs reported it again")
	}
	if _, err := d.Restore(route.Green, "v9"); err == nil || !strings.Contains(err.Error(), "no addresses for version v9") {
		t.Errorf("Restore of a version without addresses: %v", err)
	}
	if len(d.Instances(route.Green)) != 0 {
		t.Errorf("a failed Restore left green with instances")
	}
}

// TestRegisterGates is an autoscaler registering instances that are still
// booting: one takes traffic only once healthy, one that never becomes
// healthy never does, and one deregistered first is never added; all are
// recorded at once.
func TestRegisterGates(t *testing.T) {
	a1, _ := backend(t, true)
	booting, bootHealth := backend(t, false)
	broken, _ := backend(t, false)
	gone, goneHealth := backend(t, false)
	d, rec := newDriver(t, map[string][]string{"v1": {a1}})
	var logs lockedBuffer
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	n := len(rec.PoolEvents())
	for _, a := range []string{booting, broken, gone} {
		if err := d.Register("v1", a); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.Versions()["v1"]; len(got) != 4 {
		t.Errorf("Versions after Register = %v, want all four addresses at once", got)
	}
	time.AfterFunc(300*time.Millisecond, func() { bootHealth.Store(true) })
	time.Sleep(200 * time.Millisecond)
	if got := addrs(d.Instances(route.Blue)); len(got) != 1 {
		t.Errorf("pool before the registered addresses are healthy: %v, want only %s", got, a1)
	}
	if got := rec.PoolEvents(); len(got) != n {
		t.Errorf("listener told of addresses that are not healthy: %+v", got[n:])
	}
	if err := d.Deregister("v1", gone); err != nil {
		t.Fatal(err)
	}
	goneHealth.Store(true)

	ev := rec.WaitPool(t, route.Blue, 3*time.Second, "the booted address joins", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2
	})
	if got := strings.Join(addrs(ev.Instances), ","); got != a1+","+booting {
		t.Errorf("pool once booted = %s, want %s,%s", got, a1, booting)
	}
	time.Sleep(800 * time.Millisecond) // past the 600ms start timeout
	if got := strings.Join(addrs(d.Instances(route.Blue)), ","); got != a1+","+booting {
		t.Errorf("pool after the start timeout = %s, want only %s,%s", got, a1, booting)
	}
	if got := d.Versions()["v1"]; !slices.Contains(got, broken) || slices.Contains(got, gone) {
		t.Errorf("Versions = %v, want the broken address kept and the deregistered one gone", got)
	}
	if out := logs.String(); !strings.Contains(out, "never became healthy") || !strings.Contains(out, broken) {
		t.Errorf("no log that %s never became healthy:\n%s", broken, out)
	}
}

// lockedBuffer is shared with other packages' tests.
type lockedBuffer = testsupport.Buffer

// TestStartCancelled is a deployment given up while its pool gates: it
// installs nothing, even though one address is healthy.
func TestStartCancelled(t *testing.T) {
	up, _ := backend(t, true)
	down, _ := backend(t, false)
	d, rec := newDriver(t, map[string][]string{"v1": {up, down}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.Start(ctx, route.Green, runtime.Release{Version: "v1"}); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("Start with a cancelled context: %v", err)
	}
	if len(rec.PoolEvents()) != 0 || len(d.Instances(route.Green)) != 0 {
		t.Errorf("a cancelled start installed a pool: %+v", rec.PoolEvents())
	}
}
