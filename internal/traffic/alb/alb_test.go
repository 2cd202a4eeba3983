package alb_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/cutover/cutover/internal/awsfake"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/alb"
)

// These tests drive the driver with the real SDK client against the fake
// ALB (awsQuery over HTTP), with a real instance behind blue.

type fixture struct {
	fake        *awsfake.Server
	blue, green awsfake.TargetGroup
	ln          awsfake.Listener
	rule        string
	ledger      string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{HealthInterval: 50 * time.Millisecond, HealthyThreshold: 1})
	e := fake.ELB()
	lb := e.CreateLoadBalancer("prod")
	hc := awsfake.HealthCheck{Path: "/healthz", Interval: 50 * time.Millisecond}
	f := &fixture{fake: fake, ledger: filepath.Join(t.TempDir(), "traffic-web.json")}
	f.blue = e.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-blue", TargetType: "ip", HealthCheck: hc})
	f.green = e.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-green", TargetType: "ip", HealthCheck: hc})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(app.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(app.URL, "http://"))
	p, _ := strconv.Atoi(port)
	if err := e.RegisterTarget(f.blue.ARN, "127.0.0.1", p); err != nil {
		t.Fatal(err)
	}
	var err error
	// Green is in the action with weight 0: a target group no listener
	// uses is not health-checked ("unused"), as on AWS.
	if f.ln, err = e.CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: f.blue.ARN, Weight: 1}, awsfake.Weight{TargetGroupARN: f.green.ARN, Weight: 0}); err != nil {
		t.Fatal(err)
	}
	if f.rule, err = e.CreateRule(f.ln.ARN, 10, []string{"/api/*"}, nil, awsfake.Weight{TargetGroupARN: f.blue.ARN, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, _ := e.Health(f.blue.ARN)
		if len(hs) == 1 && hs[0].State == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blue's target never became healthy: %+v", hs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f
}

func (f *fixture) router(t *testing.T, rule string) *alb.Router {
	t.Helper()
	l, err := traffic.OpenLedger(f.ledger)
	if err != nil {
		t.Fatal(err)
	}
	r, err := alb.New(alb.Options{Service: "web", Client: elb.NewFromConfig(f.fake.Config()), ListenerARN: f.ln.ARN, RuleARN: rule,
		TargetGroups: [2]string{f.blue.ARN, f.green.ARN}, Ledger: l, CallTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) forward(t *testing.T, arn string) map[string]int {
	t.Helper()
	ws, err := f.fake.ELB().Forward(arn)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, w := range ws {
		out[w.TargetGroupARN] = w.Weight
	}
	return out
}

func TestNoWeightOnATargetGroupWithoutHealthyTarget(t *testing.T) {
	f := newFixture(t)
	r := f.router(t, "")
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	err := r.SetSplit(route.Blue, 10)
	var pe *deploy.PauseError
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "no healthy target") {
		t.Fatalf("10%% on green with no target: err %v, want a refusal naming the empty target group", err)
	}
	if w := f.forward(t, f.ln.ARN); w[f.green.ARN] != 0 || w[f.blue.ARN] == 0 {
		t.Errorf("the listener forwards %v after the refusal", w)
	}
}

func TestRuleWeightsCheckedAcrossRestartAndFailingCallsPause(t *testing.T) {
	f := newFixture(t)
	// Green gets a healthy target too (blue's instance serves both).
	hs, _ := f.fake.ELB().Health(f.blue.ARN)
	if err := f.fake.ELB().RegisterTarget(f.green.ARN, hs[0].ID, hs[0].Port); err != nil {
		t.Fatal(err)
	}
	r := f.router(t, f.rule)
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; {
		r.PollOnce(ctx) // one poll
		if h, _ := r.Healthy(route.Green); h == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("green never healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSplit(route.Blue, 25); err != nil {
		t.Fatal(err)
	}
	if w := f.forward(t, f.rule); w[f.blue.ARN] != 750 || w[f.green.ARN] != 250 {
		t.Fatalf("rule forwards %v, want 750/250", w)
	}
	if w := f.forward(t, f.ln.ARN); w[f.green.ARN] != 0 {
		t.Errorf("the default action changed too: %v", w)
	}

	// The ALB keeps failing: a pause, nothing half-written, and the
	// pending split written once it answers again.
	f.fake.Unavailable("elasticloadbalancing", "ModifyRule", 50)
	err := r.SetSplit(route.Blue, 50)
	var pe *deploy.PauseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "keeps failing") {
		t.Fatalf("failing ModifyRule: err %v, want a PauseError", err)
	}
	if w := f.forward(t, f.rule); w[f.green.ARN] != 250 {
		t.Errorf("rule forwards %v after the failed change", w)
	}
	if st := r.TrafficStatus(); st.Pending == "" {
		t.Errorf("status does not say the split is pending: %+v", st)
	}
	f.fake.ClearFaults()
	r.PollOnce(ctx)
	if w := f.forward(t, f.rule); w[f.green.ARN] != 500 {
		t.Errorf("the pending split was not written once the ALB answered: %v", w)
	}

	// A restarted driver (new ledger reader) still knows what it wrote
	// and refuses weights changed behind its back.
	if err := f.fake.ELB().SetForward(f.rule, awsfake.Weight{TargetGroupARN: f.blue.ARN, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	r2 := f.router(t, f.rule)
	if err := r2.SetSplit(route.Blue, 50); err != nil {
		t.Fatalf("a restarted driver's first split (restore) must not fail: %v", err)
	}
	err = r2.SetSplit(route.Blue, 100)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "changed outside cutover") {
		t.Fatalf("console change after restart: err %v, want a drift refusal", err)
	}
	if w := f.forward(t, f.rule); w[f.blue.ARN] != 1 || w[f.green.ARN] != 0 {
		t.Errorf("the console's weights were overwritten: %v", w)
	}
}

// canceled returns a context that ends soon, so Run polls about once.
func TestGroupStickinessKeptAsTheUserSetIt(t *testing.T) {
	f := newFixture(t)
	hs, _ := f.fake.ELB().Health(f.blue.ARN)
	if err := f.fake.ELB().RegisterTarget(f.green.ARN, hs[0].ID, hs[0].Port); err != nil {
		t.Fatal(err)
	}
	c := elb.NewFromConfig(f.fake.Config())
	ctx := context.Background()
	_, err := c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(f.ln.ARN), DefaultActions: []types.Action{{
		Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{
			TargetGroups:                []types.TargetGroupTuple{{TargetGroupArn: aws.String(f.blue.ARN), Weight: aws.Int32(999)}, {TargetGroupArn: aws.String(f.green.ARN), Weight: aws.Int32(0)}},
			TargetGroupStickinessConfig: &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(120)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.router(t, "")
	for deadline := time.Now().Add(10 * time.Second); ; {
		r.PollOnce(ctx)
		if h, _ := r.Healthy(route.Green); h == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("green never healthy")
		}
	}
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSplit(route.Blue, 10); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{f.ln.ARN}})
	if err != nil {
		t.Fatal(err)
	}
	fc := out.Listeners[0].DefaultActions[0].ForwardConfig
	if fc == nil || fc.TargetGroupStickinessConfig == nil || !aws.ToBool(fc.TargetGroupStickinessConfig.Enabled) || aws.ToInt32(fc.TargetGroupStickinessConfig.DurationSeconds) != 120 {
		t.Fatalf("stickiness not kept: %+v", fc)
	}
	if w := alb.Weights(out.Listeners[0].DefaultActions[0]); w[f.green.ARN] != 100 {
		t.Errorf("weights %v, want green 100", w)
	}
}
