package awsfake_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/cutover/cutover/internal/awsfake"
)

func metricQuery(id, metric, stat string, period int32, dims map[string]string) cwtypes.MetricDataQuery {
	var ds []cwtypes.Dimension
	for k, v := range dims {
		ds = append(ds, cwtypes.Dimension{Name: aws.String(k), Value: aws.String(v)})
	}
	return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{
		Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String(metric), Dimensions: ds},
		Period: aws.Int32(period), Stat: aws.String(stat)}}
}

func sum(vs []float64) float64 {
	s := 0.0
	for _, v := range vs {
		s += v
	}
	return s
}

// TestCloudWatchServesTheDataPlaneAfterItsDelay sends real requests through
// the fake ALB and reads them back as AWS/ApplicationELB metrics over CBOR:
// nothing before the publication delay, then the exact counts, per target
// group, with 1 s and 60 s periods and a p99 response time.
func TestCloudWatchServesTheDataPlaneAfterItsDelay(t *testing.T) {
	f := newALB(t)
	f.fake.CloudWatch().SetMetricDelay(time.Second)
	f.waitStates(t, f.blue.ARN, "healthy", "healthy")
	f.waitStates(t, f.green.ARN, "healthy")
	f.fake.ELB().SetForward(f.ln.ARN, awsfake.Weight{TargetGroupARN: f.blue.ARN, Weight: 1}, awsfake.Weight{TargetGroupARN: f.green.ARN, Weight: 1})
	f.apps["green-1"].failAll.Store(true)
	start := time.Now().Add(-time.Second)
	var green5xx int
	for i := 0; i < 200; i++ {
		resp, err := http.Get(f.ln.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 500 {
			green5xx++
		}
	}
	cw := cloudwatch.NewFromConfig(f.fake.Config())
	dimsOf := func(tg awsfake.TargetGroup) map[string]string {
		return map[string]string{"TargetGroup": tg.Dimension, "LoadBalancer": f.lb.Dimension}
	}
	get := func(period int32) map[string][]float64 {
		out, err := cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start.Truncate(time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
			MetricDataQueries: []cwtypes.MetricDataQuery{
				metricQuery("green_requests", "RequestCount", "Sum", period, dimsOf(f.green)),
				metricQuery("green_errors", "HTTPCode_Target_5XX_Count", "Sum", period, dimsOf(f.green)),
				metricQuery("blue_requests", "RequestCount", "Sum", period, dimsOf(f.blue)),
				metricQuery("blue_p99", "TargetResponseTime", "p99", period, dimsOf(f.blue)),
				metricQuery("elb_errors", "HTTPCode_ELB_5XX_Count", "Sum", period, map[string]string{"LoadBalancer": f.lb.Dimension}),
				metricQuery("elb_errors_by_group", "HTTPCode_ELB_5XX_Count", "Sum", period, dimsOf(f.green)),
			}})
		if err != nil {
			t.Fatalf("GetMetricData: %v", err)
		}
		m := map[string][]float64{}
		for _, r := range out.MetricDataResults {
			if r.StatusCode != cwtypes.StatusCodeComplete || len(r.Timestamps) != len(r.Values) {
				t.Fatalf("result %s: %+v", aws.ToString(r.Id), r)
			}
			for i := 1; i < len(r.Timestamps); i++ {
				if !r.Timestamps[i].Before(r.Timestamps[i-1]) {
					t.Errorf("%s: timestamps not newest first: %v", aws.ToString(r.Id), r.Timestamps)
				}
				if d := r.Timestamps[i-1].Sub(r.Timestamps[i]); d%(time.Duration(period)*time.Second) != 0 {
					t.Errorf("%s: timestamps not on %d s boundaries: %v", aws.ToString(r.Id), period, r.Timestamps)
				}
			}
			m[aws.ToString(r.Id)] = r.Values
		}
		return m
	}
	if early := get(1); sum(early["green_requests"])+sum(early["blue_requests"]) > 0 {
		// Requests of the first instants may already be a second old.
		if sum(early["green_requests"])+sum(early["blue_requests"]) >= 200 {
			t.Fatalf("every request visible before the 1 s delay: %v", early)
		}
	}
	// A second's data point is published when the second is over and the
	// delay has passed.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2*time.Second + 50*time.Millisecond)))
	for _, period := range []int32{1, 10, 60} {
		m := get(period)
		g, b := sum(m["green_requests"]), sum(m["blue_requests"])
		if g+b != 200 || g < 60 || b < 60 {
			t.Errorf("period %d: RequestCount green %v + blue %v, want 200 split about evenly", period, g, b)
		}
		if e := sum(m["green_errors"]); int(e) != green5xx || e != g {
			t.Errorf("period %d: green 5xx = %v, want %d (every green request)", period, e, green5xx)
		}
		if len(m["blue_p99"]) == 0 || m["blue_p99"][0] <= 0 || m["blue_p99"][0] > 1 {
			t.Errorf("period %d: blue p99 = %v seconds", period, m["blue_p99"])
		}
		if len(m["elb_errors"]) != 0 || len(m["elb_errors_by_group"]) != 0 {
			t.Errorf("period %d: ELB 5xx = %v / %v, want no data points", period, m["elb_errors"], m["elb_errors_by_group"])
		}
		if period == 60 && len(m["green_requests"]) > 2 {
			t.Errorf("60 s period gave %d points", len(m["green_requests"]))
		}
	}
	st, err := cw.GetMetricStatistics(context.Background(), &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("TargetResponseTime"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("TargetGroup"), Value: aws.String(f.blue.Dimension)}, {Name: aws.String("LoadBalancer"), Value: aws.String(f.lb.Dimension)}},
		StartTime:  aws.Time(start.Truncate(time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(60),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticSampleCount, cwtypes.StatisticMaximum}, ExtendedStatistics: []string{"p99"}})
	if err != nil {
		t.Fatalf("GetMetricStatistics: %v", err)
	}
	var samples float64
	for _, d := range st.Datapoints {
		samples += aws.ToFloat64(d.SampleCount)
		if p := d.ExtendedStatistics["p99"]; p <= 0 || p > aws.ToFloat64(d.Maximum) {
			t.Errorf("p99 %v beside maximum %v", p, aws.ToFloat64(d.Maximum))
		}
	}
	if samples < 60 || samples > 140 {
		t.Errorf("blue response time samples = %v", samples)
	}
}

func TestCloudWatchValidatesAndRetries(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{})
	cw := cloudwatch.NewFromConfig(fake.Config())
	ctx := context.Background()
	now := time.Now()
	q := metricQuery("m", "RequestCount", "Sum", 7, map[string]string{"LoadBalancer": "app/x/1"})
	_, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now), MetricDataQueries: []cwtypes.MetricDataQuery{q}})
	var invalid *cwtypes.InvalidParameterValueException
	if !errors.As(err, &invalid) || apiCode(err) != "InvalidParameterValue" {
		t.Errorf("period 7: %v (code %q), want InvalidParameterValue", err, apiCode(err))
	}
	q = metricQuery("m", "RequestCount", "Sum", 60, map[string]string{"LoadBalancer": "app/x/1"})
	_, err = cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Minute)), MetricDataQueries: []cwtypes.MetricDataQuery{q}})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("start after end: %v", err)
	}
	fake.Throttle("monitoring", "GetMetricData", 2)
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now), MetricDataQueries: []cwtypes.MetricDataQuery{q}})
	if err != nil {
		t.Fatalf("GetMetricData through 2 throttles: %v", err)
	}
	if n := fake.Calls("monitoring", "GetMetricData"); n != 5 || len(out.MetricDataResults) != 1 || len(out.MetricDataResults[0].Values) != 0 {
		t.Errorf("calls = %d, results %+v", n, out.MetricDataResults)
	}
}

func TestCloudWatchAlarms(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{})
	cw := cloudwatch.NewFromConfig(fake.Config())
	ctx := context.Background()
	fake.CloudWatch().PutAlarm(awsfake.AlarmSpec{Name: "web-5xx", Threshold: 5})
	fake.CloudWatch().PutAlarm(awsfake.AlarmSpec{Name: "web-latency", Metric: "TargetResponseTime", Statistic: "Average", Threshold: 0.5})
	if err := fake.CloudWatch().SetAlarm("web-5xx", awsfake.AlarmAlarm, "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0)."); err != nil {
		t.Fatal(err)
	}
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"web-5xx", "web-latency", "absent"}})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) != 2 {
		t.Fatalf("alarms = %+v", out.MetricAlarms)
	}
	a := out.MetricAlarms[0]
	if aws.ToString(a.AlarmName) != "web-5xx" || a.StateValue != cwtypes.StateValueAlarm || aws.ToString(a.StateReason) == "" || aws.ToFloat64(a.Threshold) != 5 || a.StateUpdatedTimestamp == nil {
		t.Errorf("web-5xx = %+v", a)
	}
	if out.MetricAlarms[1].StateValue != cwtypes.StateValueInsufficientData {
		t.Errorf("web-latency state = %s", out.MetricAlarms[1].StateValue)
	}
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-latency"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("recovered")}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}
	out, err = cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{StateValue: cwtypes.StateValueOk})
	if err != nil || len(out.MetricAlarms) != 1 || aws.ToString(out.MetricAlarms[0].StateReason) != "recovered" {
		t.Fatalf("alarms in OK: %+v, %v", out, err)
	}
	_, err = cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("absent"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("x")})
	var nf *cwtypes.ResourceNotFound
	if !errors.As(err, &nf) {
		t.Errorf("SetAlarmState of an unknown alarm: %v, want ResourceNotFound", err)
	}
}

// TestCloudWatchStandardResolution stores ALB metrics per minute, as AWS
// does: a 10 s query gets one point per whole minute, and nothing of the
// current minute.
func TestCloudWatchStandardResolution(t *testing.T) {
	f := newALB(t)
	f.fake.CloudWatch().SetResolution(time.Minute)
	f.waitStates(t, f.blue.ARN, "healthy", "healthy")
	if time.Now().Second() > 55 {
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)))
	}
	minute := time.Now().Truncate(time.Minute)
	for i := 0; i < 20; i++ {
		resp, err := http.Get(f.ln.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cw := cloudwatch.NewFromConfig(f.fake.Config())
	out, err := cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-5 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{metricQuery("n", "RequestCount", "Sum", 10, map[string]string{"LoadBalancer": f.lb.Dimension})}})
	if err != nil {
		t.Fatal(err)
	}
	if v := out.MetricDataResults[0].Values; len(v) != 0 && time.Now().Truncate(time.Minute).Equal(minute) {
		t.Errorf("the current minute's requests were published: %v", v)
	}
	for _, ts := range out.MetricDataResults[0].Timestamps {
		if ts.Second() != 0 {
			t.Errorf("timestamp %v is not on a minute", ts)
		}
	}
}
