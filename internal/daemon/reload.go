package daemon

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"unicode"

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
		if err := svc.ctrl.SetSettings(controllerSettings(next.Services[name])); err != nil {
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
		for _, f := range differingFields(*o, reloadable(*o, *next.Services[name])) {
			keys = append(keys, "services."+name+"."+f)
		}
	}
	return keys
}

// reloadable returns next with the fields a reload may change copied from
// old, so what still differs is what needs a restart.
func reloadable(old, next config.Service) config.Service {
	next.Strategy = old.Strategy
	next.Hooks = old.Hooks
	next.KeepPrevious = old.KeepPrevious
	next.QuietPeriod = old.QuietPeriod
	return next
}

// differingFields names, as config keys, the top-level fields of two
// services that differ.
func differingFields(a, b config.Service) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, snake(va.Type().Field(i).Name))
		}
	}
	return out
}

// snake turns a Go field name into its config key: PreviewListen ->
// preview_listen, TLS -> tls, HTTPPort -> http_port (a word starts at an
// upper-case letter after a lower-case one, or at the last upper-case
// letter of an acronym followed by a lower-case one).
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		wordStart := i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) ||
			unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1]))
		if wordStart {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
