package daemon

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/runtime"
)

// errStoreBehind is wrapped by checkStore's refusals.
var errStoreBehind = errors.New("the state store does not match the running instances")

// checkStore compares a service's restored state with the pools its
// runtime found running (record file and marks), before the daemon trusts
// either. A state that names nothing while instances run was lost or
// emptied; one that expects a colour to serve a version while that colour
// runs another is older than the instances (a restored backup). Starting
// over either would route by a wrong picture, and a state that names
// nothing would send the next deployment to 100% at once as a "first"
// one. Both are refused with the way out, unless acceptEmpty is set and
// the state is empty: then a single running pool is returned, to be taken
// as live.
func checkStore(svc string, ctrl *deploy.Controller, found []runtime.PoolRef, stateDir string, acceptEmpty bool) (assume *deploy.PoolRef, err error) {
	record := filepath.Join(stateDir, "instances", svc+".json")
	if ctrl.Empty() {
		switch {
		case len(found) == 0:
			return nil, nil
		case !acceptEmpty:
			return nil, fmt.Errorf("%w: the store names no pool of %s, but instances of it are running (%s, see %s): "+
				"the store was lost, emptied or replaced. cutover will not start over it: restore %s from a backup, "+
				"or start with `cutover serve --accept-empty-store` to take the running pool as live",
				errStoreBehind, svc, describe(found), record, filepath.Join(stateDir, "cutover.db"))
		case len(found) > 1:
			return nil, fmt.Errorf("%w: the store names no pool of %s and both colours run instances (%s): "+
				"--accept-empty-store cannot tell which one is live; stop the one that is not (its pids are in %s) and start again",
				errStoreBehind, svc, describe(found), record)
		}
		return &deploy.PoolRef{Color: found[0].Color, Version: found[0].Version}, nil
	}
	for _, want := range ctrl.Serving() {
		i := slices.IndexFunc(found, func(p runtime.PoolRef) bool { return p.Color == want.Color })
		if i >= 0 && found[i].Version != want.Version {
			return nil, fmt.Errorf("%w: the store expects %s to run %s %s, but it runs %s (%d instance(s), see %s): "+
				"the store is older than the instances (a restored backup?). cutover will not route by it: "+
				"restore a newer copy of %s, or move it aside and start with `cutover serve --accept-empty-store`",
				errStoreBehind, svc, want.Color, want.Version, found[i].Version, found[i].Instances, record,
				filepath.Join(stateDir, "cutover.db"))
		}
	}
	return nil, nil
}

func describe(pools []runtime.PoolRef) string {
	s := make([]string, len(pools))
	for i, p := range pools {
		s[i] = fmt.Sprintf("%s %s: %d instance(s)", p.Color, p.Version, p.Instances)
	}
	return strings.Join(s, "; ")
}
