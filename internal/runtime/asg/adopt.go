package asg

import (
	"context"
	"fmt"

	"github.com/cutover/cutover/internal/runtime"
)

// Adopt takes the groups as they are at start-up: for each pool cutover's
// state says serves (live, kept previous, a candidate taking traffic), it
// checks the group's tags and reports its healthy instances at once, so
// that the router serves them before anything else. It returns what it
// found different from the state (a group running another version, or
// none), for the daemon to show; a group tagged with the other colour is
// an error. Candidates that never took traffic are left to the resumed
// deployment, whose Start runs again against the group as it is.
func (d *Driver) Adopt(ctx context.Context, serving []runtime.PoolRef) ([]string, error) {
	groups, err := d.describeGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("adopt auto scaling groups: %w", err)
	}
	for i, g := range groups {
		if g == nil {
			continue
		}
		if err := checkColorTag(g, colorAt(i)); err != nil {
			return nil, fmt.Errorf("adopt asg group %s: %w", g.name, err)
		}
	}
	var notices []string
	for _, p := range serving {
		g := groups[p.Color&1]
		switch {
		case g == nil:
			notices = append(notices, fmt.Sprintf("asg group %s (%s %s) does not exist", d.group(p.Color), p.Color, p.Version))
			continue
		case g.tags[TagVersion] != p.Version:
			notices = append(notices, fmt.Sprintf("asg group %s (%s) is tagged %s=%q, the state says it runs %s; its instances are not served",
				g.name, p.Color, TagVersion, g.tags[TagVersion], p.Version))
			continue
		}
		insts, _, err := d.healthy(ctx, p.Color, g, p.Version, g.ltVersion)
		if err != nil {
			return notices, fmt.Errorf("adopt asg group %s: %w", g.name, err)
		}
		if len(insts) < int(g.desired) {
			notices = append(notices, fmt.Sprintf("asg group %s (%s %s) has %d of %d instances healthy", g.name, p.Color, p.Version, len(insts), g.desired))
		}
		d.report(p.Color, p.Version, insts)
		d.log.Info("group adopted", "color", p.Color, "version", p.Version, "group", g.name, "healthy", len(insts))
	}
	return notices, nil
}
