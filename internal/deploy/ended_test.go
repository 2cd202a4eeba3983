package deploy

import "testing"

// ended reports a deployment's final record exactly once: on the step that
// made its outcome final, not on the steps after it while its last work
// runs, for an instant rollback, whose run starts final, and for a
// deployment whose pre_provision hooks failed, which leaves the state in
// the step that ends it.
func TestEndedOncePerDeployment(t *testing.T) {
	run := func(id string, o Outcome) *Run { return &Run{Record: Deployment{ID: id, Outcome: o}} }
	tests := []struct {
		name      string
		cur, next *Run
		acts      []Action
		want      string
	}{
		{"still running", run("d1", OutcomeRunning), run("d1", OutcomeRunning), nil, ""},
		{"promoted now", run("d1", OutcomeRunning), run("d1", OutcomePromoted), nil, "d1"},
		{"promoted before, hooks still run", run("d1", OutcomePromoted), run("d1", OutcomePromoted), nil, ""},
		{"run finished and gone", run("d1", OutcomePromoted), nil, nil, ""},
		{"instant rollback from idle", nil, run("d2", OutcomeRolledBack), nil, "d2"},
		{"instant rollback while the last run finishes", run("d1", OutcomePromoted), run("d2", OutcomeRolledBack), nil, "d2"},
		{"a new deployment starts", nil, run("d3", OutcomeRunning), nil, ""},
		{"failed before its candidate started", run("d4", OutcomeRunning), nil,
			[]Action{{Kind: ActEmit}, {Kind: ActRecord, Deployment: &Deployment{ID: "d4", Outcome: OutcomeFailed}}}, "d4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ended(State{Run: tt.cur}, State{Run: tt.next}, tt.acts)
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("ended = %s, want none", got.ID)
			case tt.want != "" && (got == nil || got.ID != tt.want):
				t.Errorf("ended = %v, want %s", got, tt.want)
			}
		})
	}
}
