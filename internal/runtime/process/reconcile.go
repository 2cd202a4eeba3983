package process

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// survey is what a restarted daemon finds of a service's instances: the
// record file, completed by the marked processes it does not list.
type survey struct {
	pools   []poolRecord     // what Adopt takes over, one per colour at most
	strays  []instanceRecord // marked processes that belong to no pool: stopped by Adopt
	notices []string         // what differed from the record, for the operator
}

// survey reads the record file and the marked processes and reconciles
// them. The record is authoritative where it exists: a marked process it
// does not list joins the recorded pool of its colour and version (a
// record write that failed, or a crash between launch and write), and is a
// stray if its colour is recorded with another version. A colour with no
// recorded pool at all (the record file was lost) is rebuilt from its
// marked processes; when they disagree on the version, the one the daemon
// expects (serving) wins, else the one with the most instances.
func (d *Driver) survey(serving []runtime.PoolRef) (survey, error) {
	rec, err := d.readRecords()
	if err != nil {
		return survey{}, err
	}
	return reconcile(d.name, rec.Pools, d.findMarked(), serving, sameProcess), nil
}

func reconcile(service string, recorded []poolRecord, found []instanceRecord, serving []runtime.PoolRef,
	alive func(pid int, startTicks uint64) bool) survey {
	var s survey
	known := map[int]bool{}
	byColor := map[route.Color]int{} // index into s.pools
	for _, pr := range recorded {
		if _, dup := byColor[pr.Color]; dup {
			continue
		}
		pr.Instances = slices.Clone(pr.Instances)
		for _, ir := range pr.Instances {
			known[ir.PID] = true
		}
		byColor[pr.Color] = len(s.pools)
		s.pools = append(s.pools, pr)
	}
	// Marked processes the record does not list, grouped by colour and version.
	extra := map[route.Color]map[string][]instanceRecord{}
	for _, ir := range found {
		if known[ir.PID] {
			continue
		}
		if extra[ir.Color] == nil {
			extra[ir.Color] = map[string][]instanceRecord{}
		}
		extra[ir.Color][ir.Version] = append(extra[ir.Color][ir.Version], ir)
	}
	for _, c := range route.Colors {
		versions := extra[c]
		if len(versions) == 0 {
			continue
		}
		i, recordedColor := byColor[c]
		if !recordedColor {
			v := pickVersion(c, versions, serving)
			i = len(s.pools)
			byColor[c] = i
			s.pools = append(s.pools, poolRecord{Color: c, Version: v})
			s.notices = append(s.notices, fmt.Sprintf("service %s: %s %s was not in the instance record; found %d running instance(s) by their marks (pids %s) and adopted them",
				service, c, v, len(versions[v]), pidList(versions[v])))
		}
		pool := &s.pools[i]
		for _, v := range slices.Sorted(maps.Keys(versions)) {
			irs := versions[v]
			if v != pool.Version {
				s.strays = append(s.strays, irs...)
				continue
			}
			var joined []instanceRecord
			for _, ir := range irs {
				if !takeSlot(pool, ir, alive) {
					s.strays = append(s.strays, ir)
					continue
				}
				joined = append(joined, ir)
			}
			if recordedColor && len(joined) > 0 {
				s.notices = append(s.notices, fmt.Sprintf("service %s: %d running instance(s) of %s %s were missing from the instance record (pids %s); adopted them",
					service, len(joined), c, v, pidList(joined)))
			}
		}
	}
	if len(s.strays) > 0 {
		slices.SortFunc(s.strays, func(a, b instanceRecord) int { return a.PID - b.PID })
		s.notices = append(s.notices, fmt.Sprintf("service %s: stopping %d unrecorded instance(s) that belong to no pool (pids %s)",
			service, len(s.strays), pidList(s.strays)))
	}
	return s
}

// pickVersion chooses which version's marked processes rebuild colour c's
// pool: the one the daemon expects there, else the most numerous (the
// lowest version string on a tie, so the choice is stable).
func pickVersion(c route.Color, versions map[string][]instanceRecord, serving []runtime.PoolRef) string {
	for _, p := range serving {
		if p.Color == c && len(versions[p.Version]) > 0 {
			return p.Version
		}
	}
	best := ""
	for v, irs := range versions {
		if best == "" || len(irs) > len(versions[best]) || (len(irs) == len(versions[best]) && v < best) {
			best = v
		}
	}
	return best
}

// takeSlot puts a marked process into its slot of pr, unless a live
// recorded instance holds the slot; a recorded instance that is gone gives
// the slot up (its replacement ran, but was never recorded).
func takeSlot(pr *poolRecord, ir instanceRecord, alive func(pid int, startTicks uint64) bool) bool {
	for i, held := range pr.Instances {
		if held.Slot != ir.Slot {
			continue
		}
		if alive(held.PID, held.StartTicks) {
			return false
		}
		pr.Instances[i] = ir
		return true
	}
	pr.Instances = append(pr.Instances, ir)
	pr.Slots = max(pr.Slots, ir.Slot)
	return true
}

func pidList(irs []instanceRecord) string {
	s := make([]string, len(irs))
	for i, ir := range irs {
		s[i] = fmt.Sprint(ir.PID)
	}
	return strings.Join(s, ", ")
}
