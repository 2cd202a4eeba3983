package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cutover/cutover/internal/analysis"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// ObsKind names what the executor observed.
type ObsKind string

// The observations. Commands (deploy ... rollback) come from the API,
// the others from the executor itself.
const (
	ObsDeploy     ObsKind = "deploy"
	ObsPromote    ObsKind = "promote"
	ObsPause      ObsKind = "pause"
	ObsResume     ObsKind = "resume"
	ObsAbort      ObsKind = "abort"
	ObsRollback   ObsKind = "rollback"
	ObsPoolFailed ObsKind = "pool_failed" // a pool crash-loops, or the router refused it
	ObsJobDone    ObsKind = "job_done"    // the current job finished (Err set when it failed)
	ObsHookDone   ObsKind = "hook_done"   // one hook of the current job passed (Hook, Detail, Output)
	ObsTick       ObsKind = "tick"        // a deadline may have passed
	ObsRestart    ObsKind = "restart"     // the daemon restarted with a persisted state
	ObsSettled    ObsKind = "settled"     // the router applied a step's split; clients follow after Settle
)

// The actors recorded on events.
const (
	ActorUser       = "user"
	ActorController = "controller"
	ActorDaemon     = "daemon"
)

// Observation is one input of the transition function. Counts carries both
// colours' cumulative router counters at Now (indexed by colour) with every
// observation, so that a transition can start or judge a step.
type Observation struct {
	Kind  ObsKind
	Now   time.Time
	Actor string
	// ID, Version, Strategy, Steps and Env describe a new deployment
	// (ObsDeploy); Env is the release's own environment.
	ID       string
	Version  string
	Strategy string
	Steps    []Step
	Env      map[string]string
	// Policy, when set on ObsDeploy, replaces the state's policy for the
	// new deployment: a reloaded configuration applies from the next
	// deployment on, never to one already running.
	Policy *Policy
	// Color and Version name the failed pool (ObsPoolFailed).
	Color route.Color
	// Job is the Seq of the finished job (ObsJobDone).
	Job uint64
	// Err describes a failure (ObsPoolFailed, ObsJobDone); Detail adds
	// what a successful job reported, or describes the hook that passed
	// (ObsHookDone).
	Err    string
	Detail string
	// Output is what the hook printed or answered (ObsHookDone, and
	// ObsJobDone when a hook failed).
	Output string
	// Hook is how many hooks of the current job have passed (ObsHookDone).
	Hook int
	// Step (index) and Settle say which step's split the router applied
	// and how long its clients take to follow it (ObsSettled).
	Step   int
	Settle time.Duration
	// Hooks says which hook lists that have jobs only when they hold
	// hooks are configured; the executor sets it on every observation.
	Hooks HookSet
	// Deferred, with Err, says the job left its pool running on purpose
	// (it was the only healthy one) and must run again later.
	Deferred bool
	Counts   [2]metrics.Counts
	// Database is the latest database connection sample while a
	// deployment runs (Settings.Database), or nil.
	Database *DatabaseFigures
	// Health carries both colours' health in the router at Now (indexed by
	// colour) with every observation; an instant rollback needs it.
	Health [2]PoolHealth
}

// HookSet says which of the hook lists whose jobs run only when they are
// not empty hold hooks now: a reload applies to the next job decided.
// (pre_traffic, post_traffic and on_rollback jobs always run, empty or
// not.)
type HookSet struct {
	PreProvision, PostPromote, PostRetire bool
	// Preflight says release safety checks are configured (JobPreflight).
	Preflight bool
}

// PoolHealth is how many of a colour's instances the router counts healthy.
type PoolHealth struct {
	Healthy, Total int
}

// ActionKind names what the executor must do after persisting a state.
type ActionKind string

// The actions. All are idempotent.
const (
	// ActSetSplit sends Live all traffic but Weight percent, which goes to
	// the other colour.
	ActSetSplit ActionKind = "set_split"
	// ActRunJob cancels whatever job runs and starts State.Job.
	ActRunJob ActionKind = "run_job"
	// ActRecord saves Deployment to the history. The executor saves it
	// before the state, so that a run's final record survives a crash.
	ActRecord ActionKind = "record"
	// ActEmit publishes Event on the live stream (it is already in the
	// record when it belongs to the history).
	ActEmit ActionKind = "emit"
	// ActSetPreview makes preview traffic reach Color: the running
	// deployment's candidate, otherwise the idle colour (see PreviewColor).
	ActSetPreview ActionKind = "set_preview"
	// ActAppend adds Event to the history record of the deployment it
	// names, one that has ended (post_retire hooks run long after). The
	// executor saves it before the state, like ActRecord.
	ActAppend ActionKind = "append"
)

// Action is one effect of a transition.
type Action struct {
	Kind       ActionKind
	Live       route.Color
	Weight     float64
	Color      route.Color // ActSetPreview
	Job        *Job
	Deployment *Deployment
	Event      *Event
}

// Admit reports whether a command observation is allowed in st, with an
// error wrapping ErrBusy, ErrNoDeployment, ErrNoPrevious or ErrInvalid. It
// admits every non-command observation. Transition assumes admission.
func Admit(st State, ev Observation) error {
	if handled, err := admitDown(st, ev); handled {
		return err
	}
	run := st.Run
	active := run != nil && st.Phase != PhaseIdle
	op := fmt.Sprintf("%s %s", ev.Kind, st.Service)
	busy := func() error {
		return fmt.Errorf("%s: %w: deployment %s (version %s) is %s", op, ErrBusy, run.Record.ID, run.Record.Version, phaseWord(st))
	}
	switch ev.Kind {
	case ObsDeploy:
		op = fmt.Sprintf("deploy %s %s", st.Service, ev.Version)
		if err := ValidateVersion(ev.Version); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if run != nil {
			return busy()
		}
		if st.Job.kind() == JobPostRetire {
			// A contract migration is not cut short by the next release.
			return fmt.Errorf("%s: %w: the post_retire hooks of deployment %s are running", op, ErrBusy, st.Job.Deployment)
		}
	case ObsPromote, ObsPause:
		if !active {
			return fmt.Errorf("%s: %w", op, ErrNoDeployment)
		}
		if st.Phase != PhaseShifting && !(st.Phase == PhasePaused && ev.Kind == ObsPromote) {
			return busy()
		}
	case ObsResume:
		if !active {
			return fmt.Errorf("%s: %w", op, ErrNoDeployment)
		}
		if st.Phase != PhasePaused {
			return fmt.Errorf("%s: %w: deployment %s is %s, not paused", op, ErrNoDeployment, run.Record.ID, st.Phase)
		}
	case ObsAbort:
		if !active {
			return fmt.Errorf("%s: %w", op, ErrNoDeployment)
		}
		if st.Phase == PhaseRollingBack {
			return busy()
		}
	case ObsRollback:
		if active {
			if st.Phase == PhaseRollingBack {
				return busy()
			}
			return nil
		}
		// A promotion's post_traffic and post_promote hooks (up to the hook
		// timeout) do not hold up the instant rollback: that is when users
		// want it.
		if run != nil && !promotedHooks(st.Job.kind()) {
			return busy()
		}
		if st.Previous == nil || st.Live == nil {
			return fmt.Errorf("%s: %w", op, ErrNoPrevious)
		}
		if st.Retiring {
			return fmt.Errorf("%s: %w: previous pool %s %s is being retired", op, ErrNoPrevious, st.Previous.Color, st.Previous.Version)
		}
		// Swapping to a dead pool would send every request to the fallback
		// page and then retire the healthy one (invariant 2).
		if h := ev.Health[st.Previous.Color]; h.Healthy == 0 {
			return fmt.Errorf("%s: %w: previous pool %s %s has 0 of %d instances healthy; %s %s stays live",
				op, ErrNoPrevious, st.Previous.Color, st.Previous.Version, h.Total, st.Live.Color, st.Live.Version)
		}
	}
	return nil
}

// promotedHooks reports whether k is a job of hooks that run after a
// promotion, which an instant rollback cancels.
func promotedHooks(k JobKind) bool { return k == JobPostTraffic || k == JobPostPromote }

func phaseWord(st State) string {
	if st.Phase == PhaseIdle {
		return "finishing (" + string(st.Job.kind()) + ")"
	}
	return string(st.Phase)
}

func (j *Job) kind() JobKind {
	if j == nil {
		return "no job"
	}
	return j.Kind
}

// ValidateVersion accepts a version of 1 to 128 bytes of valid UTF-8,
// printable and without spaces: it becomes a process argument, an
// environment value, an image tag, a log and history field. The API checks
// versions with it too, so both refuse the same ones. The error wraps
// ErrInvalid.
func ValidateVersion(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: version is required", ErrInvalid)
	case len(v) > 128:
		return fmt.Errorf("%w: version is longer than 128 bytes", ErrInvalid)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: version is not valid UTF-8", ErrInvalid)
	case strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }):
		return fmt.Errorf("%w: version %q contains a space or control character", ErrInvalid, v)
	}
	return nil
}

// Transition is the controller's state machine: given a state and an
// observation it returns the next state and the actions to perform, in
// order, once that state is persisted. It is pure and deterministic: it
// does not keep st's slices or pointers it changes (it copies them) and
// reads the clock only from ev.Now.
func Transition(st State, ev Observation) (State, []Action) {
	t := &txn{st: st.clone(), ev: ev, preview: PreviewColor(st)}
	t.st.Updated = ev.Now
	switch ev.Kind {
	case ObsDeploy:
		if ev.Policy != nil && t.st.Run == nil {
			t.st.Policy = *ev.Policy
		}
		t.deploy()
	case ObsJobDone:
		if t.st.Job == nil || ev.Job != t.st.Job.Seq {
			return st, nil // a cancelled or superseded job
		}
		t.jobDone()
	case ObsHookDone:
		if t.st.Job == nil || ev.Job != t.st.Job.Seq || ev.Hook <= t.st.Job.Hook {
			return st, nil
		}
		t.st.Job.Hook = ev.Hook
		t.hookEvent(*t.st.Job, ev.Detail, ev.Output)
	case ObsTick:
		t.tick()
	case ObsPromote:
		t.promote(fmt.Sprintf("promoted by %s", ev.Actor))
	case ObsPause:
		t.st.Phase = PhasePaused
		t.st.Run.PausedAt = ev.Now
		msg := fmt.Sprintf("paused at step %d (%g%%)", t.st.Run.Step+1, t.st.Weight)
		if ev.Err != "" {
			msg += " by the controller: " + ev.Err
		}
		t.event(EventPaused, msg, nil)
	case ObsSettled:
		t.settled()
	case ObsResume:
		t.resume()
	case ObsAbort:
		t.stopRun(OutcomeAborted, fmt.Sprintf("aborted by %s", ev.Actor), nil)
	case ObsRollback:
		switch {
		case t.st.Run != nil && t.st.Phase != PhaseIdle:
			why := fmt.Sprintf("rolled back by %s", ev.Actor)
			if live := t.st.Live; live != nil {
				why = fmt.Sprintf("rolled back from %s to %s by %s", t.st.Run.Candidate.Version, live.Version, ev.Actor)
			}
			t.stopRun(OutcomeRolledBack, why, nil)
		case t.st.Run != nil: // promoted; its post_traffic or post_promote hooks still run
			t.cancelPostTraffic()
			t.swapBack()
		default:
			t.swapBack()
		}
	case ObsPoolFailed:
		t.poolFailed()
	case ObsRestart:
		t.restart()
	case ObsDown:
		t.down()
	case ObsUp:
		t.up()
	}
	return t.finish()
}

// txn accumulates one transition.
type txn struct {
	st       State
	ev       Observation
	acts     []Action
	recorded bool
	// preview is the preview colour before the transition; setPreview
	// forces the preview action even when it does not change.
	preview    route.Color
	setPreview bool
}

// PreviewColor is the colour preview traffic must reach in st: the
// candidate of a running deployment (one that is not idle), otherwise the
// idle colour (the other one than live; blue when nothing is live, where a
// first deployment goes).
func PreviewColor(st State) route.Color {
	switch {
	case st.Run != nil && st.Phase != PhaseIdle:
		return st.Run.Candidate.Color
	case st.Live != nil:
		return st.Live.Color.Other()
	}
	return route.Blue
}

func (s State) clone() State {
	if s.Live != nil {
		l := *s.Live
		s.Live = &l
	}
	if s.Previous != nil {
		p := *s.Previous
		s.Previous = &p
	}
	if s.Job != nil {
		j := *s.Job
		s.Job = &j
	}
	s.Down = s.Down.clone()
	if s.Run != nil {
		r := *s.Run
		r.Record.Events = slices.Clone(r.Record.Events)
		r.Steps = slices.Clone(r.Steps)
		if r.Verdict != nil {
			v := *r.Verdict
			r.Verdict = &v
		}
		s.Run = &r
	}
	return s
}

func (t *txn) finish() (State, []Action) {
	if c := PreviewColor(t.st); t.setPreview || c != t.preview {
		t.acts = append(t.acts, Action{Kind: ActSetPreview, Color: c})
	}
	if t.recorded && t.st.Run != nil {
		rec := t.st.Run.Record
		rec.Events = slices.Clone(rec.Events)
		t.acts = append(t.acts, Action{Kind: ActRecord, Deployment: &rec})
	}
	return t.st, t.acts
}

// event appends an event to the running deployment's history and emits it.
func (t *txn) event(typ EventType, msg string, v *Verdict) {
	ev := t.newEvent(typ, msg, v)
	if t.st.Run != nil {
		t.st.Run.Record.Events = append(t.st.Run.Record.Events, ev)
		t.recorded = true
	}
	t.acts = append(t.acts, Action{Kind: ActEmit, Event: &ev})
}

// emit publishes an event on the stream only.
func (t *txn) emit(typ EventType, msg string, v *Verdict) {
	ev := t.newEvent(typ, msg, v)
	t.acts = append(t.acts, Action{Kind: ActEmit, Event: &ev})
}

func (t *txn) newEvent(typ EventType, msg string, v *Verdict) Event {
	actor := t.ev.Actor
	if actor == "" {
		actor = ActorController
	}
	ev := Event{Time: t.ev.Now, Service: t.st.Service, Type: typ, Phase: t.st.Phase, Weight: t.st.Weight, Message: msg, Actor: actor, Verdict: v}
	if t.st.Run != nil {
		ev.Deployment = t.st.Run.Record.ID
	}
	return ev
}

func (t *txn) setPhase(p Phase, why string) {
	if t.st.Phase == p {
		return
	}
	t.st.Phase = p
	t.event(EventPhase, why, nil)
}

func (t *txn) split() {
	live := route.Blue
	if t.st.Live != nil {
		live = t.st.Live.Color
	}
	t.acts = append(t.acts, Action{Kind: ActSetSplit, Live: live, Weight: t.st.Weight})
}

// job makes j the state's job and asks the executor to run it.
func (t *txn) job(j Job) {
	t.st.JobSeq++
	j.Seq = t.st.JobSeq
	if t.st.Run != nil && j.Deployment == "" {
		j.Deployment = t.st.Run.Record.ID
	}
	t.st.Job = &j
	t.acts = append(t.acts, Action{Kind: ActRunJob, Job: &j})
}

func (t *txn) deploy() {
	ev := t.ev
	color, first, from := route.Blue, true, ""
	if t.st.Live != nil {
		color, first, from = t.st.Live.Color.Other(), false, t.st.Live.Version
	}
	var replaced *PreviousRef
	if t.st.Previous != nil && t.st.Previous.Color == color {
		replaced = t.st.Previous
	}
	t.st.Run = &Run{
		Record: Deployment{
			ID: ev.ID, Service: t.st.Service, Version: ev.Version, Color: color, FromVersion: from,
			Strategy: strategyName(ev.Strategy), StartedAt: ev.Now, Outcome: OutcomeRunning,
			Env: hashedEnv(ev.Env),
		},
		Candidate: PoolRef{Color: color, Version: ev.Version},
		Env:       maps.Clone(ev.Env),
		First:     first,
		Steps:     slices.Clone(ev.Steps),
		Step:      -1,
	}
	t.st.Phase = PhaseProvisioning
	t.st.Weight = 0
	t.setPreview = true // the router may still show the other colour, as for a first deployment
	msg := fmt.Sprintf("deploying %s to %s (strategy %s, %d steps)", ev.Version, color, strategyName(ev.Strategy), len(ev.Steps))
	if replaced != nil {
		msg += fmt.Sprintf("; the previous pool %s in %s is replaced", replaced.Version, replaced.Color)
	}
	t.event(EventStarted, msg, nil)
	if ev.Hooks.Preflight {
		t.job(Job{Kind: JobPreflight, Color: color, Version: ev.Version})
		return
	}
	t.afterPreflight()
}

// startCandidate starts the run's candidate in its colour, replacing the
// kept previous pool there.
func (t *txn) startCandidate() {
	color, version := t.st.Run.Candidate.Color, t.st.Run.Candidate.Version
	j := Job{Kind: JobStart, Color: color, Version: version}
	if prev := t.st.Previous; prev != nil && prev.Color == color {
		t.st.Previous, t.st.Retiring = nil, false
		if prev.Version != version {
			// The runtime would stop it at once; drain it first. A pool of
			// the same version is adopted as it is.
			j.Replaces = prev.Version
			t.event(EventDraining, fmt.Sprintf("draining kept previous %s %s before starting %s", color, prev.Version, version), nil)
		}
	}
	t.job(j)
}

func (t *txn) jobDone() {
	j, ev := *t.st.Job, t.ev
	t.st.Job = nil
	run := t.st.Run
	switch j.Kind {
	case JobDown, JobUp, JobUpPrevious:
		t.downJobDone(j)
	case JobPreflight:
		t.preflightDone()
	case JobPreProvision:
		if ev.Err != "" {
			t.hookEvent(j, ev.Err, ev.Output)
			t.failBeforeStart(OutcomeFailed, ev.Err)
			return
		}
		t.hookEvent(j, joinDetail("pre_provision hooks passed", ev.Detail), "")
		t.startCandidate()
	case JobStart:
		if ev.Err != "" {
			t.failBeforeTraffic(OutcomeFailed, fmt.Sprintf("start %s %s: %s", j.Color, j.Version, ev.Err))
			return
		}
		t.setPhase(PhaseVerifying, fmt.Sprintf("%s %s is healthy; running pre_traffic hooks", j.Color, j.Version))
		t.job(Job{Kind: JobPreTraffic, Color: j.Color, Version: j.Version})
	case JobPreTraffic:
		if ev.Err != "" {
			t.hookEvent(j, ev.Err, ev.Output)
			t.failBeforeTraffic(OutcomeFailed, ev.Err)
			return
		}
		t.event(EventHook, joinDetail("pre_traffic hooks passed", ev.Detail), nil)
		switch {
		case run.First:
			t.st.Live = &PoolRef{Color: run.Candidate.Color, Version: run.Candidate.Version}
			t.promote("first deployment of the service goes live")
		case len(run.Steps) == 0:
			t.promote("all at once")
		default:
			t.enterStep(0)
		}
	case JobPostTraffic, JobPostPromote:
		msg := joinDetail(string(j.Kind)+" hooks passed", ev.Detail)
		if ev.Err != "" {
			msg = ev.Err + "; the promotion stands"
		}
		t.hookEvent(j, msg, ev.Output)
		if j.Kind == JobPostTraffic && ev.Hooks.PostPromote {
			t.job(Job{Kind: JobPostPromote, Color: j.Color, Version: j.Version})
			return
		}
		t.endRun()
	case JobPostRetire:
		msg := joinDetail("post_retire hooks passed", ev.Detail)
		if ev.Err != "" {
			msg = ev.Err + "; the previous pool stays retired"
		}
		t.hookEvent(j, msg, ev.Output)
		t.maybeRetire()
	case JobRollback, JobStop:
		if ev.Deferred {
			t.deferCleanup(j)
			return
		}
		msg := fmt.Sprintf("%s %s drained and stopped", j.Color, j.Version)
		if ev.Err != "" {
			msg = fmt.Sprintf("cleaning up %s %s: %s", j.Color, j.Version, ev.Err)
		}
		if ev.Output != "" { // an on_rollback hook failed: keep what it said
			t.hookEvent(j, ev.Err, ev.Output)
		}
		t.event(eventOf(run.Record.Outcome), joinDetail(msg, ev.Detail), nil)
		t.st.Phase = PhaseIdle
		t.endRun()
	case JobRetire:
		retry := ev.Now.Add(t.retryAfter())
		if run != nil { // the pool demoted by an instant rollback
			t.event(EventRetired, retireMsg(j, ev.Err), nil)
			if ev.Err != "" {
				// It still runs: keep it, and retire it again later.
				t.st.Previous, t.st.Retiring = &PreviousRef{Color: j.Color, Version: j.Version, Until: retry}, false
			}
			t.endRun()
			return
		}
		if ev.Err != "" && t.st.Previous != nil {
			// Try again after another quiet period; the pool stays kept.
			t.st.Retiring = false
			t.st.Previous.Until = retry
			t.emit(EventRetired, retireMsg(j, ev.Err), nil)
			return
		}
		t.st.Previous, t.st.Retiring = nil, false
		t.emit(EventRetired, retireMsg(j, ""), nil)
		if ev.Hooks.PostRetire && t.st.Live != nil {
			// No old version runs any more: the contract migration's time.
			t.job(Job{Kind: JobPostRetire, Color: t.st.Live.Color, Version: t.st.Live.Version,
				Deployment: t.st.Promotion, Retired: &PoolRef{Color: j.Color, Version: j.Version}})
		}
	}
}

// hookEvent records a hook event of job j: in the running deployment's
// history, or, for a job that follows a finished deployment (post_retire),
// appended to that deployment's record.
func (t *txn) hookEvent(j Job, msg, output string) {
	ev := t.newEvent(EventHook, msg, nil)
	ev.Output = output
	switch {
	case t.st.Run != nil:
		t.st.Run.Record.Events = append(t.st.Run.Record.Events, ev)
		t.recorded = true
	case j.Deployment != "":
		ev.Deployment = j.Deployment
		t.acts = append(t.acts, Action{Kind: ActAppend, Event: &ev})
	}
	t.acts = append(t.acts, Action{Kind: ActEmit, Event: &ev})
}

// deferCleanup keeps a rolled-back candidate that is the only healthy pool
// running, with its job pending, and runs the job again after a quiet
// period. The first deferral goes to history, later ones to the stream.
func (t *txn) deferCleanup(j Job) {
	run := t.st.Run
	wait := t.retryAfter()
	t.st.Job = &j
	run.RetryAt = t.ev.Now.Add(wait)
	msg := fmt.Sprintf("%s; retrying in %s", t.ev.Err, wait)
	if run.Retries++; run.Retries == 1 {
		t.event(EventDecision, msg, nil)
	} else {
		t.emit(EventDecision, msg, nil)
	}
}

// retryAfter is how long a job refused for safety waits before it runs again.
func (t *txn) retryAfter() time.Duration { return max(t.st.Policy.QuietPeriod, time.Second) }

func retireMsg(j Job, err string) string {
	if err != "" {
		return fmt.Sprintf("retiring %s %s: %s", j.Color, j.Version, err)
	}
	return fmt.Sprintf("%s %s drained, quiet and stopped", j.Color, j.Version)
}

func joinDetail(msg, detail string) string {
	if detail == "" {
		return msg
	}
	return msg + ": " + detail
}

// endRun closes the run's record, forgets the run and retires the
// previous pool if its time has come.
func (t *txn) endRun() {
	t.closeRun()
	t.maybeRetire()
}

// cancelPostTraffic closes a promoted run whose post_traffic hooks still
// run, for an instant rollback: its record keeps the outcome promoted and
// says the hooks were cancelled. The executor cancels the hook job when
// the rollback's job replaces it.
func (t *txn) cancelPostTraffic() {
	prev := t.st.Previous
	t.event(EventHook, fmt.Sprintf("%s hooks cancelled: rolled back by %s to %s %s", t.st.Job.kind(), t.ev.Actor, prev.Color, prev.Version), nil)
	t.st.Job = nil
	t.closeRun()
}

// closeRun closes the run's record and forgets the run.
func (t *txn) closeRun() {
	run := t.st.Run
	if run.Record.EndedAt.IsZero() {
		run.Record.EndedAt = t.ev.Now
	}
	t.recorded = true
	rec := run.Record
	rec.Events = slices.Clone(rec.Events)
	t.acts = append(t.acts, Action{Kind: ActRecord, Deployment: &rec})
	t.recorded = false
	t.st.Run = nil
	t.st.Phase = PhaseIdle
}

func (t *txn) enterStep(i int) {
	run, now := t.st.Run, t.ev.Now
	s := run.Steps[i]
	run.Step = i
	run.StepStarted = now
	run.StepUntil, run.Deadline = time.Time{}, time.Time{}
	if !s.Manual {
		run.StepUntil = now.Add(s.Pause)
		run.Deadline = run.StepUntil.Add(t.st.Policy.ProgressDeadline)
	}
	run.NextAnalysis = now.Add(t.interval())
	run.Base = t.ev.Counts
	run.Verdict = nil
	t.st.Weight = s.Weight
	if t.st.Phase != PhasePaused {
		t.st.Phase = PhaseShifting
	}
	hold := "until promoted"
	if !s.Manual {
		hold = "for " + s.Pause.String()
	}
	t.event(EventStep, fmt.Sprintf("step %d of %d: %g%% on %s %s %s", i+1, len(run.Steps), s.Weight, run.Candidate.Color, run.Candidate.Version, hold), nil)
	t.split()
}

func (t *txn) interval() time.Duration {
	if t.st.Policy.Interval > 0 {
		return t.st.Policy.Interval
	}
	return time.Second
}

// promote makes the candidate live and keeps the old live pool warm.
func (t *txn) promote(why string) {
	run, now := t.st.Run, t.ev.Now
	old := t.st.Live
	t.st.Live = &PoolRef{Color: run.Candidate.Color, Version: run.Candidate.Version}
	t.st.Weight = 0
	if old != nil && old.Color != run.Candidate.Color {
		t.st.Previous = &PreviousRef{Color: old.Color, Version: old.Version, Until: now.Add(t.st.Policy.KeepPrevious)}
		t.st.Retiring = false
	}
	t.st.Phase = PhaseIdle
	run.Record.Outcome = OutcomePromoted
	run.Record.Reason = why
	run.Record.EndedAt = now
	t.st.ColorEnv[run.Candidate.Color&1] = run.Env
	t.split()
	msg := fmt.Sprintf("%s %s is live: %s", run.Candidate.Color, run.Candidate.Version, why)
	if t.st.Previous != nil {
		msg += fmt.Sprintf("; %s %s kept warm until %s", t.st.Previous.Color, t.st.Previous.Version, t.st.Previous.Until.UTC().Format(time.RFC3339))
	}
	t.event(EventPromoted, msg, run.Verdict)
	t.st.Promotion = run.Record.ID
	t.job(Job{Kind: JobPostTraffic, Color: run.Candidate.Color, Version: run.Candidate.Version})
}

// stopRun ends a running deployment on a command or an automatic decision.
func (t *txn) stopRun(outcome Outcome, why string, v *Verdict) {
	switch t.st.Phase {
	case PhaseProvisioning, PhaseVerifying:
		if outcome == OutcomeRolledBack {
			outcome = OutcomeFailed
			if t.ev.Kind == ObsAbort || t.ev.Kind == ObsRollback {
				outcome = OutcomeAborted
			}
		}
		if k := t.st.Job.kind(); k == JobPreflight {
			t.failBeforeStart(outcome, why)
			return
		} else if k == JobPreProvision {
			t.event(EventHook, fmt.Sprintf("pre_provision hooks cancelled: %s", why), nil)
			t.failBeforeStart(outcome, why)
			return
		}
		t.failBeforeTraffic(outcome, why)
	default:
		t.rollback(outcome, why, v)
	}
}

// failBeforeStart ends a deployment whose candidate was never started
// (its pre_provision hooks failed or were cancelled): there is nothing to
// stop, the candidate's colour is left as it was, and a kept previous pool
// there is still kept. A retirement the deployment interrupted starts
// again.
func (t *txn) failBeforeStart(outcome Outcome, why string) {
	run := t.st.Run
	run.Record.Outcome, run.Record.Reason = outcome, why
	t.st.Job = nil
	t.st.Retiring = false
	t.event(eventOf(outcome), fmt.Sprintf("%s; nothing was started, %s left as it was", why, run.Candidate.Color), nil)
	t.endRun()
}

// failBeforeTraffic ends a deployment whose candidate never took user traffic.
func (t *txn) failBeforeTraffic(outcome Outcome, why string) {
	run := t.st.Run
	t.st.Phase = PhaseRollingBack
	t.st.Weight = 0
	run.Record.Outcome, run.Record.Reason = outcome, why
	msg := fmt.Sprintf("%s; no user traffic moved, stopping %s %s", why, run.Candidate.Color, run.Candidate.Version)
	if run.First {
		// With no live pool the router serves the only healthy one: users
		// may have reached the candidate.
		msg = fmt.Sprintf("%s; first deployment: stopping %s %s", why, run.Candidate.Color, run.Candidate.Version)
		t.st.Live = nil
	}
	t.event(eventOf(outcome), msg, nil)
	t.job(Job{Kind: JobStop, Color: run.Candidate.Color, Version: run.Candidate.Version})
}

// rollback moves all traffic back to live in one swap and cleans up.
func (t *txn) rollback(outcome Outcome, why string, v *Verdict) {
	run := t.st.Run
	t.st.Phase = PhaseRollingBack
	t.st.Weight = 0
	run.Record.Outcome, run.Record.Reason = outcome, why
	t.split()
	typ := EventDecision
	if t.ev.Actor == ActorUser {
		typ = eventOf(outcome)
	}
	t.event(typ, fmt.Sprintf("%s; all traffic back to %s %s", why, t.st.Live.Color, t.st.Live.Version), v)
	t.job(Job{Kind: JobRollback, Color: run.Candidate.Color, Version: run.Candidate.Version, Reason: why})
}

// swapBack is the instant rollback to the warm previous pool.
func (t *txn) swapBack() {
	prev, demoted := *t.st.Previous, *t.st.Live
	t.st.Live = &PoolRef{Color: prev.Color, Version: prev.Version}
	t.st.Previous, t.st.Retiring, t.st.Weight = nil, false, 0
	t.st.Promotion = "" // nothing kept: no post_retire follows
	t.st.Run = &Run{
		Record: Deployment{
			ID: t.ev.ID, Service: t.st.Service, Version: prev.Version, Color: prev.Color, FromVersion: demoted.Version,
			Strategy: strategyRollbackTo, StartedAt: t.ev.Now, EndedAt: t.ev.Now, Outcome: OutcomeRolledBack,
			Reason: fmt.Sprintf("rolled back from %s to %s by %s", demoted.Version, prev.Version, t.ev.Actor),
		},
		Candidate: PoolRef{Color: prev.Color, Version: prev.Version},
		Step:      -1,
	}
	t.split()
	t.event(EventRolledBack, fmt.Sprintf("all traffic back to %s %s in one swap; %s %s will be drained and stopped", prev.Color, prev.Version, demoted.Color, demoted.Version), nil)
	t.job(Job{Kind: JobRetire, Color: demoted.Color, Version: demoted.Version})
}

func (t *txn) resume() {
	run := t.st.Run
	held := t.ev.Now.Sub(run.PausedAt)
	if !run.StepUntil.IsZero() {
		run.StepUntil = run.StepUntil.Add(held)
		run.Deadline = run.Deadline.Add(held)
	}
	run.PausedAt = time.Time{}
	t.st.Phase = PhaseShifting
	t.event(EventResumed, fmt.Sprintf("resumed after %s at step %d (%g%%)", held.Round(time.Second), run.Step+1, t.st.Weight), nil)
}

func (t *txn) poolFailed() {
	run := t.st.Run
	if run == nil || t.st.Phase == PhaseIdle || t.st.Phase == PhaseRollingBack ||
		t.ev.Color != run.Candidate.Color || (t.ev.Version != "" && t.ev.Version != run.Candidate.Version) {
		return
	}
	t.ev.Actor = ActorController
	t.stopRun(OutcomeRolledBack, fmt.Sprintf("candidate %s %s failed: %s", run.Candidate.Color, run.Candidate.Version, t.ev.Err), nil)
}

func (t *txn) tick() {
	t.ev.Actor = ActorController
	run, now := t.st.Run, t.ev.Now
	if run != nil && t.st.Phase == PhaseRollingBack {
		if j := t.st.Job; j != nil && !run.RetryAt.IsZero() && !now.Before(run.RetryAt) {
			run.RetryAt = time.Time{}
			t.job(*j)
		}
		return
	}
	if run == nil || run.Step < 0 || (t.st.Phase != PhaseShifting && t.st.Phase != PhasePaused) {
		t.maybeRetire()
		return
	}
	t.settleBase()
	stepOver := t.st.Phase == PhaseShifting && !run.StepUntil.IsZero() && !now.Before(run.StepUntil)
	if !now.Before(run.NextAnalysis) || (stepOver && (run.Verdict == nil || run.Verdict.At.Before(run.StepUntil))) {
		for !run.NextAnalysis.After(now) {
			run.NextAnalysis = run.NextAnalysis.Add(t.interval())
		}
		if t.analyse() {
			return
		}
	}
	if !stepOver {
		return
	}
	v := run.Verdict
	if v != nil && v.Result == ResultPass {
		if why := capacityShort(t.st, t.ev); why != "" {
			if !now.Before(run.Deadline) {
				t.rollback(OutcomeRolledBack, fmt.Sprintf("progress deadline: step %d (%g%%) passed but the shift cannot go on after %s: %s",
					run.Step+1, t.st.Weight, t.st.Policy.ProgressDeadline, why), v)
			}
			// Held until the candidate has live's capacity; the live
			// stream says so at every tick, like the verdicts.
			t.emit(EventVerdict, fmt.Sprintf("step %d (%g%%) passed; holding: %s", run.Step+1, t.st.Weight, why), v)
			return
		}
		t.event(EventDecision, fmt.Sprintf("step %d (%g%%) passed: %s", run.Step+1, t.st.Weight, v.Reason), v)
		if run.Step+1 < len(run.Steps) {
			t.enterStep(run.Step + 1)
		} else {
			t.promote("every step passed")
		}
		return
	}
	if !now.Before(run.Deadline) {
		reason := "no verdict"
		if v != nil {
			reason = v.Reason
		}
		t.rollback(OutcomeRolledBack, fmt.Sprintf("progress deadline: step %d (%g%%) still not passing %s after its pause: %s",
			run.Step+1, t.st.Weight, t.st.Policy.ProgressDeadline, reason), v)
	}
}

// analyse judges the current step; it reports true when it rolled back.
func (t *txn) analyse() bool {
	run, now := t.st.Run, t.ev.Now
	live := t.st.Live.Color
	cand := run.Candidate.Color
	window := now.Sub(run.StepStarted)
	cc, lc := t.ev.Counts[cand], t.ev.Counts[live]
	if cc.Requests < run.Base[cand].Requests || lc.Requests < run.Base[live].Requests {
		run.Base = t.ev.Counts // the router's counters were reset
	}
	p := t.st.Policy
	crit := analysis.Criteria{MaxErrorRate: p.MaxErrorRate, MaxP99Latency: p.MaxP99Latency, MinRequests: p.MinRequests, LatencyFactor: p.LatencyFactor,
		CandidateLabel: cand.String(), BaselineLabel: live.String()}
	av := analysis.Evaluate(crit, cc.Sub(run.Base[cand]), lc.Sub(run.Base[live]), window)
	v := &Verdict{Result: Result(av.Result), Reason: av.Reason, PValue: av.PValue, At: now,
		Candidate: figures(cand, av.Candidate), Baseline: figures(live, av.Baseline)}
	changed := run.Verdict == nil || run.Verdict.Result != v.Result
	run.Verdict = v
	if t.databaseOver(v) {
		return false
	}
	if v.Result == ResultFail {
		t.rollback(OutcomeRolledBack, v.Reason, v)
		return true
	}
	if changed {
		t.event(EventVerdict, v.Reason, v)
	} else {
		t.emit(EventVerdict, v.Reason, v)
	}
	return false
}

func figures(c route.Color, f analysis.Figures) Figures {
	return Figures{Color: c, Requests: f.Requests, Errors: f.Errors, ErrorRate: f.ErrorRate, P99: f.P99, RPS: f.RPS}
}

// maybeRetire starts retiring the previous pool once keep_previous is over.
func (t *txn) maybeRetire() {
	prev := t.st.Previous
	if t.st.Run != nil || t.st.Job != nil || prev == nil || t.st.Retiring || t.st.Down != nil || t.ev.Now.Before(prev.Until) {
		return
	}
	t.st.Retiring = true
	t.emit(EventRetired, fmt.Sprintf("keep_previous is over: draining %s %s, then stopping it (after %s without traffic, unless the router seals it)", prev.Color, prev.Version, t.st.Policy.QuietPeriod), nil)
	t.job(Job{Kind: JobRetire, Color: prev.Color, Version: prev.Version})
}

// restart resumes after a daemon restart: counters start again (the router's
// were lost), timers keep their persisted deadlines, the pending job runs again.
func (t *txn) restart() {
	t.ev.Actor = ActorDaemon
	t.setPreview = true
	if t.st.Live != nil {
		t.split()
	}
	if run := t.st.Run; run != nil {
		run.Base = t.ev.Counts
		run.RetryAt = time.Time{} // the pending job runs now
		if run.Step >= 0 && t.st.Phase != PhaseIdle && t.st.Phase != PhaseRollingBack {
			run.NextAnalysis = t.ev.Now.Add(t.interval())
		}
		t.event(EventResumed, fmt.Sprintf("daemon restarted: resuming %s at step %d (%g%%)", t.st.Phase, run.Step+1, t.st.Weight), nil)
	}
	if j := t.st.Job; j != nil {
		t.job(*j)
		return
	}
	t.maybeRetire()
}
