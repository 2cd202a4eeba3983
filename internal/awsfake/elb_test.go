package awsfake_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/cutover/cutover/internal/awsfake"
)

// app is a real target: it answers its name, and its /healthz answers
// 200 or 500 as the test says.
type app struct {
	name    string
	srv     *httptest.Server
	sick    atomic.Bool
	failAll atomic.Bool
	hits    atomic.Int64
	slow    chan struct{} // set before traffic starts: /slow waits for it
	inSlow  atomic.Int64
}

func startApp(t *testing.T, name string) *app {
	t.Helper()
	a := &app{name: name}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if a.sick.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
			return
		}
		a.hits.Add(1)
		if r.URL.Path == "/slow" {
			a.inSlow.Add(1)
			<-a.slow
		}
		if a.failAll.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, a.name)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) port(t *testing.T) int {
	_, p, _ := net.SplitHostPort(a.srv.Listener.Addr().String())
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type albFixture struct {
	fake        *awsfake.Server
	client      *elb.Client
	lb          awsfake.LoadBalancer
	blue, green awsfake.TargetGroup
	ln          awsfake.Listener
	apps        map[string]*app
}

func newALB(t *testing.T) *albFixture {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{HealthInterval: 50 * time.Millisecond})
	f := &albFixture{fake: fake, client: elb.NewFromConfig(fake.Config()), apps: map[string]*app{}}
	e := fake.ELB()
	f.lb = e.CreateLoadBalancer("prod")
	f.blue = e.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-blue", HealthCheck: awsfake.HealthCheck{Path: "/healthz"}, DeregistrationDelay: 2 * time.Second})
	f.green = e.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-green", HealthCheck: awsfake.HealthCheck{Path: "/healthz"}, DeregistrationDelay: 2 * time.Second})
	var err error
	f.ln, err = e.CreateListener(f.lb.ARN, 80, awsfake.Weight{TargetGroupARN: f.blue.ARN, Weight: 1}, awsfake.Weight{TargetGroupARN: f.green.ARN, Weight: 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tg   string
	}{{"blue-1", f.blue.ARN}, {"blue-2", f.blue.ARN}, {"green-1", f.green.ARN}} {
		a := startApp(t, c.name)
		f.apps[c.name] = a
		if _, err := f.client.RegisterTargets(context.Background(), &elb.RegisterTargetsInput{TargetGroupArn: aws.String(c.tg),
			Targets: []elbtypes.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(int32(a.port(t)))}}}); err == nil {
			t.Fatalf("registering an IP in an instance target group succeeded")
		}
		if err := e.RegisterTarget(c.tg, "i-0000000000000000"+strconv.Itoa(len(f.apps)), a.port(t)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// states returns each target's state as the SDK reads it.
func (f *albFixture) states(t *testing.T, tg string) []string {
	t.Helper()
	out, err := f.client.DescribeTargetHealth(context.Background(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		t.Fatalf("DescribeTargetHealth: %v", err)
	}
	var s []string
	for _, d := range out.TargetHealthDescriptions {
		s = append(s, string(d.TargetHealth.State))
	}
	return s
}

func (f *albFixture) waitStates(t *testing.T, tg string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.states(t, tg)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("target states of %s = %v, want %v", tg, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestELBHealthFollowsRealProbes(t *testing.T) {
	f := newALB(t)
	if got := f.states(t, f.blue.ARN); fmt.Sprint(got) != "[initial initial]" {
		t.Fatalf("fresh targets = %v, want initial", got)
	}
	f.waitStates(t, f.blue.ARN, "healthy", "healthy")
	f.waitStates(t, f.green.ARN, "healthy")

	f.apps["blue-2"].sick.Store(true)
	f.waitStates(t, f.blue.ARN, "healthy", "unhealthy")
	out, err := f.client.DescribeTargetHealth(context.Background(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(f.blue.ARN)})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.TargetHealthDescriptions[1].TargetHealth.Reason; r != elbtypes.TargetHealthReasonEnumResponseCodeMismatch {
		t.Errorf("unhealthy reason = %q", r)
	}
	f.apps["blue-2"].srv.Close()
	f.apps["blue-2"].sick.Store(false)
	time.Sleep(200 * time.Millisecond)
	f.waitStates(t, f.blue.ARN, "healthy", "unhealthy")

	// A group no listener forwards to reports its targets unused.
	lone := f.fake.ELB().CreateTargetGroup(awsfake.TargetGroupSpec{Name: "lone"})
	if err := f.fake.ELB().RegisterTarget(lone.ARN, "i-0000000000000009", f.apps["green-1"].port(t)); err != nil {
		t.Fatal(err)
	}
	f.waitStates(t, lone.ARN, "unused")
}

func TestELBDeregistrationDrains(t *testing.T) {
	f := newALB(t)
	f.waitStates(t, f.green.ARN, "healthy")
	ctx := context.Background()
	port := int32(f.apps["green-1"].port(t))
	// A slow request keeps the target draining until it ends.
	f.fake.ELB().SetForward(f.ln.ARN, awsfake.Weight{TargetGroupARN: f.green.ARN, Weight: 1})
	release := make(chan struct{})
	f.apps["green-1"].slow = release
	done := make(chan int)
	go func() {
		resp, err := http.Get(f.ln.URL + "/slow")
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for f.apps["green-1"].inSlow.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := f.client.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(f.green.ARN),
		Targets: []elbtypes.TargetDescription{{Id: aws.String("i-00000000000000003"), Port: aws.Int32(port)}}})
	if err != nil {
		t.Fatalf("DeregisterTargets: %v", err)
	}
	if got := f.states(t, f.green.ARN); fmt.Sprint(got) != "[draining]" {
		t.Fatalf("after deregistration = %v, want draining", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := f.states(t, f.green.ARN); fmt.Sprint(got) != "[draining]" {
		t.Fatalf("with a request in flight = %v, want draining", got)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("the in-flight request got %d", code)
	}
	// No request in flight any more: the drain ends before the 2 s delay.
	f.waitStates(t, f.green.ARN)
	resp, err := http.Get(f.ln.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a group without targets answered %d, want 503 from the load balancer", resp.StatusCode)
	}
	if c := f.fake.ELB().Counts(f.green.ARN, time.Time{}); c.ELB5xx != 1 {
		t.Errorf("ELB 5xx count = %d, want 1", c.ELB5xx)
	}
	// CloudWatch counts the 503 per load balancer only, and not as a
	// request (no target was chosen for it); the slow request counts.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	out, err := cloudwatch.NewFromConfig(f.fake.Config()).GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{
			metricQuery("elb", "HTTPCode_ELB_5XX_Count", "Sum", 60, map[string]string{"LoadBalancer": f.lb.Dimension}),
			metricQuery("requests", "RequestCount", "Sum", 60, map[string]string{"LoadBalancer": f.lb.Dimension}),
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(out.MetricDataResults[0].Values); got != 1 {
		t.Errorf("HTTPCode_ELB_5XX_Count = %v, want 1", got)
	}
	if got := sum(out.MetricDataResults[1].Values); got != 1 {
		t.Errorf("RequestCount = %v, want 1 (the drained request, not the 503)", got)
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestELBValidatesLikeAWS(t *testing.T) {
	f := newALB(t)
	ctx := context.Background()
	fwd := func(ws ...elbtypes.TargetGroupTuple) []elbtypes.Action {
		return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: ws}}}
	}
	tuple := func(arn string, w int32) elbtypes.TargetGroupTuple {
		return elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(arn), Weight: aws.Int32(w)}
	}
	other := f.fake.ELB().CreateLoadBalancer("other")
	otherTG := f.fake.ELB().CreateTargetGroup(awsfake.TargetGroupSpec{Name: "other-tg"})
	if _, err := f.fake.ELB().CreateListener(other.ARN, 80, awsfake.Weight{TargetGroupARN: otherTG.ARN, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	missingTG := f.blue.ARN[:len(f.blue.ARN)-4] + "ffff"
	missingListener := f.ln.ARN[:len(f.ln.ARN)-4] + "ffff"
	cases := []struct {
		name string
		in   *elb.ModifyListenerInput
		code string
	}{
		{"weight above 999", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: fwd(tuple(f.blue.ARN, 1000))}, "ValidationError"},
		{"malformed target group ARN", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: fwd(tuple("web-blue", 1))}, "ValidationError"},
		{"unknown target group", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: fwd(tuple(missingTG, 1))}, "TargetGroupNotFound"},
		{"target group of another load balancer", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: fwd(tuple(otherTG.ARN, 1))}, "TargetGroupAssociationLimit"},
		{"same group twice", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: fwd(tuple(f.blue.ARN, 1), tuple(f.blue.ARN, 2))}, "ValidationError"},
		{"malformed listener ARN", &elb.ModifyListenerInput{ListenerArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/nope"), DefaultActions: fwd(tuple(f.blue.ARN, 1))}, "ValidationError"},
		{"unknown listener", &elb.ModifyListenerInput{ListenerArn: &missingListener, DefaultActions: fwd(tuple(f.blue.ARN, 1))}, "ListenerNotFound"},
		{"negative weight", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: fwd(tuple(f.blue.ARN, -1))}, "ValidationError"},
		{"fixed response without a status", &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{StatusCode: aws.String("302")}}}}, "ValidationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.client.ModifyListener(ctx, c.in)
			if got := apiCode(err); got != c.code {
				t.Fatalf("error = %v (code %q), want code %s", err, got, c.code)
			}
		})
	}
	var notFound *elbtypes.ListenerNotFoundException
	if _, err := f.client.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{missingListener}}); !errors.As(err, &notFound) {
		t.Errorf("DescribeListeners of an unknown ARN: %v, want the SDK's ListenerNotFoundException", err)
	}
	var tgNotFound *elbtypes.TargetGroupNotFoundException
	if _, err := f.client.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: &missingTG}); !errors.As(err, &tgNotFound) {
		t.Errorf("DescribeTargetHealth of an unknown group: %v, want TargetGroupNotFoundException", err)
	}
	if _, err := f.client.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{}); err == nil {
		t.Errorf("DescribeTargetHealth without TargetGroupArn succeeded")
	}
	// Nothing above changed the listener.
	if w, _ := f.fake.ELB().Forward(f.ln.ARN); fmt.Sprint(w) != fmt.Sprint([]awsfake.Weight{{f.blue.ARN, 1}, {f.green.ARN, 0}}) {
		t.Errorf("weights after rejected changes = %v", w)
	}
}

func TestELBThrottlingIsRetriedBySDK(t *testing.T) {
	f := newALB(t)
	f.fake.Throttle("elasticloadbalancing", "DescribeListeners", 2)
	out, err := f.client.DescribeListeners(context.Background(), &elb.DescribeListenersInput{ListenerArns: []string{f.ln.ARN}})
	if err != nil {
		t.Fatalf("DescribeListeners through 2 throttles: %v", err)
	}
	if n := f.fake.Calls("elasticloadbalancing", "DescribeListeners"); n != 3 {
		t.Errorf("calls = %d, want 3 (2 throttled, 1 served)", n)
	}
	if got := out.Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups; len(got) != 2 || aws.ToInt32(got[0].Weight) != 1 {
		t.Errorf("forward config = %+v", got)
	}
	f.fake.Throttle("elasticloadbalancing", "DescribeRules", -1)
	_, err = elb.NewFromConfig(f.fake.Config(), func(o *elb.Options) { o.RetryMaxAttempts = 2 }).
		DescribeRules(context.Background(), &elb.DescribeRulesInput{ListenerArn: &f.ln.ARN})
	if apiCode(err) != "Throttling" {
		t.Errorf("persistent throttling: %v, want Throttling after the retries", err)
	}
}

// TestELBWeightsMoveTraffic shifts weights through ModifyListener while a
// non-retrying client sends requests over keep-alive connections: no
// request fails, and each phase's split follows the weights.
func TestELBWeightsMoveTraffic(t *testing.T) {
	f := newALB(t)
	f.waitStates(t, f.blue.ARN, "healthy", "healthy")
	f.waitStates(t, f.green.ARN, "healthy")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var failed, total atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(f.ln.URL + "/")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				mu.Lock()
				seen[string(b)]++
				mu.Unlock()
			}
		}()
	}
	phase := func(blue, green int32) map[string]int {
		_, err := f.client.ModifyListener(context.Background(), &elb.ModifyListenerInput{ListenerArn: &f.ln.ARN, DefaultActions: []elbtypes.Action{{
			Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{
				{TargetGroupArn: &f.blue.ARN, Weight: aws.Int32(blue)}, {TargetGroupArn: &f.green.ARN, Weight: aws.Int32(green)}}}}}})
		if err != nil {
			t.Fatalf("ModifyListener %d/%d: %v", blue, green, err)
		}
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		clear(seen)
		mu.Unlock()
		// Enough requests for the split to be judged, however busy the machine.
		deadline := time.Now().Add(10 * time.Second)
		for {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			n := seen["blue-1"] + seen["blue-2"] + seen["green-1"]
			snapshot := maps(seen)
			mu.Unlock()
			if n >= 400 || time.Now().After(deadline) {
				return snapshot
			}
		}
	}
	for _, p := range []struct{ blue, green int32 }{{90, 10}, {50, 50}, {0, 100}, {100, 0}} {
		got := phase(p.blue, p.green)
		n := got["blue-1"] + got["blue-2"] + got["green-1"]
		if n < 400 {
			t.Fatalf("only %d requests in a phase", n)
		}
		share := float64(got["green-1"]) / float64(n) * 100
		if d := share - float64(p.green); d > 10 || d < -10 {
			t.Errorf("weights %d/%d: green got %.1f%% of %d requests", p.blue, p.green, share, n)
		}
		if p.blue > 0 {
			b1, b2 := got["blue-1"], got["blue-2"]
			if b1 == 0 || b2 == 0 || float64(b1)/float64(b1+b2) < 0.4 || float64(b1)/float64(b1+b2) > 0.6 {
				t.Errorf("round robin within blue: %d vs %d", b1, b2)
			}
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed across weight changes", failed.Load(), total.Load())
	}
	c := f.fake.ELB().Counts(f.green.ARN, time.Time{})
	if c.Requests == 0 || c.Target2xx != c.Requests || c.P99 <= 0 {
		t.Errorf("green counts = %+v", c)
	}
	t.Logf("%d requests, %d failed; green %+v", total.Load(), failed.Load(), c)
}

func maps(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestTargetConnectionErrorCountPerTargetGroup: a target that refuses
// connections (its process gone, every target unhealthy so the ALB fails
// open to it) gets the client a 502; CloudWatch counts it as a request
// and a TargetConnectionErrorCount of its target group, and as an
// HTTPCode_ELB_5XX_Count of the load balancer only.
func TestTargetConnectionErrorCountPerTargetGroup(t *testing.T) {
	f := newALB(t)
	ctx := context.Background()
	f.waitStates(t, f.green.ARN, "healthy")
	if err := f.fake.ELB().SetForward(f.ln.ARN, awsfake.Weight{TargetGroupARN: f.blue.ARN, Weight: 0}, awsfake.Weight{TargetGroupARN: f.green.ARN, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	f.apps["green-1"].srv.Close()
	f.waitStates(t, f.green.ARN, "unhealthy")
	start := time.Now()
	for range 3 {
		resp, err := http.Get(f.ln.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("a request to a target that refuses connections got %d, want 502", resp.StatusCode)
		}
	}
	if c := f.fake.ELB().Counts(f.green.ARN, start); c.ConnectionErrors != 3 || c.ELB5xx != 3 {
		t.Errorf("counts %+v, want 3 connection errors and 3 ELB 5xx", c)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	tg := map[string]string{"TargetGroup": f.green.Dimension, "LoadBalancer": f.lb.Dimension}
	out, err := cloudwatch.NewFromConfig(f.fake.Config()).GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{
			metricQuery("conn", "TargetConnectionErrorCount", "Sum", 60, tg),
			metricQuery("requests", "RequestCount", "Sum", 60, tg),
			metricQuery("elbtg", "HTTPCode_ELB_5XX_Count", "Sum", 60, tg),
			metricQuery("elb", "HTTPCode_ELB_5XX_Count", "Sum", 60, map[string]string{"LoadBalancer": f.lb.Dimension}),
			metricQuery("blueconn", "TargetConnectionErrorCount", "Sum", 60, map[string]string{"TargetGroup": f.blue.Dimension, "LoadBalancer": f.lb.Dimension}),
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{3, 3, 0, 3, 0} {
		r := out.MetricDataResults[i]
		if got := sum(r.Values); got != want {
			t.Errorf("%s = %v, want %v", aws.ToString(r.Id), got, want)
		}
	}
	if n := len(out.MetricDataResults[2].Values); n != 0 {
		t.Errorf("HTTPCode_ELB_5XX_Count per target group has %d data points; AWS publishes it per load balancer only", n)
	}
}
