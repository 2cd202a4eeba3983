package deploy

import (
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// This file holds the controller's public vocabulary: what status, history
// and the event stream carry. The JSON names are part of cutover's fixed
// interface (shared/INTERFACE.md); add fields, never rename them.

// Phase is where a service's controller stands.
type Phase string

// The phases. After a promotion or a rollback the service is idle again.
const (
	PhaseIdle         Phase = "idle"
	PhaseProvisioning Phase = "provisioning"
	PhaseVerifying    Phase = "verifying"
	PhaseShifting     Phase = "shifting"
	PhasePaused       Phase = "paused"
	PhaseRollingBack  Phase = "rolling_back"
)

// Outcome is how a deployment ended.
type Outcome string

// The outcomes. OutcomeRunning is a deployment still under way.
const (
	OutcomeRunning    Outcome = "running"
	OutcomePromoted   Outcome = "promoted"
	OutcomeRolledBack Outcome = "rolled_back"
	OutcomeAborted    Outcome = "aborted"
	OutcomeFailed     Outcome = "failed" // failed before any user traffic moved
)

// PoolRef names a pool.
type PoolRef struct {
	Color   route.Color `json:"color"`
	Version string      `json:"version"`
}

// PreviousRef is the old pool kept warm after a promotion, until Until.
type PreviousRef struct {
	Color   route.Color `json:"color"`
	Version string      `json:"version"`
	Until   time.Time   `json:"until"`
}

// DeploymentRef summarises the running deployment in a Status.
type DeploymentRef struct {
	ID        string    `json:"id"`
	Version   string    `json:"version"`
	Strategy  string    `json:"strategy"`
	Step      int       `json:"step"`  // 1-based index of the current step; 0 before shifting
	Steps     int       `json:"steps"` // number of steps in the strategy
	Manual    bool      `json:"manual_gate"`
	StartedAt time.Time `json:"started_at"`
	// StepUntil is when the current step's pause ends (zero for a manual gate).
	StepUntil time.Time `json:"step_until,omitzero"`
}

// Status is a service's state as `cutover status --json` prints it.
type Status struct {
	Service    string             `json:"service"`
	Phase      Phase              `json:"phase"`
	Live       *PoolRef           `json:"live"`
	Candidate  *PoolRef           `json:"candidate"`
	Previous   *PreviousRef       `json:"previous"`
	Weights    map[string]float64 `json:"weights"` // "blue", "green": percent of public traffic
	Deployment *DeploymentRef     `json:"deployment"`
	// Analysis is the latest verdict of the running deployment, if any.
	Analysis *Verdict `json:"analysis,omitempty"`
	// Notices are what the daemon found wrong with the service's
	// instances when it started and what it did about it (instances
	// found only by their marks, a lost pool started again). The
	// controller leaves it empty; the daemon fills it.
	Notices []string `json:"notices,omitempty"`
	// Down is true while the service is out of service (cutover down):
	// no pool runs and the public listener answers with the fallback
	// page. It stays true until an up has the live pool healthy again.
	Down bool `json:"down"`
	// DownSince is when the service was taken down.
	DownSince time.Time `json:"down_since,omitzero"`
	// Stopping is true while a down drains and stops the pools; Starting
	// while an up starts the live pool.
	Stopping bool `json:"stopping,omitempty"`
	Starting bool `json:"starting,omitempty"`
	// Traffic is what the traffic engine (ALB, Route53) actually does, as
	// its router last read it; nil for the embedded router.
	Traffic *TrafficStatus `json:"traffic,omitempty"`
}

// Result is an analysis verdict's outcome.
type Result string

// The verdicts.
const (
	ResultPass         Result = "pass"
	ResultFail         Result = "fail"
	ResultInconclusive Result = "inconclusive"
)

// Figures are the measurements behind a verdict, for one colour over one window.
type Figures struct {
	Color     route.Color   `json:"color"`
	Requests  uint64        `json:"requests"`
	Errors    uint64        `json:"errors"`
	ErrorRate float64       `json:"error_rate"` // fraction
	P99       time.Duration `json:"p99_ns"`
	RPS       float64       `json:"rps"`
}

// Verdict is one analysis decision with the figures that caused it.
type Verdict struct {
	Result    Result    `json:"result"`
	Reason    string    `json:"reason"` // human sentence with the figures, e.g. "green error rate 4.9% (n=1204) vs blue 0.1% ..."
	Candidate Figures   `json:"candidate"`
	Baseline  Figures   `json:"baseline"`
	PValue    float64   `json:"p_value,omitempty"`
	At        time.Time `json:"at"`
	// Database is the database's connection figures at the verdict, when
	// preflight.database is configured.
	Database *DatabaseFigures `json:"database,omitempty"`
}

// Event is one entry of a deployment's history and of the live event stream.
type Event struct {
	Time       time.Time `json:"time"`
	Service    string    `json:"service"`
	Deployment string    `json:"deployment"`
	// Type says what happened; see EventType.
	Type    EventType `json:"type"`
	Phase   Phase     `json:"phase,omitempty"`
	Weight  float64   `json:"weight"`
	Message string    `json:"message"`
	// Actor is who caused it: "user" (API call), "controller" (automatic), "daemon" (restart).
	Actor   string   `json:"actor"`
	Verdict *Verdict `json:"verdict,omitempty"`
	// Output is the end of what a hook printed (stdout and stderr
	// interleaved, at most HookOutputLimit bytes) or, for a webhook, its
	// answer's status line and the start of its body. Set on hook events
	// only, whether the hook passed or failed.
	Output string `json:"output,omitempty"`
}

// EventType is what an Event says happened. The values are part of the
// event stream's and history's JSON.
type EventType string

// The event types. A deployment that ends emits the outcome's own type
// (promoted, rolled_back, aborted, failed), or a decision when the
// controller rolled back by itself.
const (
	EventStarted    EventType = "started"     // a deployment began
	EventPhase      EventType = "phase"       // the phase changed
	EventStep       EventType = "step"        // a step of the shift began
	EventHook       EventType = "hook"        // a hook or a job's hooks passed, failed or were cancelled
	EventVerdict    EventType = "verdict"     // an analysis verdict (the stream only, unless it decides)
	EventDecision   EventType = "decision"    // an automatic decision, with the verdict behind it
	EventPromoted   EventType = "promoted"    // the candidate took all traffic
	EventRolledBack EventType = "rolled_back" // traffic went back to live or to the warm previous pool
	EventAborted    EventType = "aborted"     // a user aborted the deployment
	EventFailed     EventType = "failed"      // the deployment failed before user traffic moved
	EventRetired    EventType = "retired"     // a demoted or previous pool was stopped
	EventPaused     EventType = "paused"      // a user paused the deployment
	EventResumed    EventType = "resumed"     // a user or the restarted daemon resumed it
	EventDraining   EventType = "draining"    // a kept pool is drained before its colour is reused
	EventAdopted    EventType = "adopted"     // a running pool was taken as live over an empty store
	EventNotice     EventType = "notice"      // the daemon's start found the instances differ from their record
)

// eventOf is the event type of a deployment's outcome.
func eventOf(o Outcome) EventType { return EventType(o) }

// Deployment is one history record.
type Deployment struct {
	ID          string      `json:"id"`
	Service     string      `json:"service"`
	Version     string      `json:"version"`
	Color       route.Color `json:"color"`
	FromVersion string      `json:"from_version,omitempty"`
	Strategy    string      `json:"strategy"`
	StartedAt   time.Time   `json:"started_at"`
	EndedAt     time.Time   `json:"ended_at,omitzero"`
	Outcome     Outcome     `json:"outcome"`
	// Env names the release's own environment variables (`deploy --env`),
	// each with a hash of its value ("sha256:" and 12 hex digits), never
	// the value: two releases can be compared without exposing secrets.
	Env map[string]string `json:"env,omitempty"`
	// Reason says why it ended as it did, with figures for automatic decisions.
	Reason string  `json:"reason,omitempty"`
	Events []Event `json:"events"`
}

// StateSchema is the version of State's JSON encoding. Restore refuses any
// other version loudly instead of guessing.
const StateSchema = 1

// State is everything the controller of one service must remember across a
// crash. The executor persists it (Store.SaveState) before it performs the
// actions of a transition, so after a restart the router can be given the
// persisted weights first and the interrupted deployment resumes from here.
// All times are absolute. It is a plain value: the controller never shares
// one it may still change.
type State struct {
	Schema  int    `json:"schema"`
	Service string `json:"service"`
	Phase   Phase  `json:"phase"`
	// Live is the pool serving users; nil before the first deployment.
	Live *PoolRef `json:"live"`
	// Weight is the candidate's share of public traffic in percent; the
	// rest goes to Live.
	Weight float64 `json:"weight"`
	// Previous is the pool kept warm after a promotion.
	Previous *PreviousRef `json:"previous"`
	// ColorEnv is, per colour, the environment of the release promoted
	// there (Run.Env at its promotion), so that a lost live or previous
	// pool is started again as it was deployed.
	ColorEnv [2]map[string]string `json:"color_env,omitzero"`
	// Retiring is true once Previous is being drained and stopped; it can no
	// longer be rolled back to.
	Retiring bool `json:"retiring,omitempty"`
	// Promotion is the id of the deployment that made Live live; the
	// post_retire hooks that follow the retirement of Previous run in its
	// name and are recorded in its history.
	Promotion string `json:"promotion,omitempty"`
	// Run is the deployment under way, or one that is finishing (post-traffic
	// hooks, a demoted pool draining) while Phase is already idle.
	Run *Run `json:"run"`
	// Job is the slow work (start, hooks, drain and stop) the state requires;
	// the executor (re)starts it whenever its Seq differs from what it runs.
	Job *Job `json:"job"`
	// JobSeq numbers jobs; a job's result is ignored unless its Seq is current.
	JobSeq uint64 `json:"job_seq"`
	// Down is set while the service is out of service (see down.go).
	Down *Down `json:"down,omitempty"`
	// Policy holds the service's limits; the executor refreshes it from the
	// configuration on start.
	Policy  Policy    `json:"policy"`
	Updated time.Time `json:"updated"`
}

// Policy is the part of the service configuration the transition function
// needs; it lives in State so that Transition stays a pure function of
// (State, Observation).
type Policy struct {
	Interval         time.Duration `json:"interval"`
	MaxErrorRate     float64       `json:"max_error_rate"`
	MaxP99Latency    time.Duration `json:"max_p99_latency"`
	MinRequests      int           `json:"min_requests"`
	ProgressDeadline time.Duration `json:"progress_deadline"`
	KeepPrevious     time.Duration `json:"keep_previous"`
	QuietPeriod      time.Duration `json:"quiet_period"`
	// LatencyFactor is analysis.Criteria's: 0 for its default (2), < 0
	// disables the comparison with live's p99, as the daemon does when
	// the figures are CloudWatch's per-period percentiles, too coarse
	// for it; max_p99_latency still applies.
	LatencyFactor float64 `json:"latency_factor,omitempty"`
}

// Step is one resolved stage of a deployment's shift.
type Step struct {
	Weight float64       `json:"weight"` // percent on the candidate
	Pause  time.Duration `json:"pause"`
	Manual bool          `json:"manual,omitempty"` // hold until Promote
}

// Run is a deployment's controller-side state.
type Run struct {
	// Record is the deployment's history entry, saved with every change.
	Record    Deployment `json:"record"`
	Candidate PoolRef    `json:"candidate"`
	// Env is the release's own environment (`deploy --env`), given to the
	// candidate's instances; values in clear, so the state (mode 0600)
	// is the one place they are kept. The record has only their hashes.
	Env map[string]string `json:"env,omitempty"`
	// First is true for a service's first deployment, which goes live
	// directly once verified.
	First bool   `json:"first,omitempty"`
	Steps []Step `json:"steps"`
	// Step is the 0-based index of the current step; -1 before shifting.
	Step         int       `json:"step"`
	StepStarted  time.Time `json:"step_started,omitzero"`
	StepUntil    time.Time `json:"step_until,omitzero"` // end of the pause; zero for a manual gate
	Deadline     time.Time `json:"deadline,omitzero"`   // progress deadline; zero for a manual gate
	NextAnalysis time.Time `json:"next_analysis,omitzero"`
	PausedAt     time.Time `json:"paused_at,omitzero"`
	// Base holds both colours' cumulative counters when the step began
	// (indexed by colour); analysis judges the difference. A daemon restart
	// resets the router's counters, so the base is taken again then.
	Base    [2]metrics.Counts `json:"base"`
	Verdict *Verdict          `json:"verdict,omitempty"`
	// RetryAt is when a rolling-back run's cleanup job, deferred because
	// the candidate was the only healthy pool, runs again; Retries counts
	// those deferrals.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// SettleAt, when set, is when the step's weights have reached the
	// clients (a router that settles: DNS TTL); the analysis baseline is
	// taken again then.
	SettleAt time.Time `json:"settle_at,omitzero"`
	Retries  int       `json:"retries,omitempty"`
}

// JobKind names the slow work a state requires.
type JobKind string

// The jobs. Each is idempotent: running it again after a crash converges.
const (
	// JobPreProvision runs the pre_provision hooks before the candidate is
	// started (the expand migration); nothing runs in the candidate's
	// colour yet, and a kept previous pool there is still kept.
	JobPreProvision JobKind = "pre_provision"
	// JobStart starts the candidate pool and waits until the router sees it
	// healthy. When the colour still holds the kept previous pool of
	// another version (Job.Replaces), it drains that pool first.
	JobStart JobKind = "start"
	// JobPreTraffic runs the pre_traffic hooks against the candidate.
	JobPreTraffic JobKind = "pre_traffic"
	// JobPostTraffic runs the post_traffic hooks after a promotion.
	JobPostTraffic JobKind = "post_traffic"
	// JobPostPromote runs the post_promote hooks after the post_traffic
	// ones, once per promotion.
	JobPostPromote JobKind = "post_promote"
	// JobPostRetire runs the post_retire hooks once the previous pool of a
	// promotion has been retired after keep_previous (the contract
	// migration: no old version runs any more). Job.Retired names that
	// pool; Color and Version are the live pool's.
	JobPostRetire JobKind = "post_retire"
	// JobRollback runs the on_rollback hooks, then drains and stops the candidate.
	JobRollback JobKind = "rollback"
	// JobStop drains and stops a candidate that never took user traffic.
	JobStop JobKind = "stop"
	// JobRetire drains a pool, waits until it has been quiet for the quiet
	// period and stops it (the previous pool after keep_previous, or the
	// pool demoted by a rollback).
	//
	// JobRollback, JobStop and JobRetire never stop a pool that still has
	// healthy instances while the live colour has none (the router would be
	// serving from it): the job is deferred and retried (see liveServes).
	JobRetire JobKind = "retire"
)

// Job is one unit of slow work.
type Job struct {
	Seq        uint64      `json:"seq"`
	Kind       JobKind     `json:"kind"`
	Color      route.Color `json:"color"`
	Version    string      `json:"version"`
	Deployment string      `json:"deployment,omitempty"`
	// Reason is passed to on_rollback hooks as REASON.
	Reason string `json:"reason,omitempty"`
	// Replaces is the version of the kept previous pool a start job
	// replaces in its colour ("" when the colour is free or runs Version).
	Replaces string `json:"replaces,omitempty"`
	// Hook is how many hooks of the job's list have passed. Each one that
	// passes is persisted (ObsHookDone) before the next starts, so a job
	// run again after a restart starts with the hook that was interrupted
	// and never runs one that passed again.
	Hook int `json:"hook,omitempty"`
	// Retired is the pool a post_retire job follows.
	Retired *PoolRef `json:"retired,omitempty"`
}
