package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/route"
)

// RouterOptions returns the options the benchmarks give the router:
// fast health checks, no stickiness (a benchmark client carries no cookie,
// and the split must follow the weights alone).
func RouterOptions(logger *slog.Logger) proxy.Options {
	return proxy.Options{
		Service:      "bench",
		StickyCookie: proxy.NoStickyCookie,
		Health: health.Config{Path: "/healthz", Interval: time.Second, Timeout: time.Second,
			HealthyThreshold: 1, UnhealthyThreshold: 3},
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, UpstreamHeaderTimeout: 30 * time.Second,
		DrainTimeout: 5 * time.Second,
		Logger:       logger,
	}
}

// Cutover is cutover's router serving on a 127.0.0.1 listener with a blue
// and a green pool of one backend each.
type Cutover struct {
	// Router is the router under test; use it to change the split.
	Router *proxy.Router
	// Addr is the public listener's address.
	Addr string
}

// StartCutover builds a router with the blue and green backends at the
// given addresses, sets live blue with candidateWeight for green, serves it
// on a free 127.0.0.1 port until ctx is done, and waits until it answers.
// A nil logger discards the router's logs.
func StartCutover(ctx context.Context, blue, green string, candidateWeight float64, logger *slog.Logger) (*Cutover, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r, err := proxy.New(RouterOptions(logger))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("build router: %w", err)
	}
	r.SetPool(route.Blue, "v1", []proxy.Backend{{ID: "blue-0", Addr: blue}})
	r.SetPool(route.Green, "v2", []proxy.Backend{{ID: "green-0", Addr: green}})
	if err := r.SetSplit(route.Blue, candidateWeight); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set split: %w", err)
	}
	go func() {
		defer r.Close()
		if err := r.Serve(ctx, ln, nil); err != nil && ctx.Err() == nil {
			logger.Error("router stopped", "err", err)
		}
	}()
	c := &Cutover{Router: r, Addr: ln.Addr().String()}
	return c, c.waitReady(ctx)
}

// waitReady polls the router until it answers 200, for at most 10 s: the
// router may hold traffic until its first health checks pass.
func (c *Cutover) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for ctx.Err() == nil {
		resp, err := client.Get("http://" + c.Addr + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("router on %s not ready: %v", c.Addr, last)
}
