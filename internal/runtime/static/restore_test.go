package static

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// An address registered that never passed a health check is not restored
// into the pool at once after a restart: it is probed and joins once it
// passes, while the proven addresses serve from the start.
func TestRestoreProbesUnprovenAddresses(t *testing.T) {
	up, _ := backend(t, true)
	booting, healthy := backend(t, false)
	st := newMemStore()
	st.put("web", fmt.Sprintf(`{"schema":2,"added":{"v1":[%q]}}`, booting)) // registered, never healthy
	rec := runtimetest.NewRecorder()
	d := newDriverWith(t, map[string][]string{"v1": {up}}, st, rec)
	if err := d.RestoreRegistrations(); err != nil {
		t.Fatal(err)
	}

	ins, err := d.Restore(route.Blue, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(addrs(ins), ","); got != up {
		t.Fatalf("Restore = %s, want only the proven %s", got, up)
	}
	time.Sleep(200 * time.Millisecond) // several probes of the unproven address
	if ev, _ := rec.Last(route.Blue); len(ev.Instances) != 1 {
		t.Fatalf("an unproven address that fails its health check joined the pool: %+v", ev.Instances)
	}
	healthy.Store(true)
	rec.WaitPool(t, route.Blue, 5*time.Second, "the unproven address joins once healthy", func(ev runtimetest.PoolEvent) bool {
		return strings.Join(addrs(ev.Instances), ",") == up+","+booting
	})
}
