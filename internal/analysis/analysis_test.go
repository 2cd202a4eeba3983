package analysis

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
)

// counts builds a window of n requests with errs 5xx, every request taking
// latency d except slow of them taking slowD.
func counts(n, errs uint64, d time.Duration, slow uint64, slowD time.Duration) metrics.Counts {
	var r metrics.Recorder
	for i := range n {
		status, lat := 200, d
		if i < errs {
			status = 503
		}
		if i >= n-slow {
			lat = slowD
		}
		r.Start()
		r.Done(status, lat, false)
	}
	return r.Snapshot()
}

func TestEvaluate(t *testing.T) {
	crit := Criteria{MaxErrorRate: 0.01, MaxP99Latency: time.Second, MinRequests: 50, CandidateLabel: "green", BaselineLabel: "blue"}
	ms := time.Millisecond
	live := counts(5000, 25, 10*ms, 0, 0)
	cases := []struct {
		name       string
		crit       Criteria
		cand, base metrics.Counts
		want       Result
		reason     []string
	}{
		{"too few requests", crit, counts(49, 49, 10*ms, 0, 0), live, Inconclusive, []string{"49 requests", "needs 50"}},
		{"healthy", crit, counts(1000, 5, 10*ms, 0, 0), live, Pass, []string{"within limits"}},
		{"clearly bad", crit, counts(300, 15, 10*ms, 0, 0), live, Fail, []string{"green error rate 5% (n=300)", "blue 0.5% (n=5000)", "limit 1%", "p < 0.001", "rollback"}},
		{"over the limit, not yet significant", crit, counts(100, 2, 10*ms, 0, 0), live, Inconclusive, []string{"not yet significant"}},
		{"live as bad as candidate", crit, counts(1000, 50, 10*ms, 0, 0), counts(5000, 250, 10*ms, 0, 0), Pass, nil},
		{"a little worse than a bad live", crit, counts(1000, 60, 10*ms, 0, 0), counts(5000, 250, 10*ms, 0, 0), Inconclusive, []string{"above which live sits", "not yet significant"}},
		{"much worse than a bad live", crit, counts(1000, 200, 10*ms, 0, 0), counts(5000, 250, 10*ms, 0, 0), Fail, []string{"20%"}},
		{"zero limit fails on one error", Criteria{MinRequests: 50}, counts(3, 1, 10*ms, 0, 0), live, Fail, []string{"limit 0"}},
		{"p99 over the absolute limit", crit, counts(1000, 0, 10*ms, 100, 2*time.Second), counts(5000, 0, 10*ms, 100, 2*time.Second), Fail, []string{"p99", "slower than 1s"}},
		{"p99 3x live", crit, counts(1000, 0, 30*ms, 0, 0), counts(5000, 0, 10*ms, 0, 0), Fail, []string{"2x blue p99"}},
		{"p99 like live", crit, counts(1000, 0, 10*ms, 5, 40*ms), counts(5000, 0, 10*ms, 25, 40*ms), Pass, nil},
		{"latency factor disabled", Criteria{MaxErrorRate: 0.01, MinRequests: 50, LatencyFactor: -1}, counts(1000, 0, 30*ms, 0, 0), counts(5000, 0, 10*ms, 0, 0), Pass, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(tc.crit, tc.cand, tc.base, 10*time.Second)
			if v.Result != tc.want {
				t.Fatalf("result = %s, want %s (%s)", v.Result, tc.want, v.Reason)
			}
			for _, s := range tc.reason {
				if !strings.Contains(v.Reason, s) {
					t.Errorf("reason %q lacks %q", v.Reason, s)
				}
			}
			if v.Candidate.Requests != tc.cand.Requests || v.Candidate.RPS != float64(tc.cand.Requests)/10 {
				t.Errorf("candidate figures = %+v", v.Candidate)
			}
		})
	}
}

// TestSPRTBound checks Ville's bound empirically at its edge: a candidate
// exactly at the limit, looked at every 50 requests for 3,000 requests, is
// failed in about Alpha of the runs and never much more.
func TestSPRTBound(t *testing.T) {
	const runs = 2000
	f := 0
	for seed := range uint64(runs) {
		r := newRand(seed)
		var n, k float64
		for range 60 {
			for range 50 {
				n++
				if r.Float64() < 0.01 {
					k++
				}
			}
			if sprtP(n, k, 0.01, DefaultEffect) <= DefaultAlpha {
				f++
				break
			}
		}
	}
	if rate := float64(f) / runs; rate > 1.5*DefaultAlpha {
		t.Errorf("false failures at the limit: %.3f, want <= alpha %.3f", rate, DefaultAlpha)
	} else {
		t.Logf("false failures at the limit: %.4f (alpha %.3f)", rate, DefaultAlpha)
	}
}
