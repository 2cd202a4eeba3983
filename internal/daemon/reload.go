package daemon

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
)

// Reload re-reads the configuration file (SIGHUP, `cutover reload`). A file
// that does not validate is refused and the running configuration kept.
//
// What a reload can change without touching traffic: strategy (steps and
// analysis), hooks, keep_previous and quiet_period. The new strategy
// applies from the next deployment on. Everything else (listen addresses,
// runtime, instances, health, timeouts, services added or removed, the API
// and state dir) shapes listeners, processes or the router, so a change to
// it is refused with the keys named; restart the daemon for those (running
// instances are adopted, so a restart costs no requests).
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	next, err := config.Load(old.File)
	if err != nil {
		return classified{fmt.Errorf("reload %s: %w\nthe running configuration is kept", old.File, err), api.ErrInvalid}
	}
	if keys := restartKeys(old, next); len(keys) > 0 {
		return classified{fmt.Errorf("reload %s: changing %s needs a restart of the daemon (running instances are adopted, no request is dropped); the running configuration is kept",
			old.File, strings.Join(keys, ", ")), api.ErrInvalid}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, svc := range d.services {
		if err := svc.ctrl.SetSettings(svc.settings(next.Services[name])); err != nil {
			return err
		}
		svc.cfg.Store(next.Services[name])
	}
	d.cfg = next
	d.log.Info("configuration reloaded", "file", old.File)
	return nil
}

// restartKeys lists the keys whose change a reload cannot apply.
func restartKeys(old, next *config.Config) []string {
	var keys []string
	if old.API != next.API {
		keys = append(keys, "api")
	}
	if old.StateDir != next.StateDir {
		keys = append(keys, "state_dir")
	}
	for _, name := range old.ServiceNames {
		if _, ok := next.Services[name]; !ok {
			keys = append(keys, "services."+name+" (removed)")
		}
	}
	for _, name := range next.ServiceNames {
		o, ok := old.Services[name]
		if !ok {
			keys = append(keys, "services."+name+" (added)")
			continue
		}
		for _, f := range differingFields(*o, *next.Services[name]) {
			keys = append(keys, "services."+name+"."+f)
		}
	}
	return keys
}

// reloadableKeys are the service keys a reload applies; a change to any
// other key needs a restart.
var reloadableKeys = []string{"strategy", "hooks", "keep_previous", "quiet_period"}

// differingFields names the keys, other than the reloadable ones, whose
// values differ between two services, from the key table the config
// package keeps beside its file format (Service.Settings).
func differingFields(a, b config.Service) []string {
	sa, sb := a.Settings(), b.Settings()
	var out []string
	for i := range sa {
		if !slices.Contains(reloadableKeys, sa[i].Key) && !reflect.DeepEqual(sa[i].Value, sb[i].Value) {
			out = append(out, sa[i].Key)
		}
	}
	return append(out, awsAnalysisChanges(a, b)...)
}
