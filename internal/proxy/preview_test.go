package proxy

import (
	"net/http"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// The controller points preview at the candidate through this interface;
// without the method it silently keeps the live.Other() default.
var _ deploy.PreviewRouter = (*Router)(nil)

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
