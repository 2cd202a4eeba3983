// Package cloudwatch is an analysis source that reads each colour's
// traffic from CloudWatch: the ALB target group metrics RequestCount,
// HTTPCode_Target_5XX_Count, TargetConnectionErrorCount (sums) and
// TargetResponseTime (p50, p90, p99), fetched with GetMetricData, turned into the
// same cumulative per-colour counters (metrics.Counts) that the embedded
// router records, so the controller's SPRT analysis judges them unchanged.
// It also watches the user's own CloudWatch alarms (DescribeAlarms) and
// reports any in ALARM.
//
// Timing. A data point of period P covering [t, t+P) is published by
// CloudWatch some delay D after t+P (for ALB metrics, tens of seconds for
// 1-minute metrics; the fake publishes after its MetricDelay). The source
// counts a period once, when now >= t+P+D: never a period that may still
// grow. So a request served at t is seen at the latest P+D+Poll later,
// and a bad candidate is judged after that plus the SPRT's own samples
// (a few analysis intervals). With 1-minute metrics and a typical 60 s
// publication delay, the fastest honest rollback is about 2-3 minutes;
// with 1-second (high-resolution) periods it is D + a few seconds.
//
// Latency is known only as each period's p50, p90 and p99; the source
// spreads a period's requests over them (see add), an estimate of the
// histogram the embedded router would have recorded.
//
// Concurrency: Counts and Alarms are safe for concurrent use and never
// wait for CloudWatch; Run, the poller, is owned by its caller.
package cloudwatch

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// API is the part of the CloudWatch client the source uses.
type API interface {
	GetMetricData(ctx context.Context, in *cw.GetMetricDataInput, opts ...func(*cw.Options)) (*cw.GetMetricDataOutput, error)
	DescribeAlarms(ctx context.Context, in *cw.DescribeAlarmsInput, opts ...func(*cw.Options)) (*cw.DescribeAlarmsOutput, error)
}

// Dimensions name one colour's target group in CloudWatch: the
// TargetGroup ("targetgroup/NAME/ID") and LoadBalancer ("app/NAME/ID")
// dimensions of the AWS/ApplicationELB namespace. An empty TargetGroup
// means the colour has no metrics (its counts stay zero).
type Dimensions struct {
	TargetGroup  string
	LoadBalancer string
}

// Options configure a Source.
type Options struct {
	Client API
	// Colors are each colour's dimensions, indexed by route.Color.
	Colors [2]Dimensions
	// Period is the metric period: 60s for standard metrics, 1s (or 5,
	// 10, 30) for high-resolution ones; default 60s.
	Period time.Duration
	// Delay is how long after a period ends CloudWatch has published it;
	// default 60s (the fake's is set by its test).
	Delay time.Duration
	// Poll is how often the source asks; default Period (at least 1s).
	Poll time.Duration
	// Alarms are alarm names; any in ALARM is reported to OnAlarm at each poll.
	Alarms []string
	// OnAlarm receives each alarm found in ALARM, with its StateReason.
	OnAlarm func(name, reason string)
	Logger  *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Source accumulates per-colour counters from CloudWatch.
type Source struct {
	opts Options

	mu      sync.Mutex
	counts  [2]metrics.Counts
	mass    [2][metrics.NumBuckets]float64 // latency histogram before rounding
	next    time.Time                      // start of the first period not yet counted
	alarms  []string                       // "name: reason" of alarms in ALARM at the last poll
	lastErr error
	// lb5xx is the load balancers' HTTPCode_ELB_5XX_Count since start,
	// all colours together; lbRead says a poll has counted it.
	lb5xx  float64
	lbRead bool
}

// New returns a Source; Run starts polling.
func New(o Options) *Source {
	if o.Period <= 0 {
		o.Period = time.Minute
	}
	if o.Delay < 0 {
		o.Delay = 0
	}
	if o.Poll <= 0 {
		o.Poll = max(o.Period, time.Second)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Source{opts: o}
}

// Counts returns the colour's cumulative counters since the source started.
func (s *Source) Counts(c route.Color) metrics.Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[c&1]
}

// Alarms returns the alarms in ALARM at the last poll, "name: reason".
func (s *Source) Alarms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.alarms)
}

// LoadBalancer5xx returns the answers the colours' load balancers failed
// with a 5xx themselves (HTTPCode_ELB_5XX_Count, which AWS publishes per
// load balancer only, so it is attributed to no colour) since the source
// started, and whether a poll has read it yet.
func (s *Source) LoadBalancer5xx() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(math.Round(s.lb5xx)), s.lbRead
}

// Err is the last poll's error, or nil.
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Run polls until ctx ends. It counts only periods that end after it
// started: what was served before is no step's business.
func (s *Source) Run(ctx context.Context) {
	s.mu.Lock()
	s.next = s.opts.Now().Truncate(s.opts.Period)
	s.mu.Unlock()
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		err := s.Poll(ctx)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("cloudwatch poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll reads the periods published since the last poll, and the alarms.
func (s *Source) Poll(ctx context.Context) error {
	aerr := s.pollAlarms(ctx)
	merr := s.pollMetrics(ctx)
	if merr != nil {
		return merr
	}
	return aerr
}

// metricNames are the metrics read per colour, with their statistic.
var metricNames = [...]struct{ name, stat string }{
	{"RequestCount", "Sum"},
	{"HTTPCode_Target_5XX_Count", "Sum"},
	// A target that cannot be connected to costs its client a 502 from
	// the load balancer. AWS publishes that 502 in HTTPCode_ELB_5XX_Count
	// per load balancer only (a query per target group is always empty),
	// so the colour's share is this per-target-group count.
	{"TargetConnectionErrorCount", "Sum"},
	{"TargetResponseTime", "p99"},
	{"TargetResponseTime", "p50"},
	{"TargetResponseTime", "p90"},
}

func (s *Source) pollMetrics(ctx context.Context) error {
	p := s.opts.Period
	s.mu.Lock()
	start := s.next
	s.mu.Unlock()
	if start.IsZero() {
		start = s.opts.Now().Truncate(p)
	}
	end := s.opts.Now().Add(-s.opts.Delay).Truncate(p)
	if !end.After(start) {
		return nil
	}
	var queries []types.MetricDataQuery
	for _, c := range route.Colors {
		d := s.opts.Colors[c]
		if d.TargetGroup == "" {
			continue
		}
		dims := []types.Dimension{{Name: aws.String("TargetGroup"), Value: aws.String(d.TargetGroup)}}
		if d.LoadBalancer != "" {
			dims = append(dims, types.Dimension{Name: aws.String("LoadBalancer"), Value: aws.String(d.LoadBalancer)})
		}
		for i, m := range metricNames {
			queries = append(queries, types.MetricDataQuery{
				Id: aws.String(fmt.Sprintf("%s%d", c, i)),
				MetricStat: &types.MetricStat{
					Metric: &types.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String(m.name), Dimensions: dims},
					Period: aws.Int32(int32(p / time.Second)), Stat: aws.String(m.stat),
				},
				ReturnData: aws.Bool(true),
			})
		}
	}
	// The load balancers' own 5xx, once per load balancer.
	var lbs []string
	for _, c := range route.Colors {
		if d := s.opts.Colors[c]; d.TargetGroup != "" && d.LoadBalancer != "" && !slices.Contains(lbs, d.LoadBalancer) {
			lbs = append(lbs, d.LoadBalancer)
		}
	}
	for i, lb := range lbs {
		queries = append(queries, types.MetricDataQuery{
			Id: aws.String(fmt.Sprintf("lb%d", i)),
			MetricStat: &types.MetricStat{
				Metric: &types.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_ELB_5XX_Count"),
					Dimensions: []types.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(lb)}}},
				Period: aws.Int32(int32(p / time.Second)), Stat: aws.String("Sum"),
			},
			ReturnData: aws.Bool(true),
		})
	}
	if len(queries) == 0 {
		s.mu.Lock()
		s.next = end
		s.mu.Unlock()
		return nil
	}
	// values[color][metric][period start]
	values := map[string]map[time.Time]float64{}
	in := &cw.GetMetricDataInput{MetricDataQueries: queries, StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: types.ScanByTimestampAscending}
	for {
		out, err := s.opts.Client.GetMetricData(ctx, in)
		if err != nil {
			return fmt.Errorf("cloudwatch GetMetricData %s..%s: %w", start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), err)
		}
		for _, r := range out.MetricDataResults {
			id := aws.ToString(r.Id)
			if values[id] == nil {
				values[id] = map[time.Time]float64{}
			}
			for i, ts := range r.Timestamps {
				if i < len(r.Values) {
					values[id][ts.Truncate(p)] += r.Values[i]
				}
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range route.Colors {
		add(&s.counts[c], &s.mass[c], values, c.String())
	}
	for i := range lbs {
		for _, v := range values[fmt.Sprintf("lb%d", i)] {
			s.lb5xx += v
		}
	}
	s.lbRead = s.lbRead || len(lbs) > 0
	s.next = end
	return nil
}

// add folds one colour's periods into its cumulative counters. A
// period's latency is known by three quantiles; its requests are spread
// over them (half at p50, 40% at p90, 9% halfway to p99, 1% at p99) and
// the histogram holds the rounded running sums of that spread.
func add(c *metrics.Counts, mass *[metrics.NumBuckets]float64, values map[string]map[time.Time]float64, color string) {
	reqs, t5, ce := values[color+"0"], values[color+"1"], values[color+"2"]
	p99, p50, p90 := values[color+"3"], values[color+"4"], values[color+"5"]
	periods := map[time.Time]bool{}
	for _, m := range []map[time.Time]float64{reqs, t5, ce} {
		for ts := range m {
			periods[ts] = true
		}
	}
	secs := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	for ts := range periods {
		n := uint64(math.Round(reqs[ts]))
		// A failed connection's request is in RequestCount already (a
		// target was chosen for it); max guards against a period whose
		// counts CloudWatch published unevenly.
		errs := uint64(math.Round(t5[ts])) + uint64(math.Round(ce[ts]))
		n = max(n, errs)
		if n == 0 {
			continue
		}
		c.Requests += n
		c.Class[5] += errs
		c.Class[2] += n - errs
		q99, q50, q90 := secs(p99[ts]), secs(p50[ts]), secs(p90[ts])
		if q50 == 0 || q50 > q99 {
			q50 = q99
		}
		if q90 == 0 || q90 > q99 {
			q90 = q99
		}
		f := float64(n)
		mass[bucketOf(q50)] += 0.5 * f
		mass[bucketOf(q90)] += 0.4 * f
		mass[bucketOf(q90+(q99-q90)/2)] += 0.09 * f
		mass[bucketOf(q99)] += 0.01 * f
	}
	// Round the running sum so that the buckets add up to Requests.
	var run float64
	var prev uint64
	for i := range mass {
		run += mass[i]
		cum := uint64(math.Round(run))
		c.Latency[i] = cum - prev
		prev = cum
	}
}

// bucketOf is the latency bucket that holds d.
func bucketOf(d time.Duration) int {
	for i := range metrics.NumBuckets - 1 {
		if d <= metrics.BucketBound(i) {
			return i
		}
	}
	return metrics.NumBuckets - 1
}

func (s *Source) pollAlarms(ctx context.Context) error {
	if len(s.opts.Alarms) == 0 {
		return nil
	}
	var firing []string
	in := &cw.DescribeAlarmsInput{AlarmNames: s.opts.Alarms,
		AlarmTypes: []types.AlarmType{types.AlarmTypeMetricAlarm, types.AlarmTypeCompositeAlarm}}
	found := map[string]bool{}
	for {
		out, err := s.opts.Client.DescribeAlarms(ctx, in)
		if err != nil {
			return fmt.Errorf("cloudwatch DescribeAlarms %s: %w", strings.Join(s.opts.Alarms, ", "), err)
		}
		for _, a := range out.MetricAlarms {
			found[aws.ToString(a.AlarmName)] = true
			if a.StateValue == types.StateValueAlarm {
				firing = append(firing, s.fire(aws.ToString(a.AlarmName), aws.ToString(a.StateReason)))
			}
		}
		for _, a := range out.CompositeAlarms {
			found[aws.ToString(a.AlarmName)] = true
			if a.StateValue == types.StateValueAlarm {
				firing = append(firing, s.fire(aws.ToString(a.AlarmName), aws.ToString(a.StateReason)))
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	s.mu.Lock()
	s.alarms = firing
	s.mu.Unlock()
	var missing []string
	for _, n := range s.opts.Alarms {
		if !found[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cloudwatch: alarm %s not found (strategy.analysis.alarms)", strings.Join(missing, ", "))
	}
	return nil
}

func (s *Source) fire(name, reason string) string {
	if s.opts.OnAlarm != nil {
		s.opts.OnAlarm(name, reason)
	}
	return name + ": " + reason
}

// TargetGroupDimension turns a target group ARN into its CloudWatch
// dimension value, "targetgroup/NAME/ID".
func TargetGroupDimension(arn string) string {
	if i := strings.Index(arn, ":targetgroup/"); i >= 0 {
		return arn[i+1:]
	}
	return ""
}

// LoadBalancerDimension turns a load balancer or listener ARN into its
// CloudWatch dimension value, "app/NAME/ID".
func LoadBalancerDimension(arn string) string {
	for _, marker := range []string{":loadbalancer/", ":listener/", ":listener-rule/"} {
		if i := strings.Index(arn, marker); i >= 0 {
			parts := strings.Split(arn[i+len(marker):], "/")
			if len(parts) >= 3 {
				return strings.Join(parts[:3], "/")
			}
		}
	}
	return ""
}
