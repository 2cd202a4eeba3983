package api_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
)

// FuzzRequestBodies sends arbitrary bytes as the body of every endpoint that
// decodes JSON: the server must never panic, and must answer garbage with a
// 4xx JSON error, never a 5xx.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"version":"v2"}`, `{"version":"v2","strategy":"all-at-once"}`,
		`{"version":"v2","addr":"10.0.0.1:80"}`, `{"version":"v2"}{}`, `{"version":"v2","x":1}`,
		``, `null`, `[]`, `{"version":null}`, "{\"version\":\"\x00\"}", `{"version":"\ud800"}`,
		`{"version":1e999}`, `{{{{`, "\xff\xfe", `{"version":"v2","version":"v3"}`,
	} {
		f.Add([]byte(seed))
	}
	b := apitest.New("web")
	h := api.NewServer(b, api.Options{}).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range []struct{ method, path string }{
			{"POST", "/v1/services/web/deployments"},
			{"POST", "/v1/services/web/instances"},
			{"DELETE", "/v1/services/web/instances"},
		} {
			req := httptest.NewRequest(target.method, target.path, bytes.NewReader(body))
			req.Host = "127.0.0.1:7070"
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch {
			case rec.Code >= 500:
				t.Fatalf("%s %s %q: %d %s", target.method, target.path, body, rec.Code, rec.Body)
			case rec.Code >= 400:
				var eb api.ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
					t.Fatalf("%q: error body %q is not a JSON error", body, rec.Body)
				}
			case !json.Valid(body):
				t.Fatalf("%s %s accepted invalid JSON %q with %d", target.method, target.path, body, rec.Code)
			}
		}
	})
}
