package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/store"
)

// A static service deployed twice: the second deployment (all at once)
// swaps traffic to v2, keeps v1 warm, and both are in history; status has
// the shape INTERFACE.md fixes.
func TestStaticDeployAllAtOnce(t *testing.T) {
	v1, v2 := newInstance(t, "v1"), newInstance(t, "v2")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1, "v2": v2}), Steps: "        - {weight: 25}\n"})
	d := f.start(daemon.Options{StopInstancesOnExit: true})

	d.deployLive("v1", "")
	if got := versions(t, f.spec.Listen, 10); got["v1"] != 10 {
		t.Fatalf("before v2, traffic went to %v, want only v1", got)
	}
	dep := d.deploy("v2", "all-at-once")
	if dep.Version != "v2" || dep.Strategy != "all-at-once" {
		t.Errorf("deployment record %+v", dep)
	}
	d.waitFor("v2 live", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseIdle && st.Deployment == nil && st.Live != nil && st.Live.Version == "v2"
	})
	if got := versions(t, f.spec.Listen, 20); got["v2"] != 20 {
		t.Fatalf("after the all-at-once deployment traffic went to %v, want only v2", got)
	}

	// The status JSON as a script reads it.
	resp, err := http.Get(d.url + "/v1/services/web")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"service", "phase", "live", "candidate", "weights", "deployment", "previous"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("status has no %q: %v", key, raw)
		}
	}
	want := map[string]any{
		"service":    "web",
		"phase":      "idle",
		"live":       map[string]any{"color": "green", "version": "v2"},
		"candidate":  nil,
		"weights":    map[string]any{"blue": 0.0, "green": 100.0},
		"deployment": nil,
	}
	for k, w := range want {
		if fmt.Sprint(raw[k]) != fmt.Sprint(w) {
			t.Errorf("status %s = %v, want %v", k, raw[k], w)
		}
	}
	prev, _ := raw["previous"].(map[string]any)
	if prev["color"] != "blue" || prev["version"] != "v1" {
		t.Errorf("previous = %v, want blue v1", raw["previous"])
	}
	until, err := time.Parse(time.RFC3339, fmt.Sprint(prev["until"]))
	if err != nil || until.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("previous.until = %v (%v), want an RFC 3339 time about keep_previous (1h) from now", prev["until"], err)
	}

	hist, err := d.c.History(context.Background(), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Fatalf("history has %d deployments, want 2: %+v", len(hist), hist)
	}
	if h := hist[0]; h.Version != "v2" || h.Outcome != deploy.OutcomePromoted || h.Strategy != "all-at-once" || h.FromVersion != "v1" || h.EndedAt.IsZero() {
		t.Errorf("history[0] = %+v, want v2 promoted from v1 all-at-once", h)
	}
	if h := hist[1]; h.Version != "v1" || h.Outcome != deploy.OutcomePromoted {
		t.Errorf("history[1] = %+v, want v1 promoted", h)
	}
}

// /metrics carries the router's series and the controller's, and the Go
// runtime's and the process's, each family once (Prometheus rejects a
// scrape that declares a family twice).
func TestMetrics(t *testing.T) {
	v1, v2 := newInstance(t, "v1"), newInstance(t, "v2")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1, "v2": v2})})
	d := f.start(daemon.Options{StopInstancesOnExit: true})
	d.deployLive("v1", "")
	versions(t, f.spec.Listen, 5)
	d.deployLive("v2", "")
	versions(t, f.spec.Listen, 3)

	m := d.metrics()
	for _, line := range []string{
		`cutover_requests_total{class="2xx",color="blue",service="web"} 5`,
		`cutover_requests_total{class="2xx",color="green",service="web"} 3`,
		`cutover_weight_percent{color="green",service="web"} 100`,
		`cutover_weight_percent{color="blue",service="web"} 0`,
		`cutover_deployments_total{outcome="promoted",service="web"} 2`,
		// The Go runtime's and the process's series, beside cutover's.
		"# TYPE go_goroutines gauge",
		"# TYPE process_cpu_seconds_total counter",
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	seen := map[string]int{}
	for _, l := range strings.Split(m, "\n") {
		if name, ok := strings.CutPrefix(l, "# TYPE "); ok {
			seen[strings.Fields(name)[0]]++
		}
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("metric family %s declared %d times; Prometheus refuses the scrape", name, n)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", m)
	}
}

// /metrics counts each finished deployment once under the outcome a user
// would read in history, whoever ended it: two promotions, a candidate the
// analysis rolled back because it answered 500s, and a user's abort.
func TestMetricsCountOutcomes(t *testing.T) {
	v1, v2, v3 := newInstance(t, "v1"), newInstance(t, "v2"), newInstance(t, "v3")
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" { // healthy, so it passes the gate and takes traffic
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("X-Version", "bad")
		http.Error(w, "broken release", http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	rt := staticRuntime(map[string]*instance{"v1": v1, "v2": v2, "v3": v3}) +
		fmt.Sprintf("          bad: [%q]\n", bad.Listener.Addr().String())
	f := newFixture(t, spec{Runtime: rt, Steps: "        - {weight: 50}\n"})
	d := f.start(daemon.Options{StopInstancesOnExit: true})
	ctx := context.Background()

	d.deployLive("v1", "")
	d.deploy("v2", "all-at-once")
	d.waitFor("v2 live", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseIdle && st.Deployment == nil && st.Live != nil && st.Live.Version == "v2"
	})

	// The bad release gets half the requests once it shifts; the analysis
	// must roll it back on its errors alone.
	d.deploy("bad", "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := d.status()
		if st.Phase == deploy.PhaseIdle && st.Deployment == nil {
			if st.Live == nil || st.Live.Version != "v2" {
				t.Fatalf("after the bad release ended, live is %+v, want v2", st.Live)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bad release was not rolled back within 30s; status %+v\nlog:\n%s", st, d.logs)
		}
		for range 10 {
			resp, err := http.Get("http://" + f.spec.Listen + "/")
			if err != nil {
				t.Fatalf("GET during the bad release: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	hist, err := d.c.History(ctx, "web", 1)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if len(hist) == 0 || hist[0].Version != "bad" || hist[0].Outcome != deploy.OutcomeRolledBack {
		t.Fatalf("the bad release should be rolled back by the analysis; history %+v", hist)
	}

	d.deploy("v3", "")
	d.waitFor("v3 at the manual gate", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseShifting && st.Deployment != nil && st.Deployment.Step == 1
	})
	if _, err := d.c.Abort(ctx, "web"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	d.waitFor("v3 aborted", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseIdle && st.Deployment == nil && st.Live != nil && st.Live.Version == "v2"
	})

	// The controller publishes a transition's events just after the status
	// shows it, so poll /metrics briefly rather than read it once.
	want := []string{
		`cutover_deployments_total{outcome="promoted",service="web"} 2`, // v1, v2
		`cutover_deployments_total{outcome="rolled_back",service="web"} 1`,
		`cutover_deployments_total{outcome="aborted",service="web"} 1`,
	}
	counted := func(m string) bool {
		for _, line := range want {
			if !strings.Contains(m, line+"\n") {
				return false
			}
		}
		return strings.Count(m, "cutover_deployments_total{") == len(want)
	}
	deadline = time.Now().Add(10 * time.Second)
	for m := d.metrics(); !counted(m); m = d.metrics() {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics should count each deployment once by outcome:\n%s\nwant exactly these deployment series:\n%s",
				m, strings.Join(want, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An instance registered through the API takes traffic beside the
// configured one and stops taking it once deregistered.
func TestRegisterDeregisterStatic(t *testing.T) {
	v1, extra := newInstance(t, "v1"), newInstance(t, "v1")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1})})
	d := f.start(daemon.Options{StopInstancesOnExit: true})
	d.deployLive("v1", "")
	ctx := context.Background()
	if err := d.c.Register(ctx, "web", "v1", extra.addr); err != nil {
		t.Fatalf("register: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for extra.hits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the registered instance got no request within 10s")
		}
		get(t, f.spec.Listen)
	}
	if err := d.c.Deregister(ctx, "web", "v1", extra.addr); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	before := extra.hits.Load()
	versions(t, f.spec.Listen, 30)
	if n := extra.hits.Load(); n != before {
		t.Errorf("the deregistered instance still got %d requests", n-before)
	}
	err := d.c.Deregister(ctx, "web", "v1", extra.addr)
	if err == nil || !strings.Contains(err.Error(), extra.addr) {
		t.Errorf("deregistering an unknown address: %v, want an error naming it", err)
	}
	apiError(t, "register on an unknown service", d.c.Register(ctx, "nope", "v1", extra.addr), http.StatusNotFound, "unknown_service")
}

// Reload applies new steps from the next deployment on, refuses a file
// that does not validate (pointing at its line) and a change that needs a
// restart (naming the key), keeping the running configuration each time.
func TestReload(t *testing.T) {
	v1, v2 := newInstance(t, "v1"), newInstance(t, "v2")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1, "v2": v2}), Steps: "        - {weight: 25}\n"})
	s := f.spec
	d := f.start(daemon.Options{StopInstancesOnExit: true})
	ctx := context.Background()
	d.deployLive("v1", "")

	// New steps: the next deployment holds at 40%, not 25%.
	s.Steps = "        - {weight: 40}\n"
	f.write(s)
	if err := d.c.Reload(ctx); err != nil {
		t.Fatalf("reload of a valid file: %v", err)
	}
	d.deploy("v2", "")
	st := d.waitFor("the manual gate", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseShifting && st.Deployment != nil && st.Deployment.Step == 1
	})
	if st.Weights["green"] != 40 || st.Deployment.Steps != 1 || !st.Deployment.Manual {
		t.Fatalf("after reloading steps [40 manual], deployment holds at %v (%+v)", st.Weights, st.Deployment)
	}
	if _, err := d.c.Promote(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	d.waitFor("v2 live", 10*time.Second, func(st deploy.Status) bool { return st.Phase == deploy.PhaseIdle && st.Live.Version == "v2" })

	// A file that does not validate: 400 invalid with file:line.
	s.Steps = "        - {weight: 40}\n        - {weight: 150}\n"
	bad := s.yaml(f.stateDir)
	f.writeRaw(bad)
	line := 1 + strings.Count(bad[:strings.Index(bad, "weight: 150")], "\n")
	err := d.c.Reload(ctx)
	ae := apiError(t, "reload of an invalid file", err, http.StatusBadRequest, "invalid")
	if loc := fmt.Sprintf("%s:%d", f.path, line); !strings.Contains(ae.Message, loc) {
		t.Errorf("reload error does not point at %s:\n%s", loc, ae.Message)
	}
	// The running configuration is kept: the next deployment still holds at 40%.
	d.deploy("v1", "")
	st = d.waitFor("the manual gate", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseShifting && st.Deployment != nil && st.Deployment.Step == 1
	})
	if st.Weights["blue"] != 40 || st.Deployment.Steps != 1 {
		t.Fatalf("after a refused reload, deployment holds at %v (%+v), want the running steps [40]", st.Weights, st.Deployment)
	}
	if _, err := d.c.Abort(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	d.waitFor("abort", 10*time.Second, func(st deploy.Status) bool { return st.Phase == deploy.PhaseIdle && st.Deployment == nil })

	// Changing the API's listener needs a restart: refused, named.
	moved := s
	moved.Steps = "        - {weight: 10}\n"
	moved.APIListen = freeAddr(t)
	f.write(moved)
	ae = apiError(t, "reload with another api.listen", d.c.Reload(ctx), http.StatusBadRequest, "invalid")
	if !strings.Contains(ae.Message, "api") || !strings.Contains(ae.Message, "restart") {
		t.Errorf("refusal does not name api and a restart:\n%s", ae.Message)
	}
	if strings.Contains(ae.Message, "strategy") {
		t.Errorf("refusal names a key a reload may change:\n%s", ae.Message)
	}
	if got := versions(t, f.spec.Listen, 5); got["v2"] != 5 {
		t.Errorf("after refused reloads the public listener served %v, want v2", got)
	}
	d.deploy("v1", "")
	st = d.waitFor("the manual gate", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseShifting && st.Deployment != nil && st.Deployment.Step == 1
	})
	if st.Weights["blue"] != 40 {
		t.Errorf("a refused reload changed the steps: holding at %v", st.Weights)
	}
}

// The API refuses to listen beyond loopback without a token; with one,
// mutating calls need it.
func TestAPIToken(t *testing.T) {
	v1 := newInstance(t, "v1")
	rt := staticRuntime(map[string]*instance{"v1": v1})

	t.Run("non-loopback without token", func(t *testing.T) {
		// The file is refused by validation, and Run refuses such a
		// configuration built in code too, before opening anything.
		f := newFixture(t, spec{APIListen: "0.0.0.0:0", Runtime: rt})
		if _, err := config.Load(f.path); err == nil || !strings.Contains(err.Error(), "token_file") {
			t.Errorf("config with api.listen 0.0.0.0:0 and no token: %v, want a problem naming token_file", err)
		}
		tokenFile := filepath.Join(t.TempDir(), "token")
		os.WriteFile(tokenFile, []byte("s3cret"), 0o600)
		s := f.spec
		s.TokenFile = tokenFile
		f.write(s)
		_, err := f.tryStartWith(daemon.Options{}, func(c *config.Config) { c.API.TokenFile = "" })
		if err == nil || !strings.Contains(err.Error(), "token") {
			t.Fatalf("Run on 0.0.0.0 without a token: %v, want an error about the token", err)
		}
	})

	t.Run("token required", func(t *testing.T) {
		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "token")
		if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, spec{TokenFile: tokenFile, Runtime: rt})
		d := f.start(daemon.Options{StopInstancesOnExit: true})
		ctx := context.Background()
		_, err := d.c.Deploy(ctx, "web", "v1", "")
		apiError(t, "deploy without a token", err, http.StatusUnauthorized, "unauthorized")
		if st := d.status(); st.Deployment != nil || st.Live != nil {
			t.Fatalf("a refused deploy changed the service: %+v", st)
		}
		req, _ := http.NewRequest(http.MethodPost, d.url+"/v1/reload", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("reload with a wrong token: %d, want 401", resp.StatusCode)
		}

		d.c = client.New(d.url, "s3cret", nil)
		d.deployLive("v1", "")
	})

	t.Run("empty token file", func(t *testing.T) {
		tokenFile := filepath.Join(t.TempDir(), "token")
		os.WriteFile(tokenFile, []byte("\n"), 0o600)
		f := newFixture(t, spec{TokenFile: tokenFile, Runtime: rt})
		if _, err := f.tryStart(daemon.Options{}); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("Run with an empty token file: %v, want an error", err)
		}
	})
}

// A state file that cannot be read stops the daemon with an error naming
// it; it is left as it was, never replaced by an empty state.
func TestCorruptStateRefused(t *testing.T) {
	v1 := newInstance(t, "v1")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1})})
	db := filepath.Join(f.stateDir, "cutover.db")
	if err := os.MkdirAll(f.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := []byte(strings.Repeat("this is not a bbolt file\n", 1000))
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.tryStart(daemon.Options{})
	if err == nil {
		t.Fatal("the daemon started over a corrupt state file")
	}
	if !strings.Contains(err.Error(), db) || !errors.Is(err, store.ErrUnreadable) {
		t.Errorf("error %q does not name %s as unreadable", err, db)
	}
	if got, _ := os.ReadFile(db); string(got) != string(garbage) {
		t.Error("the corrupt state file was modified")
	}
}

// A second daemon on the same state directory fails fast instead of
// sharing the store.
func TestStateDirInUse(t *testing.T) {
	v1 := newInstance(t, "v1")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1})})
	first := f.start(daemon.Options{StopInstancesOnExit: true})
	first.deployLive("v1", "")

	start := time.Now()
	_, err := f.tryStart(daemon.Options{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second daemon on the same state dir: %v, want an \"in use\" error", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("second daemon took %v to give up", took)
	}
	if got := versions(t, f.spec.Listen, 5); got["v1"] != 5 {
		t.Errorf("the first daemon stopped serving: %v", got)
	}
	if st := first.status(); st.Live == nil || st.Live.Version != "v1" {
		t.Errorf("the first daemon's state changed: %+v", st)
	}
}

// A public address already taken stops Run with an error naming it.
func TestListenAddressTaken(t *testing.T) {
	v1 := newInstance(t, "v1")
	f := newFixture(t, spec{Listen: v1.addr, Runtime: staticRuntime(map[string]*instance{"v1": v1})})
	_, err := f.tryStart(daemon.Options{})
	if err == nil || !strings.Contains(err.Error(), v1.addr) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("Run with a taken listen address: %v, want an error naming service and address", err)
	}
}

// A process service: instance output reaches the API's logs, and static
// registration is refused as not supported.
func TestProcessLogsAndRegisterNotSupported(t *testing.T) {
	f := newFixture(t, spec{Runtime: processRuntime(t)})
	d := f.start(daemon.Options{StopInstancesOnExit: true})
	ctx := context.Background()
	d.deployLive("v1", "")
	if v, _ := get(t, f.spec.Listen); v != "v1" {
		t.Fatalf("public listener answered %q, want v1", v)
	}
	var logs syncBuffer
	if err := d.c.Logs(ctx, "web", nil, false, &logs); err != nil {
		t.Fatalf("logs: %v", err)
	}
	if !strings.Contains(logs.String(), "demo-app v1 (blue) listening on") {
		t.Errorf("logs lack the instance's start-up line:\n%s", logs.String())
	}

	// Follow sees output written after it started.
	fctx, cancel := context.WithCancel(ctx)
	var followed syncBuffer
	done := make(chan error, 1)
	go func() { done <- d.c.Logs(fctx, "web", nil, true, &followed) }()
	d.deploy("v2", "all-at-once")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(followed.String(), "demo-app v2 (green)") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if !strings.Contains(followed.String(), "demo-app v2 (green)") {
		t.Errorf("logs -f did not show the new instance's output:\n%s", followed.String())
	}

	apiError(t, "register on a process service", d.c.Register(ctx, "web", "v1", "127.0.0.1:1"), http.StatusNotImplemented, "not_supported")
	apiError(t, "deregister on a process service", d.c.Deregister(ctx, "web", "v1", "127.0.0.1:1"), http.StatusNotImplemented, "not_supported")
}

// A daemon restarted on the same state dir serves the persisted weights
// with the same instance processes, mid-deployment, and carries on.
func TestRestartAdoptsMidDeployment(t *testing.T) {
	f := newFixture(t, spec{Runtime: processRuntime(t), Steps: "        - {weight: 30}\n"})
	first := f.start(daemon.Options{})
	first.deployLive("v1", "")
	first.deploy("v2", "")
	before := first.waitFor("the manual gate", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseShifting && st.Deployment != nil && st.Deployment.Step == 1
	})
	pids := recordedPIDs(t, f.stateDir)
	if len(pids["blue"]) != 1 || len(pids["green"]) != 1 {
		t.Fatalf("recorded instances %v, want one per colour", pids)
	}
	served := servedBy(t, f.spec.Listen, "v1")
	if err := first.stop(); err != nil {
		t.Fatalf("first daemon: %v", err)
	}

	second := f.start(daemon.Options{StopInstancesOnExit: true})
	// The first requests after the restart already see the persisted split,
	// answered by the same processes (their request counters go on).
	got := versions(t, f.spec.Listen, 200)
	if got["v1"]+got["v2"] != 200 || got["v2"] < 30 || got["v2"] > 90 {
		t.Errorf("right after the restart traffic went %v, want about 30%% to v2", got)
	}
	if n := servedBy(t, f.spec.Listen, "v1"); n <= served {
		t.Errorf("v1's instance counts %d requests after the restart, %d before: it was restarted, not adopted", n, served)
	}
	st := second.status()
	if st.Phase != deploy.PhaseShifting || st.Live.Version != "v1" || st.Candidate == nil || st.Candidate.Version != "v2" ||
		st.Weights["green"] != before.Weights["green"] || st.Deployment == nil || st.Deployment.ID != before.Deployment.ID {
		t.Errorf("status after restart %+v\nwant as before %+v", st, before)
	}
	if after := recordedPIDs(t, f.stateDir); fmt.Sprint(after) != fmt.Sprint(pids) {
		t.Errorf("instance pids %v after the restart, want the adopted %v", after, pids)
	}
	if _, err := second.c.Promote(context.Background(), "web"); err != nil {
		t.Fatalf("promote after restart: %v", err)
	}
	second.waitFor("v2 live", 10*time.Second, func(st deploy.Status) bool { return st.Phase == deploy.PhaseIdle && st.Live.Version == "v2" })
	if got := versions(t, f.spec.Listen, 10); got["v2"] != 10 {
		t.Errorf("after promote traffic went %v", got)
	}
}

// servedBy asks the public listener until the version answers and returns
// that instance's request counter.
func servedBy(t *testing.T, addr, version string) int {
	t.Helper()
	for range 200 {
		v, body := get(t, addr)
		if v != version {
			continue
		}
		var out struct {
			Served int `json:"served"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("instance answer %q: %v", body, err)
		}
		return out.Served
	}
	t.Fatalf("%s never answered", version)
	return 0
}

// A reload (SIGHUP) that arrives while the daemon is starting neither races
// with the start nor gets lost: it waits for the services to start and then
// applies to them, so they run with the reloaded steps.
//
// The overlap is forced, not left to the scheduler: the API token file is
// a FIFO, so Run, which reads it after taking the configuration it starts
// the services with and before starting them, blocks on it until the test
// writes the token. The reload is sent while Run is held there. Without
// Run's reload lock the reload would find no service to update, return at
// once, and the services would start with the old steps.
func TestReloadDuringStart(t *testing.T) {
	v1, v2 := newInstance(t, "v1"), newInstance(t, "v2")
	token := filepath.Join(t.TempDir(), "token")
	if err := syscall.Mkfifo(token, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1, "v2": v2}), Steps: "        - {weight: 25}\n", TokenFile: token})
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	s := f.spec
	s.Steps = "        - {weight: 35}\n"
	f.write(s)
	ready := make(chan string, 1)
	d, err := daemon.New(cfg, daemon.Options{Logger: discardLogger(), StopInstancesOnExit: true, Ready: func(u string) { ready <- u }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var w *os.File // the token's writer; closing it lets Run read on
	defer func() {
		if w != nil {
			w.Close()
		}
		cancel()
		if err := <-done; err != nil && !t.Failed() {
			t.Errorf("Run: %v", err)
		}
	}()

	// Opening a FIFO's write end without blocking succeeds once a reader
	// has it open: then Run is inside its start, reading the token.
	deadline := time.Now().Add(30 * time.Second)
	for w == nil {
		w, err = os.OpenFile(token, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			if !errors.Is(err, syscall.ENXIO) {
				t.Fatalf("opening the token FIFO: %v", err)
			}
			w = nil
			select {
			case err := <-done:
				done <- err
				t.Fatalf("Run ended before reading the token: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("Run did not open the token file within 30s")
			}
		}
	}

	reloaded := make(chan error, 1)
	go func() { reloaded <- d.Reload(ctx) }()
	// The start cannot go on until the token is written, so a reload that
	// returns meanwhile did not wait for it. A second is ample for a reload
	// that does not wait to return; one that waits is not held up by this.
	select {
	case err := <-reloaded:
		t.Fatalf("a reload during start returned (err %v) before the services had started; it must wait for them", err)
	case <-time.After(time.Second):
	}
	if _, err := io.WriteString(w, "secret\n"); err != nil {
		t.Fatalf("writing the token: %v", err)
	}
	w.Close()
	w = nil
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload during start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reload did not return within 30s of the start going on")
	}
	var url string
	select {
	case url = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready within 30s of reading the token")
	}
	r := &running{t: t, c: client.New(url, "secret", nil), logs: &syncBuffer{}}
	r.deployLive("v1", "")
	r.deploy("v2", "")
	st := r.waitFor("the manual gate", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseShifting && st.Deployment != nil && st.Deployment.Step == 1
	})
	if st.Weights["green"] != 35 {
		t.Errorf("a reload during start was lost: the deployment holds at %v, want the reloaded 35%%", st.Weights)
	}
}
