package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"
)

// These tests restart the daemon over state that went wrong while it was
// down or while it ran: a lost instance record, a full disk, an emptied
// store, a candidate that was still starting.

func (e *env) stateDir() string   { return filepath.Join(e.dir, ".cutover") }
func (e *env) recordFile() string { return filepath.Join(e.stateDir(), "instances", "web.json") }

// getPublic sends one GET to the public router and returns the status and
// the version that answered.
func (e *env) getPublic() (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.public + "/")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Version"), nil
}

// mustServe fails the test unless the public router answers 200 from version.
func (e *env) mustServe(version string) {
	e.t.Helper()
	code, v, err := e.getPublic()
	if err != nil || code != 200 || v != version {
		e.t.Fatalf("public router: %d from %q (%v), want 200 from %s", code, v, err, version)
	}
}

func hasNotice(st status, part string) bool {
	for _, n := range st.Notices {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// The instance record is lost while the daemon is down: the restarted
// daemon finds the live pool by its marks, serves it at once and says so.
func TestLostInstanceRecordFoundByMarks(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	before := recordedPIDs(t, e.dir)
	e.kill9()
	if err := os.Remove(e.recordFile()); err != nil {
		t.Fatal(err)
	}

	e.start()
	e.mustServe("v1")
	st := e.status()
	if st.Phase != "idle" || st.Live == nil || st.Live.Version != "v1" {
		t.Fatalf("status after restart: %+v, want idle with v1 live", st)
	}
	if !hasNotice(st, "found 2 running instance(s) by their marks") {
		t.Errorf("status does not say the pool was found by its marks: %q", st.Notices)
	}
	if after := recordedPIDs(t, e.dir); !samePIDs(before, after) {
		t.Errorf("the running instances were not adopted: pids %v before, %v recorded after", before, after)
	}
	if out := e.mustCLI(0, "status", "web"); !strings.Contains(out, "by their marks") {
		t.Errorf("status text does not show the notice:\n%s", out)
	}
}

// The record is lost and the instances are gone too: the live pool is
// started again, health-gated, instead of the router answering 503 for as
// long as nobody deploys while status says all is well.
func TestLostLivePoolStartedAgain(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	pids := recordedPIDs(t, e.dir)
	e.kill9()
	if err := os.Remove(e.recordFile()); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	// SIGKILL is delivered, not awaited: on a loaded machine a process
	// can still run for a moment, and the daemon would rightly adopt it.
	waitDead(t, pids)

	e.start()
	st := e.status()
	if !hasNotice(st, "should be running, but no instance of it was recorded or found") {
		t.Errorf("status does not say the live pool is being started again: %+v", st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, v, err := e.getPublic()
		if err == nil && code == 200 && v == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v1 not served 30s after the restart: %d %q %v", code, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// With the instance records on a full disk, a deployment fails before any
// traffic moves (its pool could not be found again after a restart), and
// after space returns and the daemon restarts, the live pool still serves.
func TestFullDiskFailsTheDeploymentAndLiveSurvivesARestart(t *testing.T) {
	e := newEnv(t, "{weight: 50, pause: 1s}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	failWith, free := testsupport.FullDir(t, filepath.Dir(e.recordFile()))
	t.Logf("instance records now fail with %v", failWith)

	e.mustCLI(3, "deploy", "web", "v2", "--wait")
	var hist []struct{ Version, Outcome, Reason string }
	if err := json.Unmarshal([]byte(e.mustCLI(0, "history", "web", "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	if hist[0].Version != "v2" || hist[0].Outcome != "failed" || !strings.Contains(hist[0].Reason, "record instances") {
		t.Fatalf("history[0] = %+v, want v2 failed because its instances could not be recorded", hist[0])
	}
	if st := e.status(); st.Live == nil || st.Live.Version != "v1" || st.Phase != "idle" {
		t.Fatalf("after the failed deployment: %+v, want v1 live and idle", st)
	}
	e.mustServe("v1")

	free()
	e.kill9()
	e.start()
	e.mustServe("v1")
	if st := e.status(); st.Live == nil || st.Live.Version != "v1" {
		t.Fatalf("after the restart: %+v, want v1 live", st)
	}
}

// serveFails runs `cutover serve` expecting it to refuse to start, and
// returns what it printed.
func (e *env) serveFails(args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, append([]string{"serve", "-c", e.cfg}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		e.t.Fatalf("cutover serve: %v, want exit 1:\n%s", err, out)
	}
	return string(out)
}

// A store that was emptied (0 bytes) or removed while the live pool still
// runs is refused with the way out; --accept-empty-store takes the running
// pool as live, so that the next deployment is canaried against it
// instead of going to 100% at once as a first deployment.
func TestEmptyStoreRefused(t *testing.T) {
	e := newEnv(t, "{weight: 50}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	e.kill9()
	db := filepath.Join(e.stateDir(), "cutover.db")
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	out := e.serveFails()
	for _, want := range []string{db, "empty", "--accept-empty-store"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal of the 0-byte store does not say %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Fatalf("the refused store was changed: %v %v", fi, err)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	out = e.serveFails()
	for _, want := range []string{"names no pool of web", "blue v1: 2 instance(s)", "--accept-empty-store"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal of a missing store beside running instances does not say %q:\n%s", want, out)
		}
	}

	e.startWith("--accept-empty-store")
	st := e.status()
	if st.Live == nil || st.Live.Color != "blue" || st.Live.Version != "v1" {
		t.Fatalf("after --accept-empty-store: %+v, want the running blue v1 taken as live", st)
	}
	e.mustServe("v1")
	var hist []struct{ Version, Strategy, Outcome string }
	if err := json.Unmarshal([]byte(e.mustCLI(0, "history", "web", "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Strategy != "adopted" || hist[0].Version != "v1" {
		t.Errorf("history = %+v, want one record of v1 adopted", hist)
	}
	e.mustCLI(0, "deploy", "web", "v2")
	e.waitFor("v2 canaried at 50% beside v1", 30*time.Second, func(s status) bool {
		return s.Phase == "shifting" && s.Live != nil && s.Live.Version == "v1" && s.Weights["green"] == 50
	})
}

// A candidate that is still starting (alive, not yet healthy) when the
// daemon is killed does not hold the public listener after a restart: the
// live pool serves at once, and within 100 ms of the listener opening.
func TestRestartWithAStartingCandidateServesLiveAtOnce(t *testing.T) {
	e := newEnv(t)
	// An adopt gate of 2 x 4s: the old daemon waited that long for the
	// starting candidate before it opened the public port.
	raw, _ := os.ReadFile(e.cfg)
	cfg := strings.Replace(string(raw), "      timeout: 1s\n", "      timeout: 4s\n", 1)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	e.mustCLI(0, "deploy", "web", "starting")
	e.waitFor("the candidate provisioning", 20*time.Second, func(s status) bool {
		return s.Phase == "provisioning" && s.Candidate != nil
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(e.recordFile())
		if strings.Contains(string(b), `"version": "starting"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the candidate's instances were never recorded:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.kill9()

	type seen struct{ opened, served time.Time }
	result := make(chan seen, 1)
	stop := make(chan struct{})
	go func() {
		var s seen
		for {
			select {
			case <-stop:
				result <- s
				return
			default:
			}
			conn, err := net.DialTimeout("tcp", e.public, 200*time.Millisecond)
			if err != nil {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			conn.Close()
			if s.opened.IsZero() {
				s.opened = time.Now()
			}
			if code, v, err := e.getPublic(); err == nil && code == 200 && v == "v1" {
				s.served = time.Now()
				result <- s
				return
			}
		}
	}()
	began := time.Now()
	e.start()
	var s seen
	select {
	case s = <-result:
	case <-time.After(15 * time.Second):
		close(stop)
		s = <-result
	}
	if s.served.IsZero() {
		t.Fatalf("v1 not served after the restart (listener opened %v after start)", s.opened.Sub(began))
	}
	t.Logf("public listener open %s after the daemon started, v1 served %s after that",
		s.opened.Sub(began).Round(time.Millisecond), s.served.Sub(s.opened).Round(time.Millisecond))
	if gap := s.served.Sub(s.opened); gap > 100*time.Millisecond {
		t.Errorf("v1 served %s after the public listener opened, want within 100ms", gap)
	}
	if wait := s.opened.Sub(began); wait >= 8*time.Second {
		t.Errorf("the public listener opened %s after the daemon started: it waited for the starting candidate's adopt gate", wait)
	}
	if st := e.status(); st.Phase != "provisioning" || st.Candidate == nil || st.Candidate.Version != "starting" {
		t.Errorf("the interrupted deployment did not resume: %+v", st)
	}
}

// waitDead waits until none of pids is a live process (gone, or a zombie
// its parent has not reaped), for at most 10 seconds.
func waitDead(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			i := bytes.LastIndexByte(b, ')')
			if err != nil || (i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still runs 10s after SIGKILL", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
