package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/store"
)

// staticVersions is the runtime YAML for a static service whose versions
// have the given instances, in order.
func staticVersions(versions ...struct {
	name string
	ins  []*instance
}) string {
	var b strings.Builder
	b.WriteString("      static:\n        versions:\n")
	for _, v := range versions {
		addrs := make([]string, len(v.ins))
		for i, in := range v.ins {
			addrs[i] = fmt.Sprintf("%q", in.addr)
		}
		fmt.Fprintf(&b, "          %s: [%s]\n", v.name, strings.Join(addrs, ", "))
	}
	return b.String()
}

func ver(name string, ins ...*instance) struct {
	name string
	ins  []*instance
} {
	return struct {
		name string
		ins  []*instance
	}{name, ins}
}

// waitHit sends requests to the public listener until in has served one.
func waitHit(t *testing.T, listen string, in *instance, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for in.hits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s (%s) served no request within 10s", what, in.addr)
		}
		get(t, listen)
	}
}

// Registrations survive a restart on top of the configuration file, which
// stays in charge of everything they did not touch: a version added to the
// file deploys, an address dropped from the file is gone, and a configured
// address deregistered through the API stays deregistered.
func TestRegistrationsApplyOnTopOfTheFile(t *testing.T) {
	a, a2, a3 := newInstance(t, "v1"), newInstance(t, "v1"), newInstance(t, "v1")
	b, c := newInstance(t, "v1"), newInstance(t, "v2")
	f := newFixture(t, spec{Runtime: staticVersions(ver("v1", a, a2, a3))})
	d := f.start(daemon.Options{})
	d.deployLive("v1", "")
	if err := d.c.Register(t.Context(), "web", "v1", b.addr); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := d.c.Deregister(t.Context(), "web", "v1", a2.addr); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	// The operator drops a3 from the file and adds v2.
	s := f.spec
	s.Runtime = staticVersions(ver("v1", a, a2), ver("v2", c))
	f.write(s)
	for range 2 { // and a second restart changes nothing
		for _, in := range []*instance{a, a2, a3, b} {
			in.hits.Store(0)
		}
		d = f.start(daemon.Options{})
		waitHit(t, f.spec.Listen, b, "the registered address")
		waitHit(t, f.spec.Listen, a, "the configured address")
		versions(t, f.spec.Listen, 20)
		if n := a2.hits.Load(); n != 0 {
			t.Errorf("the deregistered address served %d requests after a restart", n)
		}
		if n := a3.hits.Load(); n != 0 {
			t.Errorf("the address dropped from the file served %d requests after a restart", n)
		}
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
	}
	d = f.start(daemon.Options{})
	d.deployLive("v2", "")
	if got := versions(t, f.spec.Listen, 5); got["v2"] != 5 {
		t.Errorf("v2, added to the file, serves %v", got)
	}
}

// A store written by a daemon that saved the whole address map is read as
// the registrations it holds beyond the file, and removes nothing.
func TestRegistrationsFromTheWholeMapFormat(t *testing.T) {
	a, a2, b := newInstance(t, "v1"), newInstance(t, "v1"), newInstance(t, "v1")
	f := newFixture(t, spec{Runtime: staticVersions(ver("v1", a, a2))})
	d := f.start(daemon.Options{})
	d.deployLive("v1", "")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(f.stateDir, "cutover.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string][]string{"v1": {a.addr, b.addr}} // a2 was added to the file later
	if err := st.PutState("web/static-addresses", old); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second start reads the format the first wrote
		b.hits.Store(0)
		a2.hits.Store(0)
		d = f.start(daemon.Options{})
		waitHit(t, f.spec.Listen, b, "the address registered in the old format")
		waitHit(t, f.spec.Listen, a2, "the configured address the old map lacked")
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// toggledInstance is an instance whose health check answers 503 until
// healthy is set; it serves requests either way.
func toggledInstance(t *testing.T, version string) (*instance, *atomic.Bool) {
	t.Helper()
	in, healthy := &instance{}, new(atomic.Bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !healthy.Load() {
				http.Error(w, "booting", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok")
			return
		}
		in.hits.Add(1)
		w.Header().Set("X-Version", version)
		io.WriteString(w, version)
	}))
	t.Cleanup(srv.Close)
	in.addr = srv.Listener.Addr().String()
	return in, healthy
}

// An address registered that never passed a health check (still booting
// when the daemon restarted) does not get traffic at the restart: it is
// probed first, and joins once healthy. One that has served comes back at
// once.
func TestRestartProbesRegisteredAddressesNeverHealthy(t *testing.T) {
	a, b := newInstance(t, "v1"), newInstance(t, "v1")
	booting, healthy := toggledInstance(t, "v1")
	f := newFixture(t, spec{Runtime: staticVersions(ver("v1", a))})
	d := f.start(daemon.Options{})
	d.deployLive("v1", "")
	for _, in := range []*instance{b, booting} {
		if err := d.c.Register(t.Context(), "web", "v1", in.addr); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	waitHit(t, f.spec.Listen, b, "the registered healthy address")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	booting.hits.Store(0)
	b.hits.Store(0)
	d = f.start(daemon.Options{})
	versions(t, f.spec.Listen, 50)
	if n := booting.hits.Load(); n != 0 {
		t.Errorf("an address never healthy served %d requests right after the restart", n)
	}
	if b.hits.Load() == 0 {
		t.Errorf("the registered address that had served got none of 50 requests after the restart")
	}
	healthy.Store(true)
	waitHit(t, f.spec.Listen, booting, "the registered address once healthy")
}
