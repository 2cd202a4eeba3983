package api_test

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
)

// TestDuplicateKeysRefused: a body that gives a key twice is refused with
// 400 naming the key, instead of the last value silently winning (issue
// 9): a proxy or log that reads the first value would see another request
// than the one served. encoding/json matches field names without regard
// to case, so "Version" and "version" are the same key too.
func TestDuplicateKeysRefused(t *testing.T) {
	b := apitest.New("web")
	base := serve(t, api.NewServer(b, api.Options{}))
	json := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, path, body, msgHas string
	}{
		{"deploy version twice", "POST", "/v1/services/web/deployments", `{"version":"v2","version":"v3"}`, `duplicate key "version"`},
		{"deploy case variant", "POST", "/v1/services/web/deployments", `{"version":"v2","strategy":"all-at-once","Version":"v3"}`, `duplicate key "Version"`},
		{"deploy escaped variant", "POST", "/v1/services/web/deployments", `{"version":"v2","vers\u0069on":"v3"}`, `duplicate key "version"`},
		{"deploy strategy twice", "POST", "/v1/services/web/deployments", `{"strategy":"canary10-5m","version":"v2","strategy":"all-at-once"}`, `duplicate key "strategy"`},
		{"register addr twice", "POST", "/v1/services/web/instances", `{"version":"v2","addr":"10.0.0.5:80","addr":"10.0.0.6:80"}`, `duplicate key "addr"`},
		{"deregister addr twice", "DELETE", "/v1/services/web/instances", `{"addr":"10.0.0.5:80","version":"v2","addr":"10.0.0.6:80"}`, `duplicate key "addr"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+tt.path, tt.body, json)
			if r.status != 400 || r.code != "invalid" {
				t.Fatalf("got %d %q, want 400 invalid; body %s", r.status, r.code, r.body)
			}
			if !strings.Contains(r.msg, tt.msgHas) {
				t.Errorf("message %q does not contain %s", r.msg, tt.msgHas)
			}
		})
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("bodies with duplicate keys reached the backend: %v", calls)
	}
	// Distinct keys, and the same key in distinct objects, are fine.
	if r := do(t, "POST", base+"/v1/services/web/deployments", `{"version":"v2","strategy":"all-at-once"}`, json); r.status != 201 {
		t.Errorf("a body without duplicates: %d %s", r.status, r.body)
	}
}
