package awsfake

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// startProbe runs t's health checks until it is removed or the server
// closes: a GET of the group's health check path every interval, judged by
// the matcher, moving the target between initial, healthy and unhealthy
// after the thresholds' count of consecutive results, and ending a drain.
func (e *ELB) startProbe(tg *targetGroup, t *target) {
	hc := tg.health
	client := &http.Client{Timeout: hc.Timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	addr := t.addr
	if hc.Port != 0 {
		host, _, _ := strings.Cut(addr, ":")
		addr = host + ":" + strconv.Itoa(hc.Port)
	}
	url := "http://" + addr + hc.Path
	e.s.Go(func(ctx context.Context) {
		tick := time.NewTicker(hc.Interval)
		defer tick.Stop()
		for {
			ok, why := probe(ctx, client, url, hc.Matcher)
			if !e.judge(tg, t, ok, why) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.stop:
				return
			case <-tick.C:
			}
		}
	})
}

func probe(ctx context.Context, client *http.Client, url, matcher string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, "stopped"
		}
		if strings.Contains(err.Error(), "Timeout") || strings.Contains(err.Error(), "deadline") {
			return false, "Target.Timeout"
		}
		return false, "Target.FailedHealthChecks"
	}
	resp.Body.Close()
	if matches(matcher, resp.StatusCode) {
		return true, ""
	}
	return false, "Target.ResponseCodeMismatch:" + strconv.Itoa(resp.StatusCode)
}

// matches reports whether code fits a matcher like "200", "200,302" or "200-299".
func matches(matcher string, code int) bool {
	for _, part := range strings.Split(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		if code >= a && code <= b {
			return true
		}
	}
	return false
}

// judge applies one probe result to t; it returns false when t is gone and
// its probing should stop.
func (e *ELB) judge(tg *targetGroup, t *target, ok bool, why string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if tg.targets[t.key] != t {
		return false
	}
	if t.state == StateDraining {
		// A drain ends when the delay has passed, or earlier when the
		// target has no request left in flight (as an ALB does).
		if time.Now().After(t.drainEnd) || t.inflight.Load() == 0 {
			delete(tg.targets, t.key)
			close(t.stop)
			e.publishLocked(tg)
			return false
		}
		return true
	}
	before := t.state
	if ok {
		t.ok, t.bad = t.ok+1, 0
		if t.state != StateHealthy && t.ok >= tg.health.HealthyThreshold {
			t.state, t.reason, t.desc = StateHealthy, "", ""
		}
	} else {
		t.ok, t.bad = 0, t.bad+1
		if t.state != StateUnhealthy && t.bad >= tg.health.UnhealthyThreshold {
			t.state, t.reason = StateUnhealthy, why
			if code, isCode := strings.CutPrefix(why, "Target.ResponseCodeMismatch:"); isCode {
				t.reason, t.desc = "Target.ResponseCodeMismatch", "Health checks failed with these codes: ["+code+"]"
			} else if why == "Target.Timeout" {
				t.desc = "Request timed out"
			} else {
				t.reason, t.desc = "Target.FailedHealthChecks", "Health checks failed"
			}
		}
	}
	if t.state != before {
		e.s.opts.Log.Info("target health", "target_group", tg.name, "target", t.addr, "from", before, "to", t.state)
		e.publishLocked(tg)
	}
	return true
}
