package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// This file holds the controller's side of release safety (package
// preflight does the checking): the preflight job at the start of every
// deployment, and the database figures watched while traffic shifts.

// JobPreflight runs the release safety checks (Settings.Preflight) before
// anything else of a deployment: a failure fails the deployment with
// nothing started, like a failed pre_provision hook, and is recorded as
// a decision with the checks' report.
const JobPreflight JobKind = "preflight"

// PreflightRequest is what a preflight checks: the release, the colour
// it goes to, and the live pool it will run beside (nil for a first
// deployment).
type PreflightRequest struct {
	Version   string
	Color     route.Color
	Env       map[string]string
	Live      *PoolRef
	Instances int
}

// PreflightFunc runs the checks. It returns a one-sentence summary (with
// the figures: the headroom arithmetic, how many statements were linted),
// the full report for history (Event.Output), and a non-nil error when
// the deployment must not go on (its message is the summary of what
// failed). It must never return a secret.
type PreflightFunc func(ctx context.Context, req PreflightRequest) (summary, report string, err error)

// DatabaseFigures are the database's connection figures during a
// deployment, part of the analysis verdict (Verdict.Database).
type DatabaseFigures struct {
	// Connections are the client connections open now; Budget is the
	// limit minus the reserve (what the preflight allowed for).
	Connections int `json:"connections"`
	Budget      int `json:"budget"`
	Max         int `json:"max_connections"`
	// Refused counts the watcher's connections the server refused (too
	// many connections) since the deployment's watch began.
	Refused uint64 `json:"refused"`
	// Over is true when Connections is past Budget or a connection was
	// refused since the last sample: the rollout pauses.
	Over   bool      `json:"over"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Err is why the figures could not be read ("" when they could).
	Err string `json:"error,omitempty"`
}

// jobPreflight runs Settings.Preflight for the job's release.
func (c *Controller) jobPreflight(ctx context.Context, j Job, st State) (string, error) {
	f := c.cfg().Preflight
	if f == nil {
		return "preflight not configured", nil
	}
	req := PreflightRequest{Version: j.Version, Color: j.Color, Live: st.Live}
	if st.Run != nil {
		req.Env = st.Run.Env
	}
	summary, report, err := f(ctx, req)
	if err != nil {
		// The report reaches history as the failure's output.
		return "", &hookError{msg: summary, output: report}
	}
	if report != "" {
		return summary + "\n" + report, nil
	}
	return summary, nil
}

// preflightDone records the preflight's decision and goes on with the
// deployment, or fails it before anything started.
func (t *txn) preflightDone() {
	ev := t.ev
	if ev.Err != "" {
		t.decisionEvent(ev.Err, ev.Output)
		t.failBeforeStart(OutcomeFailed, ev.Err)
		return
	}
	summary, report := splitReport(ev.Detail)
	t.decisionEvent(summary, report)
	t.afterPreflight()
}

// afterPreflight is the deployment's next step once the preflight passed
// (or when none is configured).
func (t *txn) afterPreflight() {
	if t.ev.Hooks.PreProvision {
		run := t.st.Run
		// The kept previous pool stays kept, and may still be rolled
		// back to after a failure, until the candidate starts.
		t.job(Job{Kind: JobPreProvision, Color: run.Candidate.Color, Version: run.Candidate.Version})
		return
	}
	t.startCandidate()
}

func splitReport(detail string) (string, string) {
	for i := 0; i < len(detail); i++ {
		if detail[i] == '\n' {
			return detail[:i], detail[i+1:]
		}
	}
	return detail, ""
}

// decisionEvent records an automatic decision of the running deployment
// with the report behind it.
func (t *txn) decisionEvent(msg, output string) {
	ev := t.newEvent(EventDecision, msg, nil)
	ev.Output = output
	t.st.Run.Record.Events = append(t.st.Run.Record.Events, ev)
	t.recorded = true
	t.acts = append(t.acts, Action{Kind: ActEmit, Event: &ev})
}

// databaseOver pauses a shifting deployment whose database crossed its
// connection budget or refused a connection, before the shortage becomes
// a storm of errors; a user's resume continues (and the next sample over
// the budget pauses again). It reports whether it paused.
func (t *txn) databaseOver(v *Verdict) bool {
	db := t.ev.Database
	if db == nil {
		return false
	}
	v.Database = db
	if !db.Over || t.st.Phase != PhaseShifting {
		return false
	}
	t.st.Phase = PhasePaused
	t.st.Run.PausedAt = t.ev.Now
	t.event(EventDecision, fmt.Sprintf("paused at step %d (%g%%): %s; resume when the database has room", t.st.Run.Step+1, t.st.Weight, db.Reason), v)
	return true
}
