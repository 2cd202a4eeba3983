package alb_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/alb"
)

// TestAWriteTheALBTookLateIsNotDrift: a ModifyListener that timed out
// on cutover's side but was applied by the ALB leaves the listener at
// the split cutover asked for. The next change, which then fails, must
// not turn that split into "changed outside cutover": once the ALB
// answers again the change is made, not refused as drift.
func TestAWriteTheALBTookLateIsNotDrift(t *testing.T) {
	f := newFixture(t)
	hs, _ := f.fake.ELB().Health(f.blue.ARN)
	if err := f.fake.ELB().RegisterTarget(f.green.ARN, hs[0].ID, hs[0].Port); err != nil {
		t.Fatal(err)
	}
	l, err := traffic.OpenLedger(f.ledger)
	if err != nil {
		t.Fatal(err)
	}
	r, err := alb.New(alb.Options{Service: "web", Client: elb.NewFromConfig(f.fake.Config()), ListenerARN: f.ln.ARN,
		TargetGroups: [2]string{f.blue.ARN, f.green.ARN}, Ledger: l, CallTimeout: 700 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
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
	if err := r.SetSplit(route.Blue, 25); err != nil {
		t.Fatal(err)
	}
	// 50%: the call outlives cutover's timeout, the ALB applies it later.
	f.fake.Delay("elasticloadbalancing", "ModifyListener", 1200*time.Millisecond)
	if err := r.SetSplit(route.Blue, 50); err == nil {
		t.Fatal("a ModifyListener past the call timeout succeeded")
	}
	for deadline := time.Now().Add(5 * time.Second); f.forward(t, f.ln.ARN)[f.green.ARN] != 500; {
		if time.Now().After(deadline) {
			t.Fatalf("the fake never applied the late 50%%: %v", f.forward(t, f.ln.ARN))
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.fake.ClearFaults()
	// 75%: fails outright.
	f.fake.Unavailable("elasticloadbalancing", "ModifyListener", -1)
	var pe *deploy.PauseError
	if err := r.SetSplit(route.Blue, 75); !errors.As(err, &pe) || !strings.Contains(err.Error(), "keeps failing") {
		t.Fatalf("failing 75%%: err %v, want a PauseError saying the ALB keeps failing", err)
	}
	f.fake.ClearFaults()
	if err := r.SetSplit(route.Blue, 75); err != nil {
		t.Fatalf("75%% once the ALB answers, with the listener at the 50%% cutover wrote: %v", err)
	}
	if w := f.forward(t, f.ln.ARN); w[f.green.ARN] != 750 || w[f.blue.ARN] != 250 {
		t.Errorf("listener forwards %v, want 250/750", w)
	}
}
