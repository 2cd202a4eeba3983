package awsfake_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/cutover/cutover/internal/awsfake"
)

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestELBRuleRoutesAndModifies routes /api/* through a rule, changes the
// rule's weights with ModifyRule, and reads them back with DescribeRules.
func TestELBRuleRoutesAndModifies(t *testing.T) {
	f := newALB(t)
	f.waitStates(t, f.blue.ARN, "healthy", "healthy")
	f.waitStates(t, f.green.ARN, "healthy")
	ruleARN, err := f.fake.ELB().CreateRule(f.ln.ARN, 10, []string{"/api/*"}, nil, awsfake.Weight{TargetGroupARN: f.green.ARN, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, http.DefaultClient, f.ln.URL+"/api/x"); got != "green-1" {
		t.Errorf("/api/x went to %q, want green by the rule", got)
	}
	if got := get(t, http.DefaultClient, f.ln.URL+"/other"); got != "blue-1" && got != "blue-2" {
		t.Errorf("/other went to %q, want blue by the default action", got)
	}
	ctx := context.Background()
	_, err = f.client.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: &ruleARN, Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward,
		ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{
			{TargetGroupArn: &f.blue.ARN, Weight: aws.Int32(1)}, {TargetGroupArn: &f.green.ARN, Weight: aws.Int32(0)}}}}}})
	if err != nil {
		t.Fatalf("ModifyRule: %v", err)
	}
	if got := get(t, http.DefaultClient, f.ln.URL+"/api/x"); got == "green-1" {
		t.Errorf("/api/x still went to green after ModifyRule")
	}
	out, err := f.client.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: &f.ln.ARN})
	if err != nil {
		t.Fatalf("DescribeRules: %v", err)
	}
	if len(out.Rules) != 2 || aws.ToString(out.Rules[0].Priority) != "10" || !aws.ToBool(out.Rules[1].IsDefault) {
		t.Fatalf("rules = %+v", out.Rules)
	}
	tgs := out.Rules[0].Actions[0].ForwardConfig.TargetGroups
	if len(tgs) != 2 || aws.ToInt32(tgs[0].Weight) != 1 || aws.ToInt32(tgs[1].Weight) != 0 {
		t.Errorf("rule weights = %+v", tgs)
	}
	if c := out.Rules[0].Conditions; len(c) != 1 || aws.ToString(c[0].Field) != "path-pattern" || c[0].PathPatternConfig.Values[0] != "/api/*" {
		t.Errorf("rule conditions = %+v", c)
	}
	one, err := f.client.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{ruleARN}})
	if err != nil || len(one.Rules) != 1 {
		t.Fatalf("DescribeRules by ARN: %+v, %v", one, err)
	}
	missing := ruleARN[:len(ruleARN)-4] + "ffff"
	var notFound *elbtypes.RuleNotFoundException
	if _, err := f.client.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: &missing}); apiCode(err) != "RuleNotFound" {
		t.Errorf("ModifyRule of an unknown rule: %v (%T)", err, notFound)
	}
}

func TestELBTargetGroupAttributesAndStickiness(t *testing.T) {
	f := newALB(t)
	f.waitStates(t, f.blue.ARN, "healthy", "healthy")
	ctx := context.Background()
	attrs := func() map[string]string {
		out, err := f.client.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: &f.blue.ARN})
		if err != nil {
			t.Fatalf("DescribeTargetGroupAttributes: %v", err)
		}
		m := map[string]string{}
		for _, a := range out.Attributes {
			m[aws.ToString(a.Key)] = aws.ToString(a.Value)
		}
		return m
	}
	if a := attrs(); a["deregistration_delay.timeout_seconds"] != "2" || a["stickiness.enabled"] != "false" {
		t.Fatalf("attributes = %v", a)
	}
	// Without stickiness a client alternates between blue's targets.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[get(t, c, f.ln.URL)] = true
	}
	if len(seen) != 2 {
		t.Fatalf("round robin saw %v", seen)
	}
	_, err := f.client.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: &f.blue.ARN, Attributes: []elbtypes.TargetGroupAttribute{
		{Key: aws.String("stickiness.enabled"), Value: aws.String("true")}, {Key: aws.String("stickiness.lb_cookie.duration_seconds"), Value: aws.String("60")}}})
	if err != nil {
		t.Fatalf("ModifyTargetGroupAttributes: %v", err)
	}
	if a := attrs(); a["stickiness.enabled"] != "true" {
		t.Fatalf("attributes after the change = %v", a)
	}
	first := get(t, c, f.ln.URL)
	for i := 0; i < 6; i++ {
		if got := get(t, c, f.ln.URL); got != first {
			t.Fatalf("sticky client moved from %s to %s", first, got)
		}
	}
	_, err = f.client.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: &f.blue.ARN, Attributes: []elbtypes.TargetGroupAttribute{
		{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("4000")}}})
	if apiCode(err) != "InvalidConfigurationRequest" {
		t.Errorf("a delay of 4000 s: %v", err)
	}
	tgs, err := f.client.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: &f.lb.ARN})
	if err != nil || len(tgs.TargetGroups) != 2 || tgs.TargetGroups[0].LoadBalancerArns[0] != f.lb.ARN || aws.ToString(tgs.TargetGroups[0].HealthCheckPath) != "/healthz" {
		t.Errorf("DescribeTargetGroups = %+v, %v", tgs, err)
	}
}
