package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Upgrades between two different builds of cutover, there and back three
// times, under load on the public listener and on the API: no public
// request fails, no instance restarts, after each upgrade the daemon runs
// the binary asked for, and reads of the API keep being answered while
// the daemons hand over.
func TestUpgradeBetweenTwoBuildsAndBack(t *testing.T) {
	e := newEnv(t)
	e.start()
	t.Cleanup(e.stopUpgraded)
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	instances := e.instancePIDs()

	// The other build: without the race detector and with its own link
	// flags, so it is a different binary, not a copy.
	other := filepath.Join(t.TempDir(), "cutover-other")
	build := exec.Command("go", "build", "-ldflags", "-X main.e2eBuild=other", "-o", other, "../cmd/cutover")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the other cutover: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(binary)
	b, _ := os.ReadFile(other)
	if bytes.Equal(a, b) {
		t.Fatal("the two builds are the same binary")
	}

	load := startRawLoad(t, e.public, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)
	var apiOK, apiFailed atomic.Int64
	var apiErrs sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &http.Client{Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := c.Get("http://" + e.api + "/v1/services/web")
			if err != nil {
				apiFailed.Add(1)
				apiErrs.Store(err.Error(), true)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				apiFailed.Add(1)
				apiErrs.Store(fmt.Sprint("status ", resp.StatusCode), true)
				continue
			}
			apiOK.Add(1)
		}
	})

	for i := range 3 {
		for _, to := range []string{other, binary} {
			out := e.mustCLI(0, "upgrade", "--binary", to)
			pid := e.daemonPID()
			exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
			if err != nil || exe != to {
				t.Fatalf("round %d: after `upgrade --binary %s` the daemon (pid %d) runs %q (%v):\n%s", i+1, to, pid, exe, err, out)
			}
			load.waitAnswers(t, time.Now(), 20, 10*time.Second)
		}
	}
	close(stop)
	wg.Wait()
	load.halt()
	var errs []string
	apiErrs.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return true })
	t.Logf("6 upgrades between two builds: public %s; API reads %d answered, %d failed %v",
		load, apiOK.Load(), apiFailed.Load(), errs)
	if n := load.failed.Load() + load.refused.Load(); n != 0 {
		t.Errorf("%d public requests failed over the upgrades, want 0: %s", n, load)
	}
	if n := apiFailed.Load(); n != 0 {
		t.Errorf("%d API reads failed during the hand-overs, want 0: %v", n, errs)
	}
	if got := e.instancePIDs(); !reflect.DeepEqual(got, instances) {
		t.Errorf("instance pids %v after the upgrades, want %v unchanged", got, instances)
	}
	e.mustServe("v1")
}
