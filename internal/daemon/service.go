package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/asg"
	"github.com/cutover/cutover/internal/runtime/docker"
	"github.com/cutover/cutover/internal/runtime/process"
	"github.com/cutover/cutover/internal/runtime/static"
	"github.com/cutover/cutover/internal/sockets"
)

// service is one service's running parts. name and the components are set
// once by startService; cfg is swapped by Reload while API calls read it,
// so it is an atomic pointer and the name used in keys and messages is a
// field of its own.
type service struct {
	name   string
	cfg    atomic.Pointer[config.Service]
	log    *slog.Logger
	router *proxy.Router
	// upstreamTLS is how the router and the health gates speak to
	// instances (instanceTLS); a reload of health rebuilds the gates with it.
	upstreamTLS *tls.Config
	// serving is the router's Serve; a reload that removes the service
	// stops it (reload_services.go).
	serving *routerRun
	driver  runtime.Driver
	ctrl    *deploy.Controller
	// notices are what adoption found wrong at start; set before the
	// service is published, read-only afterwards.
	notices []string
	// stopCtrl ends the controller's Run alone (an upgrade hands the
	// controllers over while the routers serve); ctrlDone is closed when
	// it returned. Set by runControl.
	stopCtrl context.CancelFunc
	ctrlDone chan struct{}
	// traffic is the last quarter hour of public traffic (history.go).
	traffic *trafficHistory
	// aws is the AWS traffic driver (traffic.alb, traffic.route53), nil
	// for the embedded router; set by startControl.
	aws *awsTraffic
	// allowDrift is the version of the last deployment asked for with
	// --allow-drift ("" when the last one was not): its preflight
	// accepts the drift findings (preflight.go).
	allowDrift atomic.Pointer[string]
}

// settings is what the service's controller follows under sc: its
// configuration, and the runtime's reader of env_file and secrets for
// the hooks when the runtime is the process one.
func (svc *service) settings(sc *config.Service) deploy.Settings {
	s := controllerSettings(sc)
	if !sc.Traffic.Embedded() {
		s.Policy.LatencyFactor = cloudWatchLatencyFactor
	}
	u := previewURL(sc) // follows a preview_listen moved by a reload
	s.PreviewURL = &u
	if p, ok := svc.driver.(*process.Driver); ok {
		s.Hooks.Secrets = p.HookEnv
	} else if dk, ok := svc.driver.(*docker.Driver); ok {
		s.Hooks.Secrets = dk.HookEnv
	}
	s.Preflight, s.Database = svc.preflightSettings(sc)
	return s
}

// listener forwards runtime pool changes to the router and pool failures to
// the controller (svc.ctrl, set once the controller exists; failures
// reported before that, during adoption, are only logged, and the
// controller sees the missing pool through the router's health). It
// writes nothing to the store: what a static driver persists about its
// pools it writes itself, outside its listener calls.
type listener struct {
	svc *service
}

func (l listener) Pool(color route.Color, version string, insts []runtime.Instance) {
	backends := make([]proxy.Backend, len(insts))
	for i, in := range insts {
		backends[i] = proxy.Backend{ID: in.ID, Addr: in.Addr}
	}
	l.svc.router.SetPool(color, version, backends)
	if l.svc.cfg.Load().Runtime.Process != nil {
		l.svc.aws.registerTargets(color, insts, l.svc.log)
	}
	l.svc.log.Info("pool changed", "color", color, "version", version, "instances", len(insts))
}

func (l listener) Failed(color route.Color, version string, err error) {
	l.svc.log.Error("pool failed", "color", color, "version", version, "err", err)
	if c := l.svc.ctrl; c != nil {
		c.PoolFailed(color, version, err)
	}
}

// startService builds and starts one service in the order invariant 5 asks:
// router with the persisted split and adopted instances first, listeners
// next, then the controller's executor.
func (d *Daemon) startService(ctx context.Context, stateDir string, sc *config.Service, wg *sync.WaitGroup) (_ *service, err error) {
	// Components add the service key themselves; the daemon's own lines
	// about this service carry it through svc.log.
	log := d.log.With("service", sc.Name)
	component := func(name string) *slog.Logger { return d.log.With("component", name) }
	svc := &service{name: sc.Name, log: log, traffic: newTrafficHistory()}
	svc.cfg.Store(sc)
	tlsConf, err := instanceTLS(sc)
	if err != nil {
		return nil, err
	}
	r, err := proxy.New(proxyOptions(sc, tlsConf, component("router")))
	if err != nil {
		return nil, err
	}
	svc.router, svc.upstreamTLS = r, tlsConf
	defer func() {
		if err != nil { // release what this service holds; instances keep running for the next start
			if svc.driver != nil {
				svc.driver.Close()
			}
			r.Close()
		}
	}()
	if err := d.startControl(ctx, stateDir, sc, svc, tlsConf); err != nil {
		return nil, err
	}

	pub, err := d.listen(sockets.Name(sc.Name, false), sc.Listen)
	if err != nil {
		return nil, err
	}
	var prev net.Listener
	if sc.PreviewListen != "" {
		if prev, err = d.listen(sockets.Name(sc.Name, true), sc.PreviewListen); err != nil {
			pub.Close()
			return nil, err
		}
	}
	sctx, stopServe := context.WithCancel(ctx)
	svc.serving = &routerRun{stop: stopServe, done: make(chan struct{})}
	wg.Go(func() {
		defer close(svc.serving.done)
		if err := r.Serve(sctx, pub, prev); err != nil {
			log.Error("router stopped", "err", err)
		}
	})
	wg.Go(func() { r.WatchCertificate(sctx, certPollInterval) })
	d.runControl(ctx, svc, wg)
	d.sampleTraffic(ctx, svc, wg)
	return svc, nil
}

// certPollInterval is how often a TLS service's certificate files are
// checked for a change (rotation by a renewal job, say).
const certPollInterval = 2 * time.Second

// startControl gives svc its runtime driver and controller, restores the
// persisted state and adopts the running instances (or re-establishes the
// static pools). The controller does not run yet (runControl).
func (d *Daemon) startControl(ctx context.Context, stateDir string, sc *config.Service, svc *service, tlsConf *tls.Config) error {
	component := func(name string) *slog.Logger { return d.log.With("component", name) }
	r := svc.router
	lis := listener{svc: svc}
	var (
		proc *process.Driver
		dock *docker.Driver
		stat *static.Driver
		// groups is the asg runtime.
		groups *asg.Driver
	)
	var router deploy.Router = r
	tr, err := d.startTraffic(ctx, stateDir, sc, r, alarmGate(svc), component("traffic"))
	if err != nil {
		return err
	}
	if tr != nil {
		svc.aws, router = tr, tr.router
	}
	switch {
	case sc.Runtime.Process != nil:
		drv, err := process.New(processOptions(sc, tlsConf, stateDir, lis, component("runtime"), d.ports))
		if err != nil {
			return err
		}
		svc.driver, proc = drv, drv
	case sc.Runtime.ASG != nil:
		o, err := asgOptions(ctx, sc, lis, component("runtime"))
		if err != nil {
			return err
		}
		drv, err := asg.New(o)
		if err != nil {
			return err
		}
		svc.driver, groups = drv, drv
	case sc.Runtime.Docker != nil:
		drv, err := d.newDockerDriver(svc, sc, tlsConf, lis, component("runtime"))
		if err != nil {
			return err
		}
		svc.driver, dock = drv, drv
	default:
		drv, err := static.New(staticOptions(sc, tlsConf, lis, component("runtime"), registrationStore{d.currentStore()}))
		if err != nil {
			return err
		}
		svc.driver, stat = drv, drv
	}
	ctrl, err := deploy.New(deploy.Options{
		Settings:   svc.settings(sc),
		Router:     router,
		Runtime:    svc.driver,
		Store:      stateStore{d.currentStore()},
		Logger:     component("controller"),
		PreviewURL: previewURL(sc),
		Events:     d.publish,
		Finished:   d.done.finished,
	})
	if err != nil {
		return err
	}
	svc.ctrl = ctrl
	if err := ctrl.Restore(ctx); err != nil {
		return err
	}
	if proc != nil {
		if err := d.adoptProcesses(ctx, svc, proc, stateDir); err != nil {
			return err
		}
	} else if groups != nil {
		if err := d.adoptGroups(ctx, svc, groups); err != nil {
			return err
		}
	} else if dock != nil {
		if err := d.adoptContainers(ctx, svc, dock, stateDir); err != nil {
			return err
		}
	} else if err := restartStaticPools(svc, stat); err != nil {
		return err
	}

	return nil
}

// runControl runs svc's controller until ctx is done or stopControl.
func (d *Daemon) runControl(ctx context.Context, svc *service, wg *sync.WaitGroup) {
	cctx, cancel := context.WithCancel(ctx)
	svc.stopCtrl, svc.ctrlDone = cancel, make(chan struct{})
	wg.Go(func() {
		defer close(svc.ctrlDone)
		if err := svc.ctrl.Run(cctx); err != nil && cctx.Err() == nil {
			svc.log.Error("controller stopped", "err", err)
		}
	})
}

// stopControl stops svc's controller and waits until it returned.
func (svc *service) stopControl() {
	svc.stopCtrl()
	<-svc.ctrlDone
	svc.aws.stop()
}

// adoptProcesses takes over the instances a previous daemon left running,
// after checking them against the restored state (checkStore). It waits
// only for the pools that carry traffic, so that a candidate still
// starting never holds the public listener; a serving pool that was lost
// is started again, and what was found wrong is logged, published and
// shown in status.
func (d *Daemon) adoptProcesses(ctx context.Context, svc *service, proc *process.Driver, stateDir string) error {
	found, err := proc.Survey()
	if err != nil {
		return err
	}
	assume, err := checkStore(svc.name, svc.ctrl, found, stateDir, d.opts.AcceptEmptyStore)
	if err != nil {
		return err
	}
	if assume != nil {
		why := "the state store was empty and accepted (--accept-empty-store) while this pool was running"
		if err := svc.ctrl.AssumeLive(*assume, why); err != nil {
			return err
		}
		svc.log.Warn("running pool taken as live over an empty store", "color", assume.Color, "version", assume.Version)
	}
	ad, err := proc.AdoptExpecting(ctx, process.Expect{Serving: svc.ctrl.Serving(), Traffic: svc.ctrl.TrafficColors()})
	if err != nil {
		return fmt.Errorf("adopt instances: %w", err)
	}
	svc.notices = ad.Notices
	for _, n := range ad.Notices {
		d.publish(deploy.Event{Time: time.Now(), Service: svc.name, Type: deploy.EventNotice, Actor: deploy.ActorDaemon, Message: n})
	}
	return nil
}

// restartStaticPools re-establishes the pools the persisted state names for
// a static runtime, which has no processes to adopt, after applying the
// persisted registrations on top of the configuration. Pools that were
// serving (live, previous, a candidate already taking traffic) come back
// at once without a health gate: they passed it when deployed, and the
// router's own checks take out an address that died meanwhile, so one dead
// address cannot hold start-up or the pool. Registered addresses that never
// passed a health check are the exception: the driver probes them, and
// they join once they pass. A candidate that was still provisioning or
// verifying never passed its gate; the resumed controller starts, and so
// gates, it again. Only registrations that cannot be read fail the start.
func restartStaticPools(svc *service, drv *static.Driver) error {
	if err := drv.RestoreRegistrations(); err != nil {
		return err
	}
	for _, p := range svc.ctrl.Serving() {
		if _, err := drv.Restore(p.Color, p.Version); err != nil {
			svc.log.Error("restoring static pool", "color", p.Color, "version", p.Version, "err", err)
		}
	}
	return nil
}

// stopServices releases every service's runtime: with StopInstancesOnExit
// the pools are drained and stopped, otherwise instances keep running for
// the next daemon to adopt.
func (d *Daemon) stopServices() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, svc := range d.services {
		if d.opts.StopInstancesOnExit {
			ctx, cancel := context.WithTimeout(context.Background(), svc.cfg.Load().DrainTimeout+30*time.Second)
			for _, c := range route.Colors {
				if err := svc.driver.Stop(ctx, c); err != nil {
					svc.log.Error("stopping pool", "color", c, "err", err)
				}
			}
			cancel()
		}
		if err := svc.driver.Close(); err != nil {
			svc.log.Error("closing runtime", "err", err)
		}
		svc.router.Close()
	}
}

// previewURL is what pre_traffic hooks get as PREVIEW_URL. The preview
// listener speaks plain HTTP even when the public one has TLS (it is meant
// for smoke tests from the same host), so the scheme is always http.
func previewURL(sc *config.Service) string {
	if sc.PreviewListen == "" {
		return ""
	}
	return "http://" + sc.PreviewListen
}
