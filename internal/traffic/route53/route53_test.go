package route53_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	r53 "github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/cutover/cutover/internal/awsfake"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/route53"
)

// These tests drive the router with the real SDK client against the fake
// Route53 (REST-XML over HTTP), whose changes go PENDING then INSYNC.

func newRouter(t *testing.T, typ, preview string, targets [2]route53.Target) (*awsfake.Server, awsfake.HostedZone, *route53.Router) {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{ChangeSyncDelay: 100 * time.Millisecond})
	zone := fake.Route53().CreateHostedZone("example.com.")
	l, err := traffic.OpenLedger(filepath.Join(t.TempDir(), "traffic-web.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := route53.New(route53.Options{Service: "web", Client: r53.NewFromConfig(fake.Config()), ZoneID: zone.ID,
		Record: "api.example.com", Type: typ, TTL: 30 * time.Second, Targets: targets, PreviewRecord: preview,
		Ledger: l, SyncPoll: 20 * time.Millisecond, CallTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return fake, zone, r
}

// records lists the zone's records of a name as "TYPE set=ID weight=W ttl=T -> VALUE".
func records(t *testing.T, fake *awsfake.Server, zone awsfake.HostedZone, name string) []string {
	t.Helper()
	rs, err := fake.Route53().Records(zone.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range rs {
		if rec.Name != name {
			continue
		}
		s := rec.Type
		if rec.SetIdentifier != "" {
			s += " set=" + rec.SetIdentifier
		}
		if rec.Weight != nil {
			s += fmt.Sprintf(" weight=%d", *rec.Weight)
		}
		if rec.TTL != nil {
			s += fmt.Sprintf(" ttl=%d", *rec.TTL)
		}
		if rec.Alias != nil {
			s += " -> alias " + rec.Alias.DNSName + " in " + rec.Alias.HostedZoneID
		} else {
			s += " -> " + strings.Join(rec.Values, ",")
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func wantRecords(t *testing.T, fake *awsfake.Server, zone awsfake.HostedZone, name string, want ...string) {
	t.Helper()
	if got := records(t, fake, zone, name); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records of %s:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCNAMEWeightedRecordsCarryTheTTL: with type CNAME each colour's
// weighted record holds its value with the configured TTL, both are
// written in one batch per step, and the step settles for the TTL.
func TestCNAMEWeightedRecordsCarryTheTTL(t *testing.T) {
	fake, zone, r := newRouter(t, "CNAME", "", [2]route53.Target{{Value: "blue-alb-1.us-east-1.elb.amazonaws.com"}, {Value: "green-alb-2.us-east-1.elb.amazonaws.com"}})
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, fake, zone, "api.example.com.",
		"CNAME set=blue weight=255 ttl=30 -> blue-alb-1.us-east-1.elb.amazonaws.com",
		"CNAME set=green weight=0 ttl=30 -> green-alb-2.us-east-1.elb.amazonaws.com")
	start := time.Now()
	if err := r.SetSplit(route.Blue, 10); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("SetSplit returned after %s, before the change was INSYNC (100ms)", took)
	}
	wantRecords(t, fake, zone, "api.example.com.",
		"CNAME set=blue weight=229 ttl=30 -> blue-alb-1.us-east-1.elb.amazonaws.com",
		"CNAME set=green weight=26 ttl=30 -> green-alb-2.us-east-1.elb.amazonaws.com")
	if got := r.SettleAfter(); got != 30*time.Second {
		t.Errorf("settle after %s, want the 30s TTL", got)
	}
	if st := r.TrafficStatus(); st.Raw["blue"] != 229 || st.Raw["green"] != 26 || st.Weights["green"] != 10.2 {
		t.Errorf("status %+v", st)
	}
	// The same split again changes nothing and does not settle again.
	if err := r.SetSplit(route.Blue, 10); err != nil {
		t.Fatal(err)
	}
	if got := r.SettleAfter(); got != 0 {
		t.Errorf("an unchanged split settles for %s, want 0", got)
	}
	// Resolvers get a CNAME answer with the TTL.
	rec, ok := fake.Route53().Resolve(zone.ID, "api.example.com.", "CNAME")
	if !ok || rec.TTL == nil || *rec.TTL != 30 || len(rec.Values) != 1 {
		t.Errorf("resolved %+v %v, want a CNAME with TTL 30", rec, ok)
	}
}

// TestPreviewRecordFollowsTheCandidate: preview_record is one simple
// record (no set identifier, no weight) of the weighted records' type,
// pointed at the colour the controller previews and moved when it
// changes, for alias (A) and CNAME records; the weighted records are
// left alone.
func TestPreviewRecordFollowsTheCandidate(t *testing.T) {
	t.Run("alias", func(t *testing.T) {
		fake, zone, r := newRouter(t, "A", "staging.example.com", [2]route53.Target{
			{Value: "blue-alb-1.us-east-1.elb.amazonaws.com.", Zone: "Z35SXDOTRQ7X7K"}, {Value: "green-alb-2.us-east-1.elb.amazonaws.com.", Zone: "Z35SXDOTRQ7X7K"}})
		if err := r.SetSplit(route.Blue, 0); err != nil {
			t.Fatal(err)
		}
		r.SetPreview(route.Green)
		wantRecords(t, fake, zone, "staging.example.com.", "A -> alias green-alb-2.us-east-1.elb.amazonaws.com. in Z35SXDOTRQ7X7K")
		r.SetPreview(route.Blue)
		wantRecords(t, fake, zone, "staging.example.com.", "A -> alias blue-alb-1.us-east-1.elb.amazonaws.com. in Z35SXDOTRQ7X7K")
		wantRecords(t, fake, zone, "api.example.com.",
			"A set=blue weight=255 -> alias blue-alb-1.us-east-1.elb.amazonaws.com. in Z35SXDOTRQ7X7K",
			"A set=green weight=0 -> alias green-alb-2.us-east-1.elb.amazonaws.com. in Z35SXDOTRQ7X7K")
	})
	t.Run("cname", func(t *testing.T) {
		fake, zone, r := newRouter(t, "CNAME", "staging.example.com.", [2]route53.Target{{Value: "blue.example.net"}, {Value: "green.example.net"}})
		r.SetPreview(route.Green)
		wantRecords(t, fake, zone, "staging.example.com.", "CNAME ttl=30 -> green.example.net")
		r.SetPreview(route.Blue)
		wantRecords(t, fake, zone, "staging.example.com.", "CNAME ttl=30 -> blue.example.net")
		if got := records(t, fake, zone, "api.example.com."); len(got) != 0 {
			t.Errorf("previewing wrote the weighted records: %v", got)
		}
	})
}
