package cloudwatch

import (
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
)

// TestAddSpreadsPeriodsIntoCounts: sums become requests and 5xx, the
// histogram adds up to the requests, and its p99 lies near the periods' p99.
func TestAddSpreadsPeriodsIntoCounts(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	values := map[string]map[time.Time]float64{
		"green0": {t0: 100, t0.Add(time.Second): 50},
		"green1": {t0: 3},
		"green2": {t0.Add(time.Second): 1},
		"green3": {t0: 0.4, t0.Add(time.Second): 0.4}, // p99 400ms
		"green4": {t0: 0.01, t0.Add(time.Second): 0.01},
		"green5": {t0: 0.05, t0.Add(time.Second): 0.05},
	}
	var c metrics.Counts
	var mass [metrics.NumBuckets]float64
	add(&c, &mass, values, "green")
	if c.Requests != 150 || c.Errors() != 4 {
		t.Fatalf("requests %d errors %d, want 150 and 4", c.Requests, c.Errors())
	}
	var n uint64
	for _, b := range c.Latency {
		n += b
	}
	if n != c.Requests {
		t.Errorf("histogram holds %d, requests %d", n, c.Requests)
	}
	if q := c.Quantile(0.5); q > 20*time.Millisecond {
		t.Errorf("p50 %s, want about 10ms", q)
	}
	if q := c.Quantile(0.995); q < 200*time.Millisecond || q > 500*time.Millisecond {
		t.Errorf("p99.5 %s, want near the periods' p99 of 400ms", q)
	}
	// A second poll adds to the same counters.
	add(&c, &mass, map[string]map[time.Time]float64{"green0": {t0.Add(2 * time.Second): 10}}, "green")
	if c.Requests != 160 {
		t.Errorf("requests %d after a second poll, want 160", c.Requests)
	}
}

func TestDimensions(t *testing.T) {
	if got := TargetGroupDimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/73e2d6bc24d8a067"); got != "targetgroup/web-blue/73e2d6bc24d8a067" {
		t.Errorf("target group dimension %q", got)
	}
	if got := LoadBalancerDimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/prod/50dc6c495c0c9188/f2f7dc8efc522ab2"); got != "app/prod/50dc6c495c0c9188" {
		t.Errorf("load balancer dimension %q", got)
	}
}
