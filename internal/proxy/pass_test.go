package proxy

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/route"
)

// TestPlainRequestHeaders checks what the lean path (pass) must do exactly
// as httputil.ReverseProxy did: drop hop-by-hop fields both ways, keep
// "Te: trailers", send no User-Agent of its own, relay 1xx answers.
func TestPlainRequestHeaders(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h := w.Header()
		h.Del("Link")
		h.Set("Connection", "X-Secret")
		h.Set("X-Secret", "hidden")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Kept", "yes")
		_, hasUA := r.Header["User-Agent"]
		io.WriteString(w, strings.Join([]string{r.Header.Get("Te"), r.Header.Get("X-Hop"), r.Header.Get("Keep-Alive"), strings.Repeat("UA", btoi(hasUA))}, "|"))
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))

	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == http.StatusEarlyHints {
			hints = append(hints, h.Get("Link"))
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, r.url+"/", nil)
	req.Header.Set("Te", "trailers")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "secret")
	req.Header.Set("Keep-Alive", "timeout=9")
	req.Header["User-Agent"] = []string{""} // the client sends none
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "trailers|||" {
		t.Errorf("upstream saw Te|X-Hop|Keep-Alive|UA = %q, want %q", b, "trailers|||")
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authenticate"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("hop-by-hop response header %s: %q reached the client", k, v)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" || resp.Header.Get("X-Instance") != "web-blue-1" {
		t.Errorf("end-to-end response headers lost: %v", resp.Header)
	}
	if len(hints) != 1 || hints[0] != "</app.css>; rel=preload" {
		t.Errorf("103 Early Hints relayed as %q, want one with the Link", hints)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
