// Package analysis judges a candidate pool against the live pool from the
// router's per-colour counters and returns a verdict with the figures that
// caused it. It is pure: no I/O, no clocks, no state; every function is safe
// for concurrent use.
//
// # The test
//
// The controller calls Evaluate every analysis interval with the counts
// accumulated since the current step began, so evidence accumulates over the
// step instead of being thrown away every second. Looking at a growing sample
// again and again inflates the false-alarm rate of a fixed-sample test (a
// z-test at 5% looked at 60 times fails a healthy release most of the time),
// so every check here is a one-sided Wald sequential probability ratio test
// (SPRT) of a proportion:
//
//	H0: p <= p0   against   H1: p >= p1 = Effect * p0
//	LLR(n, k) = k*ln(p1/p0) + (n-k)*ln((1-p1)/(1-p0))
//	fail when LLR >= ln(1/Alpha)
//
// Under H0 the likelihood ratio exp(LLR) is a non-negative supermartingale,
// so by Ville's inequality the probability that it EVER reaches 1/Alpha, over
// any number of looks at any times, is at most Alpha. That makes the test
// safe to look at every second: Alpha bounds the false-failure probability of
// one step whose candidate sits exactly at the limit, and a deployment of S
// steps fails such a candidate with probability at most S*Alpha. A candidate
// below the limit fails far less often: for a true rate of half the limit the
// bound is about Alpha^2 per step (the exponent solving E[LR^θ] = 1 is ≈ 2).
// PValue reports exp(-LLR), an anytime-valid p-value.
//
// The checks:
//
//   - Errors (5xx, including upstream failures): p0 = MaxErrorRate. When the
//     live pool is itself above the limit in the same window (and has at least
//     MinRequests), the candidate must also be significantly worse than live
//     (a second SPRT with p0 = live's rate): rolling back to an equally bad
//     version helps nobody. The observed rate must exceed both bounds too.
//     A limit of 0 fails on the first error.
//   - Latency, absolute: "p99 > MaxP99Latency" is "more than 1% of requests
//     are slower than MaxP99Latency", tested with the same SPRT on the share
//     of candidate requests above the limit (p0 = 1%), and the candidate's
//     estimated p99 must exceed the limit.
//   - Latency, relative: the same test with the threshold LatencyFactor times
//     live's p99 in the window (both pools need MinRequests). With the default
//     factor 2 a candidate whose p99 is 3x live's is caught reliably, and one
//     at 2x or less is not failed by this rule.
//
// A candidate with fewer than MinRequests requests is inconclusive: the step
// waits, it never passes blind. A candidate whose observed figures are over a
// limit but not yet significantly so is inconclusive as well, so the step
// gathers more evidence instead of passing.
//
// # Error rates (measured by the seeded simulation in sim_test.go)
//
// With the defaults (Alpha 0.01, Effect 3), MinRequests 50 and analysis
// every second: a release with 5% errors at the 10% step of 500 req/s
// (50 req/s on the candidate, live at 0.5%) is failed after a median of 3 s
// (95th percentile 7 s: in 5 s the candidate serves only 250 requests with
// 12.5 errors expected, and 1 run in 20 sees 7 or fewer, which no strict test
// can tell from the 1% limit); a healthy release (0.5% errors like live) is
// falsely failed in 0-1 of 1,000 simulated two-step canaries (10% and 50%
// for 30 s each); a release with 3x live's latency is always failed, after a
// median of 3 s. Run `go test ./internal/analysis -run Simulation -v` for the
// current figures.
package analysis

import (
	"fmt"
	"math"
	"time"

	"github.com/cutover/cutover/internal/metrics"
)

// Result is a verdict's outcome.
type Result string

// The outcomes of Evaluate.
const (
	Pass         Result = "pass"
	Fail         Result = "fail"
	Inconclusive Result = "inconclusive"
)

// Defaults for the statistical parameters of Criteria left zero.
const (
	DefaultAlpha         = 0.01
	DefaultEffect        = 3.0
	DefaultLatencyFactor = 2.0
	// slowShare is the share of requests above a p99 threshold that H0 allows.
	slowShare = 0.01
)

// Criteria are the limits a candidate is judged against. The zero value of
// every statistical field selects its documented default.
type Criteria struct {
	// MaxErrorRate is the highest acceptable error rate, as a fraction
	// (0.01 is 1%).
	MaxErrorRate float64
	// MaxP99Latency is the highest acceptable 99th percentile latency;
	// 0 disables the absolute latency check.
	MaxP99Latency time.Duration
	// MinRequests is how many candidate requests a window needs before it
	// can pass or fail on figures (a limit of 0 on errors fails sooner).
	MinRequests int
	// Alpha bounds the probability that one step falsely fails a candidate
	// sitting exactly at a limit, however often it is evaluated; default 0.01.
	Alpha float64
	// Effect is the ratio of the alternative to the null rate the SPRT is
	// tuned to detect quickly (p1 = Effect*p0); default 3.
	Effect float64
	// LatencyFactor: the candidate fails when its p99 is significantly above
	// LatencyFactor times live's p99; default 2; negative disables the check.
	LatencyFactor float64
	// CandidateLabel and BaselineLabel name the pools in Reason (for
	// example "green" and "blue"); default "candidate" and "live".
	CandidateLabel string
	BaselineLabel  string
}

// Figures are one pool's measurements over a window.
type Figures struct {
	Requests  uint64
	Errors    uint64
	ErrorRate float64 // fraction
	P99       time.Duration
	RPS       float64
}

// Verdict is the outcome of one evaluation with the figures behind it.
type Verdict struct {
	Result Result
	// Reason is one sentence with the figures, for people and history.
	Reason    string
	Candidate Figures
	Baseline  Figures
	// PValue is the anytime-valid p-value of the deciding check (1 when no
	// check applied).
	PValue float64
}

// Evaluate judges candidate against baseline. Both are counts accumulated
// over the same window (typically since the current step began) of the given
// length, which is used only for the RPS figures. It never fails on a
// candidate with fewer than MinRequests requests unless MaxErrorRate is 0.
func Evaluate(c Criteria, candidate, baseline metrics.Counts, window time.Duration) Verdict {
	c = c.withDefaults()
	v := Verdict{Candidate: figures(candidate, window), Baseline: figures(baseline, window), PValue: 1}
	cand, base := v.Candidate, v.Baseline
	if c.MaxErrorRate <= 0 && cand.Errors > 0 {
		v.Result, v.PValue = Fail, 0
		v.Reason = fmt.Sprintf("%s had %d errors (n=%d); limit 0 -> rollback", c.CandidateLabel, cand.Errors, cand.Requests)
		return v
	}
	if cand.Requests < uint64(max(c.MinRequests, 1)) {
		v.Result = Inconclusive
		v.Reason = fmt.Sprintf("%s has %d requests, needs %d to judge", c.CandidateLabel, cand.Requests, c.MinRequests)
		return v
	}
	checks := []check{errorCheck(c, cand, base), latencyCheck(c, candidate, c.MaxP99Latency, "limit")}
	if c.LatencyFactor > 0 && base.Requests >= uint64(max(c.MinRequests, 1)) && base.P99 > 0 {
		limit := time.Duration(c.LatencyFactor * float64(base.P99))
		checks = append(checks, latencyCheck(c, candidate, limit, fmt.Sprintf("%gx %s p99 %s", c.LatencyFactor, c.BaselineLabel, ms(base.P99))))
	}
	var worst *check
	for i := range checks {
		ch := &checks[i]
		if !ch.applies {
			continue
		}
		if ch.result == Fail {
			v.Result, v.Reason, v.PValue = Fail, ch.reason, ch.p
			return v
		}
		if ch.result == Inconclusive && worst == nil {
			worst = ch
		}
	}
	if worst != nil {
		v.Result, v.Reason, v.PValue = Inconclusive, worst.reason, worst.p
		return v
	}
	v.Result = Pass
	v.Reason = fmt.Sprintf("%s error rate %s (n=%d) vs %s %s (n=%d), p99 %s vs %s; within limits",
		c.CandidateLabel, pct(cand.ErrorRate), cand.Requests, c.BaselineLabel, pct(base.ErrorRate), base.Requests,
		ms(cand.P99), ms(base.P99))
	return v
}

func (c Criteria) withDefaults() Criteria {
	if c.Alpha <= 0 || c.Alpha >= 1 {
		c.Alpha = DefaultAlpha
	}
	if c.Effect <= 1 {
		c.Effect = DefaultEffect
	}
	if c.LatencyFactor == 0 {
		c.LatencyFactor = DefaultLatencyFactor
	}
	if c.CandidateLabel == "" {
		c.CandidateLabel = "candidate"
	}
	if c.BaselineLabel == "" {
		c.BaselineLabel = "live"
	}
	return c
}

// check is the outcome of one rule; applies is false when the rule had
// nothing to say (for example a disabled limit).
type check struct {
	applies bool
	result  Result
	p       float64
	reason  string
}

func errorCheck(c Criteria, cand, base Figures) check {
	n, k := float64(cand.Requests), float64(cand.Errors)
	bound := c.MaxErrorRate
	p := sprtP(n, k, bound, c.Effect)
	vs := fmt.Sprintf("limit %s", pct(c.MaxErrorRate))
	if base.Requests >= uint64(max(c.MinRequests, 1)) && base.ErrorRate > bound {
		// Live is itself over the limit: require the candidate to be worse than live too.
		bound = base.ErrorRate
		p = max(p, sprtP(n, k, bound, c.Effect))
		vs = fmt.Sprintf("limit %s, above which live sits", pct(c.MaxErrorRate))
	}
	head := fmt.Sprintf("%s error rate %s (n=%d) vs %s %s (n=%d); %s",
		c.CandidateLabel, pct(cand.ErrorRate), cand.Requests, c.BaselineLabel, pct(base.ErrorRate), base.Requests, vs)
	switch {
	case cand.ErrorRate <= bound:
		return check{applies: true, result: Pass, p: p}
	case p <= c.Alpha:
		return check{applies: true, result: Fail, p: p, reason: fmt.Sprintf("%s; p %s -> rollback", head, pval(p))}
	default:
		return check{applies: true, result: Inconclusive, p: p, reason: fmt.Sprintf("%s; above the limit but not yet significant (p %s)", head, pval(p))}
	}
}

// latencyCheck tests "candidate p99 > limit" as "more than 1% of the
// candidate's requests are slower than limit".
func latencyCheck(c Criteria, cand metrics.Counts, limit time.Duration, what string) check {
	if limit <= 0 {
		return check{}
	}
	n, k := slowerThan(cand, limit)
	p99 := cand.Quantile(0.99)
	p := sprtP(n, k, slowShare, c.Effect)
	head := fmt.Sprintf("%s p99 %s (n=%d, %s slower than %s) vs %s",
		c.CandidateLabel, ms(p99), cand.Requests, pct(k/max(n, 1)), ms(limit), what)
	switch {
	case p99 <= limit:
		return check{applies: true, result: Pass, p: p}
	case p <= c.Alpha:
		return check{applies: true, result: Fail, p: p, reason: fmt.Sprintf("%s; p %s -> rollback", head, pval(p))}
	default:
		return check{applies: true, result: Inconclusive, p: p, reason: fmt.Sprintf("%s; above but not yet significant (p %s)", head, pval(p))}
	}
}

// slowerThan returns the number of requests in the histogram and the
// (interpolated, so fractional) number slower than limit, assuming requests
// spread evenly inside a bucket as Counts.Quantile does.
func slowerThan(c metrics.Counts, limit time.Duration) (n, k float64) {
	lo := time.Duration(0)
	for i, cnt := range c.Latency {
		hi := metrics.BucketBound(i)
		n += float64(cnt)
		switch {
		case lo >= limit:
			k += float64(cnt)
		case hi > limit && i < metrics.NumBuckets-1:
			k += float64(cnt) * float64(hi-limit) / float64(hi-lo)
		case hi > limit:
			k += float64(cnt) // overflow bucket: all of it is slower
		}
		lo = hi
	}
	return n, k
}

// sprtP returns the anytime-valid p-value exp(-LLR) of Wald's SPRT of
// p <= p0 against p1 = effect*p0 after k events in n trials, capped at 1.
func sprtP(n, k, p0, effect float64) float64 {
	if n <= 0 {
		return 1
	}
	if p0 <= 0 {
		if k > 0 {
			return 0
		}
		return 1
	}
	if p0 >= 1 {
		return 1
	}
	p1 := min(effect*p0, (1+p0)/2)
	llr := k*math.Log(p1/p0) + (n-k)*math.Log((1-p1)/(1-p0))
	if llr <= 0 {
		return 1
	}
	return math.Exp(-llr)
}

func figures(c metrics.Counts, window time.Duration) Figures {
	f := Figures{Requests: c.Requests, Errors: c.Errors(), ErrorRate: c.ErrorRate(), P99: c.Quantile(0.99)}
	if window > 0 {
		f.RPS = float64(c.Requests) / window.Seconds()
	}
	return f
}

func pct(f float64) string { return fmt.Sprintf("%.2g%%", 100*f) }

func ms(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

func pval(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return fmt.Sprintf("= %.3f", p)
}
