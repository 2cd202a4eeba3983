package static

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// deltaSchema marks the stored value as a delta. The first format stored
// the whole effective address map (version -> addresses), whose values are
// all lists, so a number under "schema" tells them apart.
const deltaSchema = 2

// delta is what registrations changed relative to the configured
// addresses: the addresses registered that the configuration lacks, and
// the configured ones deregistered. Only the difference is stored, so that
// an edit of runtime.static.versions followed by a restart takes effect:
// the stored map of every address would overrule the file.
//
// Healthy names the added addresses that have been in a pool: a restored
// pool takes those at once, and probes the others (registered, never
// healthy) before they join, as Register does.
//
// The JSON encoding is the stored format; stores written since schema 2
// hold it byte for byte, so its field names and order must not change.
type delta struct {
	Schema  int                 `json:"schema"`
	Added   map[string][]string `json:"added,omitempty"`
	Removed map[string][]string `json:"removed,omitempty"`
	Healthy map[string][]string `json:"healthy,omitempty"`
}

// diffAddrs returns, per version, the addresses of a missing from b; nil
// when there is none.
func diffAddrs(a, b map[string][]string) map[string][]string {
	var out map[string][]string
	for _, v := range slices.Sorted(maps.Keys(a)) {
		for _, addr := range a[v] {
			if !slices.Contains(b[v], addr) {
				if out == nil {
					out = map[string][]string{}
				}
				out[v] = append(out[v], addr)
			}
		}
	}
	return out
}

// deltaOf is effective relative to configured, with healthy trimmed to the
// addresses still added.
func deltaOf(configured, effective, healthy map[string][]string) delta {
	d := delta{Schema: deltaSchema, Added: diffAddrs(effective, configured), Removed: diffAddrs(configured, effective)}
	d.Healthy = diffAddrs(healthy, diffAddrs(healthy, d.Added)) // those still added
	return d
}

// decodeDelta reads a stored value; current is false for a value in the
// first format (the whole effective map), which becomes the addresses it
// has beyond the configuration, and no removal: which configured addresses
// it lacks because they were deregistered, and which because they were
// added to the file after it was saved, cannot be told apart, and keeping
// an address the router's health checks can eject is the safe side.
func decodeDelta(raw []byte, configured map[string][]string) (_ delta, current bool, err error) {
	var probe struct {
		Schema *int `json:"schema"` // an error for the first format's list
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Schema != nil {
		var d delta
		if err := json.Unmarshal(raw, &d); err != nil {
			return delta{}, false, err
		}
		if d.Schema != deltaSchema {
			return delta{}, false, fmt.Errorf("schema %d, want %d", d.Schema, deltaSchema)
		}
		return d, true, nil
	}
	var full map[string][]string
	if err := json.Unmarshal(raw, &full); err != nil {
		return delta{}, false, err
	}
	return delta{Schema: deltaSchema, Added: diffAddrs(full, configured)}, false, nil
}

func (a delta) equal(b delta) bool {
	eq := func(x, y map[string][]string) bool { return maps.EqualFunc(x, y, slices.Equal) }
	return a.Schema == b.Schema && eq(a.Added, b.Added) && eq(a.Removed, b.Removed) && eq(a.Healthy, b.Healthy)
}
