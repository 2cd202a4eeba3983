package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/internal/testsupport"
)

// These tests run release safety with the real binary, the real pgapp
// and a real PostgreSQL (max_connections 200, 3 reserved for
// superusers): a deployment that would exhaust the database is refused
// before anything starts, one that fits is watched, a breaking migration
// fails the deployment, and `cutover diff` finds the drift between colours.

// preflightEnv writes a config running pgapp on url with 2 instances of
// perInstance connections each, migrations under ./migrations/${VERSION}
// and the drift check; extra adds instance variables.
func preflightEnv(t *testing.T, url string, perInstance int, extra map[string]string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.api = "127.0.0.1:" + freePort(t)
	e.public = "127.0.0.1:" + freePort(t)
	e.preview = "127.0.0.1:" + freePort(t)
	secret := filepath.Join(e.dir, "app-secret")
	if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg = filepath.Join(e.dir, "cutover.yaml")
	writePreflightConfig(t, e, url, perInstance, secret, extra, true)
	t.Cleanup(e.stop)
	return e
}

func writePreflightConfig(t *testing.T, e *env, url string, perInstance int, secret string, extra map[string]string, drift bool) {
	t.Helper()
	var vars strings.Builder
	fmt.Fprintf(&vars, "          DATABASE_URL: %q\n          RUN_MIGRATIONS: \"1\"\n", url)
	for k, v := range extra {
		fmt.Fprintf(&vars, "          %s: %q\n", k, v)
	}
	driftYAML := ""
	if drift {
		driftYAML = "      drift: {ignore_env: [RELEASE_SHA]}\n"
	}
	cfg := fmt.Sprintf(`api:
  listen: %s
services:
  web:
    listen: %s
    preview_listen: %s
    instances: 2
    runtime:
      process:
        command: [%q]
        env:
%s        secrets:
          APP_SECRET: {file: %q}
        stop_timeout: 5s
        start_timeout: 30s
    health:
      interval: 200ms
      timeout: 2s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 3s
    strategy:
      steps:
        - {weight: 50, pause: 3s}
      analysis:
        interval: 300ms
        max_error_rate: 1%%
        min_requests: 20
    keep_previous: 1h
    quiet_period: 1s
    preflight:
      database:
        url_env: DATABASE_URL
        connections_per_instance: %d
        reserve: 10%%
      migrations:
        dir: ./migrations/${VERSION}
`, e.api, e.public, e.preview, pgapp(t), vars.String(), secret, perInstance) + driftYAML
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// holdConns opens n connections to url until the test ends: what "live"
// uses at its peak.
func holdConns(t *testing.T, url string, n int) {
	t.Helper()
	for range n {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
	}
}

type preflightReport struct {
	Findings []struct {
		Check, Rule, File, Message, Allowed string
		Line                                int
	}
	Database *struct {
		InUse  int `json:"in_use"`
		Budget int
		After  int
		Fits   bool
	}
}

type historyEvent struct {
	Type, Message, Output string
	Verdict               *struct {
		Database *struct {
			Connections, Budget int
			Max                 int `json:"max_connections"`
			Over                bool
			Reason              string
		}
	}
}

func (e *env) historyEvents() []struct {
	Version, Outcome, Reason string
	Events                   []historyEvent
} {
	e.t.Helper()
	var h []struct {
		Version, Outcome, Reason string
		Events                   []historyEvent
	}
	if err := json.Unmarshal([]byte(e.mustCLI(0, "history", "web", "--json", "--limit", "0")), &h); err != nil {
		e.t.Fatal(err)
	}
	return h
}

// 25 connections held + 2 instances x 80 = 185 > 200 - 3 - 20 = 177: the
// preflight says so without a daemon, and the deployment fails before any
// instance starts, with the arithmetic in its history.
func TestPreflightRefusesADeploymentThatWouldNotFit(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	holdConns(t, pg.URL("app"), 25)
	e := preflightEnv(t, pg.URL("app"), 80, nil)

	code, out := e.cli("preflight", "web", "v1", "-c", e.cfg)
	if code != 1 || !strings.Contains(out, "does NOT fit: 8 over") || !strings.Contains(out, "database headroom") {
		t.Fatalf("cutover preflight: exit %d, want 1 with the arithmetic:\n%s", code, out)
	}
	var rep preflightReport
	if err := json.Unmarshal([]byte(e.mustCLI(1, "preflight", "web", "v1", "-c", e.cfg, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Database == nil || rep.Database.InUse != 25 || rep.Database.After != 185 || rep.Database.Budget != 177 ||
		len(rep.Findings) != 1 || rep.Findings[0].Rule != "headroom" {
		t.Fatalf("preflight --json: %+v %+v", rep.Database, rep.Findings)
	}
	t.Logf("cutover preflight web v1:\n%s", out)

	e.start()
	code, out = e.cli("deploy", "web", "v1", "--wait")
	if code != 3 {
		t.Fatalf("deploy that would not fit: exit %d, want 3\n%s", code, out)
	}
	h := e.historyEvents()
	if h[0].Outcome != "failed" || !strings.Contains(h[0].Reason, "preflight failed") || !strings.Contains(h[0].Reason, "185") {
		t.Fatalf("history[0] = %s %q, want failed by the preflight with its figures", h[0].Outcome, h[0].Reason)
	}
	decided := false
	for _, ev := range h[0].Events {
		if ev.Type == "decision" && strings.Contains(ev.Message, "preflight failed") && strings.Contains(ev.Output, "max_connections") {
			decided = true
		}
	}
	if !decided {
		t.Fatalf("no preflight decision with the report in history: %+v", h[0].Events)
	}
	b, _ := os.ReadFile(e.recordFile())
	if len(pidsIn(b)) != 0 {
		t.Fatalf("instances were started although the preflight failed: %s", b)
	}
	if v := pg.SQL(t, "app", "SELECT count(*) FROM pg_tables WHERE tablename = 'items'"); v != "0" {
		t.Fatalf("the app ran (its schema exists) although the preflight failed")
	}
	if st := e.status(); st.Live != nil || st.Phase != "idle" {
		t.Fatalf("after a refused first deployment: %+v", st)
	}
}

// A release that fits is deployed, with the database's live connection
// count in its analysis figures and its accepted migration finding in the
// report; a changed variable and a colour-named bucket fail the next
// deployment's preflight; and cutover diff finds them between the colours.
func TestPreflightWatchLintAndDiff(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	e := preflightEnv(t, pg.URL("app"), 5, map[string]string{"FEATURE_X": "on", "RELEASE_SHA": "aaa"})
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	h := e.historyEvents()
	passed := false
	for _, ev := range h[0].Events {
		if ev.Type == "decision" && strings.HasPrefix(ev.Message, "preflight passed; database:") {
			passed = true
		}
	}
	if !passed {
		t.Fatalf("no passed preflight in the first deployment's history: %+v", h[0].Events)
	}

	// A contract migration in the release, accepted on purpose. The
	// lint's refusals are tested in internal/preflight and internal/cli.
	mig := filepath.Join(e.dir, "migrations", "v2")
	if err := os.MkdirAll(mig, 0o755); err != nil {
		t.Fatal(err)
	}
	sqlFile := filepath.Join(mig, "001_drop_legacy.sql")
	os.WriteFile(sqlFile, []byte("-- v2 no longer reads items.legacy\n-- cutover:allow drop-column\nALTER TABLE items DROP COLUMN legacy;\n"), 0o644)

	// Accepted: deployed under traffic, the database watched.
	tr := e.startTraffic(2)
	time.Sleep(300 * time.Millisecond)
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	tr.halt()
	h = e.historyEvents()
	if h[0].Version != "v2" || h[0].Outcome != "promoted" {
		t.Fatalf("history[0] = %s %s", h[0].Version, h[0].Outcome)
	}
	allowed := false
	for _, ev := range h[0].Events {
		if ev.Type == "decision" && strings.Contains(ev.Output, sqlFile+":3: migrations drop-column") && strings.Contains(ev.Output, "allowed by") {
			allowed = true
		}
	}
	if !allowed {
		t.Errorf("the allowed migration finding is not in the preflight's report: %+v", h[0].Events)
	}
	watched := 0
	for _, ev := range h[0].Events {
		if ev.Verdict == nil || ev.Verdict.Database == nil {
			continue
		}
		db := ev.Verdict.Database
		if db.Connections < 2 || db.Max != 200 || db.Budget != 177 || db.Over {
			t.Errorf("database figures %+v, want the apps' connections of 177", db)
		}
		watched++
		t.Logf("%s: %s", ev.Type, db.Reason)
	}
	if watched == 0 {
		t.Fatalf("no verdict with database figures in history: %+v", h[0].Events)
	}

	// Drift. Blue keeps v1 warm, green runs v2, both under the same
	// configuration: no drift.
	e.mustCLI(0, "diff", "web", "-c", e.cfg)
	// The configuration changes a variable and names the bucket after the
	// colour: the next deployment's preflight refuses it.
	secret := filepath.Join(e.dir, "app-secret")
	changed := map[string]string{"FEATURE_X": "off", "RELEASE_SHA": "bbb", "UPLOADS_BUCKET": "app-uploads-${COLOR}"}
	writePreflightConfig(t, e, pg.URL("app"), 5, secret, changed, true)
	// A runtime change needs a restart: the daemon dies, its instances
	// run on and are adopted as they are.
	e.kill9()
	e.start()
	out := e.mustCLI(1, "preflight", "web", "v3", "-c", e.cfg)
	for _, want := range []string{`drift differs: env.FEATURE_X: green "on", blue "off"`, `drift colour-name: env.UPLOADS_BUCKET of blue is "app-uploads-blue"`} {
		if !strings.Contains(out, want) {
			t.Errorf("cutover preflight web v3 lacks %q:\n%s", want, out)
		}
	}
	if code, out := e.cli("deploy", "web", "v3", "--wait"); code != 3 {
		t.Fatalf("deploy with drift: exit %d, want 3\n%s", code, out)
	}
	if h := e.historyEvents(); !strings.Contains(h[0].Reason, "drift differs") || !strings.Contains(h[0].Reason, "drift colour-name") {
		t.Fatalf("history[0].Reason = %q", h[0].Reason)
	}
	// With --allow-drift the release goes out: the preflight still
	// reports the drift, accepted, and cutover diff shows what now
	// differs between the colours.
	e.mustCLI(0, "deploy", "web", "v3", "--allow-drift", "--strategy", "all-at-once", "--wait")
	var accepted bool
	for _, ev := range e.historyEvents()[0].Events {
		if strings.HasPrefix(ev.Message, "preflight passed") && strings.Contains(ev.Output, "allowed by deploy --allow-drift") &&
			strings.Contains(ev.Output, "env.FEATURE_X") {
			accepted = true
		}
	}
	if !accepted {
		t.Fatalf("no preflight decision with the drift accepted by --allow-drift in history: %+v", e.historyEvents()[0].Events)
	}
	code, out := e.cli("diff", "web", "-c", e.cfg)
	if code != 1 {
		t.Fatalf("cutover diff: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{`drift differs: env.FEATURE_X: blue "off", green "on"`, "drift differs: env.UPLOADS_BUCKET: blue \"app-uploads-blue\", green does not set it",
		`drift colour-name: env.UPLOADS_BUCKET of blue is "app-uploads-blue"`, "env.RELEASE_SHA"} {
		if !strings.Contains(out, want) {
			t.Errorf("cutover diff lacks %q:\n%s", want, out)
		}
	}
	var rep struct {
		A struct {
			Fields []struct {
				Name, Value string
				Secret      bool
			}
		}
	}
	js := e.mustCLI(1, "diff", "web", "-c", e.cfg, "--json")
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	hashed := false
	for _, f := range rep.A.Fields {
		if f.Name == "env.APP_SECRET" {
			hashed = f.Secret && strings.HasPrefix(f.Value, "sha256:")
		}
	}
	if !hashed || strings.Contains(js, "s3cr3t") {
		t.Fatalf("the secret is not shown as a hash in diff --json:\n%s", js)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Fatalf("cutover diff shows the secret:\n%s", out)
	}
	t.Logf("cutover diff web:\n%s", out)
}

// A surge of connections while traffic shifts (another service, a batch
// job) takes the database past the budget the preflight allowed for: the
// rollout pauses, with the figures, before the shortage becomes a storm;
// once the surge is gone, resume and promote finish it.
func TestDatabaseSurgePausesTheRollout(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	e := preflightEnv(t, pg.URL("app"), 2, nil)
	b, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, []byte(strings.Replace(string(b), "pause: 3s", "pause: 60s", 1)), 0o644)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(2)
	e.mustCLI(0, "deploy", "web", "v2")
	e.waitFor("the shift", 60*time.Second, func(st status) bool { return st.Phase == "shifting" })

	// 175 more on top of the apps' own: past 200 - 3 - 20 = 177.
	var surge []*pgx.Conn
	for range 175 {
		c, err := pgx.Connect(context.Background(), pg.URL("app"))
		if err != nil {
			t.Fatal(err)
		}
		surge = append(surge, c)
	}
	e.waitFor("the pause", 20*time.Second, func(st status) bool { return st.Phase == "paused" })
	var st struct {
		Analysis *struct {
			Database *struct {
				Connections, Budget int
				Over                bool
			}
		}
	}
	if err := json.Unmarshal([]byte(e.mustCLI(0, "status", "web", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Analysis == nil || st.Analysis.Database == nil || !st.Analysis.Database.Over || st.Analysis.Database.Connections <= 177 {
		t.Fatalf("paused with analysis %+v, want the database over its budget", st.Analysis)
	}
	for _, c := range surge {
		c.Close(context.Background())
	}
	e.mustCLI(0, "resume", "web")
	e.mustCLI(0, "promote", "web")
	e.waitFor("the promotion", 30*time.Second, func(st status) bool { return st.Phase == "idle" && st.Live != nil && st.Live.Version == "v2" })
	tr.halt()
	h := e.historyEvents()
	paused := ""
	for _, ev := range h[0].Events {
		if ev.Type == "decision" && strings.Contains(ev.Message, "paused at step 1") {
			paused = ev.Message
		}
	}
	if !strings.Contains(paused, "over the budget of 177") {
		t.Fatalf("no pause decision with the figures in history: %+v", h[0].Events)
	}
	if f := tr.failed.Load(); f != 0 {
		t.Errorf("%d requests failed (last: %v)", f, tr.lastErr.Load())
	}
	t.Logf("%s (connections %d)", paused, st.Analysis.Database.Connections)
}
