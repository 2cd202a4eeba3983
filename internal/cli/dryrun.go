package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/traffic"
)

// dryRun prints the AWS calls a deployment of the service would make,
// from the configuration file; it changes nothing. The live colour is
// the daemon's when it answers, else blue.
func (a *app) dryRun(o *opts, service, version string) int {
	cfg, err := config.Load(o.daemonConfig)
	if err != nil {
		return a.fail(fmt.Errorf("deploy --dry-run: %w", err))
	}
	sc := cfg.Services[service]
	if sc == nil {
		return a.fail(fmt.Errorf("deploy --dry-run: %s has no service %q", o.daemonConfig, service))
	}
	var confSteps []deploy.Step
	for _, s := range sc.Strategy.Steps {
		confSteps = append(confSteps, deploy.Step{Weight: s.Weight, Pause: s.Pause, Manual: s.Manual})
	}
	steps, err := deploy.Steps(o.strategy, confSteps)
	if err != nil {
		return a.usageError(nil, fmt.Sprintf("deploy --dry-run: %v", err))
	}
	in := traffic.PlanInput{Alarms: sc.Strategy.Analysis.Alarms}
	for _, s := range steps {
		in.Steps = append(in.Steps, s.Weight)
	}
	live := "blue (assumed: the daemon did not answer)"
	ctx, cancel := context.WithTimeout(a.ctx, 3*time.Second)
	if st, err := a.client().Status(ctx, service); err == nil && st.Live != nil {
		in.Live, live = st.Live.Color, st.Live.Color.String()
	}
	cancel()
	t := sc.Traffic
	switch {
	case t.ALB != nil:
		in.ALB = &traffic.ALBPlan{ListenerARN: t.ALB.ListenerARN, RuleARN: t.ALB.RuleARN, TestListenerARN: t.ALB.TestListenerARN,
			TargetGroups: [2]string{t.ALB.TargetGroups.Blue, t.ALB.TargetGroups.Green}}
	case t.Route53 != nil:
		r := t.Route53
		in.Route53 = &traffic.Route53Plan{ZoneID: r.HostedZoneID, Record: r.Record, Type: r.Type, PreviewRecord: r.PreviewRecord,
			TTLSeconds: int64(r.TTL / time.Second), Targets: [2]string{r.Targets.Blue.Alias, r.Targets.Green.Alias},
			TargetGroups: [2]string{r.TargetGroups.Blue, r.TargetGroups.Green}}
	default:
		fmt.Fprintf(a.stdout, "%s %s: the embedded router moves the traffic; no AWS call would be made\n", service, version)
		return ExitOK
	}
	fmt.Fprintf(a.stdout, "%s %s: live %s, candidate %s; the AWS calls, in order (nothing is called now):\n", service, version, live, in.Live.Other())
	for _, line := range traffic.Plan(in) {
		fmt.Fprintln(a.stdout, "  "+line)
	}
	return ExitOK
}
