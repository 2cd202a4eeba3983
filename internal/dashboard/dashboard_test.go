package dashboard_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/dashboard"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Every file the page and its modules load is embedded and served, and
// none comes from another site.
func TestAssetsComplete(t *testing.T) {
	h := dashboard.Handler()
	page := get(t, h, "/")
	if page.Code != 200 {
		t.Fatalf("GET /: %d", page.Code)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	seen := map[string]bool{}
	var queue []string
	for _, m := range refs {
		if strings.HasPrefix(m[1], "#") || strings.HasPrefix(m[1], "data:") {
			continue
		}
		queue = append(queue, m[1])
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		if !strings.HasPrefix(p, dashboard.Prefix) {
			t.Errorf("the page loads %q, which is not one of its own files", p)
			continue
		}
		rec := get(t, h, p)
		if rec.Code != 200 {
			t.Errorf("GET %s: %d", p, rec.Code)
			continue
		}
		for _, m := range imports.FindAllStringSubmatch(rec.Body.String(), -1) {
			queue = append(queue, dashboard.Prefix+m[1])
		}
	}
	if len(seen) < 5 {
		t.Errorf("the page loads only %v", seen)
	}
	// No file names another site (a CDN, fonts, analytics).
	external := regexp.MustCompile(`https?://[^\s'"]+`)
	filepath.WalkDir("assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, u := range external.FindAllString(string(b), -1) {
			if !strings.HasPrefix(u, "http://www.w3.org/2000/svg") {
				t.Errorf("%s refers to %s", p, u)
			}
		}
		return nil
	})
	t.Logf("page weight: %d bytes in %d files", dashboard.Weight(), len(seen)+1)
}

func TestCaching(t *testing.T) {
	h := dashboard.Handler()
	first := get(t, h, "/ui/app.js")
	etag := first.Header().Get("ETag")
	if etag == "" || first.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q, Cache-Control %q", etag, first.Header().Get("Cache-Control"))
	}
	if again := get(t, h, "/ui/app.js", "If-None-Match", etag); again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidation: %d with %d bytes", again.Code, again.Body.Len())
	}
	for _, p := range []string{"/ui/", "/ui/nope.js", "/ui/index.html", "/index.html", "/ui/assets/app.js"} {
		if rec := get(t, h, p); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
}
