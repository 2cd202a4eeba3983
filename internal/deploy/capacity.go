package deploy

import "fmt"

// capacityShort says why the shift must not go on to its next step (or to
// the promotion): the candidate has fewer healthy instances than the live
// pool, so it would take more load than it can carry — the write-ups'
// advice to let green scale out before it takes traffic. A runtime whose
// Start returns only at full capacity (Auto Scaling groups) gets past the
// first step this way; this check holds the later ones while capacity is
// lost (an instance replaced). It returns "" when the shift may go on.
func capacityShort(st State, ev Observation) string {
	run := st.Run
	if run == nil || st.Live == nil {
		return ""
	}
	cand, live := ev.Health[run.Candidate.Color&1], ev.Health[st.Live.Color&1]
	if cand.Healthy >= live.Healthy {
		return ""
	}
	return fmt.Sprintf("candidate %s %s has %d healthy instances, live %s %s has %d",
		run.Candidate.Color, run.Candidate.Version, cand.Healthy, st.Live.Color, st.Live.Version, live.Healthy)
}
