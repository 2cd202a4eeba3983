package api_test

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
)

// /metrics answers in the Prometheus text format unless the scraper's
// Accept header prefers OpenMetrics, as Prometheus's does.
func TestMetricsFormats(t *testing.T) {
	base := serve(t, api.NewServer(apitest.New("web"), api.Options{}))
	tests := []struct {
		name, accept, contentType, tail string
	}{
		{"no Accept", "", "text/plain; version=0.0.4", "cutover_up 1\n"},
		{"text", "text/plain;version=0.0.4", "text/plain; version=0.0.4", "cutover_up 1\n"},
		{"openmetrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", "application/openmetrics-text; version=1.0.0", "cutover_up 1.0\n# EOF\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.accept != "" {
				hdr["Accept"] = tc.accept
			}
			r := do(t, "GET", base+"/metrics", "", hdr)
			if ct := r.header.Get("Content-Type"); r.status != 200 || !strings.HasPrefix(ct, tc.contentType) || !strings.HasSuffix(r.body, tc.tail) {
				t.Fatalf("got %d %q:\n%s\nwant 200 %q ending in %q", r.status, ct, r.body, tc.contentType, tc.tail)
			}
		})
	}
}
