package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// The controller drives the router through this contract (preview,
// undrain and sealing included).
var _ deploy.Router = (*Router)(nil)

// A first deployment's candidate is Blue while Blue is also live: preview
// must reach it once the controller says so, follow later SetPreview calls,
// and still keep a drained colour out.
func TestSetPreviewFirstDeployment(t *testing.T) {
	blue, green := newInstance(t, "web-blue-1", nil), newInstance(t, "web-green-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	c := client()
	if code, _, _ := get(t, c, r.previewURL+"/"); code != http.StatusServiceUnavailable {
		t.Fatalf("before SetPreview: status %d, want 503 (live.Other() has no pool)", code)
	}
	r.SetPreview(route.Blue)
	for range 20 {
		if code, id, _ := get(t, c, r.previewURL+"/"); code != 200 || id != "web-blue-1" {
			t.Fatalf("after SetPreview(blue): preview reached %q (status %d), want blue", id, code)
		}
	}
	r.SetPool(route.Green, "v2", backends(green))
	r.SetPreview(route.Green)
	for range 20 {
		if code, id, _ := get(t, c, r.previewURL+"/"); code != 200 || id != "web-green-1" {
			t.Fatalf("after SetPreview(green): preview reached %q (status %d), want green", id, code)
		}
	}
	mustSplit(t, r.Router, route.Blue, 0) // a split change keeps the preview colour
	if _, id, _ := get(t, c, r.previewURL+"/"); id != "web-green-1" {
		t.Fatalf("after SetSplit: preview reached %q, want green", id)
	}
	if err := r.Drain(t.Context(), route.Green); err != nil {
		t.Fatal(err)
	}
	if code, id, _ := get(t, c, r.previewURL+"/"); code != http.StatusServiceUnavailable {
		t.Fatalf("drained green: preview reached %q (status %d), want 503", id, code)
	}
	if _, id, _ := get(t, c, r.url+"/"); id != "web-blue-1" {
		t.Fatalf("public reached %q, want blue", id)
	}
}

// Smoke tests through preview must not reach the candidate's analysis: a
// failing or slow smoke test would skew its error rate and p99, and its
// requests would count towards min_requests.
func TestPreviewTrafficKeptOutOfCounts(t *testing.T) {
	blue := newInstance(t, "web-blue-1", nil)
	green := newInstance(t, "web-green-1", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	r.SetPreview(route.Green)
	c := client()
	before := r.Counts(route.Green)
	for range 10 {
		if code, id, _ := get(t, c, r.previewURL+"/"); code != 500 || id != "web-green-1" {
			t.Fatalf("preview: status %d from %q, want 500 from green", code, id)
		}
	}
	get(t, c, r.url+"/")
	if got := r.Counts(route.Green); got != before {
		t.Fatalf("preview requests counted in green's public counts: %+v, was %+v", got, before)
	}
	if got := r.Counts(route.Blue); got.Requests != 1 {
		t.Fatalf("blue public requests = %d, want 1", got.Requests)
	}
	if got := r.PreviewCounts(route.Green); got.Requests != 10 || got.Class[5] != 10 || got.InFlight != 0 {
		t.Fatalf("green preview counts = %+v, want 10 requests, all 5xx", got)
	}
	out := scrape(t, r.Router)
	for _, want := range []string{
		`cutover_preview_requests_total{class="5xx",color="green",service="web"} 10`,
		`cutover_requests_total{class="5xx",color="green",service="web"} 0`,
		`cutover_request_duration_seconds_count{color="green",service="web"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
