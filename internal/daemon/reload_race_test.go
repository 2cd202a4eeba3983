package daemon_test

import (
	"context"
	"sync"
	"testing"

	"github.com/cutover/cutover/internal/daemon"
)

// Reloads and registrations arrive concurrently (SIGHUP from a config
// manager while an autoscaler registers): both succeed, and under -race
// the configuration a reload swaps in is never read unsynchronised.
func TestReloadConcurrentWithRegister(t *testing.T) {
	v1, extra := newInstance(t, "v1"), newInstance(t, "v1")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1})})
	d := f.start(daemon.Options{StopInstancesOnExit: true})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 50 {
			if err := d.c.Reload(ctx); err != nil {
				t.Errorf("reload: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for range 50 {
			if err := d.c.Register(ctx, "web", "v1", extra.addr); err != nil {
				t.Errorf("register: %v", err)
				return
			}
			if err := d.c.Deregister(ctx, "web", "v1", extra.addr); err != nil {
				t.Errorf("deregister: %v", err)
				return
			}
		}
	})
	wg.Wait()
}
