package awsfake

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch simulates the CloudWatch calls cutover makes: GetMetricData
// over the AWS/ApplicationELB metrics that the fake ALB's data plane
// records, published after a configurable delay, and metric alarms whose
// state the test sets. It speaks Smithy RPC v2 CBOR, as the pinned SDK
// does.
type CloudWatch struct {
	s          *Server
	delay      atomic.Int64 // nanoseconds
	resolution atomic.Int64 // seconds

	mu     sync.Mutex
	alarms map[string]*alarm
}

type alarm struct {
	name, arn      string
	state, reason  string
	reasonData     string
	updated        time.Time
	namespace      string
	metric         string
	dimensions     map[string]string
	threshold      float64
	comparison     string
	period         int
	evaluationPers int
	statistic      string
}

// Alarm states.
const (
	AlarmOK               = "OK"
	AlarmAlarm            = "ALARM"
	AlarmInsufficientData = "INSUFFICIENT_DATA"
)

func newCloudWatch(s *Server) *CloudWatch {
	c := &CloudWatch{s: s, alarms: map[string]*alarm{}}
	c.delay.Store(int64(s.opts.MetricDelay))
	c.resolution.Store(1)
	return c
}

// SetResolution sets the storage resolution of the ALB metrics: 1 s by
// default (as if they were high-resolution metrics), 60 s as AWS really
// publishes ALB metrics. Data points are then published per whole
// interval, and a query with a shorter period gets the interval's points.
func (c *CloudWatch) SetResolution(d time.Duration) {
	secs := int64(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	c.resolution.Store(secs)
}

// visible is the end of the published data: the last whole storage
// interval that ended at least the delay ago.
func (c *CloudWatch) visible() time.Time {
	v := time.Now().Add(-time.Duration(c.delay.Load())).Unix()
	res := c.resolution.Load()
	return time.Unix(v-v%res, 0)
}

// effectivePeriod rounds a query's period up to the storage resolution.
func (c *CloudWatch) effectivePeriod(p int64) int64 {
	res := c.resolution.Load()
	if p < res {
		return res
	}
	if p%res != 0 {
		return p + res - p%res
	}
	return p
}

// CloudWatch is the CloudWatch simulation.
func (s *Server) CloudWatch() *CloudWatch { return s.cw }

// SetMetricDelay changes how long after a request its data point becomes
// visible to GetMetricData (CloudWatch publishes ALB metrics about a
// minute late; tests shorten it).
func (c *CloudWatch) SetMetricDelay(d time.Duration) { c.delay.Store(int64(d)) }

// AlarmSpec describes a metric alarm for PutAlarm.
type AlarmSpec struct {
	Name       string            `json:"name"`
	Namespace  string            `json:"namespace"`  // default AWS/ApplicationELB
	Metric     string            `json:"metric"`     // default HTTPCode_Target_5XX_Count
	Dimensions map[string]string `json:"dimensions"` // e.g. {"TargetGroup": tg.Dimension, "LoadBalancer": lb.Dimension}
	Threshold  float64           `json:"threshold"`
	Statistic  string            `json:"statistic"` // default Sum
	Period     int               `json:"period"`    // seconds, default 60
}

// PutAlarm creates or replaces a metric alarm; it starts in
// INSUFFICIENT_DATA. The fake never evaluates it: its state is what
// SetAlarm (or the API's SetAlarmState) last set.
func (c *CloudWatch) PutAlarm(spec AlarmSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &alarm{name: spec.Name, state: AlarmInsufficientData, reason: "Unchecked: Initial alarm creation", updated: time.Now(),
		namespace: spec.Namespace, metric: spec.Metric, dimensions: spec.Dimensions, threshold: spec.Threshold,
		comparison: "GreaterThanThreshold", period: spec.Period, evaluationPers: 1, statistic: spec.Statistic}
	if a.namespace == "" {
		a.namespace = "AWS/ApplicationELB"
	}
	if a.metric == "" {
		a.metric = "HTTPCode_Target_5XX_Count"
	}
	if a.period == 0 {
		a.period = 60
	}
	if a.statistic == "" {
		a.statistic = "Sum"
	}
	a.arn = fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", c.s.opts.Region, c.s.opts.Account, spec.Name)
	c.alarms[spec.Name] = a
}

// SetAlarm sets an alarm's state and reason, as SetAlarmState does.
func (c *CloudWatch) SetAlarm(name, state, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.alarms[name]
	if a == nil {
		return statusErrorf(http.StatusNotFound, "ResourceNotFound", "Alarm %s not found", name)
	}
	switch state {
	case AlarmOK, AlarmAlarm, AlarmInsufficientData:
	default:
		return Errorf("InvalidParameterValue", "The value %s for parameter StateValue is not valid.", state)
	}
	if state != a.state {
		a.updated = time.Now()
	}
	a.state, a.reason = state, reason
	return nil
}

// service is the RPC v2 CBOR face of CloudWatch.
func (c *CloudWatch) service() Service {
	return &cborService{ops: map[string]cborOp{
		"GetMetricData":       c.apiGetMetricData,
		"GetMetricStatistics": c.apiGetMetricStatistics,
		"DescribeAlarms":      c.apiDescribeAlarms,
		"SetAlarmState":       c.apiSetAlarmState,
	}}
}

type cborOp func(in cbor.Map) (cbor.Map, error)

// cborService speaks Smithy RPC v2 CBOR for CloudWatch
// (/service/GraniteServiceVersion20100801/operation/OP).
type cborService struct {
	ops map[string]cborOp
}

const cborPathPrefix = "/service/GraniteServiceVersion20100801/operation/"

func (s *cborService) Operation(r *http.Request, _ []byte) string {
	return strings.TrimPrefix(r.URL.Path, cborPathPrefix)
}

func (s *cborService) Serve(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, cborPathPrefix) {
		s.WriteError(w, statusErrorf(http.StatusNotFound, "UnknownOperationException", "no operation at %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		s.WriteError(w, Errorf("InvalidParameterValue", "missing header smithy-protocol: rpc-v2-cbor"))
		return
	}
	op := s.ops[s.Operation(r, body)]
	if op == nil {
		s.WriteError(w, statusErrorf(http.StatusNotFound, "UnknownOperationException", "awsfake does not simulate CloudWatch %s", s.Operation(r, body)))
		return
	}
	in := cbor.Map{}
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		if err != nil {
			s.WriteError(w, Errorf("SerializationException", "the body is not CBOR: %v", err))
			return
		}
		m, ok := v.(cbor.Map)
		if !ok {
			s.WriteError(w, Errorf("SerializationException", "the body is not a CBOR map"))
			return
		}
		in = m
	}
	out, err := op(in)
	if err != nil {
		s.WriteError(w, asAPIError(err))
		return
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("X-Amzn-RequestId", newRequestID())
	w.Write(cbor.Encode(out))
}

// WriteError writes __type and message in a CBOR map, with the awsQuery
// code in X-Amzn-Query-Error (CloudWatch is query-compatible).
func (s *cborService) WriteError(w http.ResponseWriter, e *APIError) {
	typ := e.Code
	switch e.Code {
	case "ResourceNotFound", "InvalidParameterValue", "MissingParameter", "InvalidParameterCombination", "LimitExceeded", "InternalServiceError", "InvalidNextToken":
		typ = "com.amazonaws.cloudwatch#" + cborShapeName(e.Code)
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("X-Amzn-RequestId", newRequestID())
	w.Header().Set("X-Amzn-Query-Error", e.Code+";"+e.faultName())
	w.WriteHeader(e.Status)
	w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(typ), "message": cbor.String(e.Message)}))
}

// cborShapeName maps an awsQuery error code to the Smithy shape that
// carries it.
func cborShapeName(code string) string {
	switch code {
	case "InvalidParameterValue":
		return "InvalidParameterValueException"
	case "MissingParameter":
		return "MissingRequiredParameterException"
	case "InvalidParameterCombination":
		return "InvalidParameterCombinationException"
	case "LimitExceeded":
		return "LimitExceededException"
	case "InternalServiceError":
		return "InternalServiceFault"
	}
	return code
}

// CBOR accessors.

func cStr(m cbor.Map, k string) string {
	if s, ok := m[k].(cbor.String); ok {
		return string(s)
	}
	return ""
}

func cMap(m cbor.Map, k string) cbor.Map {
	if v, ok := m[k].(cbor.Map); ok {
		return v
	}
	return nil
}

func cList(m cbor.Map, k string) cbor.List {
	if v, ok := m[k].(cbor.List); ok {
		return v
	}
	return nil
}

func cInt(m cbor.Map, k string) (int64, bool) {
	v, ok := m[k]
	if !ok {
		return 0, false
	}
	n, err := cbor.AsInt64(v)
	return n, err == nil
}

func cTime(m cbor.Map, k string) (time.Time, bool) {
	v, ok := m[k]
	if !ok {
		return time.Time{}, false
	}
	t, err := cbor.AsTime(v)
	return t, err == nil
}

func cTimeValue(t time.Time) cbor.Value {
	return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1e3)}
}

var queryIDPattern = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// metricQuery is one MetricDataQuery with a MetricStat.
type metricQuery struct {
	id, label string
	namespace string
	metric    string
	dims      map[string]string
	period    int64
	stat      string
	ret       bool
}

func parseMetricQueries(in cbor.Map) ([]metricQuery, error) {
	list := cList(in, "MetricDataQueries")
	if len(list) == 0 {
		return nil, Errorf("MissingParameter", "The parameter MetricDataQueries is required.")
	}
	if len(list) > 500 {
		return nil, Errorf("InvalidParameterValue", "The collection MetricDataQueries must not have a size greater than 500.")
	}
	var out []metricQuery
	ids := map[string]bool{}
	for i, v := range list {
		m, _ := v.(cbor.Map)
		where := fmt.Sprintf("MetricDataQueries.member.%d", i+1)
		q := metricQuery{id: cStr(m, "Id"), label: cStr(m, "Label"), ret: true}
		if !queryIDPattern.MatchString(q.id) {
			return nil, Errorf("InvalidParameterValue", "The value %s for parameter %s.Id is not valid: it must start with a lowercase letter and contain only letters, digits and underscores.", q.id, where)
		}
		if ids[q.id] {
			return nil, Errorf("InvalidParameterValue", "The value %s for parameter %s.Id is not unique.", q.id, where)
		}
		ids[q.id] = true
		if b, ok := m["ReturnData"].(cbor.Bool); ok {
			q.ret = bool(b)
		}
		if cStr(m, "Expression") != "" {
			return nil, Errorf("InvalidParameterValue", "awsfake does not evaluate metric math (%s.Expression); use MetricStat", where)
		}
		ms := cMap(m, "MetricStat")
		if ms == nil {
			return nil, Errorf("InvalidParameterCombination", "Exactly one of the parameters %s.MetricStat and %s.Expression must be specified.", where, where)
		}
		metric := cMap(ms, "Metric")
		q.namespace, q.metric = cStr(metric, "Namespace"), cStr(metric, "MetricName")
		if q.metric == "" {
			return nil, Errorf("MissingParameter", "The parameter %s.MetricStat.Metric.MetricName is required.", where)
		}
		q.dims = map[string]string{}
		for _, d := range cList(metric, "Dimensions") {
			dm, _ := d.(cbor.Map)
			q.dims[cStr(dm, "Name")] = cStr(dm, "Value")
		}
		p, ok := cInt(ms, "Period")
		if !ok {
			return nil, Errorf("MissingParameter", "The parameter %s.MetricStat.Period is required.", where)
		}
		if !validPeriod(p) {
			return nil, Errorf("InvalidParameterValue", "The parameter %s.MetricStat.Period must be 1, 5, 10, 30, or a multiple of 60.", where)
		}
		q.period = p
		q.stat = cStr(ms, "Stat")
		if _, ok := statFunc(q.stat); !ok {
			return nil, Errorf("InvalidParameterValue", "The value %s for parameter %s.MetricStat.Stat is not valid.", q.stat, where)
		}
		if q.label == "" {
			q.label = q.metric
		}
		out = append(out, q)
	}
	return out, nil
}

func validPeriod(p int64) bool {
	switch p {
	case 1, 5, 10, 30:
		return true
	}
	return p > 0 && p%60 == 0
}

// statFunc returns the aggregation of a statistic: Sum, SampleCount,
// Average, Minimum, Maximum, or a percentile pNN(.N).
func statFunc(stat string) (func(xs []float64) float64, bool) {
	switch stat {
	case "Sum":
		return func(xs []float64) float64 {
			s := 0.0
			for _, x := range xs {
				s += x
			}
			return s
		}, true
	case "SampleCount":
		return func(xs []float64) float64 { return float64(len(xs)) }, true
	case "Average":
		return func(xs []float64) float64 {
			s := 0.0
			for _, x := range xs {
				s += x
			}
			return s / float64(len(xs))
		}, true
	case "Minimum":
		return func(xs []float64) float64 {
			m := math.Inf(1)
			for _, x := range xs {
				m = math.Min(m, x)
			}
			return m
		}, true
	case "Maximum":
		return func(xs []float64) float64 {
			m := math.Inf(-1)
			for _, x := range xs {
				m = math.Max(m, x)
			}
			return m
		}, true
	}
	if rest, ok := strings.CutPrefix(stat, "p"); ok {
		p, err := strconv.ParseFloat(rest, 64)
		if err == nil && p >= 0 && p <= 100 {
			return func(xs []float64) float64 { return percentile(xs, p) }, true
		}
	}
	return nil, false
}

// samples returns the samples of an ALB metric over [from, to) from the
// data plane's record: one sample of 1 per counted request for the count
// metrics, one latency per answered request for TargetResponseTime. ok is
// false when the metric and dimensions name no series AWS publishes.
func (c *CloudWatch) samples(q metricQuery, from, to time.Time) ([]float64, bool) {
	if q.namespace != "AWS/ApplicationELB" {
		return nil, false
	}
	lb, tg := q.dims["LoadBalancer"], q.dims["TargetGroup"]
	if lb == "" || len(q.dims) > 2 || len(q.dims) == 2 && tg == "" {
		return nil, false
	}
	tgSel := "*"
	if tg != "" {
		tgSel = tg
	}
	b := c.s.elb.stats.window(lb, tgSel, from, to)
	count := func(n float64) []float64 {
		xs := make([]float64, int(n))
		for i := range xs {
			xs[i] = 1
		}
		return xs
	}
	switch q.metric {
	case "RequestCount":
		// Only requests for which the load balancer chose a target count
		// (not fixed responses, nor 503s for want of a target).
		return count(b.chosen), true
	case "HTTPCode_Target_2XX_Count":
		return count(b.target2xx), true
	case "HTTPCode_Target_3XX_Count":
		return count(b.target3xx), true
	case "HTTPCode_Target_4XX_Count":
		return count(b.target4xx), true
	case "HTTPCode_Target_5XX_Count":
		return count(b.target5xx), true
	case "TargetConnectionErrorCount":
		return count(b.connErrors), true
	case "HTTPCode_ELB_5XX_Count":
		if tg != "" {
			return nil, false // AWS publishes it per load balancer only
		}
		return count(b.elb5xx), true
	case "HTTPCode_ELB_4XX_Count":
		if tg != "" {
			return nil, false
		}
		return count(b.elb4xx), true
	case "TargetResponseTime":
		return b.latencies, true
	}
	return nil, false
}

func (c *CloudWatch) apiGetMetricData(in cbor.Map) (cbor.Map, error) {
	start, ok := cTime(in, "StartTime")
	if !ok {
		return nil, Errorf("MissingParameter", "The parameter StartTime is required.")
	}
	end, ok := cTime(in, "EndTime")
	if !ok {
		return nil, Errorf("MissingParameter", "The parameter EndTime is required.")
	}
	if !start.Before(end) {
		return nil, Errorf("InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
	}
	queries, err := parseMetricQueries(in)
	if err != nil {
		return nil, err
	}
	for _, q := range queries {
		if n := (end.Unix() - start.Unix()) / c.effectivePeriod(q.period); n > 100800 {
			return nil, Errorf("InvalidParameterCombination", "You have requested up to %d datapoints, which exceeds the limit of 100,800.", n)
		}
	}
	ascending := false
	switch cStr(in, "ScanBy") {
	case "", "TimestampDescending":
	case "TimestampAscending":
		ascending = true
	default:
		return nil, Errorf("InvalidParameterValue", "The value %s for parameter ScanBy is not valid.", cStr(in, "ScanBy"))
	}
	// A second's data is published once the second is over and the delay
	// has passed.
	visible := c.visible()
	results := cbor.List{}
	for _, q := range queries {
		if !q.ret {
			continue
		}
		agg, _ := statFunc(q.stat)
		var stamps, values cbor.List
		type point struct {
			t time.Time
			v float64
		}
		var pts []point
		q.period = c.effectivePeriod(q.period)
		first := start.Unix() - start.Unix()%q.period
		for bs := first; bs < end.Unix(); bs += q.period {
			from, to := time.Unix(bs, 0), time.Unix(bs+q.period, 0)
			if from.Before(start) {
				from = start.Truncate(time.Second)
			}
			if to.After(end) {
				to = end
			}
			if to.After(visible) {
				to = visible
			}
			if !to.After(from) {
				continue
			}
			xs, known := c.samples(q, from, to)
			if !known || len(xs) == 0 {
				continue
			}
			pts = append(pts, point{time.Unix(bs, 0), agg(xs)})
		}
		if !ascending {
			sort.Slice(pts, func(i, j int) bool { return pts[i].t.After(pts[j].t) })
		}
		for _, p := range pts {
			stamps = append(stamps, cTimeValue(p.t))
			values = append(values, cbor.Float64(p.v))
		}
		if stamps == nil {
			stamps, values = cbor.List{}, cbor.List{}
		}
		results = append(results, cbor.Map{
			"Id": cbor.String(q.id), "Label": cbor.String(q.label),
			"Timestamps": stamps, "Values": values, "StatusCode": cbor.String("Complete"),
		})
	}
	return cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}, nil
}

func (c *CloudWatch) apiDescribeAlarms(in cbor.Map) (cbor.Map, error) {
	names := map[string]bool{}
	for _, v := range cList(in, "AlarmNames") {
		if s, ok := v.(cbor.String); ok {
			names[string(s)] = true
		}
	}
	prefix, state := cStr(in, "AlarmNamePrefix"), cStr(in, "StateValue")
	if len(names) > 0 && prefix != "" {
		return nil, Errorf("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be specified together.")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var as []*alarm
	for _, a := range c.alarms {
		if len(names) > 0 && !names[a.name] || prefix != "" && !strings.HasPrefix(a.name, prefix) || state != "" && a.state != state {
			continue
		}
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool { return as[i].name < as[j].name })
	list := cbor.List{}
	for _, a := range as {
		dims := cbor.List{}
		keys := make([]string, 0, len(a.dimensions))
		for k := range a.dimensions {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			dims = append(dims, cbor.Map{"Name": cbor.String(k), "Value": cbor.String(a.dimensions[k])})
		}
		m := cbor.Map{
			"AlarmName": cbor.String(a.name), "AlarmArn": cbor.String(a.arn),
			"StateValue": cbor.String(a.state), "StateReason": cbor.String(a.reason),
			"StateUpdatedTimestamp": cTimeValue(a.updated), "ActionsEnabled": cbor.Bool(true),
			"Namespace": cbor.String(a.namespace), "MetricName": cbor.String(a.metric), "Dimensions": dims,
			"Statistic": cbor.String(a.statistic), "Period": cbor.Uint(a.period), "EvaluationPeriods": cbor.Uint(a.evaluationPers),
			"Threshold": cbor.Float64(a.threshold), "ComparisonOperator": cbor.String(a.comparison),
		}
		if a.reasonData != "" {
			m["StateReasonData"] = cbor.String(a.reasonData)
		}
		list = append(list, m)
	}
	return cbor.Map{"MetricAlarms": list, "CompositeAlarms": cbor.List{}}, nil
}

func (c *CloudWatch) apiSetAlarmState(in cbor.Map) (cbor.Map, error) {
	name, state, reason := cStr(in, "AlarmName"), cStr(in, "StateValue"), cStr(in, "StateReason")
	for k, v := range map[string]string{"AlarmName": name, "StateValue": state, "StateReason": reason} {
		if v == "" {
			return nil, Errorf("MissingParameter", "The parameter %s is required.", k)
		}
	}
	if err := c.SetAlarm(name, state, reason); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.alarms[name].reasonData = cStr(in, "StateReasonData")
	c.mu.Unlock()
	return nil, nil
}

// apiGetMetricStatistics is GetMetricStatistics: one metric, several
// statistics per period, percentiles through ExtendedStatistics.
func (c *CloudWatch) apiGetMetricStatistics(in cbor.Map) (cbor.Map, error) {
	start, ok := cTime(in, "StartTime")
	if !ok {
		return nil, Errorf("MissingParameter", "The parameter StartTime is required.")
	}
	end, ok := cTime(in, "EndTime")
	if !ok {
		return nil, Errorf("MissingParameter", "The parameter EndTime is required.")
	}
	if !start.Before(end) {
		return nil, Errorf("InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
	}
	q := metricQuery{namespace: cStr(in, "Namespace"), metric: cStr(in, "MetricName"), dims: map[string]string{}}
	if q.namespace == "" || q.metric == "" {
		return nil, Errorf("MissingParameter", "The parameters Namespace and MetricName are required.")
	}
	for _, d := range cList(in, "Dimensions") {
		dm, _ := d.(cbor.Map)
		q.dims[cStr(dm, "Name")] = cStr(dm, "Value")
	}
	period, ok := cInt(in, "Period")
	if !ok || !validPeriod(period) {
		return nil, Errorf("InvalidParameterValue", "The parameter Period must be 1, 5, 10, 30, or a multiple of 60.")
	}
	var stats, ext []string
	for _, v := range cList(in, "Statistics") {
		if s, ok := v.(cbor.String); ok {
			stats = append(stats, string(s))
		}
	}
	for _, v := range cList(in, "ExtendedStatistics") {
		if s, ok := v.(cbor.String); ok {
			ext = append(ext, string(s))
		}
	}
	if len(stats)+len(ext) == 0 {
		return nil, Errorf("MissingParameter", "Either Statistics or ExtendedStatistics must be specified.")
	}
	for _, s := range stats {
		if _, ok := statFunc(s); !ok || strings.HasPrefix(s, "p") {
			return nil, Errorf("InvalidParameterValue", "The value %s for parameter Statistics is not valid.", s)
		}
	}
	for _, s := range ext {
		if _, ok := statFunc(s); !ok || !strings.HasPrefix(s, "p") {
			return nil, Errorf("InvalidParameterValue", "The value %s for parameter ExtendedStatistics is not valid.", s)
		}
	}
	visible := c.visible()
	period = c.effectivePeriod(period)
	if n := (end.Unix() - start.Unix()) / period; n > 1440 {
		return nil, Errorf("InvalidParameterCombination", "You have requested up to %d datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.", n)
	}
	points := cbor.List{}
	for bs := start.Unix() - start.Unix()%period; bs < end.Unix(); bs += period {
		from, to := time.Unix(bs, 0), time.Unix(bs+period, 0)
		if from.Before(start) {
			from = start.Truncate(time.Second)
		}
		if to.After(end) {
			to = end
		}
		if to.After(visible) {
			to = visible
		}
		if !to.After(from) {
			continue
		}
		xs, known := c.samples(q, from, to)
		if !known || len(xs) == 0 {
			continue
		}
		p := cbor.Map{"Timestamp": cTimeValue(time.Unix(bs, 0))}
		for _, s := range stats {
			f, _ := statFunc(s)
			p[s] = cbor.Float64(f(xs))
		}
		if len(ext) > 0 {
			em := cbor.Map{}
			for _, s := range ext {
				f, _ := statFunc(s)
				em[s] = cbor.Float64(f(xs))
			}
			p["ExtendedStatistics"] = em
		}
		if q.metric == "TargetResponseTime" {
			p["Unit"] = cbor.String("Seconds")
		} else {
			p["Unit"] = cbor.String("Count")
		}
		points = append(points, p)
	}
	return cbor.Map{"Label": cbor.String(q.metric), "Datapoints": points}, nil
}
