package cloudwatch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/cutover/cutover/internal/analysis/cloudwatch"
	"github.com/cutover/cutover/internal/awsfake"
	"github.com/cutover/cutover/internal/route"
)

func portOf(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSourceCountsConnectionErrorsPerColour runs the source through the
// real SDK against the fake CloudWatch, fed by the fake ALB's data plane:
// green's only target refuses connections, so its clients get 502s from
// the load balancer. Those land in green's figures as 5xx (through
// TargetConnectionErrorCount, the per-target-group count AWS publishes),
// none in blue's. The load balancer's own HTTPCode_ELB_5XX_Count, which
// AWS has per load balancer only, is read beside them, unattributed.
func TestSourceCountsConnectionErrorsPerColour(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{MetricDelay: 200 * time.Millisecond, HealthInterval: 50 * time.Millisecond})
	e := fake.ELB()
	lb := e.CreateLoadBalancer("prod")
	hc := awsfake.HealthCheck{Path: "/healthz"}
	blue := e.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-blue", HealthCheck: hc})
	green := e.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-green", HealthCheck: hc})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(app.Close)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := portOf(t, dead.Addr().String())
	dead.Close()
	if err := e.RegisterTarget(blue.ARN, "i-00000000000000001", portOf(t, app.Listener.Addr().String())); err != nil {
		t.Fatal(err)
	}
	if err := e.RegisterTarget(green.ARN, "i-00000000000000002", deadPort); err != nil {
		t.Fatal(err)
	}
	ln, err := e.CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: blue.ARN, Weight: 1}, awsfake.Weight{TargetGroupARN: green.ARN, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for health: blue healthy, green unhealthy (every target of
	// green unhealthy: the ALB fails open and still sends it its share).
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := e.Health(blue.ARN)
		g, _ := e.Health(green.ARN)
		if len(b) == 1 && b[0].State == "healthy" && len(g) == 1 && g[0].State == "unhealthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health: blue %+v green %+v", b, g)
		}
		time.Sleep(20 * time.Millisecond)
	}
	src := cloudwatch.New(cloudwatch.Options{Client: cw.NewFromConfig(fake.Config()), Period: time.Second, Delay: 400 * time.Millisecond, Poll: 100 * time.Millisecond,
		Colors: [2]cloudwatch.Dimensions{{TargetGroup: blue.Dimension, LoadBalancer: lb.Dimension}, {TargetGroup: green.Dimension, LoadBalancer: lb.Dimension}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(1100 * time.Millisecond) // traffic only in periods the source counts
	var ok, bad uint64
	for range 40 {
		resp, err := http.Get(ln.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusBadGateway:
			bad++
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if ok == 0 || bad == 0 {
		t.Fatalf("%d answered, %d 502s: want both colours to get traffic", ok, bad)
	}
	deadline = time.Now().Add(5 * time.Second)
	for src.Counts(route.Blue).Requests+src.Counts(route.Green).Requests < 40 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b, g := src.Counts(route.Blue), src.Counts(route.Green)
	if b.Requests != ok || b.Errors() != 0 {
		t.Errorf("blue: %d requests %d errors, want %d and 0 (err %v)", b.Requests, b.Errors(), ok, src.Err())
	}
	if g.Requests != bad || g.Errors() != bad {
		t.Errorf("green: %d requests %d errors, want %d and %d: its 502s are its connection errors (err %v)", g.Requests, g.Errors(), bad, bad, src.Err())
	}
	if n, read := src.LoadBalancer5xx(); !read || n != bad {
		t.Errorf("load balancer 5xx %d (read %v), want the %d 502s", n, read, bad)
	}
}
