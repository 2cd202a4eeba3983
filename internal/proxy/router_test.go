package proxy

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/internal/route"
)

func TestWeightSplit(t *testing.T) {
	blue, green := newInstance(t, "web-blue-1", nil), newInstance(t, "web-green-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	mustSplit(t, r.Router, route.Blue, 10)
	c := client()
	const n, workers = 5000, 8
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range n / workers {
				code, id, _ := get(t, c, r.url+"/")
				if code != 200 {
					t.Errorf("status %d", code)
					return
				}
				mu.Lock()
				got[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	share := float64(got["web-green-1"]) * 100 / n
	if math.Abs(share-10) > 2 {
		t.Fatalf("green got %.2f%% of %d requests at weight 10 (%v)", share, n, got)
	}
	bc, gc := r.Counts(route.Blue), r.Counts(route.Green)
	if bc.Requests+gc.Requests != n || gc.Requests != uint64(got["web-green-1"]) || bc.Class[2] != bc.Requests {
		t.Fatalf("counts blue %+v green %+v disagree with %v", bc.Requests, gc.Requests, got)
	}
	if live, w := r.Split(); live != route.Blue || w != 10 {
		t.Fatalf("Split() = %s %v", live, w)
	}
}

func TestStickinessMonotonicAsWeightGrows(t *testing.T) {
	blue, green := newInstance(t, "web-blue-1", nil), newInstance(t, "web-green-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	mustSplit(t, r.Router, route.Blue, 10)
	c := client()

	// A new client gets a cookie and is routed by it.
	resp, err := c.Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "cutover_web=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || !strings.Contains(sc, "Path=/") {
		t.Fatalf("Set-Cookie = %q", sc)
	}

	const clients = 400
	colourAt := func(w float64) []string {
		mustSplit(t, r.Router, route.Blue, w)
		out := make([]string, clients)
		for i := range clients {
			cookie := fmt.Sprintf("cutover_web=client%d", i)
			for range 3 { // sticky: the same answer every time
				code, id, _ := get(t, c, r.url+"/", "Cookie", "other=1; "+cookie)
				if code != 200 || (out[i] != "" && out[i] != id) {
					t.Fatalf("client %d at %v%%: status %d, instance %q then %q", i, w, code, out[i], id)
				}
				out[i] = id
			}
		}
		return out
	}
	at10, at50 := colourAt(10), colourAt(50)
	var g10, g50 int
	for i := range clients {
		if at10[i] == "web-green-1" {
			g10++
			if at50[i] != "web-green-1" {
				t.Fatalf("client %d was on green at 10%% but on %s at 50%%", i, at50[i])
			}
		}
		if at50[i] == "web-green-1" {
			g50++
		}
	}
	if g10 < 20 || g10 > 65 || g50 < 160 || g50 > 240 {
		t.Fatalf("green clients: %d at 10%%, %d at 50%% of %d", g10, g50, clients)
	}
}

func TestPreviewReachesOnlyCandidate(t *testing.T) {
	blue, green := newInstance(t, "web-blue-1", nil), newInstance(t, "web-green-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	c := client()
	if code, _, _ := get(t, c, r.previewURL+"/"); code != http.StatusServiceUnavailable {
		t.Fatalf("preview without a candidate pool: status %d, want 503", code)
	}
	r.SetPool(route.Green, "v2", backends(green))
	for range 50 {
		if code, id, _ := get(t, c, r.previewURL+"/"); code != 200 || id != "web-green-1" {
			t.Fatalf("preview reached %q (status %d), want green", id, code)
		}
		if _, id, _ := get(t, c, r.url+"/"); id != "web-blue-1" {
			t.Fatalf("public reached %q at weight 0, want blue", id)
		}
	}
	mustSplit(t, r.Router, route.Green, 0) // promoted: blue is now the idle colour
	if _, id, _ := get(t, c, r.previewURL+"/"); id != "web-blue-1" {
		t.Fatalf("after promotion preview reached %q, want blue", id)
	}
}

func TestFallbackWhenNothingHealthy(t *testing.T) {
	r := startRouter(t, testService())
	c := client()
	resp, err := c.Get(r.url + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	_, _ = fmt.Fprint(buf, "")
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" || !strings.Contains(string(b[:n]), "Temporarily unavailable") {
		t.Fatalf("fallback: status %d retry-after %q body %q", resp.StatusCode, resp.Header.Get("Retry-After"), b[:n])
	}

	// Every instance of both colours unhealthy: the fallback answers too.
	blue := newInstance(t, "web-blue-1", nil)
	blue.down.Store(true)
	r.SetPool(route.Blue, "v1", backends(blue))
	eventually(t, "blue unhealthy", 3e9, func() bool { h, _ := r.Healthy(route.Blue); return h == 0 })
	if code, _, _ := get(t, c, r.url+"/"); code != 503 {
		t.Fatalf("all down: status %d, want 503", code)
	}
	blue.down.Store(false)
	eventually(t, "blue healthy again", 3e9, func() bool { h, _ := r.Healthy(route.Blue); return h == 1 })
	if code, id, _ := get(t, c, r.url+"/"); code != 200 || id != "web-blue-1" {
		t.Fatalf("recovered: status %d from %q", code, id)
	}
}

// The sticky cookie outlives a browser restart (Max-Age) for a day, and
// stays out of scripts and cross-site requests.
func TestStickyCookieAttributes(t *testing.T) {
	blue := newInstance(t, "web-blue-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	resp, err := client().Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie = %q, want one cookie", resp.Header.Values("Set-Cookie"))
	}
	ck := cookies[0]
	if ck.Name != "cutover_web" || ck.Value == "" || ck.Path != "/" || ck.MaxAge != 86400 || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("Set-Cookie = %q: want cutover_web=<value>; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax", resp.Header.Get("Set-Cookie"))
	}
}
