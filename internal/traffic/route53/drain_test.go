package route53_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic/route53"
)

// TestDrainWaitsForTheRecordsNotTheRequest: a rollback whose
// ChangeResourceRecordSets keeps failing leaves the candidate's record
// with its weight; Drain says so (deploy.StillRoutedError: the pool must
// not stop) instead of counting the TTL from when the controller asked.
// Once the records are written, Drain waits the TTL from then.
func TestDrainWaitsForTheRecordsNotTheRequest(t *testing.T) {
	fake, _, r := newRouter(t, "CNAME", "", [2]route53.Target{{Value: "blue.example.net"}, {Value: "green.example.net"}})
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSplit(route.Blue, 50); err != nil {
		t.Fatal(err)
	}
	fake.Unavailable("route53", "ChangeResourceRecordSets", -1)
	var pe *deploy.PauseError
	if err := r.SetSplit(route.Blue, 0); !errors.As(err, &pe) {
		t.Fatalf("failing rollback write: err %v, want a PauseError", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := r.Drain(ctx, route.Green)
	cancel()
	var sr *deploy.StillRoutedError
	if !errors.As(err, &sr) {
		t.Fatalf("Drain of green while its record has weight: err %v, want a StillRoutedError", err)
	}
	fake.ClearFaults()
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	// Written now: the 30s TTL counts from here, so a short drain ends
	// on the TTL, no longer on the weight.
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = r.Drain(ctx, route.Green)
	if err == nil || errors.As(err, &sr) || !strings.Contains(err.Error(), "TTL") {
		t.Fatalf("Drain right after the records were written: err %v, want the TTL not over", err)
	}
}
