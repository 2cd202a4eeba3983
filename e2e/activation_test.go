package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"
)

// startActivated runs `cutover serve` under a stand-in for systemd that
// holds the three listening sockets and restarts the daemon when it dies.
func (e *env) startActivated() *testsupport.Activator {
	e.t.Helper()
	e.logs = &lockedWriter{}
	a, err := testsupport.StartActivator([]testsupport.ActivatedSocket{
		{Name: "services.web.listen", Addr: e.public},
		{Name: "services.web.preview_listen", Addr: e.preview},
		{Name: "api.listen", Addr: e.api},
	}, binary, []string{"serve", "-c", e.cfg}, nil, e.logs)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { a.Stop(30 * time.Second) })
	e.waitAPI()
	return a
}

// waitAPI waits until the control API answers /healthz.
func (e *env) waitAPI() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + e.api + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("the control API on %s did not answer within 20s:\n%s", e.api, e.logs)
}

const (
	loadWorkers  = 4
	loadInterval = 20 * time.Millisecond // 4 x 50 = 200 requests/s
)

// kill -9 of a socket-activated daemon refuses no connection: the
// supervisor's sockets keep queueing clients while the daemon restarts, and
// only requests the dead daemon had in flight fail.
func TestKill9UnderSocketActivationRefusesNoConnection(t *testing.T) {
	e := newEnv(t)
	a := e.startActivated()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	load := startRawLoad(t, e.public, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 100, 10*time.Second)

	const kills = 3
	var gaps []time.Duration
	for i := range kills {
		pid := a.PID()
		at := a.Kill9()
		t.Logf("kill %d at %s", i+1, at.Format("15:04:05.000"))
		load.waitAnswers(t, at, 100, 30*time.Second)
		gap, _ := load.firstAnswerAfter(at)
		gaps = append(gaps, gap)
		if a.PID() == pid {
			t.Fatalf("kill %d: the daemon was not restarted", i+1)
		}
		e.mustServe("v1")
	}
	load.halt()
	t.Logf("socket activation: %d kill -9s at %d req/s; gap from kill to the first answer: %v; %s",
		kills, int(time.Second/loadInterval)*loadWorkers, gaps, load)
	if n := load.refused.Load(); n != 0 {
		t.Errorf("%d connections refused, want 0: %s", n, load)
	}
	// Each worker has at most one request in flight when the daemon dies:
	// one it sent while the kernel was still tearing the killed process
	// down (its sockets close last), which the dead daemon never read.
	if n := load.failed.Load(); n > kills*loadWorkers {
		t.Errorf("%d requests failed, more than the %d that can be in flight at %d kills: %s", n, kills*loadWorkers, kills, load)
	}
}

// The same kill -9 and immediate restart without socket activation, for the
// figure to compare with: nothing listens while the daemon is down, so
// connections are refused for the length of the restart.
func TestKill9WithoutSocketActivationRefusesConnections(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	load := startRawLoad(t, e.public, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 100, 10*time.Second)
	const kills = 3
	var gaps []time.Duration
	for range kills {
		at := time.Now()
		e.kill9()
		e.start()
		load.waitAnswers(t, at, 100, 30*time.Second)
		gap, _ := load.firstAnswerAfter(at)
		gaps = append(gaps, gap)
	}
	load.halt()
	t.Logf("without socket activation: %d kill -9s at %d req/s, each restarted at once; gap from kill to the first answer: %v; %s",
		kills, int(time.Second/loadInterval)*loadWorkers, gaps, load)
	if load.refused.Load() == 0 {
		t.Errorf("no connection refused while the daemon was down: the comparison measures nothing: %s", load)
	}
}
