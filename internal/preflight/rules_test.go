package preflight

import (
	"slices"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

// The config accepts in preflight.migrations.allow exactly the lint's rules.
func TestConfigKnowsEveryRule(t *testing.T) {
	var ids []string
	for _, r := range Rules {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, config.LintRules) {
		t.Fatalf("config.LintRules = %v, preflight.Rules = %v", config.LintRules, ids)
	}
}
