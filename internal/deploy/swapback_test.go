package deploy

import "testing"

// The instant rollback's history record says which versions it went
// between, as operators ask it ("what did we roll back from?").
func TestInstantRollbackReason(t *testing.T) {
	st := fixtures()["idle-kept"] // v2 live on green, v1 kept on blue
	next, acts := Transition(st, obsFor(ObsRollback, st))
	if next.Live == nil || next.Live.Version != "v1" {
		t.Fatalf("live after the rollback: %+v, want v1", next.Live)
	}
	var rec *Deployment
	for _, a := range acts {
		if a.Kind == ActRecord {
			rec = a.Deployment
		}
	}
	if rec == nil || rec.Reason != "rolled back from v2 to v1 by user" || rec.FromVersion != "v2" || rec.Version != "v1" {
		t.Fatalf("history record %+v, want v1 from v2 with reason %q", rec, "rolled back from v2 to v1 by user")
	}
}
