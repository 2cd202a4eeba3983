// Package daemon is cutover's composition root: it builds the store, and for
// every service a router, a runtime driver and a deployment controller, wires
// them together, serves the control API, and shuts everything down in order.
//
// Start-up follows invariant 5 of the design: the persisted routing split is
// applied and surviving instances are adopted before any listener opens, so
// the first request after a restart sees the weights the API acknowledged.
// Only this package knows every other package.
package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/handover"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/sdnotify"
	"github.com/cutover/cutover/internal/sockets"
	"github.com/cutover/cutover/internal/store"
)

// Options tunes a daemon run. The zero value is what `cutover serve` uses.
type Options struct {
	// Logger receives the daemon's logs; nil logs text to stderr.
	Logger *slog.Logger
	// Ready, if set, is called once every listener is bound, with the
	// control API's base URL.
	Ready func(apiURL string)
	// StopInstancesOnExit stops every pool on shutdown. `cutover serve`
	// leaves instances running so a restarted daemon adopts them; the demo
	// cleans up after itself.
	StopInstancesOnExit bool
	// AcceptEmptyStore starts over a state store that is empty (a 0-byte
	// file) or that names no pool of a service whose instances still run,
	// instead of refusing to: a single running pool is then taken as live
	// (recorded in history), so the next deployment is canaried against
	// it rather than sent to 100% at once as a first deployment.
	AcceptEmptyStore bool
	// Listeners hands out the listening sockets by configuration key: the
	// ones inherited from a supervisor (socket activation) or from the
	// daemon being upgraded first, a new bind for the rest. Nil binds
	// every address.
	Listeners *sockets.Listeners
	// AwaitStore, if set, is called before the store is opened and must
	// return before it is: an upgraded daemon waits there until the one
	// it replaces released the store (see package handover).
	AwaitStore func() error
	// Notify tells a service manager (systemd, Type=notify) when the
	// daemon reloads, stops, or hands its main pid to an upgraded daemon.
	// The zero value tells nobody.
	Notify sdnotify.Notifier
}

// ServeOptions are `cutover serve`'s flags.
type ServeOptions struct {
	// Config is the configuration file; "" is cutover.yaml.
	Config string
	// AcceptEmptyStore is --accept-empty-store (see Options).
	AcceptEmptyStore bool
	// StopInstancesOnExit is --stop-instances-on-exit (see Options).
	StopInstancesOnExit bool
}

// Serve loads the configuration at o.Config and runs the daemon until ctx
// is done. SIGHUP reloads the configuration. It returns the process exit
// code: 0 on a clean shutdown, 1 on any error (printed to stderr).
func Serve(ctx context.Context, o ServeOptions, stdout, stderr io.Writer) int {
	path := o.Config
	if path == "" {
		path = "cutover.yaml"
	}
	// Started by `cutover upgrade`: every error before serving goes to the
	// daemon being replaced too, which keeps serving and reports it.
	child, err := handover.FromEnv(os.Getenv, os.Unsetenv)
	fail := func(err error) int {
		if child != nil {
			child.Fail(err)
		}
		fmt.Fprintf(stderr, "cutover serve: %v\n", err)
		return 1
	}
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fail(err)
	}
	var lns *sockets.Listeners
	if child != nil {
		lns, err = handoverListeners(child, cfg)
	} else {
		lns, err = activatedListeners(cfg)
	}
	if err != nil {
		return fail(err)
	}
	defer lns.Close()
	tuneGC(os.Getenv)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	notify := sdnotify.New(os.Getenv(sdnotify.EnvSocket))
	opts := Options{Logger: logger, AcceptEmptyStore: o.AcceptEmptyStore, StopInstancesOnExit: o.StopInstancesOnExit, Listeners: lns, Notify: notify, Ready: func(u string) {
		fmt.Fprintf(stdout, "cutover: control API on %s\n", u)
		if child != nil {
			// The replaced daemon, still the unit's main process, moves
			// the main pid here (see Upgrade).
			if err := child.Serving(); err != nil {
				logger.Error("upgrade: telling the replaced daemon that this one serves", "err", err)
			}
			child = nil // it has taken over; later errors are this daemon's own
			return
		}
		if err := notify.Notify(sdnotify.Ready, sdnotify.Status("serving, control API on "+u)); err != nil {
			logger.Error("telling the service manager that cutover is ready", "err", err)
		}
	}}
	if child != nil {
		opts.AwaitStore = child.AwaitStore
	}
	d, err := New(cfg, opts)
	if err != nil {
		return fail(err)
	}
	go upgradeOnSignal(ctx, d, logger)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := d.Reload(ctx); err != nil {
					logger.Error("reload: not everything was applied", "err", err)
				}
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// tuneGC trades memory for CPU on the request path: the router allocates a
// few KiB per request, and at the default GOGC=100 the collector took 7-10%
// of the router's CPU in bench runs; GOGC=400 took about 1.3% for some 25
// MiB more memory. The soft memory limit keeps the trade from costing the
// machine: half the memory the daemon may use (its cgroup's limit, or the
// machine's memory), never below 512 MiB. Near that limit the collector
// works harder again instead of growing the heap. An operator's own GOGC or
// GOMEMLIMIT always wins.
func tuneGC(getenv func(string) string) (tuned bool) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(memoryLimit(os.ReadFile))
	return true
}

// minMemoryLimit is the floor of the soft memory limit tuneGC sets.
const minMemoryLimit = 512 << 20

// memoryLimit returns half of the memory available to the process: the
// cgroup v2 limit when there is one, else the machine's MemTotal; at least
// minMemoryLimit, which is also the answer when neither can be read.
func memoryLimit(readFile func(string) ([]byte, error)) int64 {
	avail := int64(0)
	if b, err := readFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			avail = n
		}
	}
	if b, err := readFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && (avail == 0 || kb*1024 < avail) {
					avail = kb * 1024
				}
			}
		}
	}
	return max(avail/2, minMemoryLimit)
}

// Daemon is one running cutover: its store, services and control API.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	events *broker
	ports  *runtime.PortAllocator
	done   outcomes // finished deployments by outcome, for /metrics
	// metrics is the registry /metrics serves (newMetrics); set by New.
	metrics *prometheus.Registry

	reloadMu sync.Mutex // one reload at a time
	writes   writeGate  // holds API writes while an upgrade moves the state
	mu       sync.Mutex // guards cfg and services
	cfg      *config.Config
	services map[string]*service
	hand     upgradeState

	// storeMu guards store and hand.released: an upgrade closes and
	// reopens the store from its own goroutine while shutdown and new
	// services read it.
	storeMu sync.Mutex
	store   *store.Store
}

// currentStore returns the open state store.
func (d *Daemon) currentStore() *store.Store {
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	return d.store
}

// New validates that the daemon can start with cfg; Run starts it.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d := &Daemon{opts: opts, log: opts.Logger, cfg: cfg, events: newBroker(), ports: &runtime.PortAllocator{}, services: map[string]*service{}}
	d.metrics = d.newMetrics()
	return d, nil
}

// Run starts everything and blocks until ctx is done, then shuts down in
// order: API, routers (draining in-flight requests), controllers, drivers,
// store.
func (d *Daemon) Run(ctx context.Context) (err error) {
	// An upgrade ends the run once the new daemon serves.
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	// A reload (SIGHUP) that arrives while the services start waits for
	// them, so that it compares against, and updates, the configuration
	// they run with instead of racing with the start and being lost.
	d.reloadMu.Lock()
	starting := true
	defer func() {
		if starting {
			d.reloadMu.Unlock()
		}
	}()
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()

	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: %w", cfg.StateDir, err)
	}
	token, err := readToken(cfg.API.TokenFile)
	if err != nil {
		return err
	}
	if err := api.CheckListen(cfg.API.Listen, token); err != nil {
		return err
	}
	if d.opts.AwaitStore != nil {
		if err := d.opts.AwaitStore(); err != nil {
			return err
		}
	}
	st, err := store.Open(filepath.Join(cfg.StateDir, "cutover.db"), store.Options{AcceptEmpty: d.opts.AcceptEmptyStore})
	if err != nil {
		return err
	}
	d.storeMu.Lock()
	d.store = st
	d.storeMu.Unlock()
	defer d.closeStore()

	// Shutdown runs in reverse: stop the API, stop routers (they drain
	// in-flight requests) and controllers, and only then release the
	// runtimes, so no instance is stopped under a request.
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		d.stopServices()
	}()
	for _, name := range cfg.ServiceNames {
		svc, err := d.startService(runCtx, cfg.StateDir, cfg.Services[name], &wg)
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		d.mu.Lock()
		d.services[name] = svc
		d.mu.Unlock()
	}
	d.hand.runCtx, d.hand.wg, d.hand.stopRun = runCtx, &wg, stopRun
	starting = false
	d.reloadMu.Unlock()

	apiLn, err := d.listen(sockets.APIName, cfg.API.Listen)
	if err != nil {
		return err
	}
	srv := api.NewServer(d, api.Options{Token: token, Logger: d.log.With("component", "api"),
		Listen: cfg.API.Listen, AllowedHosts: cfg.API.AllowedHosts.List()})
	apiURL := "http://" + apiLn.Addr().String()
	d.log.Info("cutover started", "api", apiURL, "state_dir", cfg.StateDir, "services", len(cfg.ServiceNames))
	if d.opts.Ready != nil {
		d.opts.Ready(apiURL)
	}
	// STOPPING=1 as the drain begins; Run waits for it to be sent, or a
	// quick shutdown could exit before the message left.
	served, notified := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(notified)
		select {
		case <-ctx.Done():
		case <-served:
			if ctx.Err() == nil {
				return // serving failed: not a stop
			}
		}
		if d.hand.handedOver.Load() {
			return // the new daemon is the main process now
		}
		if err := d.opts.Notify.Notify(sdnotify.Stopping, sdnotify.Status("stopping: draining requests")); err != nil {
			d.log.Error("telling the service manager that cutover stops", "err", err)
		}
	}()
	err = srv.Serve(ctx, apiLn)
	close(served)
	<-notified
	d.log.Info("cutover stopping")
	return err
}

// publish sends an event to subscribers.
func (d *Daemon) publish(ev deploy.Event) { d.events.publish(ev) }

func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("api.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("api.token_file %s is empty", path)
	}
	return tok, nil
}
