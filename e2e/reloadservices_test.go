package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Moving a service's public listener by reload: the new address serves,
// the old one stops accepting, and the requests in flight on it when the
// reload lands finish with their answer (each takes 300 ms here, so some
// are always in flight). A non-retrying client of the old address then
// finds it closed: refused connections there are expected, failed
// requests are not.
func TestReloadMovesListenerWithoutCuttingInFlight(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "slow", "--wait") // 300 ms per request
	old := e.public
	load := startRawLoad(t, old, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 20, 10*time.Second)

	moved := "127.0.0.1:" + freePort(t)
	e.editConfig("listen: "+old, "listen: "+moved)
	e.mustCLI(0, "reload")
	e.public = moved
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", old, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the old address %s still accepts 5s after the reload", old)
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.halt()
	t.Logf("old listener moved under load: %s", load)
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d requests on the old listener failed (cut in flight), want 0: %s", n, load)
	}
	e.mustServe("slow")
}

// A service added by reload is bound and runs its own deployments; one
// removed by reload stops accepting, its instances are stopped, and its
// history is kept: added back, it shows its past deployment.
func TestReloadAddsAndRemovesAService(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	web := startRawLoad(t, e.public, 2, loadInterval)
	web.waitAnswers(t, time.Now(), 20, 10*time.Second)

	cfg, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	shopAddr := "127.0.0.1:" + freePort(t)
	// The web service's block again, as "shop" on its own address, with no preview.
	block := string(cfg[strings.Index(string(cfg), "  web:\n"):])
	block = strings.Replace(block, "  web:\n", "  shop:\n", 1)
	block = strings.Replace(block, "listen: "+e.public, "listen: "+shopAddr, 1)
	block = strings.Replace(block, "    preview_listen: "+e.preview+"\n", "", 1)
	withShop := string(cfg) + block
	if err := os.WriteFile(e.cfg, []byte(withShop), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustCLI(0, "reload")
	e.mustCLI(0, "deploy", "shop", "v7", "--wait")
	shop := startRawLoad(t, shopAddr, 2, loadInterval)
	shop.waitAnswers(t, time.Now(), 20, 10*time.Second)
	if out := e.mustCLI(0, "status", "shop", "--json"); !strings.Contains(out, `"v7"`) {
		t.Errorf("status of the added service: %s", out)
	}
	shop.halt()
	shopPIDs := e.recordedPIDsOf("shop")
	if len(shopPIDs) != 2 {
		t.Fatalf("shop records %v, want 2 instances", shopPIDs)
	}

	// Removed again: its address closes and its instances stop.
	if err := os.WriteFile(e.cfg, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustCLI(0, "reload")
	if c, err := net.DialTimeout("tcp", shopAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the removed service's address %s still accepts", shopAddr)
	}
	for _, pid := range shopPIDs {
		deadline := time.Now().Add(10 * time.Second)
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if running(pid) {
			t.Errorf("instance %d of the removed service still runs", pid)
		}
	}
	if code, out := e.cli("status", "shop"); code == 0 {
		t.Errorf("status of a removed service succeeded:\n%s", out)
	}
	web.waitAnswers(t, time.Now(), 20, 10*time.Second)
	web.halt()
	t.Logf("web while shop was added and removed: %s", web)
	if n := web.failed.Load() + web.refused.Load(); n != 0 {
		t.Errorf("%d requests to web failed while another service was added and removed: %s", n, web)
	}

	// Back again: its history survived the removal.
	if err := os.WriteFile(e.cfg, []byte(withShop), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustCLI(0, "reload")
	if out := e.mustCLI(0, "history", "shop"); !strings.Contains(out, "v7") {
		t.Errorf("history of the service added back does not show v7:\n%s", out)
	}
}

// recordedPIDsOf lists the pids in service's instance record.
func (e *env) recordedPIDsOf(service string) []int {
	e.t.Helper()
	b, err := os.ReadFile(strings.Replace(e.recordFile(), "web.json", service+".json", 1))
	if err != nil {
		e.t.Fatal(err)
	}
	return pidsIn(b)
}

// A reload of health, drain_timeout, trusted_proxies and fallback_page
// is applied, not refused, and the new fallback page is what the router
// answers with when no pool serves; a page that cannot be read refuses
// the reload and the previous page stays.
func TestReloadAppliesRouterSettings(t *testing.T) {
	e := newEnv(t)
	e.start() // nothing deployed: the public router answers the fallback page
	page := filepath.Join(e.dir, "maintenance.html")
	if err := os.WriteFile(page, []byte("<p>back in five minutes</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.editConfig("    drain_timeout: 3s\n", fmt.Sprintf("    drain_timeout: 5s\n    fallback_page: %s\n    trusted_proxies: [127.0.0.1]\n", page))
	e.editConfig("      interval: 200ms\n", "      interval: 300ms\n")
	if out := e.mustCLI(0, "reload"); !strings.Contains(out, "reloaded") {
		t.Fatalf("reload: %s", out)
	}
	fallback := func() string {
		t.Helper()
		resp, err := http.Get("http://" + e.public + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("no pool: %d, want 503", resp.StatusCode)
		}
		return string(b)
	}
	if got := fallback(); got != "<p>back in five minutes</p>" {
		t.Errorf("fallback after the reload: %q, want the new page", got)
	}
	e.editConfig("fallback_page: "+page, "fallback_page: "+page+".missing")
	if code, out := e.cli("reload"); code != 1 || !strings.Contains(out, "fallback_page") {
		t.Errorf("reload with a missing fallback page: exit %d, want 1 naming it:\n%s", code, out)
	}
	if got := fallback(); got != "<p>back in five minutes</p>" {
		t.Errorf("fallback after a refused reload: %q, want the page kept", got)
	}
}

// Moving preview_listen by reload: the preview answers on the new
// address, the old one closes, and the next deployment's pre_traffic hook
// gets the new PREVIEW_URL and reaches the candidate through it.
func TestReloadMovesPreviewListener(t *testing.T) {
	e := newEnv(t)
	script := filepath.Join(e.dir, "smoke.sh")
	ran := filepath.Join(e.dir, "smoke.ran")
	os.WriteFile(script, []byte(`hp=${PREVIEW_URL#http://}
exec 3<>/dev/tcp/${hp%:*}/${hp##*:}
printf 'GET /?format=json HTTP/1.0\r\nHost: preview\r\n\r\n' >&3
grep -q "\"version\":\"$VERSION\"" <&3 || { echo "preview did not answer with $VERSION"; exit 1; }
echo "$VERSION $PREVIEW_URL" >> `+ran+`
`), 0o755)
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "    hooks:\n      pre_traffic: [\"bash %s\"]\n", script)
	f.Close()
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")

	old, moved := e.preview, "127.0.0.1:"+freePort(t)
	e.editConfig("preview_listen: "+old, "preview_listen: "+moved)
	e.mustCLI(0, "reload")
	if c, err := net.DialTimeout("tcp", old, time.Second); err == nil {
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if c, err = net.DialTimeout("tcp", old, time.Second); err != nil {
				break
			}
			c.Close()
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil {
			t.Errorf("the old preview address %s still accepts", old)
		}
	}
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	got, _ := os.ReadFile(ran)
	if want := "v1 http://" + old + "\nv2 http://" + moved + "\n"; string(got) != want {
		t.Errorf("the smoke test ran with %q, want %q", got, want)
	}
}
