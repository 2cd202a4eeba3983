package alb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// TestDrainWaitsForTheALBNotTheRequest: a rollback whose ModifyListener
// keeps failing leaves the candidate with its weight on the ALB; Drain
// must say so (deploy.StillRoutedError, so the controller does not stop
// the pool) instead of counting the deregistration delay from the
// moment the controller asked. Once the write is made, Drain returns.
func TestDrainWaitsForTheALBNotTheRequest(t *testing.T) {
	f := newFixture(t)
	hs, _ := f.fake.ELB().Health(f.blue.ARN)
	if err := f.fake.ELB().RegisterTarget(f.green.ARN, hs[0].ID, hs[0].Port); err != nil {
		t.Fatal(err)
	}
	if err := f.fake.ELB().SetTargetGroupAttribute(f.green.ARN, "deregistration_delay.timeout_seconds", "0"); err != nil {
		t.Fatal(err)
	}
	r := f.router(t, "")
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
	if err := r.SetSplit(route.Blue, 50); err != nil {
		t.Fatal(err)
	}
	// The rollback's write fails past the SDK's retries.
	f.fake.Unavailable("elasticloadbalancing", "ModifyListener", -1)
	var pe *deploy.PauseError
	if err := r.SetSplit(route.Blue, 0); !errors.As(err, &pe) {
		t.Fatalf("failing rollback write: err %v, want a PauseError", err)
	}
	if w := f.forward(t, f.ln.ARN); w[f.green.ARN] == 0 {
		t.Fatalf("the fake took a failed write: %v", w)
	}
	dctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	err := r.Drain(dctx, route.Green)
	cancel()
	var sr *deploy.StillRoutedError
	if !errors.As(err, &sr) {
		t.Fatalf("Drain of green while the ALB gives it %v: err %v, want a StillRoutedError", f.forward(t, f.ln.ARN), err)
	}
	f.fake.ClearFaults()
	r.PollOnce(ctx) // the pending split is written
	if w := f.forward(t, f.ln.ARN); w[f.green.ARN] != 0 {
		t.Fatalf("pending rollback not written: %v", w)
	}
	dctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.Drain(dctx, route.Green); err != nil {
		t.Fatalf("Drain once the ALB gives green 0: %v", err)
	}
}
