package preflight

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sample is one look at the database's connections during a deployment.
type Sample struct {
	Connections int
	Budget      int
	Max         int
	// Refused counts the samples whose connection the server refused
	// (too many connections) since the watch began.
	Refused uint64
	// Over is true when Connections is past Budget, or this sample's
	// connection was refused.
	Over   bool
	Reason string
	At     time.Time
	Err    string
}

// Watch samples the service's database while a deployment runs: each
// sample opens a connection of its own, as a new instance would, so a
// refusal is what the candidate's instances meet too. Latest never
// blocks: it returns the last sample and starts the next one in the
// background when the last is older than Every. A sample is bounded by
// the checker's timeout, so no goroutine outlives it by more.
type Watch struct {
	c     *Checker
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex
	last     *Sample
	lastAt   time.Time
	sampling bool
	refused  uint64
}

// Watch returns the database watch of the checker, or nil when no
// database is configured. every is the sampling interval (1s if 0).
func (c *Checker) Watch(every time.Duration) *Watch {
	if c.opts.Database == nil {
		return nil
	}
	if every <= 0 {
		every = time.Second
	}
	return &Watch{c: c, every: every, now: time.Now}
}

// Latest returns the last sample (nil before the first one finished)
// and starts a new one if it is due.
func (w *Watch) Latest() *Sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sampling && w.now().Sub(w.lastAt) >= w.every {
		w.sampling = true
		w.lastAt = w.now()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), w.c.opts.Timeout)
			defer cancel()
			s := w.Sample(ctx)
			w.mu.Lock()
			w.last, w.sampling = &s, false
			w.mu.Unlock()
		}()
	}
	return w.last
}

// Sample takes one sample now.
func (w *Watch) Sample(ctx context.Context) Sample {
	s := Sample{At: w.now()}
	o := *w.c.opts.Database
	env, err := w.c.env(nil)
	if err != nil {
		s.Err = "read the service's environment: " + err.Error()
		return s
	}
	db, err := w.c.opts.Open(ctx, o.Dialect, env[o.URLEnv])
	if err != nil {
		if errors.Is(err, ErrRefused) {
			w.mu.Lock()
			w.refused++
			s.Refused = w.refused
			w.mu.Unlock()
			s.Over = true
			s.Reason = fmt.Sprintf("the database refused a new connection (%d refused so far): %v", s.Refused, err)
			return s
		}
		s.Err = err.Error()
		return s
	}
	defer db.Close(context.WithoutCancel(ctx))
	u, err := db.Usage(ctx)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	h := Compute(u, o, 0, 0, "")
	w.mu.Lock()
	s.Refused = w.refused
	w.mu.Unlock()
	// This sample's own connection is one of them.
	s.Connections, s.Budget, s.Max = u.InUse+1, h.Budget, u.Max
	s.Over = s.Connections > s.Budget
	s.Reason = fmt.Sprintf("database connections %d of budget %d (max_connections %d - reserved %d - reserve %d), %d refused",
		s.Connections, s.Budget, u.Max, u.Reserved, h.ReserveKept, s.Refused)
	if s.Over {
		s.Reason = fmt.Sprintf("database connections %d are over the budget of %d (max_connections %d - reserved %d - reserve %d)",
			s.Connections, s.Budget, u.Max, u.Reserved, h.ReserveKept)
	}
	return s
}
