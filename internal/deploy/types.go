package deploy

import (
	"time"

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
}

// Event is one entry of a deployment's history and of the live event stream.
type Event struct {
	Time       time.Time `json:"time"`
	Service    string    `json:"service"`
	Deployment string    `json:"deployment"`
	// Type is one of: started, phase, step, hook, verdict, decision, promoted,
	// rolled_back, aborted, failed, retired, paused, resumed.
	Type    string  `json:"type"`
	Phase   Phase   `json:"phase,omitempty"`
	Weight  float64 `json:"weight"`
	Message string  `json:"message"`
	// Actor is who caused it: "user" (API call), "controller" (automatic), "daemon" (restart).
	Actor   string   `json:"actor"`
	Verdict *Verdict `json:"verdict,omitempty"`
}

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
	// Reason says why it ended as it did, with figures for automatic decisions.
	Reason string  `json:"reason,omitempty"`
	Events []Event `json:"events"`
}
