package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The dashboard in a real headless Chromium against the real binary with
// the demo app under load: v1 live on the page, a canary started from the
// page's form (refused first without the token, with the refusal on the
// page), the weight bar and the charts moving, pause and resume pressed,
// an automatic rollback of a bad version shown with its reason, the page
// at phone width. Any JavaScript error in the console fails the test.
// Screenshots of each state go to $CUTOVER_ARTIFACTS (or a directory the
// log names).
func TestDashboardInBrowser(t *testing.T) {
	e := newEnv(t, "{weight: 10, pause: 8s}", "{weight: 50, pause: 4s}")
	const token = "dashboard-test-token-5d1f"
	tokenFile := filepath.Join(e.dir, "api.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	withToken := strings.Replace(string(cfg), "  listen: "+e.api+"\n", "  listen: "+e.api+"\n  token_file: "+tokenFile+"\n", 1)
	if err := os.WriteFile(e.cfg, []byte(withToken), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every version answers in 20 ms or more, so that the analysis's
	// relative latency check (2x live's p99) compares figures well above
	// the noise of a busy CI machine rendering screenshots; "bad" also
	// fails 30% of its requests.
	faults := `{"v1": {"latency": "20ms"}, "v2": {"latency": "20ms"}, "bad": {"latency": "20ms", "error_rate": 0.3}}`
	if err := os.WriteFile(filepath.Join(e.dir, "faults.json"), []byte(faults), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUTOVER_TOKEN", token) // for the test's own CLI calls
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	live := e.status().Live
	idle := map[string]string{"blue": "green", "green": "blue"}[live.Color]
	tr := e.startTraffic(2) // workers below

	b := startBrowser(t)
	ctx := b.ctx
	p := newDashPage(t, e, b)
	shot, waitJS, do, confirm := p.shot, p.waitJS, p.do, p.confirm
	deployFromForm := func(version string) {
		t.Helper()
		do("fill the deploy form",
			chromedp.WaitEnabled(chromedp.CSS("#deploy-submit")),
			chromedp.SetValue(chromedp.CSS("#deploy-version"), version),
			chromedp.Click(chromedp.CSS("#deploy-submit")))
	}

	// 1. The overview lists every service; its link opens the service's
	// page, with v1 live, its instances and traffic on the charts.
	do("load the overview", chromedp.Navigate("http://"+e.api+"/"))
	waitJS("the overview", fmt.Sprintf(`document.querySelector('#svc-web a[href="#/web"]') !== null && document.querySelector('#svc-web .pool-live')?.textContent.includes(%q)`, live.Color+" v1"), 20*time.Second)
	shot("0-overview")
	// Links are followed with the element's click(): cards and the history
	// table are redrawn on events, so a node the mouse aimed at can be gone.
	follow := func(what, sel string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const a = document.querySelector(%q); a.click(); return true; })()`, sel))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	follow("open the service", `#svc-web a[href="#/web"]`)
	waitJS("v1 live", fmt.Sprintf(`document.querySelector('#svc-web .pool-live')?.textContent.includes(%q)`, live.Color+" v1"), 20*time.Second)
	waitJS("the live colour's traffic charted", fmt.Sprintf(`Number(document.querySelector('[data-chart=rps]')?.dataset.%sPoints) >= 3`, live.Color), 20*time.Second)
	waitJS("healthy instances", fmt.Sprintf(`document.querySelector('[data-instances=web]')?.textContent.includes(%q)`, live.Color+" 2/2 healthy"), 10*time.Second)
	shot("1-v1-live")

	// 2. Without the token the daemon refuses the deployment, and the page says so.
	deployFromForm("v2")
	confirm("Start v2 on "+idle, live.Color+" v1 keeps serving")
	waitJS("the refusal", `!document.getElementById('alert').hidden && /refused/.test(document.getElementById('alert').textContent) && /token/.test(document.getElementById('alert').textContent)`, 10*time.Second)
	shot("2-refused-without-token")
	if st := e.status(); st.Phase != "idle" || st.Deployment != nil {
		t.Fatalf("a refused deploy changed the service: %+v", st)
	}

	// 3. With the token (typed once, kept by the tab) the canary starts and
	// the weight bar moves with its steps.
	do("enter the token",
		chromedp.SetValue(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)))
	waitJS("the stream back", `document.getElementById('conn').dataset.state === 'live'`, 10*time.Second)
	deployFromForm("v2")
	confirm("Start v2 on " + idle)
	waitJS("10% on the candidate", fmt.Sprintf(`document.querySelector('#svc-web .weights')?.dataset.%s === '10'`, idle), 40*time.Second)
	waitJS("step 1 of 2 with time left", `/step 1 of 2 · \d+s left/.test(document.querySelector('#svc-web .step')?.textContent)`, 5*time.Second)
	shot("3-canary-10")

	// 4. Pause holds the canary; resume continues it.
	do("press pause", chromedp.Click(chromedp.CSS("#act-pause")))
	confirm("Hold the deployment of " + idle + " v2")
	waitJS("paused", `document.querySelector('#svc-web .phase')?.textContent === 'paused'`, 10*time.Second)
	if st := e.status(); st.Phase != "paused" {
		t.Fatalf("the daemon is not paused after the page's pause: %+v", st)
	}
	// Held at 10%, the candidate's seconds keep arriving on the charts.
	// (The error-rate chart has a point only for a second with requests.)
	waitJS("the paused canary's traffic charted", fmt.Sprintf(`Number(document.querySelector('[data-chart=errors]')?.dataset.%sPoints) >= 8`, idle), 20*time.Second)
	shot("4-paused")
	do("press resume", chromedp.Click(chromedp.CSS("#act-resume")))
	confirm("Continue the deployment of " + idle + " v2")
	waitJS("shifting again", `document.querySelector('#svc-web .phase')?.textContent === 'shifting'`, 10*time.Second)
	waitJS("50% on the candidate", fmt.Sprintf(`document.querySelector('#svc-web .weights')?.dataset.%s === '50'`, idle), 40*time.Second)
	waitJS("v2 promoted", fmt.Sprintf(`document.querySelector('#svc-web .pool-live')?.textContent.includes(%q)`, idle+" v2"), 40*time.Second)
	waitJS("the candidate's traffic charted", fmt.Sprintf(`Number(document.querySelector('[data-chart=rps]')?.dataset.%sPoints) >= 3`, idle), 10*time.Second)
	waitJS("the steps marked on the charts", `[...document.querySelectorAll('[data-chart=rps] .mark-label')].map(e => e.textContent).join(' ').includes('50%')`, 5*time.Second)
	shot("5-promoted")

	// 5. A bad version, rolled back by the analysis, with its reason.
	deployFromForm("bad")
	confirm("Start bad on " + live.Color)
	waitJS("the rollback in the history", `[...document.querySelectorAll('.history tbody tr')].some(r => r.textContent.includes('bad') && r.textContent.includes('rolled back') && r.textContent.includes('error rate'))`, 60*time.Second)
	waitJS("the rollback marked on the charts", `document.querySelector('[data-chart=errors] .mark-rolled_back, [data-chart=errors] .mark-decision') !== null`, 10*time.Second)
	waitJS("idle again with the outcome on the card", fmt.Sprintf(`document.querySelector('#svc-web .phase')?.textContent === 'idle' && document.querySelector('#svc-web .pool-live')?.textContent.includes(%q) && /bad rolled back — .*error rate/.test(document.querySelector('#svc-web .last')?.textContent)`, idle+" v2"), 30*time.Second)
	shot("6-rolled-back")
	follow("open the deployment", `.history tbody tr:first-child a`)
	waitJS("the deployment's page", `location.hash.includes('/web/deployments/') && /error rate/.test(document.getElementById('deployment-reason')?.textContent)`, 10*time.Second)
	shot("7-deployment")

	// 6. Abort from the page: the confirmation says where traffic goes.
	follow("back to the service", `a[href="#/web"]`)
	deployFromForm("v3")
	confirm("Start v3 on " + live.Color)
	waitJS("v3 at 10%", fmt.Sprintf(`document.querySelector('#svc-web .weights')?.dataset.%s === '10'`, live.Color), 40*time.Second)
	do("press abort", chromedp.Click(chromedp.CSS("#act-abort")))
	confirm("all traffic back to " + idle + " v2")
	waitJS("v3 aborted", `[...document.querySelectorAll('.history tbody tr')].some(r => r.textContent.includes('v3') && r.textContent.includes('aborted'))`, 30*time.Second)
	if st := e.status(); st.Live == nil || st.Live.Version != "v2" || st.Weights[idle] != 100 {
		t.Errorf("after the page's abort: %+v", st)
	}

	// 7. Phone width: nothing wider than the screen, the actions reachable.
	do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate("http://"+e.api+"/#/web"))
	waitJS("the page at phone width", `document.querySelector('#svc-web .pool-live') !== null && document.documentElement.scrollWidth <= window.innerWidth + 1`, 10*time.Second)
	shot("8-phone")
	// The keyboard alone: type a version, Tab to Deploy, Enter opens the
	// confirmation, Escape cancels it and nothing is deployed.
	do("keyboard: type a version and tab to Deploy",
		chromedp.Focus(chromedp.CSS("#deploy-version")),
		chromedp.SendKeys(chromedp.CSS("#deploy-version"), "v9"),
		chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
	if id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`)); err != nil || id != "deploy-submit" {
		t.Errorf("two Tabs from the version field reach %q, want the Deploy button (%v)", id, err)
	}
	do("keyboard: Enter", chromedp.KeyEvent(kb.Enter))
	waitJS("the confirmation open", `document.getElementById('confirm').open && /Start v9/.test(document.getElementById('confirm-text').textContent)`, 5*time.Second)
	do("keyboard: Escape", chromedp.KeyEvent(kb.Escape))
	waitJS("the confirmation closed", `!document.getElementById('confirm').open`, 5*time.Second)
	if st := e.status(); st.Deployment != nil {
		t.Errorf("a cancelled confirmation deployed: %+v", st)
	}

	// Figures: the page's weight and the delay from a weight change's event
	// to the page.
	weight, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).filter(e => new URL(e.name).pathname === '/' || new URL(e.name).pathname.startsWith('/ui/')).reduce((n, e) => n + e.encodedBodySize, 0)`))
	if err != nil {
		t.Fatal(err)
	}
	delays, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.cutoverDashboard.weightDelays`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard page weight: %.0f bytes (HTML, CSS and JS, uncompressed)", weight)
	t.Logf("weight change -> page: %v ms (event time to the bar redrawn, per step; this page load only)", delays)
	if weight <= 0 || weight > 100_000 {
		t.Errorf("page weight %.0f bytes, want some and under 100 kB", weight)
	}
	b.checkConsole(t)

	// The ring behind the charts counted every request the router served:
	// once the load stops and a second has been sampled, its seconds add
	// up to what the client sent (plus, at most, the one request per
	// worker that the router finished as the client stopped counting).
	tr.halt()
	time.Sleep(2500 * time.Millisecond)
	resp, err := http.Get("http://" + e.api + "/v1/services/web/traffic")
	if err != nil {
		t.Fatal(err)
	}
	var hist struct {
		Points []struct {
			Blue, Green struct{ Requests uint64 }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var counted uint64
	for _, p := range hist.Points {
		counted += p.Blue.Requests + p.Green.Requests
	}
	const workers = 2
	if sent := tr.ok.Load() + tr.failed.Load(); counted < sent || counted > sent+workers || len(hist.Points) < 20 {
		t.Errorf("the traffic history counts %d requests in %d seconds; the client sent %d", counted, len(hist.Points), sent)
	}
	t.Logf("screenshots in %s", p.art)
}

// The page's code is public (a browser cannot send a token with a
// navigation), its data is not: a remote client gets the page but not the
// status without the token, and no other site can write through it.
func TestDashboardAuthRules(t *testing.T) {
	// The API's own tests cover remote clients; here the real binary's
	// answers to a loopback client with a token configured.
	e := newEnv(t)
	tokenFile := filepath.Join(e.dir, "api.token")
	os.WriteFile(tokenFile, []byte("tok-rules\n"), 0o600)
	cfg, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, []byte(strings.Replace(string(cfg), "  listen: "+e.api+"\n", "  listen: "+e.api+"\n  token_file: "+tokenFile+"\n", 1)), 0o644)
	e.start()
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get("http://" + e.api + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, `<script type="module" src="/ui/app.js">`) {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("GET / has Content-Security-Policy %q", csp)
	}
	if resp, _ := get("/ui/app.js"); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /ui/app.js: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get("/ui/nothing.js"); resp.StatusCode != 404 {
		t.Errorf("GET /ui/nothing.js: %s", resp.Status)
	}
	// Another site's page posting to the API is refused even with the token.
	req, _ := http.NewRequest("POST", "http://"+e.api+"/v1/services/web/pause", nil)
	req.Header.Set("Authorization", "Bearer tok-rules")
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %s, want 403", resp2.Status)
	}
}

// artefactDir is where screenshots go: $CUTOVER_ARTIFACTS/<test> when set,
// else a directory under the system's temp dir that outlives the test.
func artefactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CUTOVER_ARTIFACTS")
	var dir string
	var err error
	if base != "" {
		dir = filepath.Join(base, t.Name())
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "cutover-dashboard-shots-")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots go to %s", dir)
	return dir
}

// browser is a headless Chromium with one tab and its console.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
	output *lockedWriter
}

// startBrowser starts Chromium with nothing that reaches the network by
// itself (the machine may have none) and a fresh profile. It fails the test
// when Chromium is missing or cannot start.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		t.Fatal("no Chromium to test the dashboard with: install it (apt-get install -y chromium) or set CHROMIUM to its path")
	}
	b := &browser{output: &lockedWriter{}}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(b.output),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("Chromium (%s) cannot start: %v\n%s", path, err, b.output)
	}
	b.ctx = ctx
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	return b
}

// record keeps every console error and exception. The only browser-log
// errors allowed are the network lines Chromium writes for the 401 the
// test provokes on purpose: they are not JavaScript errors.
func (b *browser) record(m chromedp.ConsoleMessage) {
	if m.Type != chromedp.ConsoleError && !m.IsException() {
		return
	}
	if m.Source == "network" && strings.Contains(m.Text, "401") {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
}

func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // the last events on their way
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		t.Errorf("JavaScript errors reached the console:\n%s", strings.Join(b.errors, "\n"))
	}
}
