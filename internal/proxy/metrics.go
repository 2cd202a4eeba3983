package proxy

import (
	"bufio"
	"io"
	"strconv"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// WritePrometheus writes the router's series in the Prometheus text
// exposition format (see the package function WritePrometheus).
func (r *Router) WritePrometheus(w io.Writer) { WritePrometheus(w, r) }

// WritePrometheus writes the series of every router (one per service) in
// the Prometheus text exposition format, each metric family once. Only
// the preview series counts requests through the preview listener; all
// the others are public traffic, as analysis sees it:
//
//	cutover_requests_total{service,color,class}           counter, class 1xx..5xx (public traffic)
//	cutover_preview_requests_total{service,color,class}   counter, requests through the preview listener
//	cutover_upstream_failures_total{service,color}        counter (502/504 the router generated)
//	cutover_in_flight_requests{service,color}             gauge
//	cutover_request_duration_seconds{service,color}       histogram (_bucket with le, _sum, _count); streams: time to headers
//	cutover_instances{service,color}                      gauge, pool size
//	cutover_healthy_instances{service,color}              gauge
//	cutover_weight_percent{service,color}                 gauge, share of public traffic
//	cutover_fallback_responses_total{service}             counter (503 fallback page)
func WritePrometheus(w io.Writer, routers ...*Router) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	type snap struct {
		name    string
		counts  [2]metrics.Counts
		preview [2]metrics.Counts
		sum     [2]float64
		healthy [2]int
		total   [2]int
		weight  [2]float64
		fb      uint64
	}
	snaps := make([]snap, len(routers))
	for i, r := range routers {
		s := &snaps[i]
		s.name = r.opts.Service
		live, cw := r.Split()
		for _, c := range route.Colors {
			s.counts[c] = r.Counts(c)
			s.preview[c] = r.PreviewCounts(c)
			s.sum[c] = time.Duration(r.latSum[c].Load()).Seconds()
			s.healthy[c], s.total[c] = r.Healthy(c)
		}
		s.weight[live] = 100 - cw
		s.weight[live.Other()] = cw
		s.fb = r.fallbacks.Load()
	}
	family := func(name, typ, help string) {
		bw.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
	}
	labels := func(service string, c route.Color) string {
		return `service="` + service + `",color="` + c.String() + `"`
	}
	line := func(name, lbl string, v string) { bw.WriteString(name + "{" + lbl + "} " + v + "\n") }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

	family("cutover_requests_total", "counter", "Public requests completed, by colour and status class.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			for class := 1; class <= 5; class++ {
				line("cutover_requests_total", labels(s.name, c)+`,class="`+strconv.Itoa(class)+`xx"`, u(s.counts[c].Class[class]))
			}
		}
	}
	family("cutover_preview_requests_total", "counter", "Requests through the preview listener, by colour and status class; not in cutover_requests_total nor in analysis.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			for class := 1; class <= 5; class++ {
				line("cutover_preview_requests_total", labels(s.name, c)+`,class="`+strconv.Itoa(class)+`xx"`, u(s.preview[c].Class[class]))
			}
		}
	}
	family("cutover_upstream_failures_total", "counter", "Requests no instance answered; the router replied 502 or 504.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			line("cutover_upstream_failures_total", labels(s.name, c), u(s.counts[c].UpstreamFailures))
		}
	}
	family("cutover_in_flight_requests", "gauge", "Requests in progress.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			line("cutover_in_flight_requests", labels(s.name, c), strconv.FormatInt(s.counts[c].InFlight, 10))
		}
	}
	family("cutover_request_duration_seconds", "histogram", "Public request duration as the router saw it: to the end of the response, or to the response headers for WebSocket upgrades and event streams.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			lbl := labels(s.name, c)
			var cum uint64
			for i, n := range s.counts[c].Latency {
				cum += n
				le := "+Inf"
				if i < metrics.NumBuckets-1 {
					le = f(metrics.BucketBound(i).Seconds())
				}
				line("cutover_request_duration_seconds_bucket", lbl+`,le="`+le+`"`, u(cum))
			}
			line("cutover_request_duration_seconds_sum", lbl, f(s.sum[c]))
			line("cutover_request_duration_seconds_count", lbl, u(cum))
		}
	}
	family("cutover_instances", "gauge", "Instances in the colour's pool.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			line("cutover_instances", labels(s.name, c), strconv.Itoa(s.total[c]))
		}
	}
	family("cutover_healthy_instances", "gauge", "Instances healthy and not ejected.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			line("cutover_healthy_instances", labels(s.name, c), strconv.Itoa(s.healthy[c]))
		}
	}
	family("cutover_weight_percent", "gauge", "Share of public traffic routed to the colour, in percent.")
	for _, s := range snaps {
		for _, c := range route.Colors {
			line("cutover_weight_percent", labels(s.name, c), f(s.weight[c]))
		}
	}
	family("cutover_fallback_responses_total", "counter", "Requests answered with the fallback page because no colour was healthy.")
	for _, s := range snaps {
		line("cutover_fallback_responses_total", `service="`+s.name+`"`, u(s.fb))
	}
}
