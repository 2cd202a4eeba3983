package route53_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/awsfake"
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

// TestAThirdWeightedRecordIsDrift: a weighted record of the same name
// with another set identifier takes a share of the traffic; with weight
// it is refused as drift (the deployment pauses, nothing is written), at
// 0 it sends nothing and is left alone.
func TestAThirdWeightedRecordIsDrift(t *testing.T) {
	fake, zone, r := newRouter(t, "CNAME", "", [2]route53.Target{{Value: "blue.example.net"}, {Value: "green.example.net"}})
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	legacy := func(w int64) {
		t.Helper()
		ttl := int64(30)
		if err := fake.Route53().SetRecord(zone.ID, awsfake.Record{Name: "api.example.com.", Type: "CNAME", SetIdentifier: "legacy",
			Weight: &w, TTL: &ttl, Values: []string{"legacy.example.net"}}); err != nil {
			t.Fatal(err)
		}
	}
	legacy(50)
	err := r.SetSplit(route.Blue, 10)
	var pe *deploy.PauseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "legacy") {
		t.Fatalf("a third weighted record with weight: err %v, want a PauseError naming it", err)
	}
	wantRecords(t, fake, zone, "api.example.com.",
		"CNAME set=blue weight=255 ttl=30 -> blue.example.net",
		"CNAME set=green weight=0 ttl=30 -> green.example.net",
		"CNAME set=legacy weight=50 ttl=30 -> legacy.example.net")
	if st := r.TrafficStatus(); !strings.Contains(st.Drift, "legacy") {
		t.Errorf("status drift %q does not name the record", st.Drift)
	}
	legacy(0)
	if err := r.SetSplit(route.Blue, 10); err != nil {
		t.Fatalf("with the third record at 0: %v", err)
	}
	wantRecords(t, fake, zone, "api.example.com.",
		"CNAME set=blue weight=229 ttl=30 -> blue.example.net",
		"CNAME set=green weight=26 ttl=30 -> green.example.net",
		"CNAME set=legacy weight=0 ttl=30 -> legacy.example.net")
	// Written and read back with the zero-weight record: no false drift.
	if err := r.SetSplit(route.Blue, 50); err != nil {
		t.Fatalf("next step with the zero-weight record present: %v", err)
	}
}
