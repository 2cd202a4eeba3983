package traffic

import (
	"fmt"
	"math"
	"strings"

	"github.com/cutover/cutover/internal/route"
)

// This file is the dry run: the AWS calls a deployment would make, in
// order, for `cutover deploy --dry-run`. It calls nothing.

// ALBPlan describes traffic.alb for Plan.
type ALBPlan struct {
	ListenerARN, RuleARN, TestListenerARN string
	TargetGroups                          [2]string
}

// Route53Plan describes traffic.route53 for Plan.
type Route53Plan struct {
	ZoneID, Record, Type, PreviewRecord string
	TTLSeconds                          int64
	Targets                             [2]string
	TargetGroups                        [2]string
}

// PlanInput is what a dry run knows: the router, the live colour, the
// steps' weights (percent; empty = all at once) and the alarms.
type PlanInput struct {
	ALB     *ALBPlan
	Route53 *Route53Plan
	Live    route.Color
	Steps   []float64
	Alarms  []string
}

// Plan lists the AWS calls of one deployment, one per line.
func Plan(in PlanInput) []string {
	cand := in.Live.Other()
	weights := append(append([]float64{}, in.Steps...), 100)
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch {
	case in.ALB != nil:
		a := in.ALB
		tg := a.TargetGroups
		if a.TestListenerARN != "" {
			add("elasticloadbalancing:ModifyListener ListenerArn=%s DefaultActions=[forward %s] (preview on the candidate %s)", a.TestListenerARN, tg[cand], cand)
		}
		res, op, field := a.ListenerARN, "ModifyListener ListenerArn", "DefaultActions"
		read := "elasticloadbalancing:DescribeListeners ListenerArns=" + a.ListenerARN
		if a.RuleARN != "" {
			res, op, field = a.RuleARN, "ModifyRule RuleArn", "Actions"
			read = "elasticloadbalancing:DescribeRules RuleArns=" + a.RuleARN
		}
		for _, w := range weights {
			c := int64(math.Round(w * 10))
			keep := min(1000-c, 999)
			add("elasticloadbalancing:DescribeTargetHealth TargetGroupArn=%s (refuse weight without a healthy target)", tg[cand])
			if keep > 0 {
				add("elasticloadbalancing:DescribeTargetHealth TargetGroupArn=%s", tg[in.Live])
			}
			add("%s (refuse unless it holds what cutover last wrote)", read)
			add("elasticloadbalancing:%s=%s %s=[forward %s weight %d, %s weight %d] (%g%% on %s)", op, res, field, tg[in.Live], keep, tg[cand], min(c, 999), w, cand)
			if w < 100 {
				add("monitoring:GetMetricData RequestCount, HTTPCode_Target_5XX_Count, TargetConnectionErrorCount, TargetResponseTime p50/p90/p99 of %s and %s (every period, through the step)", dim(tg[in.Live]), dim(tg[cand]))
				if len(in.Alarms) > 0 {
					add("monitoring:DescribeAlarms AlarmNames=%s (every poll; any in ALARM rolls back)", strings.Join(in.Alarms, ","))
				}
			}
		}
		add("elasticloadbalancing:DescribeTargetGroupAttributes TargetGroupArn=%s (deregistration delay, before %s is retired)", tg[in.Live], in.Live)
		add("monitoring:GetMetricData RequestCount of %s until it has been 0 for quiet_period", dim(tg[in.Live]))
	case in.Route53 != nil:
		r := in.Route53
		if r.PreviewRecord != "" {
			add("route53:ChangeResourceRecordSets HostedZoneId=%s UPSERT %s %s -> %s (preview on the candidate %s)", r.ZoneID, r.PreviewRecord, r.Type, r.Targets[cand], cand)
		}
		for _, w := range weights {
			c := int64(math.Round(w * 2.55))
			add("route53:ListResourceRecordSets HostedZoneId=%s StartRecordName=%s (refuse unless both records hold what cutover last wrote)", r.ZoneID, r.Record)
			add("route53:ChangeResourceRecordSets HostedZoneId=%s [UPSERT %s %s SetIdentifier=%s Weight=%d -> %s, UPSERT %s %s SetIdentifier=%s Weight=%d -> %s] (%g%% on %s)",
				r.ZoneID, r.Record, r.Type, in.Live, 255-c, r.Targets[in.Live], r.Record, r.Type, cand, c, r.Targets[cand], w, cand)
			add("route53:GetChange Id=<change> until INSYNC; then wait the TTL %ds before the step's clock and analysis start", r.TTLSeconds)
			if w < 100 && r.TargetGroups[cand] != "" {
				add("monitoring:GetMetricData of %s and %s (every period, through the step)", dim(r.TargetGroups[in.Live]), dim(r.TargetGroups[cand]))
			}
			if w < 100 && len(in.Alarms) > 0 {
				add("monitoring:DescribeAlarms AlarmNames=%s (every poll; any in ALARM rolls back)", strings.Join(in.Alarms, ","))
			}
		}
		add("(wait the TTL %ds since %s's weight reached 0)", r.TTLSeconds, in.Live)
		if r.TargetGroups[in.Live] != "" {
			add("monitoring:GetMetricData RequestCount of %s until it has been 0 for quiet_period", dim(r.TargetGroups[in.Live]))
		}
	}
	return out
}

func dim(tgARN string) string {
	if i := strings.Index(tgARN, ":targetgroup/"); i >= 0 {
		return tgARN[i+1:]
	}
	return tgARN
}
