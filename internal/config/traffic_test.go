package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	tLn    = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/prod/50dc6c495c0c9188/f2f7dc8efc522ab2"
	tTest  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/prod/50dc6c495c0c9188/0467ef3c8400ae65"
	tBlue  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/73e2d6bc24d8a067"
	tGreen = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/943f017f100becff"
)

// TestTrafficConfig checks that traffic.alb, traffic.route53 and
// strategy.analysis.alarms decode, and that bad ARNs, names and TTLs are
// reported at their line.
func TestTrafficConfig(t *testing.T) {
	alb := func(ln, blue, green, extra string) string {
		return base + "    traffic:\n      alb:\n        listener_arn: " + ln + "\n        target_groups: {blue: " + blue + ", green: " + green + "}\n" + extra
	}
	tests := []struct {
		name string
		yaml string
		want []string // problems, each "line: key" prefix; none = valid
	}{
		{"alb", alb(tLn, tBlue, tGreen, "        test_listener_arn: "+tTest+"\n    strategy: {analysis: {alarms: [web-5xx]}}\n"), nil},
		{"listener arn shape", alb("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/prod/50dc6c495c0c9188", tBlue, tGreen, ""),
			[]string{"services.web.traffic.alb.listener_arn: must be a listener ARN"}},
		{"target group arn shape", alb(tLn, "web-blue", tGreen, ""), []string{"services.web.traffic.alb.target_groups.blue: must be a target group ARN"}},
		{"same target group twice", alb(tLn, tBlue, tBlue, ""), []string{"services.web.traffic.alb.target_groups.green: must differ from blue"}},
		{"test listener is production", alb(tLn, tBlue, tGreen, "        test_listener_arn: "+tLn+"\n"), []string{"test_listener_arn: must differ"}},
		{"regions differ", alb(tLn, strings.Replace(tBlue, "us-east-1", "eu-west-1", 1), tGreen, ""), []string{"services.web.traffic.alb: every ARN must be in region us-east-1"}},
		{"missing listener", base + "    traffic:\n      alb: {target_groups: {blue: " + tBlue + ", green: " + tGreen + "}}\n", []string{"listener_arn: required"}},
		{"route53", base + "    drain_timeout: 2m\n    traffic:\n      route53:\n        hosted_zone_id: Z123EXAMPLE\n        record: api.example.com.\n        ttl: 60s\n" +
			"        targets:\n          blue: {alias: blue-alb-1.us-east-1.elb.amazonaws.com., zone: Z35SXDOTRQ7X7K}\n          green: {alias: green-alb-1.us-east-1.elb.amazonaws.com., zone: Z35SXDOTRQ7X7K}\n", nil},
		{"route53 ttl over drain timeout", base + "    traffic:\n      route53:\n        hosted_zone_id: Z123EXAMPLE\n        record: api.example.com.\n        ttl: 60s\n" +
			"        targets:\n          blue: {alias: b.example.com., zone: Z35SXDOTRQ7X7K}\n          green: {alias: g.example.com., zone: Z35SXDOTRQ7X7K}\n",
			[]string{"services.web.traffic.route53.ttl: is longer than drain_timeout"}},
		{"route53 alias needs zone, bad type", base + "    traffic:\n      route53:\n        hosted_zone_id: z-1\n        record: api.example.com.\n        type: MX\n        ttl: 5s\n",
			[]string{"hosted_zone_id: must be a hosted zone ID", "type: must be A, AAAA"}},
		{"both", alb(tLn, tBlue, tGreen, "      route53: {hosted_zone_id: Z1, record: a.example.com., ttl: 5s, targets: {blue: {alias: b.example.com., zone: Z1}, green: {alias: g.example.com., zone: Z1}}}\n"),
			[]string{"services.web.traffic: set alb or route53, not both"}},
		{"unknown key", base + "    traffic:\n      alb: {listener: x}\n", []string{"listener"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("cutover.yaml", []byte(tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if c.Services["web"].Traffic.Embedded() {
					t.Fatalf("traffic not decoded")
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing problem %q in:\n%v", w, err)
				}
			}
			for _, p := range verr.Problems {
				if p.Line == 0 {
					t.Errorf("problem without a line: %+v", p)
				}
			}
		})
	}
}

func TestTrafficDefaults(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(base+"    drain_timeout: 2m\n    traffic:\n      route53:\n        hosted_zone_id: Z1\n        record: api.example.com\n"+
		"        targets: {blue: {alias: b.example.com, zone: Z2}, green: {alias: g.example.com, zone: Z2}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Services["web"].Traffic.Route53
	if r.Type != "A" || r.TTL != 60*time.Second {
		t.Errorf("defaults: type %q ttl %s", r.Type, r.TTL)
	}
}

// TestCloudWatchMetricsConfig: strategy.analysis.cloudwatch decodes,
// defaults to 60s/60s, and refuses periods CloudWatch does not serve and
// negative delays at their own line.
func TestCloudWatchMetricsConfig(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Services["web"].Strategy.Analysis.CloudWatch; got != (CloudWatchMetrics{Period: time.Minute, Delay: time.Minute}) {
		t.Errorf("default %+v, want 60s period and 60s delay", got)
	}
	for _, ok := range []string{"1s", "5s", "10s", "30s", "1m", "5m", "120s"} {
		c, err := Parse("cutover.yaml", []byte(base+"    strategy:\n      analysis:\n        cloudwatch: {period: "+ok+", delay: 2s}\n"))
		if err != nil {
			t.Errorf("period %s: %v", ok, err)
			continue
		}
		d, _ := time.ParseDuration(ok)
		if got := c.Services["web"].Strategy.Analysis.CloudWatch; got.Period != d || got.Delay != 2*time.Second {
			t.Errorf("period %s decoded as %+v", ok, got)
		}
	}
	line := strings.Count(base, "\n") + 4
	for _, bad := range []struct{ period, delay, want string }{
		{"7s", "1s", "services.web.strategy.analysis.cloudwatch.period: must be 1s, 5s, 10s, 30s or a multiple of 60s"},
		{"90s", "1s", "cloudwatch.period: must be 1s, 5s, 10s, 30s or a multiple of 60s, the periods CloudWatch serves (got 1m30s)"},
		{"500ms", "1s", "cloudwatch.period: must be"},
		{"60s", "-1s", "services.web.strategy.analysis.cloudwatch.delay: must not be negative"},
		{"60s", "2h", "services.web.strategy.analysis.cloudwatch.delay: must be between 0s and 1h"},
	} {
		yaml := base + "    strategy:\n      analysis:\n        cloudwatch:\n          period: " + bad.period + "\n          delay: " + bad.delay + "\n"
		_, err := Parse("cutover.yaml", []byte(yaml))
		var verr *ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("period %s delay %s: want a ValidationError, got %v", bad.period, bad.delay, err)
		}
		if !strings.Contains(err.Error(), bad.want) {
			t.Errorf("period %s delay %s: missing %q in:\n%v", bad.period, bad.delay, bad.want, err)
		}
		want := line
		if strings.Contains(bad.want, "delay") {
			want++
		}
		if len(verr.Problems) != 1 || verr.Problems[0].Line != want {
			t.Errorf("period %s delay %s: want one problem at line %d, got %+v", bad.period, bad.delay, want, verr.Problems)
		}
	}
	if _, err := Parse("cutover.yaml", []byte(base+"    strategy:\n      analysis:\n        cloudwatch: {periodd: 1s}\n")); err == nil || !strings.Contains(err.Error(), "periodd") {
		t.Errorf("unknown key accepted: %v", err)
	}
}
