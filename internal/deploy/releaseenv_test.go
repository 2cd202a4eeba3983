package deploy

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// A release's own environment reaches the runtime with its candidate, is
// in history only as hashes, follows its pool when it is promoted, and a
// rollback goes back to the previous release's environment with its pool.
func TestReleaseEnvFollowsItsPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		ctx := context.Background()
		two := map[string]string{"FEATURE": "on", "API_KEY": "k-2"}
		d, err := h.c.Deploy(ctx, "v2", StrategyAllAtOnce, "", two)
		if err != nil {
			t.Fatal(err)
		}
		h.waitPhase(PhaseIdle, time.Minute)
		h.rt.mu.Lock()
		got := h.rt.env[route.Green]
		h.rt.mu.Unlock()
		if !maps.Equal(got, two) {
			t.Fatalf("green started with env %v, want %v", got, two)
		}
		rec := h.history()[0]
		if rec.ID != d.ID || len(rec.Env) != 2 || !strings.HasPrefix(rec.Env["API_KEY"], "sha256:") || strings.Contains(rec.Env["API_KEY"], "k-2") {
			t.Fatalf("history env = %v, want the names with hashes only", rec.Env)
		}
		three := map[string]string{"FEATURE": "off"}
		if _, err := h.c.Deploy(ctx, "v3", StrategyAllAtOnce, "", three); err != nil {
			t.Fatal(err)
		}
		h.waitPhase(PhaseIdle, time.Minute)
		if s := h.c.Serving(); len(s) != 2 || !maps.Equal(s[0].Env, three) || !maps.Equal(s[1].Env, two) {
			t.Fatalf("serving after v3: %+v, want live v3 with its env and previous v2 with its own", s)
		}
		if err := h.c.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		h.waitPhase(PhaseIdle, time.Minute)
		s := h.c.Serving()
		if len(s) == 0 || s[0].Version != "v2" || !maps.Equal(s[0].Env, two) {
			t.Fatalf("serving after the rollback: %+v, want v2 live with v2's env", s)
		}
	})
}

// A release's environment is checked before anything happens.
func TestReleaseEnvValidated(t *testing.T) {
	h := newHarness(t, testService(), newFakeStore())
	for _, env := range []map[string]string{
		{"PORT": "1"}, {"1BAD": "x"}, {"BAD-NAME": "x"}, {"NUL": "a\x00b"},
	} {
		_, err := h.c.Deploy(context.Background(), "v2", "", "", env)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("env %q accepted: %v", env, err)
		}
		if err != nil && strings.Contains(err.Error(), "a\x00b") {
			t.Errorf("the error repeats a value: %v", err)
		}
	}
}

// A user's rollback of a running deployment says from which version to which.
func TestUserRollbackNamesBothVersions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		h.waitPhase(PhaseShifting, time.Minute)
		if err := h.c.Rollback(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.waitPhase(PhaseIdle, time.Minute)
		if d := h.history()[0]; d.Outcome != OutcomeRolledBack || d.Reason != "rolled back from v2 to v1 by user" {
			t.Fatalf("history[0] = %s %q, want rolled back from v2 to v1 by user", d.Outcome, d.Reason)
		}
	})
}
