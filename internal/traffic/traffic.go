// Package traffic holds what cutover's traffic drivers share. The
// contract itself is deploy.Router (split, preview, drain, counts,
// health, sealed), with the optional deploy.Settler and
// deploy.TrafficReporter; the embedded proxy (internal/proxy) is its
// default implementation, and the AWS drivers live beside this package:
// internal/traffic/alb (listener weights over two target groups) and
// internal/traffic/route53 (two weighted records).
//
// This package keeps, per service, the record of what a driver last
// wrote to its engine (Ledger), so that before every change the driver
// can check that the engine still holds it, also after a restart, and
// refuse to act when someone changed it behind cutover's back.
package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Written is one write a driver made (or is about to make) to its engine:
// the engine's own weight values by key (a target group ARN, a record's
// set identifier).
type Written struct {
	Weights map[string]int64 `json:"weights"`
	At      time.Time        `json:"at"`
}

// Equal reports whether w holds the weights got; a key missing on one
// side counts as weight 0 (a forward action naming one target group, a
// weighted record at 0 cutover did not write), which sends no traffic.
func (w *Written) Equal(got map[string]int64) bool {
	if w == nil {
		return false
	}
	for k, v := range w.Weights {
		if got[k] != v {
			return false
		}
	}
	for k, v := range got {
		if w.Weights[k] != v {
			return false
		}
	}
	return true
}

// ledgerFile is the file's content: the last write that succeeded and
// the one in progress (a crash between the call and the record of its
// success leaves Pending, which the engine may or may not hold).
type ledgerFile struct {
	Schema  int      `json:"schema"`
	Last    *Written `json:"last,omitempty"`
	Pending *Written `json:"pending,omitempty"`
}

// Ledger is a driver's persistent record of its writes, one small JSON
// file written with temp file + fsync + rename. It is safe for concurrent use.
type Ledger struct {
	path string
	mu   sync.Mutex
	f    ledgerFile
}

// OpenLedger reads the ledger at path; a missing file is an empty ledger
// (nothing written yet), a file that cannot be read is an error.
func OpenLedger(path string) (*Ledger, error) {
	l := &Ledger{path: path, f: ledgerFile{Schema: 1}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("traffic ledger: %w", err)
	}
	if err := json.Unmarshal(b, &l.f); err != nil || l.f.Schema != 1 {
		return nil, fmt.Errorf("traffic ledger %s: unreadable (schema %d, %v): move it away only if the engine's weights are what you want cutover to start from", path, l.f.Schema, err)
	}
	return l, nil
}

// Check reports nil when the engine's weights got are what the ledger
// says was last written (or the write in progress), or the ledger is
// empty; otherwise an error naming both.
func (l *Ledger) Check(what string, got map[string]int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f.Last == nil && l.f.Pending == nil {
		return nil
	}
	if l.f.Last.Equal(got) || l.f.Pending.Equal(got) {
		return nil
	}
	want := l.f.Last
	if want == nil {
		want = l.f.Pending
	}
	return &DriftError{What: what, Got: got, Want: want.Weights, At: want.At}
}

// Last returns the last write that succeeded, or nil.
func (l *Ledger) Last() *Written {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Last
}

// Begin records that weights are about to be written.
func (l *Ledger) Begin(weights map[string]int64, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Pending = &Written{Weights: maps.Clone(weights), At: at}
	return l.saveLocked()
}

// Commit records that the write Begin announced succeeded (ok) or
// certainly did not happen (!ok).
func (l *Ledger) Commit(ok bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok && l.f.Pending != nil {
		l.f.Last = l.f.Pending
	}
	l.f.Pending = nil
	return l.saveLocked()
}

// Adopt records weights as last written without a write: the engine
// already held them.
func (l *Ledger) Adopt(weights map[string]int64, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Last, l.f.Pending = &Written{Weights: maps.Clone(weights), At: at}, nil
	return l.saveLocked()
}

func (l *Ledger) saveLocked() error {
	b, err := json.MarshalIndent(l.f, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(l.path)
	tmp, err := os.CreateTemp(dir, ".traffic-*")
	if err != nil {
		return fmt.Errorf("traffic ledger: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.path)
	}
	if err == nil {
		if d, derr := os.Open(dir); derr == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("traffic ledger %s: %w", l.path, err)
	}
	return nil
}

// DriftError says the engine does not hold what cutover last wrote.
type DriftError struct {
	What      string
	Got, Want map[string]int64
	At        time.Time
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("%s holds weights %s but cutover last wrote %s at %s: they were changed outside cutover; cutover changes nothing until they are set back",
		e.What, fmtWeights(e.Got), fmtWeights(e.Want), e.At.UTC().Format(time.RFC3339))
}

func fmtWeights(w map[string]int64) string {
	s := "{"
	for i, k := range slices.Sorted(maps.Keys(w)) {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s: %d", k, w[k])
	}
	return s + "}"
}
