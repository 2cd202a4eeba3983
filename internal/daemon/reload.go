package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/sdnotify"
)

// Reload re-reads the configuration file (SIGHUP, `cutover reload`). A file
// that does not validate is refused and the running configuration kept.
//
// What a reload changes while the daemon serves: strategy (steps and
// analysis), hooks, keep_previous, quiet_period and preflight (from the
// next deployment on); instances (reload_live.go: the running pools are
// resized, new instances health-gated before they get traffic, removed
// ones drained, then stopped); health, drain_timeout, fallback_page,
// trusted_proxies, timeouts and the TLS certificate files (the routers and
// health gates follow at once; read_header and idle apply to client
// connections accepted from then on, upstream_header to the next request);
// a service's listen and preview_listen addresses (the new one serves
// before the old one closes; hooks get the new PREVIEW_URL) and whole
// services added or removed (reload_services.go). start.parallel applies
// to the next pool or scale-up. Everything else (runtime, traffic, h2c,
// sticky_cookie, the API and state dir, TLS turned on or off, and under an
// AWS router the CloudWatch analysis keys) is refused with the keys named
// and why; restart or upgrade the daemon for those (running instances are
// adopted, so neither costs a request). A refusal changes nothing; once
// past the refusals, a change that fails (a scale-up whose instance is not
// healthy, a service that cannot start) is reported while the rest applies.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	// systemd (Type=notify-reload, or systemctl reload with Type=notify)
	// waits for READY=1 after RELOADING=1; both are sent whatever the
	// outcome, as the daemon serves on either way.
	if err := d.opts.Notify.Notify(sdnotify.Reloading, sdnotify.Monotonic()); err != nil {
		d.log.Error("telling the service manager that cutover reloads", "err", err)
	}
	defer func() {
		if err := d.opts.Notify.Notify(sdnotify.Ready, sdnotify.Status("serving")); err != nil {
			d.log.Error("telling the service manager that the reload ended", "err", err)
		}
	}()
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	next, err := config.Load(old.File)
	if err != nil {
		return classified{fmt.Errorf("reload %s: %w\nthe running configuration is kept", old.File, err), api.ErrInvalid}
	}
	if keys := restartKeys(old, next); len(keys) > 0 {
		return classified{fmt.Errorf("reload %s: changing %s needs a restart or `cutover upgrade` of the daemon (running instances are adopted, no request is dropped); the running configuration is kept",
			old.File, strings.Join(withReasons(keys), ", ")), api.ErrInvalid}
	}
	if keys := d.liveRefusals(old, next); len(keys) > 0 {
		return classified{fmt.Errorf("reload %s: %s; the running configuration is kept",
			old.File, strings.Join(keys, "; ")), api.ErrInvalid}
	}
	d.mu.Lock()
	svcs := maps.Clone(d.services)
	d.mu.Unlock()
	// New listen addresses are bound and the routers' settings applied
	// first: an address in use, or a fallback page or certificate that
	// cannot be read, refuses the whole reload before anything changed.
	moved, err := bindMoved(old, next, svcs)
	if err != nil {
		return classified{fmt.Errorf("reload %s: %w; the running configuration is kept", old.File, err), api.ErrInvalid}
	}
	if err := applyRouters(old, next, svcs); err != nil {
		closeRebindings(moved)
		return classified{fmt.Errorf("reload %s: %w; the running configuration is kept", old.File, err), api.ErrInvalid}
	}
	var errs []error
	if err := d.addServices(old, next); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	for name, svc := range svcs {
		sc := next.Services[name]
		if sc == nil { // removed below
			continue
		}
		if err := svc.ctrl.SetSettings(svc.settings(sc)); err != nil {
			errs = append(errs, fmt.Errorf("services.%s: %w", name, err))
			continue
		}
		svc.cfg.Store(sc)
	}
	d.cfg = next
	d.mu.Unlock()
	// What changes the running listeners, pools and services
	// (reload_live.go, reload_services.go) happens outside d.mu: it waits
	// for health gates and drains.
	if err := d.rebind(ctx, moved); err != nil {
		errs = append(errs, err)
	}
	if err := d.applyLive(ctx, old, next, svcs); err != nil {
		errs = append(errs, err)
	}
	d.removeServices(old, next)
	if len(errs) > 0 {
		return fmt.Errorf("reload %s: applied, except: %w", old.File, errors.Join(errs...))
	}
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
	for _, name := range next.ServiceNames {
		o, ok := old.Services[name]
		if !ok { // added: started by the reload (reload_services.go)
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
var reloadableKeys = []string{"strategy", "hooks", "keep_previous", "quiet_period", "preflight", "instances",
	"health", "drain_timeout", "fallback_page", "trusted_proxies", "timeouts", "tls", "listen", "preview_listen", "start"}

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
