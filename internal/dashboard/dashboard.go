// Package dashboard is cutover's web page: a few static files embedded in
// the binary (HTML, CSS and JavaScript modules, charts drawn as plain SVG;
// no framework, no third-party code, nothing fetched from another site)
// that read and drive the control API from the browser.
//
// The files carry no data: everything the page shows comes from the API's
// own routes, under the API's authentication and cross-origin rules. That
// is why the API serves these files without a token (a browser cannot send
// a bearer header when it navigates), while every call the page makes
// carries the token the user typed, kept in the tab's sessionStorage.
//
// The Handler is safe for concurrent use; its files never change.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path under which the assets other than the page itself
// are served; the page is at "/".
const Prefix = "/ui/"

// Headers every dashboard response carries: the page runs only its own
// scripts, talks only to its own origin, and cannot be framed by another
// site (which would let that site trick a click onto an action button).
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
	"X-Frame-Options":        "DENY",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"Cache-Control":          "no-cache",
}

// file is one embedded asset with what its response needs.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the page at "/" and its assets under Prefix. Anything
// else is 404.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(p))
		if path.Ext(p) == ".js" {
			ctype = "text/javascript; charset=utf-8" // modules need a JavaScript type whatever the host's mime table says
		}
		files[strings.TrimPrefix(p, "assets/")] = file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("dashboard: embedded assets unreadable: " + err.Error()) // a build defect, never input
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(r.URL.Path, Prefix)
		}
		f, ok := files[name]
		if !ok || name == "index.html" && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		w.Write(f.body)
	})
}

// Weight returns the total size in bytes of the files a browser loads to
// show the page (all the embedded assets).
func Weight() int {
	total := 0
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := assets.ReadFile(p); err == nil {
				total += len(b)
			}
		}
		return nil
	})
	return total
}
