package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP re-reads the config: the next deployment follows the new steps.
// A config that does not validate is refused by `cutover reload` with
// file:line, and the daemon goes on serving without dropping a request.
func TestReloadStepsBySIGHUP(t *testing.T) {
	e := newEnv(t, "{weight: 20, pause: 1s}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(4)

	e.editConfig("        - {weight: 20, pause: 1s}\n", "        - {weight: 30, pause: 1s}\n        - {weight: 60, pause: 1s}\n")
	e.daemonMu.Lock()
	e.daemon.Process.Signal(syscall.SIGHUP)
	e.daemonMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "configuration reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged within 10s of SIGHUP:\n%s", e.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	if got := e.stepWeights("v2"); !slices.Equal(got, []float64{30, 60}) {
		t.Errorf("deployment after SIGHUP went through steps %v, want the reloaded [30 60]", got)
	}

	// An invalid file: refused, with the line of the bad value.
	e.editConfig("{weight: 60, pause: 1s}", "{weight: 160, pause: 1s}")
	line := e.lineOf("weight: 160")
	code, out := e.cli("reload")
	if code != 1 {
		t.Errorf("cutover reload of an invalid config: exit %d, want 1:\n%s", code, out)
	}
	if loc := fmt.Sprintf("%s:%d", e.cfg, line); !strings.Contains(out, loc) {
		t.Errorf("cutover reload output does not point at %s:\n%s", loc, out)
	}
	// The running configuration (steps 30, 60) is kept and the daemon serves.
	e.mustCLI(0, "deploy", "web", "v3", "--wait")
	if got := e.stepWeights("v3"); !slices.Equal(got, []float64{30, 60}) {
		t.Errorf("deployment after a refused reload went through steps %v, want the running [30 60]", got)
	}
	tr.halt()
	if n := tr.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the reloads (last: %v)", n, n+tr.ok.Load(), tr.lastErr.Load())
	}
	if tr.served("v3") == 0 {
		t.Error("no request reached v3")
	}
}

// `cutover reload` under continuous traffic drops no request, and what it
// reloads takes effect: after five reloads of keep_previous, the next
// promotion keeps the old pool warm for the last value, not the first.
func TestReloadUnderTrafficDropsNothing(t *testing.T) {
	const reloads = 5
	e := newEnv(t) // keep_previous: 1h
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(4)
	// Each reload lands between requests the router is serving: wait for
	// the traffic to move on before the first and after every reload.
	progress := func(after string) {
		t.Helper()
		from, deadline := tr.ok.Load(), time.Now().Add(15*time.Second)
		for tr.ok.Load() < from+20 {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than 20 requests served in 15s %s (%d failed, last: %v)", after, tr.failed.Load(), tr.lastErr.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	progress("before the first reload")
	for i := range reloads {
		e.editConfig(fmt.Sprintf("keep_previous: %dh", i+1), fmt.Sprintf("keep_previous: %dh", i+2))
		if out := e.mustCLI(0, "reload"); !strings.Contains(out, "reloaded") {
			t.Errorf("cutover reload said %q", out)
		}
		progress(fmt.Sprintf("after reload %d", i+1))
	}
	tr.halt()
	if n := tr.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across %d reloads (last: %v)", n, n+tr.ok.Load(), reloads, tr.lastErr.Load())
	}
	if tr.ok.Load() < 100 {
		t.Errorf("only %d requests were served; the test did not load the router", tr.ok.Load())
	}

	// The last reload is the configuration that runs: v1 is kept for 6h.
	keep := time.Duration(reloads+1) * time.Hour
	before := time.Now()
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	after := time.Now()
	st := e.status()
	if st.Previous == nil || st.Previous.Version != "v1" {
		t.Fatalf("after promoting v2, v1 should be kept warm: %+v", st)
	}
	until, err := time.Parse(time.RFC3339, st.Previous.Until)
	if err != nil {
		t.Fatalf("previous.until %q is not RFC 3339: %v", st.Previous.Until, err)
	}
	// A minute either side covers a timestamp rounded to the second; the
	// keep_previous values reloaded are an hour apart.
	if lo, hi := before.Add(keep-time.Minute), after.Add(keep+time.Minute); until.Before(lo) || until.After(hi) {
		t.Errorf("v1 is kept until %s, want about %s after the promotion (between %s and %s): the last reload did not take effect",
			until.Format(time.RFC3339), keep, lo.Format(time.RFC3339), hi.Format(time.RFC3339))
	}
}

// editConfig replaces old with new in the config file, failing when old is
// not there.
func (e *env) editConfig(old, new string) {
	e.t.Helper()
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		e.t.Fatalf("config has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(e.cfg, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// lineOf returns the 1-based line of the config that holds s.
func (e *env) lineOf(s string) int {
	e.t.Helper()
	b, _ := os.ReadFile(e.cfg)
	i := bytes.Index(b, []byte(s))
	if i < 0 {
		e.t.Fatalf("config has no %q", s)
	}
	return 1 + bytes.Count(b[:i], []byte("\n"))
}

// stepWeights reads `cutover history web --json` and returns the weights
// of the step events of the newest deployment of version.
func (e *env) stepWeights(version string) []float64 {
	e.t.Helper()
	out := e.mustCLI(0, "history", "web", "--json")
	var ds []struct {
		Version string `json:"version"`
		Outcome string `json:"outcome"`
		Events  []struct {
			Type   string  `json:"type"`
			Weight float64 `json:"weight"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		e.t.Fatalf("history --json: %v\n%s", err, out)
	}
	for _, d := range ds {
		if d.Version != version {
			continue
		}
		if d.Outcome != "promoted" {
			e.t.Errorf("%s: outcome %s", version, d.Outcome)
		}
		var ws []float64
		for _, ev := range d.Events {
			if ev.Type == "step" {
				ws = append(ws, ev.Weight)
			}
		}
		return ws
	}
	e.t.Fatalf("no deployment of %s in history:\n%s", version, out)
	return nil
}

// Timeouts change by reload under a client that never retries, on raw
// keep-alive connections to instances that take 300 ms per request (so
// requests are always in flight when a reload lands): no request fails.
// Then each new value shows: upstream_header below the instances' 300 ms
// answers the next request with 504, and back above it with 200;
// read_header and idle close a connection opened after the reload once
// they pass.
func TestReloadTimeoutsUnderLoad(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "slow", "--wait") // 300 ms per request
	const workers = 12
	load := startRawLoad(t, e.public, workers, loadInterval)
	load.waitAnswers(t, time.Now(), 20, 10*time.Second)

	cur := "    drain_timeout: 3s\n"
	set := func(timeouts string) {
		t.Helper()
		next := "    drain_timeout: 3s\n    timeouts: " + timeouts + "\n"
		e.editConfig(cur, next)
		cur = next
		if out := e.mustCLI(0, "reload"); !strings.Contains(out, "reloaded") {
			t.Errorf("cutover reload said %q", out)
		}
	}
	values := []string{
		"{read_header: 3s, idle: 5s, upstream_header: 2s}",
		"{read_header: 2s, idle: 4s, upstream_header: 1s}",
		"{read_header: 10s, idle: 2m, upstream_header: 1m}",
		"{read_header: 1s, idle: 3s, upstream_header: 800ms}",
	}
	for _, v := range values {
		set(v)
		load.waitAnswers(t, time.Now(), 20, 10*time.Second)
	}
	load.halt()
	t.Logf("%d timeout reloads under %d non-retrying connections to 300 ms instances: %s", len(values), workers, load)
	if n := load.failed.Load() + load.refused.Load(); n != 0 {
		t.Errorf("%d requests failed while the timeouts were reloaded, want 0: %s", n, load)
	}
	if load.ok.Load() < 50 {
		t.Errorf("only %d requests were answered; the test did not load the router", load.ok.Load())
	}

	// upstream_header: the next request after the reload waits for it.
	set("{read_header: 500ms, idle: 700ms, upstream_header: 100ms}")
	c, err := dialRawHTTP(e.public)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if st, _, err := c.get(); st != http.StatusGatewayTimeout {
		t.Errorf("with upstream_header 100ms a 300 ms instance answered %d (%v), want 504", st, err)
	}
	// idle: the connection opened after the reload is closed once idle
	// for 700 ms.
	time.Sleep(1200 * time.Millisecond)
	if !c.closedByPeer() {
		t.Error("a connection idle for 1.2s was not closed, want it closed by idle 700ms")
	}
	// read_header: a header that takes longer than 500 ms is cut.
	slow, err := dialRawHTTP(e.public)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.close()
	io.WriteString(slow.conn, "GET / HTTP/1.1\r\n")
	time.Sleep(900 * time.Millisecond)
	io.WriteString(slow.conn, "Host: web\r\n\r\n")
	slow.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(slow.br, nil); err == nil {
		resp.Body.Close()
		t.Errorf("a request header sent over 900 ms was answered %d, want the connection closed by read_header 500ms", resp.StatusCode)
	}
	set("{read_header: 500ms, idle: 700ms, upstream_header: 2s}")
	e.mustServe("slow")
}
