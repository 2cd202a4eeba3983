package deploy

import "testing"

// ended reports a deployment's final record exactly once: on the step that
// made its outcome final, not on the steps after it while its last work
// runs, and for an instant rollback, whose run starts final.
func TestEndedOncePerDeployment(t *testing.T) {
	run := func(id string, o Outcome) *Run { return &Run{Record: Deployment{ID: id, Outcome: o}} }
	tests := []struct {
		name      string
		cur, next *Run
		want      string
	}{
		{"still running", run("d1", OutcomeRunning), run("d1", OutcomeRunning), ""},
		{"promoted now", run("d1", OutcomeRunning), run("d1", OutcomePromoted), "d1"},
		{"promoted before, hooks still run", run("d1", OutcomePromoted), run("d1", OutcomePromoted), ""},
		{"run finished and gone", run("d1", OutcomePromoted), nil, ""},
		{"instant rollback from idle", nil, run("d2", OutcomeRolledBack), "d2"},
		{"instant rollback while the last run finishes", run("d1", OutcomePromoted), run("d2", OutcomeRolledBack), "d2"},
		{"a new deployment starts", nil, run("d3", OutcomeRunning), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ended(State{Run: tt.cur}, State{Run: tt.next})
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("ended = %s, want none", got.ID)
			case tt.want != "" && (got == nil || got.ID != tt.want):
				t.Errorf("ended = %v, want %s", got, tt.want)
			}
		})
	}
}
