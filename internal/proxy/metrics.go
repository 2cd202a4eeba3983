package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// Collector is a prometheus.Collector of routers' series, one router per
// service. It reads the counters the request path keeps (atomics) only
// when it is scraped: the request path makes no call into the Prometheus
// client. Only the preview series counts requests through the preview
// listener; all the others are public traffic, as analysis sees it:
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
//
// A Collector is safe for concurrent use.
type Collector struct {
	routers func() []*Router

	requests, preview, failures, inFlight, duration *prometheus.Desc
	instances, healthy, weight, fallbacks           *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of the routers that routers returns at
// each scrape, so that it follows a set of services that changes. Their
// service names must differ.
func NewCollector(routers func() []*Router) *Collector {
	byColor, byClass := []string{"service", "color"}, []string{"service", "color", "class"}
	return &Collector{
		routers:   routers,
		requests:  prometheus.NewDesc("cutover_requests_total", "Public requests completed, by colour and status class.", byClass, nil),
		preview:   prometheus.NewDesc("cutover_preview_requests_total", "Requests through the preview listener, by colour and status class; not in cutover_requests_total nor in analysis.", byClass, nil),
		failures:  prometheus.NewDesc("cutover_upstream_failures_total", "Requests no instance answered; the router replied 502 or 504.", byColor, nil),
		inFlight:  prometheus.NewDesc("cutover_in_flight_requests", "Requests in progress.", byColor, nil),
		duration:  prometheus.NewDesc("cutover_request_duration_seconds", "Public request duration as the router saw it: to the end of the response, or to the response headers for WebSocket upgrades and event streams.", byColor, nil),
		instances: prometheus.NewDesc("cutover_instances", "Instances in the colour's pool.", byColor, nil),
		healthy:   prometheus.NewDesc("cutover_healthy_instances", "Instances healthy and not ejected.", byColor, nil),
		weight:    prometheus.NewDesc("cutover_weight_percent", "Share of public traffic routed to the colour, in percent.", byColor, nil),
		fallbacks: prometheus.NewDesc("cutover_fallback_responses_total", "Requests answered with the fallback page because no colour was healthy.", []string{"service"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.preview, c.failures, c.inFlight, c.duration,
		c.instances, c.healthy, c.weight, c.fallbacks} {
		ch <- d
	}
}

// classes are the class label's values, by the index metrics.Counts.Class uses.
var classes = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

// Collect implements prometheus.Collector: one snapshot of each router.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.routers() {
		c.collect(ch, r)
	}
}

func (c *Collector) collect(ch chan<- prometheus.Metric, r *Router) {
	name := r.opts.Service
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var weight [2]float64
	live, cw := r.Split()
	weight[live], weight[live.Other()] = 100-cw, cw
	for _, col := range route.Colors {
		color := col.String()
		counts, preview := r.Counts(col), r.PreviewCounts(col)
		for class := 1; class < len(classes); class++ {
			counter(c.requests, counts.Class[class], name, color, classes[class])
			counter(c.preview, preview.Class[class], name, color, classes[class])
		}
		counter(c.failures, counts.UpstreamFailures, name, color)
		gauge(c.inFlight, float64(counts.InFlight), name, color)
		ch <- c.histogram(r, col, counts, name, color)
		healthy, total := r.Healthy(col)
		gauge(c.instances, float64(total), name, color)
		gauge(c.healthy, float64(healthy), name, color)
		gauge(c.weight, weight[col], name, color)
	}
	counter(c.fallbacks, r.fallbacks.Load(), name)
}

// histogram is a colour's latency histogram: cumulative buckets by upper
// bound (the overflow bucket is the +Inf one the exposition adds), the
// sum the router keeps beside the buckets, and their total as the count.
func (c *Collector) histogram(r *Router, col route.Color, counts metrics.Counts, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, metrics.NumBuckets-1)
	var cum uint64
	for i, n := range counts.Latency {
		cum += n
		if i < metrics.NumBuckets-1 {
			buckets[metrics.BucketBound(i).Seconds()] = cum
		}
	}
	sum := time.Duration(r.latSum[col].Load()).Seconds()
	return prometheus.MustNewConstHistogram(c.duration, cum, sum, buckets, labels...)
}
