package alb_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/alb"
)

// gatedClient is the real SDK client with a gate: once armed, the n-th
// DescribeTargetHealth call waits until the test opens it.
type gatedClient struct {
	*elb.Client
	mu      sync.Mutex
	armed   bool
	left    int
	reached chan struct{}
	open    chan struct{}
}

func (g *gatedClient) DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, opts ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error) {
	g.mu.Lock()
	wait := false
	if g.armed {
		if g.left--; g.left == 0 {
			g.armed, wait = false, true
		}
	}
	g.mu.Unlock()
	if wait {
		close(g.reached)
		<-g.open
	}
	return g.Client.DescribeTargetHealth(ctx, in, opts...)
}

// TestPollerDoesNotWriteASplitTheControllerReplaced: the poller retries a
// split that failed; when the controller asks for another one (a rollback)
// while that retry is under way, the retry does not write the stale split:
// the ALB goes from what it had straight to the rollback's split.
func TestPollerDoesNotWriteASplitTheControllerReplaced(t *testing.T) {
	f := newFixture(t)
	hs, _ := f.fake.ELB().Health(f.blue.ARN)
	if err := f.fake.ELB().RegisterTarget(f.green.ARN, hs[0].ID, hs[0].Port); err != nil {
		t.Fatal(err)
	}
	l, err := traffic.OpenLedger(f.ledger)
	if err != nil {
		t.Fatal(err)
	}
	gc := &gatedClient{Client: elb.NewFromConfig(f.fake.Config()), reached: make(chan struct{}), open: make(chan struct{})}
	r, err := alb.New(alb.Options{Service: "web", Client: gc, ListenerARN: f.ln.ARN, TargetGroups: [2]string{f.blue.ARN, f.green.ARN},
		Ledger: l, Poll: time.Hour, CallTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
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
	f.fake.Unavailable("elasticloadbalancing", "ModifyListener", -1)
	var pe *deploy.PauseError
	if err := r.SetSplit(route.Blue, 10); !errors.As(err, &pe) {
		t.Fatalf("failing 10%%: %v", err)
	}
	f.fake.ClearFaults()
	before := f.fake.Calls("elasticloadbalancing", "ModifyListener")
	// One poll: two health reads, then the retry's health read of blue,
	// where it is held.
	gc.mu.Lock()
	gc.armed, gc.left = true, 3
	gc.mu.Unlock()
	pctx, cancel := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { r.Run(pctx); close(polled) }()
	<-gc.reached
	rolled := make(chan error, 1)
	go func() { rolled <- r.SetSplit(route.Blue, 0) }() // the controller rolls back
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, w := r.Split(); w == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rollback's SetSplit never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gc.open)
	if err := <-rolled; err != nil {
		t.Fatalf("rollback: %v", err)
	}
	cancel()
	<-polled
	if n := f.fake.Calls("elasticloadbalancing", "ModifyListener") - before; n != 0 {
		t.Errorf("%d ModifyListener calls after the rollback was asked; the listener already held it, want none (the stale 10%% was written)", n)
	}
	if w := f.forward(t, f.ln.ARN); w[f.green.ARN] != 0 {
		t.Errorf("listener forwards %v after the rollback", w)
	}
}
