package awsfake_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
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

// TestTLSWithCABundle serves the API over HTTPS: the SDK's default chain
// trusts it through AWS_CA_BUNDLE, and refuses it without.
func TestTLSWithCABundle(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{TLS: true})
	if !strings.HasPrefix(fake.URL(), "https://") {
		t.Fatalf("URL = %s", fake.URL())
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, fake.CABundle(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range fake.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := context.Background()
	call := func() error {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return err
		}
		_, err = elb.NewFromConfig(cfg, func(o *elb.Options) { o.RetryMaxAttempts = 1 }).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
		return err
	}
	if err := call(); err == nil {
		t.Errorf("an untrusted certificate was accepted")
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	if err := call(); err != nil {
		t.Errorf("with AWS_CA_BUNDLE: %v", err)
	}
	if _, err := elb.NewFromConfig(fake.Config()).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); err != nil {
		t.Errorf("with Config(): %v", err)
	}
}
