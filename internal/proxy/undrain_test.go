package proxy

import (
	"net/http"
	"testing"

	"github.com/cutover/cutover/internal/route"
)

// A drained colour whose pool is set again with the same version (the
// runtime adopted the running pool) stays out of rotation; Undrain brings
// it back for preview and for its weight, and is harmless when repeated.
func TestUndrainAfterAdoptedPool(t *testing.T) {
	blue, green := newInstance(t, "web-blue-1", nil), newInstance(t, "web-green-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	mustSplit(t, r.Router, route.Blue, 50)
	r.SetPreview(route.Green)
	c := client()
	publicColours := func() map[string]int {
		seen := map[string]int{}
		for range 40 {
			code, id, _ := get(t, c, r.url+"/")
			if code != 200 {
				t.Fatalf("public: status %d", code)
			}
			seen[id]++
		}
		return seen
	}

	if err := r.Drain(t.Context(), route.Green); err != nil {
		t.Fatal(err)
	}
	r.SetPool(route.Green, "v2", backends(green)) // adopted as it is
	if code, id, _ := get(t, c, r.previewURL+"/"); code != http.StatusServiceUnavailable {
		t.Fatalf("drained green, pool set again with the same version: preview reached %q (status %d), want 503", id, code)
	}
	if seen := publicColours(); seen["web-green-1"] != 0 {
		t.Fatalf("drained green got public traffic: %v", seen)
	}

	for range 2 {
		r.Undrain(route.Green)
		if code, id, _ := get(t, c, r.previewURL+"/"); code != 200 || id != "web-green-1" {
			t.Fatalf("after Undrain: preview reached %q (status %d), want green", id, code)
		}
		if seen := publicColours(); seen["web-green-1"] == 0 || seen["web-blue-1"] == 0 {
			t.Fatalf("after Undrain at 50%%: public traffic %v, want both colours", seen)
		}
	}
	if live, w := r.Split(); live != route.Blue || w != 50 {
		t.Errorf("Undrain changed the split to %s:%g", live, w)
	}
	r.Undrain(route.Blue) // never drained: nothing changes
	if code, id, _ := get(t, c, r.previewURL+"/"); code != 200 || id != "web-green-1" {
		t.Fatalf("after Undrain(blue): preview reached %q (status %d), want green", id, code)
	}
}
