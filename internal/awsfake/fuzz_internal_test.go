package awsfake

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

func newFuzzServer(f *testing.F) *Server {
	s, err := New(Options{ChangeSyncDelay: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	lb := s.elb.CreateLoadBalancer("prod")
	tg := s.elb.CreateTargetGroup(TargetGroupSpec{Name: "web"})
	if _, err := s.elb.CreateListener(lb.ARN, 80, Weight{tg.ARN, 1}); err != nil {
		f.Fatal(err)
	}
	s.r53.CreateHostedZone("example.com")
	return s
}

// answer runs a request through a service and checks that it answered
// with a success or an AWS error, never a panic or a 5xx of its own.
func answer(t *testing.T, svc Service, r *http.Request, body []byte) {
	w := httptest.NewRecorder()
	svc.Serve(w, r, body)
	if w.Code >= 500 {
		t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
	}
}

func FuzzQueryService(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		"Action=ModifyListener&ListenerArn=x&DefaultActions.member.1.Type=forward&DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=y&DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight=5",
		"Action=RegisterTargets&TargetGroupArn=x&Targets.member.1.Id=i-0123456789&Targets.member.1.Port=99999",
		"Action=DescribeTargetHealth&TargetGroupArn=",
		"Action=ModifyRule&RuleArn=r&Conditions.member.1.Field=path-pattern",
		"%zz",
	} {
		f.Add(seed)
	}
	svc := s.elb.service()
	f.Fuzz(func(t *testing.T, body string) {
		answer(t, svc, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), []byte(body))
	})
}

func FuzzCloudWatchCBOR(f *testing.F) {
	s := newFuzzServer(f)
	now := float64(time.Now().Unix())
	f.Add("GetMetricData", cbor.Encode(cbor.Map{
		"StartTime": &cbor.Tag{ID: 1, Value: cbor.Float64(now - 60)}, "EndTime": &cbor.Tag{ID: 1, Value: cbor.Float64(now)},
		"MetricDataQueries": cbor.List{cbor.Map{"Id": cbor.String("m"), "MetricStat": cbor.Map{
			"Metric": cbor.Map{"Namespace": cbor.String("AWS/ApplicationELB"), "MetricName": cbor.String("RequestCount")},
			"Period": cbor.Uint(1), "Stat": cbor.String("p99")}}}}))
	f.Add("GetMetricStatistics", cbor.Encode(cbor.Map{"StartTime": &cbor.Tag{ID: 1, Value: cbor.Uint(0)}, "EndTime": &cbor.Tag{ID: 1, Value: cbor.Float64(1e12)}, "Period": cbor.Uint(1)}))
	f.Add("DescribeAlarms", []byte{0xbf, 0xff})
	f.Add("SetAlarmState", []byte{0xa1})
	svc := s.cw.service()
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, cborPathPrefix+"x", strings.NewReader(string(body)))
		r.URL.Path = cborPathPrefix + op
		r.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		answer(t, svc, r, body)
	})
}

func FuzzRoute53Change(f *testing.F) {
	s := newFuzzServer(f)
	var zone string
	for id := range s.r53.zones {
		zone = id
	}
	f.Add(`<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>a.example.com.</Name><Type>CNAME</Type><SetIdentifier>blue</SetIdentifier><Weight>10</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>x</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`)
	f.Add(`<ChangeResourceRecordSetsRequest><ChangeBatch><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>example.com</Name><Type>SOA</Type><TTL>900</TTL></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`)
	svc := s.r53.service()
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/2013-04-01/hostedzone/"+zone+"/rrset", strings.NewReader(body))
		answer(t, svc, r, []byte(body))
	})
}
