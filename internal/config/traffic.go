package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Traffic says what moves a service's public traffic. At most one of ALB
// and Route53 is set; with neither, the embedded router does.
type Traffic struct {
	ALB     *ALB
	Route53 *Route53
}

// Embedded reports whether the embedded router moves the traffic.
func (t Traffic) Embedded() bool { return t.ALB == nil && t.Route53 == nil }

// ALB moves traffic with the weights of a listener's (or rule's) forward
// action over two target groups (traffic.alb).
type ALB struct {
	// Region is the ALB's region; "" takes AWS_REGION / the profile's.
	Region string
	// ListenerARN is the production listener whose default action cutover
	// writes (unless RuleARN is set).
	ListenerARN string
	// RuleARN, when set, is the listener rule cutover writes instead of
	// the default action.
	RuleARN string
	// TargetGroups are the blue and green target groups.
	TargetGroups ColorARNs
	// TestListenerARN, when set, is the preview listener: cutover points
	// its default action at the candidate's target group.
	TestListenerARN string
}

// ColorARNs holds one ARN per colour.
type ColorARNs struct {
	Blue, Green string
}

// Route53 moves traffic with two weighted records (set identifiers blue
// and green) of one name (traffic.route53).
type Route53 struct {
	Region       string
	HostedZoneID string
	// Record is the record name, e.g. api.example.com.
	Record string
	// Type is A (alias records) or CNAME; default A.
	Type string
	// TTL is the records' TTL (CNAME), and how long cutover waits after
	// a change is INSYNC before it judges or retires; default 60s.
	TTL time.Duration
	// Targets are each colour's alias target (or CNAME value).
	Targets RecordTargets
	// PreviewRecord, when set, is a simple record cutover points at the
	// candidate's target.
	PreviewRecord string
	// TargetGroups optionally name each colour's ALB target group, whose
	// CloudWatch metrics feed the analysis and the quiet check.
	TargetGroups ColorARNs
	// FailoverRecord, when set, names the failover pair (PRIMARY: an
	// alias of Record; SECONDARY: the static catch-all site) that is
	// verified at start.
	FailoverRecord string
}

// RecordTargets holds each colour's record target.
type RecordTargets struct {
	Blue, Green RecordTarget
}

// RecordTarget is an alias target (Alias and its hosted Zone) or, for a
// CNAME record, the name in Alias with Zone empty.
type RecordTarget struct {
	Alias string
	Zone  string
}

func (d *decoder) traffic(n *yaml.Node, key string, t *Traffic) {
	d.mapping(n, key, fields{
		"alb": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			a := &ALB{}
			t.ALB = a
			d.mapping(n, key, fields{
				"region":            d.str(&a.Region),
				"listener_arn":      d.str(&a.ListenerARN),
				"rule_arn":          d.str(&a.RuleARN),
				"target_groups":     d.colorARNs(&a.TargetGroups),
				"test_listener_arn": d.str(&a.TestListenerARN),
			})
		},
		"route53": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			r := &Route53{Type: "A", TTL: 60 * time.Second}
			t.Route53 = r
			target := func(dst *RecordTarget) setter {
				return func(key string, n *yaml.Node) {
					d.mapping(n, key, fields{"alias": d.str(&dst.Alias), "zone": d.str(&dst.Zone)})
				}
			}
			d.mapping(n, key, fields{
				"region":         d.str(&r.Region),
				"hosted_zone_id": d.str(&r.HostedZoneID),
				"record":         d.str(&r.Record),
				"type":           d.str(&r.Type),
				"ttl":            d.duration(&r.TTL),
				"targets": func(key string, n *yaml.Node) {
					d.mapping(n, key, fields{"blue": target(&r.Targets.Blue), "green": target(&r.Targets.Green)})
				},
				"preview_record":  d.str(&r.PreviewRecord),
				"target_groups":   d.colorARNs(&r.TargetGroups),
				"failover_record": d.str(&r.FailoverRecord),
			})
		},
	})
}

// CloudWatchMetrics is how the CloudWatch analysis source reads a
// colour's metrics (strategy.analysis.cloudwatch).
type CloudWatchMetrics struct {
	// Period is the metric period: 1s, 5s, 10s or 30s (high-resolution
	// metrics) or a multiple of 60s; default 60s.
	Period time.Duration
	// Delay is how long after a period ends CloudWatch has published all
	// of it; a period is counted only then. Default 60s.
	Delay time.Duration
}

func (d *decoder) cloudWatch(dst *CloudWatchMetrics) setter {
	return func(key string, n *yaml.Node) {
		d.mapping(n, key, fields{"period": d.duration(&dst.Period), "delay": d.duration(&dst.Delay)})
	}
}

// validCloudWatchPeriod reports whether CloudWatch accepts p as a
// GetMetricData period: 1, 5, 10, 30 or a multiple of 60 seconds.
func validCloudWatchPeriod(p time.Duration) bool {
	switch p {
	case time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second:
		return true
	}
	return p > 0 && p%time.Minute == 0
}

func (d *decoder) colorARNs(dst *ColorARNs) setter {
	return func(key string, n *yaml.Node) {
		d.mapping(n, key, fields{"blue": d.str(&dst.Blue), "green": d.str(&dst.Green)})
	}
}

// ARN shapes cutover checks before it calls AWS (the account and region
// parts are checked for shape only).
var (
	listenerARN    = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[A-Za-z0-9-]{1,32}/[0-9a-f]+/[0-9a-f]+$`)
	ruleARN        = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener-rule/app/[A-Za-z0-9-]{1,32}/[0-9a-f]+/[0-9a-f]+/[0-9a-f]+$`)
	targetGroupARN = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$`)
	hostedZoneID   = regexp.MustCompile(`^[A-Z0-9]{1,32}$`)
	alarmName      = regexp.MustCompile(`^[^\x00-\x1f]{1,255}$`)
)

// traffic validates traffic and strategy.analysis.alarms of service s.
func (v *validator) traffic(key string, s *Service) {
	t := s.Traffic
	if t.ALB != nil && t.Route53 != nil {
		v.add(key, "set alb or route53, not both")
	}
	if a := t.ALB; a != nil {
		k := key + ".alb"
		v.arn(k+".listener_arn", a.ListenerARN, listenerARN, "a listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)", true)
		v.arn(k+".rule_arn", a.RuleARN, ruleARN, "a listener rule ARN (…:listener-rule/app/NAME/ID/ID/ID)", false)
		v.arn(k+".test_listener_arn", a.TestListenerARN, listenerARN, "a listener ARN", false)
		if a.TestListenerARN != "" && a.TestListenerARN == a.ListenerARN {
			v.add(k+".test_listener_arn", "must differ from listener_arn: the preview would move production traffic")
		}
		v.colorARNs(k+".target_groups", a.TargetGroups, true)
		v.sameRegion(k, a.Region, a.ListenerARN, a.RuleARN, a.TestListenerARN, a.TargetGroups.Blue, a.TargetGroups.Green)
	}
	if r := t.Route53; r != nil {
		k := key + ".route53"
		if !hostedZoneID.MatchString(r.HostedZoneID) {
			v.add(k+".hosted_zone_id", "must be a hosted zone ID like Z123EXAMPLE (got %q)", r.HostedZoneID)
		}
		v.dnsName(k+".record", r.Record, true)
		v.dnsName(k+".preview_record", r.PreviewRecord, false)
		v.dnsName(k+".failover_record", r.FailoverRecord, false)
		switch r.Type {
		case "A", "AAAA":
			for _, c := range []struct {
				name string
				t    RecordTarget
			}{{"blue", r.Targets.Blue}, {"green", r.Targets.Green}} {
				v.dnsName(k+".targets."+c.name+".alias", c.t.Alias, true)
				if !hostedZoneID.MatchString(c.t.Zone) {
					v.add(k+".targets."+c.name+".zone", "an alias record needs the target's hosted zone ID (got %q)", c.t.Zone)
				}
			}
		case "CNAME":
			for _, c := range []struct {
				name string
				t    RecordTarget
			}{{"blue", r.Targets.Blue}, {"green", r.Targets.Green}} {
				v.dnsName(k+".targets."+c.name+".alias", c.t.Alias, true)
				if c.t.Zone != "" {
					v.add(k+".targets."+c.name+".zone", "a CNAME record has no alias zone; leave it out")
				}
			}
		default:
			v.add(k+".type", "must be A, AAAA (alias records) or CNAME (got %q)", r.Type)
		}
		if r.TTL < time.Second || r.TTL > 48*time.Hour {
			v.add(k+".ttl", "must be between 1s and 48h (got %s)", r.TTL)
		} else if r.TTL%time.Second != 0 {
			v.add(k+".ttl", "must be whole seconds (got %s)", r.TTL)
		}
		if r.TargetGroups != (ColorARNs{}) {
			v.colorARNs(k+".target_groups", r.TargetGroups, true)
		}
		if r.TTL > s.DrainTimeout {
			v.add(k+".ttl", "is longer than drain_timeout %s: a demoted colour must stay up for the TTL after its weight reached 0; raise drain_timeout", s.DrainTimeout)
		}
	}
	ak := strings.TrimSuffix(key, ".traffic") + ".strategy.analysis"
	for i, name := range s.Strategy.Analysis.Alarms {
		if !alarmName.MatchString(name) {
			v.add(fmt.Sprintf("%s.alarms[%d]", ak, i), "must be a CloudWatch alarm name (1-255 printable characters, got %q)", name)
		}
	}
	cw := s.Strategy.Analysis.CloudWatch
	if !validCloudWatchPeriod(cw.Period) {
		v.add(ak+".cloudwatch.period", "must be 1s, 5s, 10s, 30s or a multiple of 60s, the periods CloudWatch serves (got %s)", cw.Period)
	}
	if cw.Delay < 0 || cw.Delay > time.Hour {
		v.add(ak+".cloudwatch.delay", "must be between 0s and 1h (got %s)", cw.Delay)
	}
}

func (v *validator) arn(key, s string, re *regexp.Regexp, want string, required bool) {
	switch {
	case s == "" && required:
		v.add(key, "required: %s", want)
	case s != "" && !re.MatchString(s):
		v.add(key, "must be %s (got %q)", want, s)
	}
}

func (v *validator) colorARNs(key string, c ColorARNs, required bool) {
	want := "a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)"
	v.arn(key+".blue", c.Blue, targetGroupARN, want, required)
	v.arn(key+".green", c.Green, targetGroupARN, want, required)
	if c.Blue != "" && c.Blue == c.Green {
		v.add(key+".green", "must differ from blue: each colour needs its own target group")
	}
}

// sameRegion checks that the ARNs name one region, and region if set.
func (v *validator) sameRegion(key, region string, arns ...string) {
	for _, a := range arns {
		parts := strings.SplitN(a, ":", 6)
		if len(parts) < 6 {
			continue
		}
		if region == "" {
			region = parts[3]
			continue
		}
		if parts[3] != region {
			v.add(key, "every ARN must be in region %s (%s is in %s)", region, a, parts[3])
			return
		}
	}
}

func (v *validator) dnsName(key, s string, required bool) {
	if s == "" {
		if required {
			v.add(key, "required: a DNS name")
		}
		return
	}
	name := strings.TrimSuffix(s, ".")
	if len(name) > 253 || name == "" {
		v.add(key, "must be a DNS name (got %q)", s)
		return
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			v.add(key, "must be a DNS name (got %q)", s)
			return
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '*') {
				v.add(key, "must be a DNS name (got %q)", s)
				return
			}
		}
	}
}
