package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/runtime"
)

// This file applies the part of a reload that changes running pools and
// routers, after the configuration was validated and the keys a reload
// cannot change were refused (reload.go).

// scaler is a runtime whose pools change size while they serve (the
// process runtime). drained is called with the IDs of instances taken out
// of rotation and returns once the router has drained them.
type scaler interface {
	Scale(ctx context.Context, n int, drained func(ctx context.Context, ids []string)) error
}

// liveRefusals names the reloadable keys whose change this daemon's
// running services still cannot apply, each with the reason: `instances`
// of a runtime that cannot resize a pool in place.
func (d *Daemon) liveRefusals(old, next *config.Config) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, name := range old.ServiceNames {
		svc, o, n := d.services[name], old.Services[name], next.Services[name]
		if svc == nil || n == nil {
			continue
		}
		if (o.TLS == nil) != (n.TLS == nil) {
			out = append(out, fmt.Sprintf("services.%s.tls: turning TLS on or off changes what the public listener speaks; restart or upgrade the daemon for it", name))
		}
		if n.Instances == o.Instances {
			continue
		}
		if _, ok := svc.driver.(scaler); !ok && n.Runtime.Static == nil {
			out = append(out, fmt.Sprintf("services.%s.instances: this runtime cannot resize a running pool; restart the daemon for it", name))
		}
	}
	return out
}

// applyLive makes the running services follow next where it differs from
// old in a key that shapes a pool or a router. A change that fails is
// reported (the rest is still applied); the configuration stays next, so
// that pools started later follow it.
func (d *Daemon) applyLive(ctx context.Context, old, next *config.Config, svcs map[string]*service) error {
	// A client that gives up on `cutover reload` must not leave a pool
	// half scaled: the change runs to its end within the daemon's life.
	ctx = context.WithoutCancel(ctx)
	if rc := d.hand.runCtx; rc != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		defer context.AfterFunc(rc, stop)()
	}
	var errs []error
	for _, name := range old.ServiceNames {
		svc, o, n := svcs[name], old.Services[name], next.Services[name]
		if svc == nil || n == nil {
			continue
		}
		if !reflect.DeepEqual(o.Health, n.Health) {
			if g, ok := svc.driver.(gater); ok {
				g.SetGate(gateOptions(n, svc.upstreamTLS), n.Health.UnhealthyThreshold)
			}
		}
		if o.Start != n.Start {
			if p, ok := svc.driver.(interface{ SetParallel(int) }); ok {
				p.SetParallel(n.Start.Parallel)
			}
		}
		if o.Instances != n.Instances {
			if err := svc.scale(ctx, n.Instances); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// scale resizes both colours' pools of svc to n instances: new instances
// join the router once they pass their health check, removed ones leave
// it at once and are stopped once drained (drain_timeout).
func (svc *service) scale(ctx context.Context, n int) error {
	s, ok := svc.driver.(scaler)
	if !ok { // static pools are their addresses; instances does not apply
		return nil
	}
	svc.log.Info("scaling pools", "instances", n)
	err := s.Scale(ctx, n, func(ctx context.Context, ids []string) {
		if err := svc.router.WaitRetired(ctx, ids); err != nil {
			svc.log.Warn("stopping removed instances before they drained", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("services.%s.instances: %w", svc.name, err)
	}
	return nil
}

// restartReasons says why a key a reload refuses cannot change live.
var restartReasons = map[string]string{
	"h2c":           "the public HTTP server is built for it at start",
	"sticky_cookie": "the router reads it when built",
	"runtime":       "the runtime's kind, command and environment shape the running instances",
}

// withReasons adds to each of restartKeys' keys why it needs a restart.
func withReasons(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k
		if _, field, ok := strings.Cut(strings.TrimPrefix(k, "services."), "."); ok {
			if why := restartReasons[field]; why != "" {
				out[i] = k + " (" + why + ")"
			}
		}
	}
	return out
}

// routerLive is what a service's router takes from its configuration
// while it serves (proxy.Router.SetLive).
func routerLive(sc *config.Service) proxy.Live {
	o := proxyOptions(sc, nil, nil)
	return proxy.Live{TrustedProxies: o.TrustedProxies, FallbackPage: o.FallbackPage, Health: o.Health,
		DrainTimeout: o.DrainTimeout, TLSCert: o.TLSCert, TLSKey: o.TLSKey,
		ReadHeaderTimeout: o.ReadHeaderTimeout, IdleTimeout: o.IdleTimeout, UpstreamHeaderTimeout: o.UpstreamHeaderTimeout}
}

// applyRouters gives every router whose live settings differ between old
// and next the new ones. When one refuses (a file that cannot be read),
// those already changed get their old settings back and the error names
// the service.
func applyRouters(old, next *config.Config, svcs map[string]*service) error {
	var done []string
	for _, name := range old.ServiceNames {
		svc, o, n := svcs[name], old.Services[name], next.Services[name]
		if svc == nil || n == nil {
			continue
		}
		// The certificate is always re-read: its files may have changed
		// under the same names, which is what a reload is asked for.
		if reflect.DeepEqual(routerLive(o), routerLive(n)) && n.TLS == nil {
			continue
		}
		if err := svc.router.SetLive(routerLive(n)); err != nil {
			for _, back := range done {
				if err := svcs[back].router.SetLive(routerLive(old.Services[back])); err != nil {
					svcs[back].log.Error("restoring the router's settings", "err", err)
				}
			}
			return err
		}
		done = append(done, name)
	}
	return nil
}

// gater is a runtime whose health gate for new instances changes live.
type gater interface {
	SetGate(o runtime.GateOptions, unhealthy int)
}
