package static

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// memStore is a Store in memory. Saves can be made to fail, or to wait
// until the test lets them go.
type memStore struct {
	mu     sync.Mutex
	raw    map[string][]byte
	writes int
	fail   error
	hold   chan struct{} // when set, Save waits for it to be closed

	saving  atomic.Int32  // Saves in progress
	started chan struct{} // one value per held Save that started
}

func newMemStore() *memStore {
	return &memStore{raw: map[string][]byte{}, started: make(chan struct{}, 16)}
}

func (s *memStore) LoadRegistrations(service string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, ok := s.raw[service]
	return slices.Clone(raw), ok, nil
}

func (s *memStore) SaveRegistrations(service string, raw []byte) error {
	s.saving.Add(1)
	defer s.saving.Add(-1)
	s.mu.Lock()
	hold, fail := s.hold, s.fail
	s.mu.Unlock()
	if hold != nil {
		s.started <- struct{}{}
		<-hold
	}
	if fail != nil {
		return fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw[service] = slices.Clone(raw)
	s.writes++
	return nil
}

func (s *memStore) put(service, raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw[service] = []byte(raw)
}

func (s *memStore) get(service string) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.raw[service]), s.writes
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// holdSaves makes every later Save wait until release is called, or the
// test ends, so that a failing test does not hang on a held Save.
func (s *memStore) holdSaves(t *testing.T) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.hold = ch
	release = sync.OnceFunc(func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		close(ch)
	})
	t.Cleanup(release) // before the driver's Close, which waits for its writes
	return release
}

// The stored bytes are the format existing stores hold: the difference
// from the configuration, with the healthy set trimmed to the addresses
// still registered.
func TestDeltaEncoding(t *testing.T) {
	conf := map[string][]string{"v1": {"10.0.0.1:80", "10.0.0.2:80"}}
	for _, tc := range []struct {
		name               string
		effective, healthy map[string][]string
		want               string
	}{
		{"unchanged", conf, nil, `{"schema":2}`},
		{"added and removed",
			map[string][]string{"v1": {"10.0.0.1:80", "10.0.0.3:80"}, "v2": {"10.0.0.9:80"}}, nil,
			`{"schema":2,"added":{"v1":["10.0.0.3:80"],"v2":["10.0.0.9:80"]},"removed":{"v1":["10.0.0.2:80"]}}`},
		{"healthy kept only while added",
			map[string][]string{"v1": {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}},
			map[string][]string{"v1": {"10.0.0.3:80", "10.0.0.4:80"}},
			`{"schema":2,"added":{"v1":["10.0.0.3:80"]},"healthy":{"v1":["10.0.0.3:80"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(deltaOf(conf, tc.effective, tc.healthy)) // what saveLocked writes
			if err != nil {
				t.Fatal(err)
			}
			if got := string(raw); got != tc.want {
				t.Errorf("stored\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestDecodeDelta(t *testing.T) {
	conf := map[string][]string{"v1": {"10.0.0.1:80", "10.0.0.2:80"}}
	for _, tc := range []struct {
		name    string
		raw     string
		want    string // the delta re-encoded
		current bool
		err     string
	}{
		{"current", `{"schema":2,"added":{"v1":["10.0.0.3:80"]},"healthy":{"v1":["10.0.0.3:80"]}}`,
			`{"schema":2,"added":{"v1":["10.0.0.3:80"]},"healthy":{"v1":["10.0.0.3:80"]}}`, true, ""},
		// The whole map lacks 10.0.0.2:80 (added to the file later, or
		// deregistered: it cannot tell), which is kept.
		{"first format", `{"v1":["10.0.0.1:80","10.0.0.3:80"]}`,
			`{"schema":2,"added":{"v1":["10.0.0.3:80"]}}`, false, ""},
		{"later schema", `{"schema":3}`, "", false, "schema 3, want 2"},
		{"not JSON", `{"v1":`, "", false, "unexpected end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, current, err := decodeDelta([]byte(tc.raw), conf)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("decode %s: err %v, want %q", tc.raw, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(d)
			if string(raw) != tc.want || current != tc.current {
				t.Errorf("decode %s = %s (current %v), want %s (current %v)", tc.raw, raw, current, tc.want, tc.current)
			}
		})
	}
}

// Registrations survive a restart on top of the configuration, which stays
// in charge of everything they did not touch; the stored difference is
// rebased on the new configuration.
func TestRegistrationsSurviveARestart(t *testing.T) {
	const a, a2, a3, b, c = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"
	st := newMemStore()
	d := newDriverWith(t, map[string][]string{"v1": {a, a2, a3}}, st, nil)
	if err := d.RestoreRegistrations(); err != nil {
		t.Fatalf("restore from an empty store: %v", err)
	}
	if err := d.Register("v1", b); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.get("web"); got != `{"schema":2,"added":{"v1":["`+b+`"]}}` {
		t.Errorf("after Register the store holds %s", got)
	}
	if err := d.Deregister("v1", a2); err != nil {
		t.Fatal(err)
	}
	want := `{"schema":2,"added":{"v1":["` + b + `"]},"removed":{"v1":["` + a2 + `"]}}`
	if got, _ := st.get("web"); got != want {
		t.Errorf("after Deregister the store holds %s, want %s", got, want)
	}
	d.Close()

	// The operator drops a3 from the file and adds v2.
	_, writes := st.get("web")
	d = newDriverWith(t, map[string][]string{"v1": {a, a2}, "v2": {c}}, st, nil)
	if err := d.RestoreRegistrations(); err != nil {
		t.Fatal(err)
	}
	wantVersions := map[string][]string{"v1": {a, b}, "v2": {c}}
	if got := d.Versions(); !maps.EqualFunc(got, wantVersions, slices.Equal) {
		t.Errorf("after a restart Versions = %v, want %v", got, wantVersions)
	}
	if got, n := st.get("web"); got != want || n != writes {
		t.Errorf("a restart that changed nothing registered wrote %d times: %s", n-writes, got)
	}
	d.Close()

	// The operator puts b into the file: the stored difference forgets it.
	d = newDriverWith(t, map[string][]string{"v1": {a, a2, b}}, st, nil)
	if err := d.RestoreRegistrations(); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.get("web"); got != `{"schema":2,"removed":{"v1":["`+a2+`"]}}` {
		t.Errorf("rebased on a file that has the registered address, the store holds %s", got)
	}
}

// A store written by a daemon that saved the whole address map is read as
// the registrations it holds beyond the file, removes nothing, and is
// rewritten in the current format.
func TestRegistrationsFromTheWholeMap(t *testing.T) {
	const a, a2, b = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.4:80"
	st := newMemStore()
	st.put("web", `{"v1":["`+a+`","`+b+`"]}`) // a2 was added to the file later
	d := newDriverWith(t, map[string][]string{"v1": {a, a2}}, st, nil)
	if err := d.RestoreRegistrations(); err != nil {
		t.Fatal(err)
	}
	if got := d.Versions()["v1"]; !slices.Equal(got, []string{a, a2, b}) {
		t.Errorf("v1 = %v, want %v", got, []string{a, a2, b})
	}
	if got, _ := st.get("web"); got != `{"schema":2,"added":{"v1":["`+b+`"]}}` {
		t.Errorf("the first format was rewritten as %s", got)
	}
}

// A stored value that cannot be read fails the start instead of starting
// without the registrations it holds.
func TestUnreadableRegistrationsFail(t *testing.T) {
	for _, raw := range []string{`{"schema":3}`, `["10.0.0.1:80"]`} {
		st := newMemStore()
		st.put("web", raw)
		d := newDriverWith(t, map[string][]string{"v1": {"10.0.0.1:80"}}, st, nil)
		if err := d.RestoreRegistrations(); err == nil || !strings.Contains(err.Error(), "service web: registered static addresses") {
			t.Errorf("restore from %s: %v", raw, err)
		}
	}
}

// A change the store cannot persist is not acknowledged and is undone.
func TestRegistrationUndoneWhenPersistingFails(t *testing.T) {
	const a, b = "10.0.0.1:80", "10.0.0.4:80"
	st := newMemStore()
	d := newDriverWith(t, map[string][]string{"v1": {a}}, st, nil)
	st.setFail(errors.New("disk full"))
	if err := d.Register("v1", b); err == nil || !strings.Contains(err.Error(), "service web: persisting static addresses: disk full") {
		t.Errorf("Register with a failing store: %v", err)
	}
	if got := d.Versions()["v1"]; !slices.Equal(got, []string{a}) {
		t.Errorf("a registration that was not persisted stayed: %v", got)
	}
	if err := d.Deregister("v1", a); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Deregister with a failing store: %v", err)
	}
	if got := d.Versions()["v1"]; !slices.Equal(got, []string{a}) {
		t.Errorf("a deregistration that was not persisted stayed: %v", got)
	}
	// Registering what is registered changes nothing, so undoes nothing.
	if err := d.Register("v1", a); err == nil {
		t.Error("Register with a failing store succeeded")
	}
	if got := d.Versions()["v1"]; !slices.Equal(got, []string{a}) {
		t.Errorf("a failed Register of a registered address removed it: %v", got)
	}
	if got, n := st.get("web"); n != 0 {
		t.Errorf("the failing store was written: %s", got)
	}
}

// watcher is a Listener that notes, on every Pool call, how many store
// writes are in progress at that moment.
type watcher struct {
	*runtimetest.Recorder
	st *memStore

	mu     sync.Mutex
	saving []int32 // per Pool call
}

func (w *watcher) Pool(c route.Color, version string, ins []runtime.Instance) {
	n := w.st.saving.Load()
	w.mu.Lock()
	w.saving = append(w.saving, n)
	w.mu.Unlock()
	w.Recorder.Pool(c, version, ins)
}

// The driver records a registered address that joins a pool as healthy
// without writing the store inside the Listener call: the pool change
// reaches the listener while that write hangs, later pool changes do too,
// and a restart restores the address at once.
func TestHealthyPersistedOutsideTheListener(t *testing.T) {
	a1, _ := backend(t, true)
	booting, healthy := backend(t, false)
	st := newMemStore()
	w := &watcher{Recorder: runtimetest.NewRecorder(), st: st}
	d := newDriverWith(t, map[string][]string{"v1": {a1}}, st, w)
	if _, err := d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Register("v1", booting); err != nil {
		t.Fatal(err)
	}

	release := st.holdSaves(t)
	healthy.Store(true)
	w.WaitPool(t, route.Blue, 3*time.Second, "the registered address joins while the store hangs", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 2
	})
	select {
	case <-st.started: // the healthy set's write, after the listener call
	case <-time.After(3 * time.Second):
		t.Fatal("the registered address that joined a pool was not persisted as healthy")
	}
	w.mu.Lock()
	during := slices.Clone(w.saving)
	w.mu.Unlock()
	if slices.ContainsFunc(during, func(n int32) bool { return n > 0 }) {
		t.Errorf("a store write was in progress during a Listener call: %v", during)
	}

	// Another pool change reaches the listener while that write hangs.
	done := make(chan error, 1)
	go func() { done <- d.Deregister("v1", a1) }()
	w.WaitPool(t, route.Blue, 3*time.Second, "a deregistration reaches the listener while the store hangs", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 1 && ev.Instances[0].Addr == booting
	})
	release()
	if err := <-done; err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	d.Close()
	want := `{"schema":2,"added":{"v1":["` + booting + `"]},"removed":{"v1":["` + a1 + `"]},"healthy":{"v1":["` + booting + `"]}}`
	if got, _ := st.get("web"); got != want {
		t.Errorf("the store holds %s, want %s", got, want)
	}

	// After a restart the address once healthy is restored at once.
	healthy.Store(false)
	d = newDriverWith(t, map[string][]string{"v1": {a1}}, st, nil)
	if err := d.RestoreRegistrations(); err != nil {
		t.Fatal(err)
	}
	ins, err := d.Restore(route.Blue, "v1")
	if err != nil || len(ins) != 1 || ins[0].Addr != booting {
		t.Errorf("Restore = %+v, %v; want the address once healthy at once", ins, err)
	}
}
