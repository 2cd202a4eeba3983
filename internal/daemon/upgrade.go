package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/handover"
	"github.com/cutover/cutover/internal/sdnotify"
	"github.com/cutover/cutover/internal/sockets"
	"github.com/cutover/cutover/internal/store"
)

// upgradeTimeout bounds each wait of an upgrade for the new daemon: to
// validate its configuration, and to adopt the instances and serve.
const upgradeTimeout = time.Minute

// upgradeState is what Run leaves for an upgrade: how to end the run once
// the new daemon serves, and where to start controllers again when it
// failed after the store was released. Set by Run before the API serves.
type upgradeState struct {
	mu       sync.Mutex // one upgrade at a time
	stopRun  context.CancelFunc
	runCtx   context.Context
	wg       *sync.WaitGroup
	released bool // the store is closed and the controllers stopped
	// handedOver is set once a new daemon serves in this one's place: it,
	// not this one, is then the service manager's main process.
	handedOver atomic.Bool
}

// Upgrade replaces this daemon with the binary at path ("" is this
// process's own executable) as the handover package describes: the new
// process takes the sockets, the store and the controllers, and this one
// stops accepting, drains and returns from Run. It returns the new
// daemon's pid. On error this daemon serves on with its controllers, and
// the error says why the new one did not take over.
func (d *Daemon) Upgrade(ctx context.Context, path string) (int, error) {
	if !d.hand.mu.TryLock() {
		return 0, errors.New("an upgrade is already under way")
	}
	defer d.hand.mu.Unlock()
	if d.hand.stopRun == nil {
		return 0, errors.New("the daemon is not serving yet")
	}
	// API writes under way end first; new ones wait for the outcome, then
	// go to the new daemon or, when it failed, run here.
	moved := false
	defer func() { d.writes.release(moved) }()
	hctx, cancel := context.WithTimeout(ctx, upgradeTimeout)
	err := d.writes.hold(hctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("API requests that change state were still running after %s; try again", upgradeTimeout)
	}
	// No reload while the controllers change hands.
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return 0, fmt.Errorf("find this binary: %w", err)
		}
		path = exe
	}
	if d.opts.Listeners == nil {
		return 0, errors.New("this daemon was started without socket hand-over")
	}
	files, err := d.opts.Listeners.Files()
	if err != nil {
		return 0, err
	}
	defer sockets.CloseFiles(files)
	d.log.Info("upgrade: starting the new cutover", "binary", path)
	pid, err := handover.Upgrade(ctx, handover.Options{
		Binary: path, Args: os.Args[1:], Env: os.Environ(),
		Stdout: os.Stdout, Stderr: os.Stderr,
		Files: files, Timeout: upgradeTimeout,
	}, oldDaemon{d})
	if err != nil {
		d.log.Error("upgrade failed; this daemon keeps serving", "binary", path, "err", err)
		return 0, err
	}
	d.log.Info("upgrade: the new cutover serves; draining and exiting", "pid", pid)
	// Under systemd this process is the unit's main pid: pass it on before
	// exiting, or systemd takes the exit for the service's end.
	d.hand.handedOver.Store(true)
	moved = true
	if err := d.opts.Notify.Notify(sdnotify.MainPID(pid), sdnotify.Status(fmt.Sprintf("upgraded: pid %d serves", pid))); err != nil {
		d.log.Error("upgrade: telling the service manager the new main pid", "pid", pid, "err", err)
	}
	d.hand.stopRun()
	return pid, nil
}

// oldDaemon is this daemon's side of the hand-over.
type oldDaemon struct{ d *Daemon }

// Release stops every controller and the drivers' supervision (instances
// keep running, routers keep serving) and closes the store.
func (o oldDaemon) Release() error {
	d := o.d
	var errs []error
	for _, svc := range d.serviceList() {
		svc.stopControl()
		if err := svc.driver.Close(); err != nil {
			errs = append(errs, fmt.Errorf("service %s: close runtime: %w", svc.name, err))
		}
	}
	d.storeMu.Lock()
	d.hand.released = true
	err := d.store.Close()
	d.storeMu.Unlock()
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Reclaim reopens the store and gives every service a new driver and
// controller over its running instances and its router, as a restart would,
// while the routers never stopped.
func (o oldDaemon) Reclaim() error {
	d := o.d
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	st, err := store.Open(filepath.Join(cfg.StateDir, "cutover.db"), store.Options{AcceptEmpty: d.opts.AcceptEmptyStore})
	if err != nil {
		return err
	}
	d.storeMu.Lock()
	d.store, d.hand.released = st, false
	d.storeMu.Unlock()
	var errs []error
	for _, old := range d.serviceList() {
		svc, err := d.restartControl(d.hand.runCtx, cfg.StateDir, old)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", old.name, err))
			continue
		}
		d.mu.Lock()
		d.services[svc.name] = svc
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// restartControl builds a new service around old's router: new driver and
// controller, restored from the store, instances adopted, controller
// running.
func (d *Daemon) restartControl(ctx context.Context, stateDir string, old *service) (*service, error) {
	sc := old.cfg.Load()
	svc := &service{name: old.name, log: old.log, router: old.router, traffic: old.traffic, serving: old.serving}
	svc.cfg.Store(sc)
	tlsConf, err := instanceTLS(sc)
	if err != nil {
		return nil, err
	}
	svc.upstreamTLS = tlsConf
	if err := d.startControl(ctx, stateDir, sc, svc, tlsConf); err != nil {
		if svc.driver != nil {
			svc.driver.Close()
		}
		return nil, err
	}
	d.runControl(ctx, svc, d.hand.wg)
	return svc, nil
}

func (d *Daemon) serviceList() []*service {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := make([]*service, 0, len(d.services))
	for _, svc := range d.services {
		list = append(list, svc)
	}
	return list
}

// closeStore closes the store unless an upgrade released it.
func (d *Daemon) closeStore() {
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	if d.hand.released || d.store == nil {
		return
	}
	if err := d.store.Close(); err != nil {
		d.log.Error("closing the state store", "err", err)
	}
}

// handoverListeners receives the sockets from the daemon that started this
// one for an upgrade, and matches them to cfg.
func handoverListeners(child *handover.Child, cfg *config.Config) (*sockets.Listeners, error) {
	socks, err := child.Sockets()
	if err != nil {
		return nil, err
	}
	return sockets.Match(socks, listenerWants(cfg))
}

// upgradeOnSignal upgrades the daemon to its own executable path on
// SIGUSR2 (the binary replaced on disk), logging the outcome.
func upgradeOnSignal(ctx context.Context, d *Daemon, log *slog.Logger) {
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr2:
			if _, err := d.Upgrade(ctx, ""); err != nil {
				log.Error("SIGUSR2: upgrade refused", "err", err)
			}
		}
	}
}
