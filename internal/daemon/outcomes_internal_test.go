package daemon

import (
	"testing"

	"github.com/cutover/cutover/internal/deploy"
)

// Each deployment counts once, with the outcome it ended with, whether the
// controller (a rollback decision) or a user ended it.
func TestOutcomesCountEachDeploymentOnce(t *testing.T) {
	var o outcomes
	for _, ev := range []deploy.Event{
		{Service: "web", Deployment: "d1", Type: "decision", Phase: deploy.PhaseShifting}, // a step passed
		{Service: "web", Deployment: "d1", Type: "promoted"},
		{Service: "web", Deployment: "d2", Type: "decision", Phase: deploy.PhaseRollingBack}, // automatic rollback
		{Service: "web", Deployment: "d2", Type: "rolled_back"},                              // its cleanup
		{Service: "web", Deployment: "d3", Type: "failed"},
		{Service: "web", Deployment: "d3", Type: "failed"},
		{Service: "api", Deployment: "d1", Type: "aborted"}, // same id, other service
	} {
		o.observe(ev)
	}
	want := map[[2]string]uint64{
		{"web", "promoted"}: 1, {"web", "rolled_back"}: 1, {"web", "failed"}: 1, {"api", "aborted"}: 1,
	}
	if len(o.n) != len(want) {
		t.Fatalf("counts = %v, want %v", o.n, want)
	}
	for k, n := range want {
		if o.n[k] != n {
			t.Errorf("%v = %d, want %d (all: %v)", k, o.n[k], n, o.n)
		}
	}
}
