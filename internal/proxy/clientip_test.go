package proxy

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/cutover/cutover/internal/route"
)

// An app that reads X-Real-IP or True-Client-IP must see the client's
// claim only when a trusted proxy sent it, on the lean path and on the
// upgrade (ReverseProxy) path alike.
func TestClientAddressHeadersNeedTrust(t *testing.T) {
	echo := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Real-IP"), r.Header.Get("True-Client-IP"), r.Header.Get("X-Client-IP"))
	})
	for _, tc := range []struct {
		name, trusted, want string
	}{
		{"untrusted client is stripped", "10.0.0.0/8", "||"},
		{"trusted proxy is kept", "127.0.0.0/8", "6.6.6.6|7.7.7.7|8.8.8.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService()
			svc.TrustedProxies = []string{tc.trusted}
			r := startRouter(t, svc)
			r.SetPool(route.Blue, "v1", backends(echo))
			for _, upgrade := range []bool{false, true} {
				req, _ := http.NewRequest(http.MethodGet, r.url+"/", nil)
				req.Header.Set("X-Real-IP", "6.6.6.6")
				req.Header.Set("True-Client-IP", "7.7.7.7")
				req.Header.Set("X-Client-IP", "8.8.8.8")
				if upgrade { // the instance declines; the answer still shows what it saw
					req.Header.Set("Connection", "Upgrade")
					req.Header.Set("Upgrade", "websocket")
				}
				resp, err := client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != tc.want {
					t.Fatalf("upgrade %v: upstream saw X-Real-IP|True-Client-IP|X-Client-IP = %q, want %q", upgrade, b, tc.want)
				}
			}
		})
	}
}
