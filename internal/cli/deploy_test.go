package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/cli"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// scriptDeployment makes b run every deployment like a controller would:
// shifting at 10% with a verdict, then ending with outcome and reason.
// With events false it emits nothing and only status and history change.
func scriptDeployment(b *apitest.Backend, outcome deploy.Outcome, reason string, events bool) {
	b.OnDeploy = func(service, version, strategy string) (deploy.Deployment, error) {
		d := deploy.Deployment{ID: "d-7", Service: service, Version: version, Color: route.Green,
			FromVersion: "v1", Strategy: "steps", StartedAt: t0, Outcome: deploy.OutcomeRunning}
		b.SetHistory(service, []deploy.Deployment{d})
		verdict := &deploy.Verdict{Result: deploy.ResultPass, Reason: "green error rate 0.0% (n=120) within 1%",
			Candidate: deploy.Figures{Color: route.Green, Requests: 120, RPS: 12, P99: 20 * time.Millisecond}}
		b.SetStatus(deploy.Status{Service: service, Phase: deploy.PhaseShifting,
			Live: &deploy.PoolRef{Color: route.Blue, Version: "v1"}, Candidate: &deploy.PoolRef{Color: route.Green, Version: version},
			Weights:    map[string]float64{"blue": 90, "green": 10},
			Deployment: &deploy.DeploymentRef{ID: d.ID, Version: version, Step: 1, Steps: 2, StartedAt: t0},
			Analysis:   verdict})
		ev := func(typ deploy.EventType, w float64, msg string, v *deploy.Verdict) {
			if events {
				b.Emit(deploy.Event{Time: t0, Service: service, Deployment: d.ID, Type: typ, Weight: w, Message: msg, Actor: "controller", Verdict: v})
			}
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			b.Emit(deploy.Event{Time: t0, Service: service, Deployment: "d-other", Type: "step", Message: "not ours"})
			ev("step", 10, "10% of traffic on green", nil)
			ev("verdict", 10, "", verdict)
			time.Sleep(700 * time.Millisecond) // long enough for a status poll to see step 1
			final := d
			final.Outcome, final.Reason, final.EndedAt = outcome, reason, t0.Add(95*time.Second)
			b.SetHistory(service, []deploy.Deployment{final})
			b.SetStatus(deploy.Status{Service: service, Phase: deploy.PhaseIdle,
				Live: &deploy.PoolRef{Color: route.Blue, Version: "v1"}, Weights: map[string]float64{"blue": 100, "green": 0}})
			ev(deploy.EventType(outcome), 0, reason, nil)
		}()
		return d, nil
	}
}

func TestDeployWait(t *testing.T) {
	tests := []struct {
		name    string
		outcome deploy.Outcome
		events  bool
		code    int
		want    []string
	}{
		{"promoted", deploy.OutcomePromoted, true, 0,
			[]string{"web: deploying v2 to green (deployment d-7)", "step        weight 10% 10% of traffic on green",
				"verdict     [pass: green error rate 0.0% (n=120) within 1%]", "web v2: promoted after 1m35s"}},
		{"rolled back", deploy.OutcomeRolledBack, true, 3,
			[]string{"web v2: rolled back after 1m35s: green error rate 4.9% above 1%"}},
		{"aborted", deploy.OutcomeAborted, true, 3, []string{"web v2: aborted"}},
		{"failed", deploy.OutcomeFailed, true, 3, []string{"web v2: failed"}},
		{"rolled back, no event stream", deploy.OutcomeRolledBack, false, 3,
			[]string{"phase shifting, step 1/2, weights blue 90 / green 10", "web v2: rolled back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := apitest.New("web")
			reason := ""
			if tt.outcome != deploy.OutcomePromoted {
				reason = "green error rate 4.9% above 1%"
			}
			scriptDeployment(b, tt.outcome, reason, tt.events)
			if !tt.events {
				b.SetError("subscribe", fmt.Errorf("events: %w", api.ErrNotSupported))
			}
			url := daemon(t, b, api.Options{})
			r := run(t, url, "", "deploy", "web", "v2", "--wait")
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "not ours") {
				t.Errorf("another deployment's event shown:\n%s", r.stdout)
			}
			if strings.Contains(r.stdout, "\x1b[") {
				t.Errorf("terminal escapes in non-terminal output:\n%q", r.stdout)
			}
		})
	}
}

func TestDeployWaitJSON(t *testing.T) {
	b := apitest.New("web")
	scriptDeployment(b, deploy.OutcomeRolledBack, "too many errors", true)
	url := daemon(t, b, api.Options{})
	r := run(t, url, "", "deploy", "--json", "web", "v2", "--wait")
	if r.code != 3 {
		t.Fatalf("exit %d, want 3: %s %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 3 events and the deployment, one JSON object a line; got %d:\n%s", len(lines), r.stdout)
	}
	var types []string
	for _, l := range lines[:3] {
		var ev deploy.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("event line %q: %v", l, err)
		}
		types = append(types, string(ev.Type))
	}
	if got := strings.Join(types, ","); got != "step,verdict,rolled_back" {
		t.Errorf("event types %s", got)
	}
	var d deploy.Deployment
	if err := json.Unmarshal([]byte(lines[3]), &d); err != nil || d.Outcome != deploy.OutcomeRolledBack || d.Reason != "too many errors" {
		t.Fatalf("final line %q: %+v %v", lines[3], d, err)
	}
}

func TestDeployWithoutWait(t *testing.T) {
	b := apitest.New("web")
	url := daemon(t, b, api.Options{})
	r := run(t, url, "", "deploy", "web", "v2", "--json")
	var d deploy.Deployment
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != 0 || d.Version != "v2" || d.Outcome != deploy.OutcomeRunning {
		t.Fatalf("deploy --json: %d %v %q", r.code, err, r.stdout)
	}
}

// TestDeployWaitInterrupted: Ctrl-C stops following, not the deployment.
func TestDeployWaitInterrupted(t *testing.T) {
	b := apitest.New("web")
	url := daemon(t, b, api.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"CUTOVER_API": url}
	code := cli.MainWith(ctx, []string{"deploy", "web", "v2", "--wait"}, func(k string) string { return env[k] },
		strings.NewReader(""), &stdout, &stderr, cli.Commands{})
	if code != 1 || !strings.Contains(stderr.String(), "it continues (`cutover abort web` stops it)") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	for _, c := range b.Calls() {
		if strings.HasPrefix(c, "[abort") || strings.HasPrefix(c, "[rollback") {
			t.Fatalf("interrupting the CLI changed the deployment: %v", b.Calls())
		}
	}
}
