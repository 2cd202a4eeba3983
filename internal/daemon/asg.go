package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/awsconf"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/asg"
)

// This file wires runtime.asg: the driver's options from the
// configuration, the adoption of the groups at start-up, and the drift
// check a deployment passes first unless --allow-drift.

// asgOptions maps runtime.asg (and the ALB's target groups, which a
// group deleted by delete_group is created again with) to the driver's options.
func asgOptions(ctx context.Context, sc *config.Service, lis runtime.Listener, log *slog.Logger) (asg.Options, error) {
	a := sc.Runtime.ASG
	cfg, err := awsconf.Load(ctx, a.Region)
	if err != nil {
		return asg.Options{}, fmt.Errorf("service %s: runtime.asg: %w", sc.Name, err)
	}
	o := asg.Options{
		Service: sc.Name, Groups: [2]string{a.Groups.Blue, a.Groups.Green}, LaunchTemplate: a.LaunchTemplate.Name,
		VersionFrom: asg.VersionFrom(a.VersionFrom), Capacity: a.Capacity, WhenRetired: asg.Retire(a.WhenRetired),
		StartTimeout: a.StartTimeout, Poll: a.Poll, Port: a.Port, AWS: cfg, Listener: lis, Logger: log,
	}
	if alb := sc.Traffic.ALB; alb != nil {
		o.TargetGroups = [2][]string{{alb.TargetGroups.Blue}, {alb.TargetGroups.Green}}
	}
	return o, nil
}

// adoptGroups takes the groups as they are after Restore: the pools the
// state says serve get their healthy instances at once; what differs from
// the state is shown in status.
func (d *Daemon) adoptGroups(ctx context.Context, svc *service, drv *asg.Driver) error {
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	notices, err := drv.Adopt(actx, svc.ctrl.Serving())
	if err != nil {
		return err
	}
	svc.notices = append(svc.notices, notices...)
	for _, n := range notices {
		svc.log.Warn("adopting the auto scaling groups", "notice", n)
		d.publish(deploy.Event{Time: time.Now(), Service: svc.name, Type: deploy.EventNotice, Actor: deploy.ActorDaemon, Message: n})
	}
	return nil
}

// checkDrift refuses a deployment of version when the colour it would go
// to differs from the live one in what should be the same (the
// write-ups' snowflakes), naming each difference, unless ctx carries
// --allow-drift. Only the asg runtime has such a check.
func checkDrift(ctx context.Context, svc *service, version string) error {
	drv, ok := svc.driver.(*asg.Driver)
	if !ok {
		return nil
	}
	st := svc.ctrl.Status()
	if st.Phase != deploy.PhaseIdle || st.Down {
		return nil // the controller refuses it with its own reason
	}
	cand := route.Blue
	if st.Live != nil {
		cand = st.Live.Color.Other()
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	diffs, err := drv.Drift(dctx, cand, version)
	if err != nil {
		return fmt.Errorf("deploy %s %s: drift check: %w", svc.name, version, err)
	}
	if len(diffs) == 0 {
		return nil
	}
	if api.AllowDrift(ctx) {
		svc.log.Warn("deploying despite drift (--allow-drift)", "version", version, "differences", strings.Join(diffs, "; "))
		return nil
	}
	return classified{fmt.Errorf("deploy %s %s: refused: %s would not run like %s (deploy --allow-drift to go ahead): %s",
		svc.name, version, cand, cand.Other(), strings.Join(diffs, "; ")), api.ErrConflict}
}

// ASGDescriber describes the colours of a service whose runtime is asg,
// for `cutover diff` and the preflight's drift check run from the command
// line (no daemon): it reads the groups and launch template through the
// SDK's default chain and starts nothing.
func ASGDescriber(ctx context.Context, sc *config.Service) (runtime.Describer, error) {
	o, err := asgOptions(ctx, sc, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return asg.NewDescriber(o)
}
