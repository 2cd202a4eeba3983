package awsconf

import (
	"context"
	"strings"
	"testing"
)

// TestMaxAttempts: the retryer tries a call MaxAttempts times, or as many
// as the SDK's AWS_MAX_ATTEMPTS says; a bad value is refused by name.
func TestMaxAttempts(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	for _, tt := range []struct {
		env  string
		want int
	}{{"", MaxAttempts}, {"2", 2}, {"1", 1}} {
		t.Setenv("AWS_MAX_ATTEMPTS", tt.env)
		cfg, err := Load(context.Background(), "us-east-1")
		if err != nil {
			t.Fatalf("AWS_MAX_ATTEMPTS=%q: %v", tt.env, err)
		}
		if got := cfg.Retryer().MaxAttempts(); got != tt.want {
			t.Errorf("AWS_MAX_ATTEMPTS=%q: %d attempts, want %d", tt.env, got, tt.want)
		}
	}
	for _, bad := range []string{"0", "many", "-3"} {
		t.Setenv("AWS_MAX_ATTEMPTS", bad)
		if _, err := Load(context.Background(), "us-east-1"); err == nil || !strings.Contains(err.Error(), "AWS_MAX_ATTEMPTS") {
			t.Errorf("AWS_MAX_ATTEMPTS=%q: err %v, want it refused by name", bad, err)
		}
	}
}
