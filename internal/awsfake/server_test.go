package awsfake_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/cutover/cutover/internal/awsfake"
)

func TestUnsignedRequestsAreRefused(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{})
	resp, err := http.Post(fake.URL(), "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeLoadBalancers&Version=2015-12-01"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "<Code>MissingAuthenticationToken</Code>") {
		t.Errorf("unsigned call: %d %s", resp.StatusCode, b)
	}
}

func TestFaultKnobs(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{})
	ctx := context.Background()
	c := elb.NewFromConfig(fake.Config())

	// A 503 is retried by the SDK like a throttle.
	fake.Unavailable("elasticloadbalancing", "DescribeLoadBalancers", 1)
	if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); err != nil {
		t.Errorf("through one 503: %v", err)
	}
	if n := fake.Calls("elasticloadbalancing", "DescribeLoadBalancers"); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}

	// A failure the SDK does not retry reaches the caller with its code.
	z := fake.Route53().CreateHostedZone("example.com")
	fake.FailNext("route53", "ListResourceRecordSets", 1, awsfake.Errorf("AccessDenied", "User is not authorized to perform route53:ListResourceRecordSets"))
	r53 := route53.NewFromConfig(fake.Config())
	if _, err := r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID)}); apiCode(err) != "AccessDenied" {
		t.Errorf("injected AccessDenied: %v", err)
	}
	if _, err := r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID)}); err != nil {
		t.Errorf("after the injected failure: %v", err)
	}

	// Delay holds a call.
	fake.Delay("elasticloadbalancing", "DescribeLoadBalancers", 300*time.Millisecond)
	start := time.Now()
	if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("delayed call took %v", d)
	}
	fake.ClearFaults()
	start = time.Now()
	if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); err != nil || time.Since(start) > 200*time.Millisecond {
		t.Errorf("after ClearFaults: %v in %v", err, time.Since(start))
	}
}
