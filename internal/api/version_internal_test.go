package api

import (
	"testing"

	"github.com/cutover/cutover/internal/deploy"
)

// The API and the controller refuse the same versions: one validator.
func TestVersionRuleIsTheControllers(t *testing.T) {
	for _, v := range []string{"v1", "registry.example.com/web:v2", "ü-1", "", " v1", "v 1", "v1\n", "v1\x7f",
		string(make([]byte, 129)), "\xff", "ok-" + string(make([]byte, 120))} {
		apiErr, ctrlErr := checkVersion(v), deploy.ValidateVersion(v)
		if (apiErr == nil) != (ctrlErr == nil) {
			t.Errorf("version %q: API says %v, controller says %v", v, apiErr, ctrlErr)
		}
	}
}
