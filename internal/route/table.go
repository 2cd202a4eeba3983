// Package route holds cutover's routing table: for one service, the pool of
// each colour, which colour is live, and the candidate's share of traffic.
//
// A Table is immutable once built and safe for concurrent use; the router
// publishes a new one through an atomic pointer for every change, so a
// weight change is one pointer swap. Per-instance live state (requests in
// flight, health, passive ejection) is not part of the table: it lives in
// atomics on long-lived *Instance values that successive tables share, so
// building a new table never resets it. Nothing here locks or allocates on
// the selection path.
package route

import (
	"errors"
	"fmt"
	"math"
)

// Buckets is the number of sticky buckets a client key hashes into. The
// candidate owns buckets [0, weight*Buckets/100), so weights are honoured
// to 0.01 percentage points, and raising the weight only moves buckets from
// the live colour to the candidate, never back.
const Buckets = 10000

// PoolSpec describes one colour's pool for Build.
type PoolSpec struct {
	// Version is the release the pool runs ("" when there is no pool).
	Version string
	// Instances are the pool's members; the table keeps the slice, so the
	// caller must not modify it after Build.
	Instances []*Instance
	// Disabled takes the pool out of all rotation (public and preview)
	// while keeping it in the table, as when it drains.
	Disabled bool
}

// Spec is everything a Table is built from.
type Spec struct {
	// Live is the colour that serves users.
	Live Color
	// Weight is the candidate's (Live.Other()) share of public traffic in
	// percent, 0 to 100 inclusive. The live colour gets the rest, so the
	// weights always sum to 100.
	Weight float64
	// Pools holds the pool of each colour, indexed by Color.
	Pools [2]PoolSpec
	// Preview is the colour the preview listener reaches when PreviewSet
	// is true. Unset, preview reaches the candidate (Live.Other()), which
	// misses a first deployment's candidate: it is Blue, like Live.
	Preview Color
	// PreviewSet makes Preview take effect.
	PreviewSet bool
}

// Table is an immutable routing table. The zero value is not usable; call Build.
type Table struct {
	live      Color
	weight    float64
	threshold uint32 // buckets below it go to the candidate
	preview   Color
	pools     [2]PoolSpec
}

// Build validates spec and returns its table. It rejects a weight outside
// [0, 100] or NaN, an unknown colour, nil instances, empty instance IDs or
// addresses, an instance ID used twice (in either pool), an address used
// twice within one pool, and instances without a version. The same address
// may appear in both pools: a static runtime redeploying the live version
// to the other colour does exactly that.
func Build(spec Spec) (*Table, error) {
	var errs []error
	if spec.Live > Green {
		errs = append(errs, fmt.Errorf("live colour %d: want blue or green", spec.Live))
	}
	if spec.PreviewSet && spec.Preview > Green {
		errs = append(errs, fmt.Errorf("preview colour %d: want blue or green", spec.Preview))
	}
	if math.IsNaN(spec.Weight) || spec.Weight < 0 || spec.Weight > 100 {
		errs = append(errs, fmt.Errorf("candidate weight %v: want 0 to 100", spec.Weight))
	}
	ids := make(map[string]Color)
	for _, c := range Colors {
		p := spec.Pools[c]
		addrs := make(map[string]string)
		if len(p.Instances) > 0 && p.Version == "" {
			errs = append(errs, fmt.Errorf("%s pool: instances without a version", c))
		}
		for i, in := range p.Instances {
			if in == nil {
				errs = append(errs, fmt.Errorf("%s pool: instance %d is nil", c, i))
				continue
			}
			if in.ID == "" || in.Addr == "" {
				errs = append(errs, fmt.Errorf("%s pool: instance %d (%q at %q): empty id or address", c, i, in.ID, in.Addr))
				continue
			}
			if _, dup := ids[in.ID]; dup {
				errs = append(errs, fmt.Errorf("%s pool: duplicate instance id %q", c, in.ID))
			}
			if other, dup := addrs[in.Addr]; dup {
				errs = append(errs, fmt.Errorf("%s pool: instance %q: address %s already used by %q", c, in.ID, in.Addr, other))
			}
			ids[in.ID] = c
			addrs[in.Addr] = in.ID
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("build routing table: %w", errors.Join(errs...))
	}
	preview := spec.Live.Other()
	if spec.PreviewSet {
		preview = spec.Preview
	}
	return &Table{
		live:      spec.Live,
		preview:   preview,
		weight:    spec.Weight,
		threshold: uint32(math.Round(spec.Weight * Buckets / 100)),
		pools:     spec.Pools,
	}, nil
}

// Live returns the live colour.
func (t *Table) Live() Color { return t.live }

// Candidate returns the candidate colour, the live colour's other.
func (t *Table) Candidate() Color { return t.live.Other() }

// Preview returns the colour the preview listener reaches: Spec.Preview
// when it was set, else the candidate. A disabled pool stays out of
// preview whatever this says (PickIn finds no instance in it).
func (t *Table) Preview() Color { return t.preview }

// Weight returns the candidate's share of public traffic in percent.
func (t *Table) Weight() float64 { return t.weight }

// Pool returns the spec of a colour's pool. Its Instances slice is shared
// with the table and must not be modified.
func (t *Table) Pool(c Color) PoolSpec { return t.pools[c&1] }

// ColorFor returns the colour that owns a sticky bucket (any value; it is
// reduced modulo Buckets) by weight alone, ignoring health.
func (t *Table) ColorFor(bucket uint32) Color {
	if bucket%Buckets < t.threshold {
		return t.live.Other()
	}
	return t.live
}

// Pick chooses the instance for a public request in the given sticky
// bucket, using rnd (a random number) to balance within the pool and now
// (Unix nanoseconds) to judge passive ejection. It returns the instance and
// its colour, or nil when no instance of either colour is healthy.
//
// The bucket's colour is preferred; when that pool has no available
// instance (unhealthy, ejected, disabled or empty) the other colour's pool
// serves, whatever the weights say. Passively ejected instances are used
// only when no healthy instance of either colour is free of ejection.
func (t *Table) Pick(bucket uint32, rnd uint64, now int64) (*Instance, Color) {
	c := t.ColorFor(bucket)
	for _, strict := range [2]bool{true, false} {
		if in := t.pick(c, rnd, now, nil, strict); in != nil {
			return in, c
		}
		if in := t.pick(c.Other(), rnd, now, nil, strict); in != nil {
			return in, c.Other()
		}
	}
	return nil, c
}

// PickIn chooses an instance of colour c only (the preview path), or nil
// when c has no healthy instance. Ejected instances are used only when no
// other is available.
func (t *Table) PickIn(c Color, rnd uint64, now int64) *Instance {
	if in := t.pick(c, rnd, now, nil, true); in != nil {
		return in
	}
	return t.pick(c, rnd, now, nil, false)
}

// Retry chooses an instance other than failed for a request whose attempt
// on failed could not connect: another available instance of colour c if
// there is one, else one of the other colour when other is true. It
// returns nil when there is none.
func (t *Table) Retry(failed *Instance, c Color, other bool, rnd uint64, now int64) (*Instance, Color) {
	if in := t.pick(c, rnd, now, failed, true); in != nil {
		return in, c
	}
	if other {
		if in := t.pick(c.Other(), rnd, now, failed, true); in != nil {
			return in, c.Other()
		}
	}
	return nil, c
}

// Contains reports whether in is a member of an enabled pool of the table.
func (t *Table) Contains(in *Instance) bool {
	for _, c := range Colors {
		p := &t.pools[c]
		if p.Disabled {
			continue
		}
		for _, x := range p.Instances {
			if x == in {
				return true
			}
		}
	}
	return false
}

// pick is power of two choices on least outstanding requests among the
// available instances of colour c, skipping exclude. With strict false,
// ejected (but actively healthy) instances count as available.
func (t *Table) pick(c Color, rnd uint64, now int64, exclude *Instance, strict bool) *Instance {
	p := &t.pools[c&1]
	if p.Disabled {
		return nil
	}
	insts := p.Instances
	n := uint64(len(insts))
	ok := func(in *Instance) bool {
		return in != exclude && in.available(now, strict)
	}
	switch n {
	case 0:
		return nil
	case 1:
		if ok(insts[0]) {
			return insts[0]
		}
		return nil
	}
	a := rnd % n
	b := (rnd >> 32) % (n - 1)
	if b >= a {
		b++
	}
	ia, ib := insts[a], insts[b]
	oka, okb := ok(ia), ok(ib)
	switch {
	case oka && okb:
		if ib.inFlight.Load() < ia.inFlight.Load() {
			return ib
		}
		return ia
	case oka:
		return ia
	case okb:
		return ib
	}
	for k := uint64(1); k < n; k++ {
		if in := insts[(a+k)%n]; ok(in) {
			return in
		}
	}
	return nil
}

// Bucket hashes a sticky key (the cookie value) into [0, Buckets) with
// FNV-1a; equal keys always land in the same bucket.
func Bucket(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h % Buckets
}
