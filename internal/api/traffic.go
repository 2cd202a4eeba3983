package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cutover/cutover/internal/metrics"
)

// This file serves the per-second traffic history the dashboard charts:
//
//	GET /v1/services/{name}/traffic?since=MS   TrafficHistory (the last 15 minutes at most)
//	GET /v1/events?traffic=1                   the event stream, plus one "event: traffic" a second
//
// Both need a Backend that also implements TrafficSource; with any other
// they answer 501 not_supported (the stream: without the traffic events).

// TrafficSource is what a Backend implements to serve traffic history.
type TrafficSource interface {
	// TrafficHistory returns a service's samples, oldest first.
	TrafficHistory(service string) ([]metrics.Sample, error)
	// SubscribeTraffic returns each new sample of a service (of every
	// service when service is "") as it is taken, until ctx is done, when
	// the channel is closed. A slow subscriber misses samples; the
	// backend never blocks on it.
	SubscribeTraffic(ctx context.Context, service string) (<-chan TrafficSample, error)
}

// TrafficSample is one service's sample, as SubscribeTraffic delivers it.
type TrafficSample struct {
	Service string
	metrics.Sample
}

// TrafficHistory is the body of GET /v1/services/{name}/traffic.
type TrafficHistory struct {
	Service string `json:"service"`
	// IntervalMS is the length of each point's window (1000).
	IntervalMS int            `json:"interval_ms"`
	Points     []TrafficPoint `json:"points"`
}

// TrafficPoint is one second of public traffic, per colour. On the event
// stream it is the data of an "event: traffic" message, with Service set.
type TrafficPoint struct {
	Service string      `json:"service,omitempty"`
	At      int64       `json:"t"` // end of the second, Unix milliseconds
	Blue    ColorSecond `json:"blue"`
	Green   ColorSecond `json:"green"`
}

// ColorSecond is one colour's figures in a TrafficPoint. ErrorRate and
// P99MS are null in a second without requests.
type ColorSecond struct {
	Requests  uint32   `json:"requests"`
	Errors    uint32   `json:"errors"`
	ErrorRate *float64 `json:"error_rate"` // fraction
	P99MS     *float64 `json:"p99_ms"`
	Healthy   uint16   `json:"healthy"`
	Total     uint16   `json:"total"`
	Weight    float32  `json:"weight"` // percent of public traffic
}

func trafficPoint(service string, s metrics.Sample) TrafficPoint {
	col := func(i int) ColorSecond {
		sc := s.Colors[i]
		out := ColorSecond{Requests: sc.Requests, Errors: sc.Errors, Healthy: s.Healthy[i], Total: s.Total[i], Weight: s.Weight[i]}
		if sc.Requests > 0 {
			rate := float64(sc.Errors) / float64(sc.Requests)
			p99 := float64(sc.Counts().Quantile(0.99)) / float64(time.Millisecond)
			out.ErrorRate, out.P99MS = &rate, &p99
		}
		return out
	}
	return TrafficPoint{Service: service, At: s.At, Blue: col(0), Green: col(1)}
}

func (s *Server) trafficSource() (TrafficSource, error) {
	ts, ok := s.b.(TrafficSource)
	if !ok {
		return nil, errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon keeps no traffic history")
	}
	return ts, nil
}

func (s *Server) traffic(w http.ResponseWriter, r *http.Request) error {
	name, err := serviceName(r)
	if err != nil {
		return err
	}
	var since int64
	if v := r.URL.Query().Get("since"); v != "" {
		if since, err = strconv.ParseInt(v, 10, 64); err != nil || since < 0 {
			return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("since %q: want Unix milliseconds", v))
		}
	}
	ts, err := s.trafficSource()
	if err != nil {
		return err
	}
	samples, err := ts.TrafficHistory(name)
	if err != nil {
		return err
	}
	out := TrafficHistory{Service: name, IntervalMS: 1000, Points: make([]TrafficPoint, 0, len(samples))}
	for _, smp := range samples {
		if smp.At >= since {
			out.Points = append(out.Points, trafficPoint("", smp))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// trafficEvents returns the samples the event stream should add, or nil
// (a channel that never delivers) when the request did not ask for them
// or the backend keeps none.
func (s *Server) trafficEvents(ctx context.Context, r *http.Request, service string) (<-chan TrafficSample, error) {
	if r.URL.Query().Get("traffic") != "1" {
		return nil, nil
	}
	ts, ok := s.b.(TrafficSource)
	if !ok {
		return nil, nil
	}
	return ts.SubscribeTraffic(ctx, service)
}

// trafficMessage is one sample as a server-sent event of type "traffic",
// which an EventSource (or the CLI) listening only for messages ignores.
func trafficMessage(smp TrafficSample) ([]byte, error) {
	data, err := json.Marshal(trafficPoint(smp.Service, smp.Sample))
	if err != nil {
		return nil, err
	}
	return append(append([]byte("event: traffic\ndata: "), data...), "\n\n"...), nil
}
