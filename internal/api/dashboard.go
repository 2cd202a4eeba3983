package api

import (
	"net/http"
	"path"
	"strings"

	"github.com/cutover/cutover/internal/dashboard"
)

// mountDashboard serves the web dashboard at "/" and its files under
// dashboard.Prefix. The page's data and actions go through the API's own
// routes; see isDashboardFile for why the files need no token.
func (s *Server) mountDashboard(mux *http.ServeMux) {
	h := dashboard.Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+dashboard.Prefix, h)
}

// isDashboardFile reports whether r asks for one of the dashboard's static
// files. They carry no state, and a browser cannot add a bearer token to
// a navigation, so they are served without one even to remote clients;
// every call the page then makes needs the token as any other client's
// does, and the cross-origin protection still refuses another site's
// writes.
func isDashboardFile(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p == "/" || strings.HasPrefix(p, dashboard.Prefix) && path.Clean(p) == p
}
