package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/sockets"
)

// This file is the part of a reload that adds and removes whole services
// and moves a service's listeners to new addresses.

// routerRun is a service router's Serve: stop ends it, done is closed
// once it returned (every in-flight request finished or was cut at the
// drain timeout).
type routerRun struct {
	stop context.CancelFunc
	done chan struct{}
}

// rebinding is a listener bound at a service's new address, not serving
// yet; a nil ln is a preview listener the reload removes.
type rebinding struct {
	svc    *service
	key    string // the listener's configuration key, services.NAME.listen
	public bool
	ln     net.Listener
}

// bindMoved binds the new address of every service listener (listen,
// preview_listen) that changed, before anything else of the reload is
// applied, so that an address that cannot be bound refuses the whole
// reload.
func bindMoved(old, next *config.Config, svcs map[string]*service) ([]rebinding, error) {
	var out []rebinding
	for _, name := range old.ServiceNames {
		svc, o, n := svcs[name], old.Services[name], next.Services[name]
		if svc == nil || n == nil {
			continue
		}
		for _, public := range []bool{true, false} {
			from, to := o.PreviewListen, n.PreviewListen
			if public {
				from, to = o.Listen, n.Listen
			}
			if from == to {
				continue
			}
			rb := rebinding{svc: svc, key: sockets.Name(name, !public), public: public}
			if to != "" {
				ln, err := net.Listen("tcp", to)
				if err != nil {
					closeRebindings(out)
					return nil, fmt.Errorf("%s %s: %w", rb.key, to, err)
				}
				rb.ln = ln
			}
			out = append(out, rb)
		}
	}
	return out, nil
}

func closeRebindings(rbs []rebinding) {
	for _, rb := range rbs {
		if rb.ln != nil {
			rb.ln.Close()
		}
	}
}

// rebind makes each router serve its new listener; the old one stops
// accepting and finishes its in-flight requests (proxy.Router.Rebind).
func (d *Daemon) rebind(ctx context.Context, rbs []rebinding) error {
	var errs []error
	for i, rb := range rbs {
		if err := rb.svc.router.Rebind(ctx, rb.public, rb.ln); err != nil {
			closeRebindings(rbs[i : i+1])
			errs = append(errs, fmt.Errorf("%s: %w", rb.key, err))
			continue
		}
		if rb.ln == nil {
			d.opts.Listeners.Release(rb.key)
			rb.svc.log.Info("listener closed", "key", rb.key)
			continue
		}
		d.opts.Listeners.Replace(rb.key, rb.ln)
		rb.svc.log.Info("listener moved", "key", rb.key, "listen", rb.ln.Addr().String())
	}
	return errors.Join(errs...)
}

// addServices starts the services next has and old has not, as at
// daemon start: router, runtime, controller, listeners. One that fails
// to start is taken out of next (so that the next reload tries it again)
// and the error names it; the others run.
func (d *Daemon) addServices(old, next *config.Config) error {
	var errs []error
	for _, name := range slices.Clone(next.ServiceNames) {
		if _, ok := old.Services[name]; ok {
			continue
		}
		if d.hand.wg == nil { // not serving (yet): Run starts what cfg names
			errs = append(errs, fmt.Errorf("services.%s (added): the daemon is not serving", name))
			next.ServiceNames = slices.DeleteFunc(next.ServiceNames, func(n string) bool { return n == name })
			delete(next.Services, name)
			continue
		}
		svc, err := d.startService(d.hand.runCtx, next.StateDir, next.Services[name], d.hand.wg)
		if err != nil {
			errs = append(errs, fmt.Errorf("services.%s (added): %w", name, err))
			next.ServiceNames = slices.DeleteFunc(next.ServiceNames, func(n string) bool { return n == name })
			delete(next.Services, name)
			continue
		}
		d.mu.Lock()
		d.services[name] = svc
		d.mu.Unlock()
		svc.log.Info("service added by reload", "listen", svc.cfg.Load().Listen)
	}
	return errors.Join(errs...)
}

// removeServices stops the services old has and next has not: the
// controller first (no deployment acts any more), then the router (it
// stops accepting and finishes its in-flight requests within
// drain_timeout), then both pools, which have no traffic left. The
// service's state and history stay in the store, so adding it back
// restores its pools and `cutover history` still shows its deployments.
func (d *Daemon) removeServices(old, next *config.Config) {
	for _, name := range old.ServiceNames {
		if _, ok := next.Services[name]; ok {
			continue
		}
		d.mu.Lock()
		svc := d.services[name]
		delete(d.services, name)
		d.mu.Unlock()
		if svc == nil {
			continue
		}
		svc.log.Info("removing service by reload")
		svc.stopControl()
		svc.serving.stop()
		<-svc.serving.done
		d.opts.Listeners.Release(sockets.Name(name, false))
		d.opts.Listeners.Release(sockets.Name(name, true))
		sc := old.Services[name]
		ctx, cancel := context.WithTimeout(context.Background(), sc.DrainTimeout+30*time.Second)
		for _, c := range route.Colors {
			if err := svc.driver.Stop(ctx, c); err != nil {
				svc.log.Error("stopping pool of a removed service", "color", c, "err", err)
			}
		}
		cancel()
		if err := svc.driver.Close(); err != nil {
			svc.log.Error("closing runtime of a removed service", "err", err)
		}
		svc.router.Close()
		svc.log.Info("service removed; its state and history stay in the store")
	}
}
