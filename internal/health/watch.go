package health

import (
	"context"
	"net/http"
	"time"
)

// Config sets how an instance is actively checked. Zero fields take the
// defaults noted on each.
type Config struct {
	// Path is requested on the instance; default "/healthz".
	Path string
	// Interval is the time between probes; default 1s.
	Interval time.Duration
	// Timeout bounds one probe; default 2s.
	Timeout time.Duration
	// HealthyThreshold is how many consecutive passes turn an unhealthy
	// instance healthy; default 2.
	HealthyThreshold int
	// UnhealthyThreshold is how many consecutive failures turn a healthy
	// instance unhealthy; default 3.
	UnhealthyThreshold int
}

// The defaults for zero Config fields; the runtime's health gates use the
// same path and timeout.
const (
	DefaultPath               = "/healthz"
	DefaultInterval           = time.Second
	DefaultTimeout            = 2 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
)

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	return c
}

// Watch probes scheme://addr+Path once at the start and then every
// Interval until ctx is done, and calls onChange(healthy, err) on each
// transition away from the current state, which starts as initial. A
// healthy instance turns unhealthy after UnhealthyThreshold consecutive
// failures (err is the last probe's error); an unhealthy one turns healthy
// after HealthyThreshold consecutive passes (err is nil). onChange is called
// from Watch's goroutine, never concurrently with itself, and never after
// Watch returns. The owner runs Watch in a goroutine and stops it with ctx.
func Watch(ctx context.Context, client *http.Client, scheme, addr string, cfg Config, initial bool, onChange func(healthy bool, err error)) {
	cfg = cfg.withDefaults()
	url := scheme + "://" + addr + cfg.Path
	healthy, streak := initial, 0
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := Probe(pctx, client, url)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if (err == nil) == healthy {
			streak = 0
		} else {
			streak++
			need := cfg.HealthyThreshold
			if healthy {
				need = cfg.UnhealthyThreshold
			}
			if streak >= need {
				healthy, streak = !healthy, 0
				onChange(healthy, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
