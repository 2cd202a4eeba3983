package awsfake_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/cutover/cutover/internal/awsfake"
)

func weighted(id string, weight int64, target string) r53types.ResourceRecordSet {
	return r53types.ResourceRecordSet{Name: aws.String("api.example.com"), Type: r53types.RRTypeCname, SetIdentifier: aws.String(id),
		Weight: aws.Int64(weight), TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(target)}}}
}

func change(action r53types.ChangeAction, rs r53types.ResourceRecordSet) r53types.Change {
	return r53types.Change{Action: action, ResourceRecordSet: &rs}
}

// TestRoute53WeightedChangeGoesInSync changes two weighted records in one
// batch: the change is PENDING, DNS clients still get the old answer, then
// INSYNC after the delay, and clients get the new weights.
func TestRoute53WeightedChangeGoesInSync(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{ChangeSyncDelay: 300 * time.Millisecond})
	z := fake.Route53().CreateHostedZone("example.com")
	c := route53.NewFromConfig(fake.Config())
	ctx := context.Background()
	if err := fake.Route53().SetRecord(z.ID, awsfake.Record{Name: "api.example.com.", Type: "CNAME", SetIdentifier: "blue", Weight: aws.Int64(100), TTL: aws.Int64(60), Values: []string{"blue.example.net"}}); err != nil {
		t.Fatal(err)
	}
	if err := fake.Route53().SetRecord(z.ID, awsfake.Record{Name: "api.example.com.", Type: "CNAME", SetIdentifier: "green", Weight: aws.Int64(0), TTL: aws.Int64(60), Values: []string{"green.example.net"}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String("/hostedzone/" + z.ID), ChangeBatch: &r53types.ChangeBatch{
		Comment: aws.String("cutover: web 50/50"),
		Changes: []r53types.Change{change(r53types.ChangeActionUpsert, weighted("blue", 50, "blue.example.net")), change(r53types.ChangeActionUpsert, weighted("green", 50, "green.example.net"))}}})
	if err != nil {
		t.Fatalf("ChangeResourceRecordSets: %v", err)
	}
	if out.ChangeInfo.Status != r53types.ChangeStatusPending || !strings.HasPrefix(aws.ToString(out.ChangeInfo.Id), "/change/C") {
		t.Fatalf("change info = %+v", out.ChangeInfo)
	}
	for i := 0; i < 200; i++ {
		if rec, _ := fake.Route53().Resolve(z.ID, "api.example.com", "A"); rec.SetIdentifier != "blue" {
			t.Fatalf("a client resolved %q while the change was PENDING", rec.SetIdentifier)
		}
	}
	got, err := c.GetChange(ctx, &route53.GetChangeInput{Id: out.ChangeInfo.Id})
	if err != nil || got.ChangeInfo.Status != r53types.ChangeStatusPending {
		t.Fatalf("GetChange at once = %+v, %v", got, err)
	}
	// The API lists the new weights at once.
	list, err := c.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), StartRecordName: aws.String("api.example.com"), StartRecordType: r53types.RRTypeCname})
	if err != nil {
		t.Fatalf("ListResourceRecordSets: %v", err)
	}
	if len(list.ResourceRecordSets) != 2 || aws.ToInt64(list.ResourceRecordSets[0].Weight) != 50 || aws.ToString(list.ResourceRecordSets[1].SetIdentifier) != "green" ||
		aws.ToInt64(list.ResourceRecordSets[1].TTL) != 60 || aws.ToString(list.ResourceRecordSets[1].ResourceRecords[0].Value) != "green.example.net" {
		t.Fatalf("listed = %+v", list.ResourceRecordSets)
	}
	waiter := route53.NewResourceRecordSetsChangedWaiter(c, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 100 * time.Millisecond
	})
	start := time.Now()
	if err := waiter.Wait(ctx, &route53.GetChangeInput{Id: out.ChangeInfo.Id}, 5*time.Second); err != nil {
		t.Fatalf("waiting for INSYNC: %v", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("INSYNC after %v", waited)
	}
	n := map[string]int{}
	for i := 0; i < 2000; i++ {
		rec, ok := fake.Route53().Resolve(z.ID, "api.example.com", "A")
		if !ok {
			t.Fatal("no answer")
		}
		n[rec.SetIdentifier]++
	}
	if n["green"] < 850 || n["green"] > 1150 {
		t.Errorf("50/50 resolved as %v", n)
	}
}

func TestRoute53ValidatesLikeAWS(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{ChangeSyncDelay: -1})
	z := fake.Route53().CreateHostedZone("example.com.")
	c := route53.NewFromConfig(fake.Config())
	ctx := context.Background()
	apply := func(cs ...r53types.Change) error {
		_, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), ChangeBatch: &r53types.ChangeBatch{Changes: cs}})
		return err
	}
	if err := apply(change(r53types.ChangeActionCreate, weighted("blue", 100, "blue.example.net"))); err != nil {
		t.Fatal(err)
	}
	alias := r53types.ResourceRecordSet{Name: aws.String("www.example.com."), Type: r53types.RRTypeA, SetIdentifier: aws.String("blue"), Weight: aws.Int64(1),
		AliasTarget: &r53types.AliasTarget{DNSName: aws.String("prod-123.us-east-1.elb.amazonaws.com"), HostedZoneId: aws.String(awsfake.ALBHostedZoneID)}}
	if err := apply(change(r53types.ChangeActionCreate, alias)); err != nil {
		t.Fatalf("alias: %v", err)
	}
	cases := []struct {
		name string
		cs   []r53types.Change
		code string
		msg  string
	}{
		{"create of an existing record", []r53types.Change{change(r53types.ChangeActionCreate, weighted("blue", 5, "x.example.net"))}, "InvalidChangeBatch", "but it already exists"},
		{"delete that does not match", []r53types.Change{change(r53types.ChangeActionDelete, weighted("blue", 99, "blue.example.net"))}, "InvalidChangeBatch", "do not match"},
		{"delete of an absent record", []r53types.Change{change(r53types.ChangeActionDelete, weighted("green", 0, "green.example.net"))}, "InvalidChangeBatch", "was not found"},
		{"a good change with a bad one", []r53types.Change{change(r53types.ChangeActionUpsert, weighted("green", 1, "g.example.net")), change(r53types.ChangeActionCreate, weighted("blue", 1, "x.example.net"))}, "InvalidChangeBatch", "already exists"},
		{"weight above 255", []r53types.Change{change(r53types.ChangeActionUpsert, weighted("blue", 256, "blue.example.net"))}, "InvalidInput", "weight"},
		{"weight without set identifier", []r53types.Change{change(r53types.ChangeActionUpsert, r53types.ResourceRecordSet{Name: aws.String("api.example.com"), Type: r53types.RRTypeCname, Weight: aws.Int64(1), TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("x")}}})}, "InvalidInput", "SetIdentifier"},
		{"alias with a TTL", []r53types.Change{change(r53types.ChangeActionUpsert, func() r53types.ResourceRecordSet { a := alias; a.TTL = aws.Int64(60); return a }())}, "InvalidInput", "AliasTarget"},
		{"record outside the zone", []r53types.Change{change(r53types.ChangeActionUpsert, r53types.ResourceRecordSet{Name: aws.String("api.example.org"), Type: r53types.RRTypeCname, TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("x")}}})}, "InvalidChangeBatch", "not permitted in zone"},
		{"simple record beside weighted ones", []r53types.Change{change(r53types.ChangeActionUpsert, r53types.ResourceRecordSet{Name: aws.String("api.example.com"), Type: r53types.RRTypeCname, TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("x")}}})}, "InvalidChangeBatch", "non-routing-policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(tc.cs...)
			if apiCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) && !strings.Contains(strings.Join(batchMessages(err), " "), tc.msg) {
				t.Fatalf("error = %v (code %q, messages %q), want %s with %q", err, apiCode(err), batchMessages(err), tc.code, tc.msg)
			}
		})
	}
	recs, _ := fake.Route53().Records(z.ID)
	if len(recs) != 4 { // NS, SOA, the blue CNAME and the alias: no rejected batch left a trace
		t.Errorf("records after rejected batches: %+v", recs)
	}
	// A DELETE that matches exactly removes the record.
	if err := apply(change(r53types.ChangeActionDelete, weighted("blue", 100, "blue.example.net"))); err != nil {
		t.Errorf("exact delete: %v", err)
	}
	var noZone *r53types.NoSuchHostedZone
	if _, err := c.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String("ZNOSUCHZONE0000000")}); !errors.As(err, &noZone) {
		t.Errorf("unknown zone: %v, want NoSuchHostedZone", err)
	}
	if _, err := c.GetChange(ctx, &route53.GetChangeInput{Id: aws.String("CNOSUCHCHANGE")}); apiCode(err) != "NoSuchChange" {
		t.Errorf("unknown change: %v", err)
	}
	fake.Throttle("route53", "ChangeResourceRecordSets", 1)
	if err := apply(change(r53types.ChangeActionUpsert, weighted("green", 7, "green.example.net"))); err != nil {
		t.Errorf("through one throttle: %v", err)
	}
	if n := fake.Calls("route53", "ChangeResourceRecordSets"); n != 2+len(cases)+2+1 {
		t.Errorf("ChangeResourceRecordSets calls = %d", n)
	}
}

func batchMessages(err error) []string {
	var icb *r53types.InvalidChangeBatch
	if errors.As(err, &icb) {
		return icb.Messages
	}
	return nil
}

func TestRoute53Failover(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{ChangeSyncDelay: -1})
	z := fake.Route53().CreateHostedZone("example.com")
	c := route53.NewFromConfig(fake.Config())
	rec := func(role r53types.ResourceRecordSetFailover, target, hc string) r53types.Change {
		rs := r53types.ResourceRecordSet{Name: aws.String("www.example.com"), Type: r53types.RRTypeCname, SetIdentifier: aws.String(string(role)), Failover: role,
			TTL: aws.Int64(30), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(target)}}}
		if hc != "" {
			rs.HealthCheckId = aws.String(hc)
		}
		return change(r53types.ChangeActionCreate, rs)
	}
	_, err := c.ChangeResourceRecordSets(context.Background(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), ChangeBatch: &r53types.ChangeBatch{
		Changes: []r53types.Change{rec(r53types.ResourceRecordSetFailoverPrimary, "app.example.net", "hc-1"), rec(r53types.ResourceRecordSetFailoverSecondary, "sorry.s3-website-us-east-1.amazonaws.com", "")}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := fake.Route53().Resolve(z.ID, "www.example.com", "CNAME"); r.Values[0] != "app.example.net" {
		t.Errorf("healthy primary: %v", r)
	}
	fake.Route53().SetHealthCheck("hc-1", false)
	if r, _ := fake.Route53().Resolve(z.ID, "www.example.com", "CNAME"); !strings.HasPrefix(r.Values[0], "sorry.") {
		t.Errorf("failed primary: %v", r)
	}
}

// TestRoute53ConsoleChangeSurvivesPendingChange changes a record "in the
// console" while an API change is PENDING: once the change syncs, the
// console's edit is still there.
func TestRoute53ConsoleChangeSurvivesPendingChange(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{ChangeSyncDelay: 200 * time.Millisecond})
	z := fake.Route53().CreateHostedZone("example.com")
	c := route53.NewFromConfig(fake.Config())
	_, err := c.ChangeResourceRecordSets(context.Background(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), ChangeBatch: &r53types.ChangeBatch{
		Changes: []r53types.Change{change(r53types.ChangeActionCreate, weighted("blue", 100, "blue.example.net"))}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Route53().SetRecord(z.ID, awsfake.Record{Name: "api.example.com", Type: "CNAME", SetIdentifier: "green", Weight: aws.Int64(100), TTL: aws.Int64(60), Values: []string{"green.example.net"}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := fake.Route53().Resolve(z.ID, "api.example.com", "CNAME"); r.SetIdentifier != "green" {
		t.Fatalf("before the API change synced, a client got %q, want green", r.SetIdentifier)
	}
	time.Sleep(300 * time.Millisecond)
	n := map[string]int{}
	for i := 0; i < 400; i++ {
		r, _ := fake.Route53().Resolve(z.ID, "api.example.com", "CNAME")
		n[r.SetIdentifier]++
	}
	if n["blue"] == 0 || n["green"] == 0 {
		t.Errorf("after sync, clients got %v, want both", n)
	}
}
