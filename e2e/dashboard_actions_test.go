package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The two actions that move all traffic at once, pressed on the page of a
// real daemon in headless Chromium: Promote on a paused canary, then
// Rollback to the pool kept warm. Each confirmation must say where the
// traffic goes, and each result is checked in the daemon's own status and
// on the public router, not only on the page. Any JavaScript error in the
// console fails the test.
func TestDashboardPromoteAndRollback(t *testing.T) {
	// The first step would hold for an hour: only the page's Promote can
	// end it in the test's time.
	e := newEnv(t, "{weight: 10, pause: 1h}", "{weight: 50, pause: 1h}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	live := e.status().Live
	idle := map[string]string{"blue": "green", "green": "blue"}[live.Color]

	b := startBrowser(t)
	p := newDashPage(t, e, b)
	p.do("open the service", chromedp.Navigate("http://"+e.api+"/#/web"))
	p.waitJS("v1 live", fmt.Sprintf(`document.querySelector('#svc-web .pool-live')?.textContent.includes(%q)`, live.Color+" v1"), 20*time.Second)

	// A canary at its first step, paused (from the CLI: the page's pause
	// is TestDashboardInBrowser's).
	e.mustCLI(0, "deploy", "web", "v2")
	e.waitFor("v2 at 10%", 40*time.Second, func(st status) bool { return st.Phase == "shifting" && st.Weights[idle] == 10 })
	e.mustCLI(0, "pause", "web")
	p.waitJS("the paused canary on the page", fmt.Sprintf(`document.querySelector('#svc-web .phase')?.textContent === 'paused' && document.querySelector('#svc-web .weights')?.dataset.%s === '10' && !document.getElementById('act-promote').disabled`, idle), 10*time.Second)
	p.shot("a1-paused-canary")

	// Promote: the candidate takes everything at once; v1 is kept warm.
	p.do("press promote", chromedp.Click(chromedp.CSS("#act-promote")))
	p.confirmShot("a2-promote-confirmation", idle+" v2 takes all traffic now", live.Color+" v1 stays warm as the previous pool")
	st := e.waitFor("v2 promoted", 20*time.Second, func(st status) bool {
		return st.Phase == "idle" && st.Live != nil && st.Live.Version == "v2"
	})
	if st.Live.Color != idle || st.Weights[idle] != 100 || st.Previous == nil || st.Previous.Color != live.Color || st.Previous.Version != "v1" {
		t.Fatalf("after the page's promote the daemon says %+v; want %s v2 live with 100%% and %s v1 previous", st, idle, live.Color)
	}
	e.mustServe("v2")
	p.waitJS("v2 live on the page, v1 previous", fmt.Sprintf(`document.querySelector('#svc-web .pool-live')?.textContent.includes(%q) && document.querySelector('#svc-web .pool-previous')?.textContent.includes(%q) && !document.getElementById('act-rollback').disabled`, idle+" v2", live.Color+" v1"), 10*time.Second)
	p.shot("a3-promoted")

	// Rollback: all traffic back to the pool kept warm.
	p.do("press rollback", chromedp.Click(chromedp.CSS("#act-rollback")))
	p.confirmShot("a4-rollback-confirmation", "All traffic back to "+live.Color+" v1 (kept warm)", "away from "+idle+" v2")
	st = e.waitFor("v1 live again", 20*time.Second, func(st status) bool {
		return st.Live != nil && st.Live.Version == "v1" && st.Weights[live.Color] == 100
	})
	if st.Live.Color != live.Color || st.Weights[idle] != 0 || st.Deployment != nil && st.Phase != "idle" {
		t.Fatalf("after the page's rollback the daemon says %+v; want %s v1 live with all traffic", st, live.Color)
	}
	e.mustServe("v1")
	p.waitJS("v1 live on the page again", fmt.Sprintf(`document.querySelector('#svc-web .pool-live')?.textContent.includes(%q) && document.querySelector('#svc-web .weights')?.dataset.%s === '100'`, live.Color+" v1", live.Color), 10*time.Second)
	p.shot("a5-rolled-back")
	b.checkConsole(t)
	t.Logf("screenshots in %s", p.art)
}

// dashPage is one browser tab on a daemon's dashboard, with the steps the
// browser tests share; each fails the test with a screenshot, the page's
// text and the daemon's log.
type dashPage struct {
	t   *testing.T
	e   *env
	b   *browser
	art string
}

func newDashPage(t *testing.T, e *env, b *browser) *dashPage {
	t.Helper()
	return &dashPage{t: t, e: e, b: b, art: artefactDir(t)}
}

// shot saves a full-page screenshot as name.png in the artefact directory.
func (p *dashPage) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.art, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// waitJS polls the JavaScript expression expr until it is true.
func (p *dashPage) waitJS(what, expr string, timeout time.Duration) {
	p.t.Helper()
	_, err := chromedp.Run(p.b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		text, _ := chromedp.Run(p.b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		p.t.Fatalf("waiting for %s: %v\nthe page said:\n%s\ndaemon log:\n%s", what, err, text, p.e.logs)
	}
}

// do runs browser steps.
func (p *dashPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.b.ctx, steps...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// confirm waits for the confirmation dialog, checks that it says each of
// wants (what will happen), and presses Confirm.
func (p *dashPage) confirm(wants ...string) {
	p.t.Helper()
	p.do("see the confirmation", chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	text, err := chromedp.Run(p.b.ctx, chromedp.Text(chromedp.CSS("#confirm-text")))
	if err != nil {
		p.t.Fatal(err)
	}
	for _, w := range wants {
		if !strings.Contains(text, w) {
			p.t.Errorf("confirmation %q does not say %q", text, w)
		}
	}
	p.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")), chromedp.WaitNotVisible(chromedp.CSS("#confirm-ok")))
}

// confirmShot is confirm with a screenshot of the open dialog first.
func (p *dashPage) confirmShot(name string, wants ...string) {
	p.t.Helper()
	p.do("see the confirmation", chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	p.shot(name)
	p.confirm(wants...)
}
