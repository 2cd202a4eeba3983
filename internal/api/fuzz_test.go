package api_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
)

// FuzzRequestBodies sends arbitrary bytes as the body of every endpoint that
// decodes JSON: the server must never panic, must answer garbage with a
// 4xx JSON error, never a 5xx, and must never accept a body that gives a
// key twice (in any case: field names match without regard to it).
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"version":"v2"}`, `{"version":"v2","strategy":"all-at-once"}`,
		`{"version":"v2","addr":"10.0.0.1:80"}`, `{"version":"v2"}{}`, `{"version":"v2","x":1}`,
		``, `null`, `[]`, `{"version":null}`, "{\"version\":\"\x00\"}", `{"version":"\ud800"}`,
		`{"version":1e999}`, `{{{{`, "\xff\xfe", `{"version":"v2","version":"v3"}`,
		`{"version":"v2","Version":"v3"}`, `{"version":"v2","vers\u0069on":"v3"}`,
		`{"addr":"10.0.0.1:80","version":"v2","addr":"10.0.0.2:80"}`, `{"strategy":"a","version":"v2","strategy":"b"}`,
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
			case repeatsKey(json.NewDecoder(bytes.NewReader(body))):
				t.Fatalf("%s %s accepted %q, which gives a key twice, with %d", target.method, target.path, body, rec.Code)
			}
		}
	})
}

// repeatsKey reports whether the JSON value dec reads next has an object
// that gives a key twice, compared as encoding/json matches field names.
// It is the fuzz test's own oracle, written apart from the server's check.
func repeatsKey(dec *json.Decoder) bool {
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('{'):
		var keys []string
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return false
			}
			k, _ := kt.(string)
			for _, prev := range keys {
				if strings.EqualFold(prev, k) {
					return true
				}
			}
			keys = append(keys, k)
			if repeatsKey(dec) {
				return true
			}
		}
		_, _ = dec.Token() // '}'
	case json.Delim('['):
		for dec.More() {
			if repeatsKey(dec) {
				return true
			}
		}
		_, _ = dec.Token() // ']'
	}
	return false
}
