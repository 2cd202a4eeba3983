package cli

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// heartbeatLine says where a followed deployment stands, from its latest
// status and verdict: the phase or step, the time left in the step, and
// the candidate's latest figures. offline > 0 says the daemon has not
// answered for that long.
func heartbeatLine(st *deploy.Status, v *deploy.Verdict, now time.Time, offline time.Duration) string {
	if offline > 0 {
		return fmt.Sprintf("no answer from the daemon for %s; reconnecting", offline.Round(100*time.Millisecond))
	}
	if st == nil {
		return "waiting for the daemon's status"
	}
	d := st.Deployment
	if d == nil {
		return "phase " + string(st.Phase) + ", waiting for the final record"
	}
	var s string
	switch {
	case d.Step == 0:
		s = fmt.Sprintf("phase %s, %s since the start", st.Phase, now.Sub(d.StartedAt).Round(time.Second))
	case st.Phase == deploy.PhasePaused:
		s = fmt.Sprintf("paused at step %d/%d (`cutover resume %s` continues)", d.Step, d.Steps, st.Service)
	default:
		s = fmt.Sprintf("step %d/%d", d.Step, d.Steps)
		if st.Candidate != nil {
			s += fmt.Sprintf(" at %s%% on %s", percent(st.Weights[st.Candidate.Color.String()]), st.Candidate.Color)
		}
		switch left := d.StepUntil.Sub(now).Round(time.Second); {
		case d.Manual:
			s += fmt.Sprintf(", waiting for `cutover promote %s`", st.Service)
		case st.Phase != deploy.PhaseShifting:
			s += ", phase " + string(st.Phase)
		case left > 0:
			s += fmt.Sprintf(", %s left in the step", left)
		default:
			s += ", step time over, waiting for a passing verdict"
		}
	}
	if v != nil && st.Candidate != nil && v.Candidate.Color == st.Candidate.Color {
		c := v.Candidate
		s += fmt.Sprintf("; %s %d requests, %.2f%% errors, %s", c.Color, c.Requests, c.ErrorRate*100, v.Result)
	}
	return s
}
