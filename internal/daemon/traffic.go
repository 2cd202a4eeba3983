package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/cutover/cutover/internal/analysis/cloudwatch"
	"github.com/cutover/cutover/internal/awsconf"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/alb"
	"github.com/cutover/cutover/internal/traffic/route53"
)

// This file chooses what moves a service's traffic (traffic.alb,
// traffic.route53, or the embedded router) and wires the AWS drivers:
// SDK configuration, the CloudWatch analysis source and alarm gate, the
// ledger of what was last written, and the background pollers.

// cloudWatchLatencyFactor turns off the analysis's comparison with the
// live colour's p99 when the figures come from CloudWatch: per-period
// percentiles of a colour with few requests per period are close to its
// maximum, so a candidate at 10% would look slower than live by
// arithmetic alone. strategy.analysis.max_p99_latency still applies.
const cloudWatchLatencyFactor = -1

// awsTraffic is a service's AWS traffic driver and what runs beside it.
type awsTraffic struct {
	router deploy.Router
	// elb and tgs are where a process runtime's instances are registered
	// (traffic.alb, and traffic.route53 with target_groups).
	elb    *elb.Client
	tgs    [2]string
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the driver's pollers and waits for them.
func (t *awsTraffic) stop() {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
}

// startTraffic builds the service's AWS traffic driver, or returns nil
// for the embedded router. local is the embedded proxy, which the AWS
// driver keeps in step. onAlarm receives alarms in ALARM.
func (d *Daemon) startTraffic(ctx context.Context, stateDir string, sc *config.Service, local deploy.Router,
	onAlarm func(name, reason string), log *slog.Logger) (*awsTraffic, error) {
	t := sc.Traffic
	if t.Embedded() {
		return nil, nil
	}
	region := ""
	if t.ALB != nil {
		region = t.ALB.Region
	} else {
		region = t.Route53.Region
	}
	cfg, err := awsconf.Load(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("service %s: traffic: %w", sc.Name, err)
	}
	// strategy.analysis.cloudwatch: the metric period and CloudWatch's
	// publication delay (validated by config).
	period, delay := sc.Strategy.Analysis.CloudWatch.Period, sc.Strategy.Analysis.CloudWatch.Delay
	ledger, err := traffic.OpenLedger(filepath.Join(stateDir, "traffic-"+sc.Name+".json"))
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", sc.Name, err)
	}
	var tgs [2]string
	var lbDim [2]string
	if t.ALB != nil {
		tgs = [2]string{t.ALB.TargetGroups.Blue, t.ALB.TargetGroups.Green}
		dim := cloudwatch.LoadBalancerDimension(t.ALB.ListenerARN)
		lbDim = [2]string{dim, dim}
	} else {
		tgs = [2]string{t.Route53.TargetGroups.Blue, t.Route53.TargetGroups.Green}
	}
	elbc := elb.NewFromConfig(cfg)
	if t.Route53 != nil {
		for _, c := range route.Colors {
			if tgs[c] != "" {
				lbDim[c] = loadBalancerOf(ctx, elbc, tgs[c], log)
			}
		}
	}
	var colors [2]cloudwatch.Dimensions
	for _, c := range route.Colors {
		colors[c] = cloudwatch.Dimensions{TargetGroup: cloudwatch.TargetGroupDimension(tgs[c]), LoadBalancer: lbDim[c]}
	}
	src := cloudwatch.New(cloudwatch.Options{Client: cw.NewFromConfig(cfg), Colors: colors, Period: period, Delay: delay,
		Poll: min(period, time.Second), Alarms: sc.Strategy.Analysis.Alarms, OnAlarm: onAlarm, Logger: log})
	lag := countsLag(period, delay, tgs)
	out := &awsTraffic{done: make(chan struct{}), elb: elbc, tgs: tgs}
	var run func(context.Context)
	if a := t.ALB; a != nil {
		r, err := alb.New(alb.Options{Service: sc.Name, Client: elbc, ListenerARN: a.ListenerARN, RuleARN: a.RuleARN,
			TestListenerARN: a.TestListenerARN, TargetGroups: tgs, Counts: src, Ledger: ledger, Local: local,
			Poll: sc.Health.Interval, Alarms: src.Alarms, LoadBalancer5xx: src.LoadBalancer5xx, CountsLag: lag, Logger: log})
		if err != nil {
			return nil, err
		}
		out.router, run = r, r.Run
	} else {
		rt := t.Route53
		r, err := route53.New(route53.Options{Service: sc.Name, Client: r53.NewFromConfig(cfg), ZoneID: rt.HostedZoneID,
			Record: rt.Record, Type: rt.Type, TTL: rt.TTL, PreviewRecord: rt.PreviewRecord,
			Targets: [2]route53.Target{{Value: rt.Targets.Blue.Alias, Zone: rt.Targets.Blue.Zone}, {Value: rt.Targets.Green.Alias, Zone: rt.Targets.Green.Zone}},
			Counts:  src, Ledger: ledger, Local: local, Alarms: src.Alarms, LoadBalancer5xx: src.LoadBalancer5xx, CountsLag: lag, Logger: log})
		if err != nil {
			return nil, err
		}
		out.router, run = r, r.Run
		if rt.FailoverRecord != "" {
			vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			site, err := r.VerifyFailover(vctx, rt.FailoverRecord)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("service %s: traffic.route53.failover_record: %w", sc.Name, err)
			}
			log.Info("failover to the catch-all site verified", "record", rt.FailoverRecord, "secondary", site)
		}
	}
	tctx, cancel := context.WithCancel(ctx)
	out.cancel = cancel
	go func() {
		defer close(out.done)
		go src.Run(tctx)
		run(tctx)
	}()
	return out, nil
}

// countsLag is how long the CloudWatch counts trail what a colour served:
// a request is counted once its period has ended (period), CloudWatch has
// published it (delay) and the source has polled (min(period, 1s)). The
// quiet period before a pool stops is waited on top of it. Without target
// groups there are no counts to wait for.
func countsLag(period, delay time.Duration, tgs [2]string) time.Duration {
	if tgs[0] == "" && tgs[1] == "" {
		return 0
	}
	return period + delay + min(period, time.Second)
}

// loadBalancerOf finds the CloudWatch LoadBalancer dimension of a target
// group (its first load balancer), "" when it cannot.
func loadBalancerOf(ctx context.Context, c *elb.Client, tg string, log *slog.Logger) string {
	out, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{tg}})
	if err != nil || len(out.TargetGroups) == 0 || len(out.TargetGroups[0].LoadBalancerArns) == 0 {
		log.Warn("target group's load balancer not found: its metrics are read without the LoadBalancer dimension", "target_group", tg, "err", err)
		return ""
	}
	return cloudwatch.LoadBalancerDimension(out.TargetGroups[0].LoadBalancerArns[0])
}

// registerTargets makes a process runtime's pool the members of its
// colour's ALB target group: the ALB's data plane forwards to the
// instances' addresses.
func (t *awsTraffic) registerTargets(color route.Color, insts []runtime.Instance, log *slog.Logger) {
	if t == nil || t.tgs[color&1] == "" {
		return
	}
	addrs := make([]string, 0, len(insts))
	for _, in := range insts {
		if _, _, err := net.SplitHostPort(in.Addr); err == nil {
			addrs = append(addrs, strings.TrimPrefix(in.Addr, "http://"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := alb.SetTargets(ctx, t.elb, t.tgs[color&1], addrs, log.With("color", color)); err != nil {
		log.Error("updating the ALB target group", "color", color, "err", err)
	}
}

// awsAnalysisChanges names the strategy.analysis keys that the AWS
// traffic driver's CloudWatch source took at start (alarms, cloudwatch):
// a reload cannot change them, although the rest of strategy reloads.
func awsAnalysisChanges(a, b config.Service) []string {
	if a.Traffic.Embedded() && b.Traffic.Embedded() {
		return nil
	}
	var out []string
	if !slices.Equal(a.Strategy.Analysis.Alarms, b.Strategy.Analysis.Alarms) {
		out = append(out, "strategy.analysis.alarms")
	}
	if a.Strategy.Analysis.CloudWatch != b.Strategy.Analysis.CloudWatch {
		out = append(out, "strategy.analysis.cloudwatch")
	}
	return out
}

// alarmGate rolls back the running deployment of svc when one of its
// alarms is in ALARM, with the alarm's reason.
func alarmGate(svc *service) func(name, reason string) {
	return func(name, reason string) {
		c := svc.ctrl
		if c == nil {
			return
		}
		st := c.Status()
		if st.Candidate == nil || (st.Phase != deploy.PhaseShifting && st.Phase != deploy.PhasePaused) {
			return
		}
		c.PoolFailed(st.Candidate.Color, st.Candidate.Version, fmt.Errorf("CloudWatch alarm %q is in ALARM: %s", name, reason))
	}
}
