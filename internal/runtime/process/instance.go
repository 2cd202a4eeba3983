package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// instance is one process of a pool. Its identity fields never change; the
// healthy flag is guarded by Driver.mu.
type instance struct {
	id         string
	slot       int
	color      route.Color
	version    string
	port       int
	pid        int
	startTicks uint64
	startedAt  time.Time
	logPath    string
	logFrom    int64 // size of the log file when this process started

	done    chan struct{} // closed once the process has exited
	exitErr error         // why it exited; written before done is closed
	// stopping is set when the driver asked the instance to stop, so that
	// its exit is not taken for a crash.
	stopping atomic.Bool
	// evicted is set, before stopping, on an adopted instance that did not
	// pass its health check within the start timeout: its slot's
	// supervisor replaces it instead of taking its exit for a stop.
	evicted atomic.Bool
	healthy bool
}

func (in *instance) addr() string { return "127.0.0.1:" + strconv.Itoa(in.port) }

func (in *instance) public(service string) runtime.Instance {
	return runtime.Instance{
		ID: in.id, Service: service, Color: in.color, Version: in.version,
		Addr: in.addr(), PID: in.pid, StartedAt: in.startedAt,
	}
}

func instanceID(service string, c route.Color, slot int) string {
	return fmt.Sprintf("%s-%s-%d", service, c, slot)
}

// launch starts the process of one slot. It does not wait for health. Its
// errors do not name the instance; the caller does.
func (d *Driver) launch(p *pool, slot int) (*instance, error) {
	c, version := p.color, p.version
	if dir := d.opts.Dir; dir != "" {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("working dir: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("working dir %s is not a directory", dir)
		}
	}
	inherited, file, secrets, err := d.readEnv()
	if err != nil {
		return nil, err
	}
	port, err := d.ports.Allocate()
	if err != nil {
		return nil, err
	}
	in := &instance{
		id: instanceID(d.name, c, slot), slot: slot, color: c, version: version, port: port,
		logPath: d.logPath(c, slot), done: make(chan struct{}),
	}
	if err := d.exec(in, inherited, file, p.env, secrets); err != nil {
		d.ports.Release(port)
		return nil, err
	}
	return in, nil
}

// exec runs the instance's command, in the environment built from the
// layers readEnv read and the driver's options (see Options.Env), with
// its output on its log file, and starts the goroutine that reaps it.
// Neither the log file nor the driver's log ever get the environment.
func (d *Driver) exec(in *instance, inherited, file, release, secrets map[string]string) error {
	proc := d.opts
	vars := map[string]string{
		"PORT": strconv.Itoa(in.port), "VERSION": in.version, "COLOR": in.color.String(),
		"SERVICE": d.name, "INSTANCE": in.id, markVar: d.mark(),
	}
	r := strings.NewReplacer(
		"${PORT}", vars["PORT"], "${VERSION}", vars["VERSION"], "${COLOR}", vars["COLOR"],
		"${SERVICE}", vars["SERVICE"], "${INSTANCE}", vars["INSTANCE"],
	)
	argv := make([]string, len(proc.Command))
	for i, a := range proc.Command {
		argv[i] = r.Replace(a)
	}
	configured := make(map[string]string, len(proc.Env))
	for k, v := range proc.Env {
		configured[k] = r.Replace(v)
	}
	env := environ(inherited, file, configured, release, secrets, vars)

	logf, err := d.openLog(in.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "=== cutover: %s starting %s version %s on port %d at %s\n",
		d.name, in.id, in.version, in.port, time.Now().UTC().Format(time.RFC3339))
	if fi, err := logf.Stat(); err == nil {
		in.logFrom = fi.Size()
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = proc.Dir
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so stop signals reach the instance's children; no
	// Pdeathsig, so instances survive a daemon crash and can be adopted.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(logf, "=== cutover: launch failed: %v\n", err)
		return fmt.Errorf("launch %s: %w", argv[0], err)
	}
	in.pid = cmd.Process.Pid
	in.startedAt = time.Now()
	// The child is not reaped before Wait, so its stat is still readable.
	if st, err := readStat(in.pid); err == nil {
		in.startTicks = st.startTicks
	}
	go func() {
		in.exitErr = exitStatus(cmd.Wait())
		close(in.done)
	}()
	return nil
}

// exitError says how a process ended: "exit code 3", or "killed by
// signal SIGKILL". It wraps what exec.Cmd.Wait returned.
type exitError struct {
	msg string
	err error
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) Unwrap() error { return e.err }

// exitStatus turns exec.Cmd.Wait's result into an exitError (a clean exit
// too: an instance is not meant to exit at all).
func exitStatus(err error) error {
	if err == nil {
		return &exitError{msg: "exit code 0"}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return err
	case ws.Signaled():
		msg := "killed by signal " + signalName(ws.Signal())
		if ws.CoreDump() {
			msg += " (core dumped)"
		}
		return &exitError{msg: msg, err: err}
	default:
		return &exitError{msg: fmt.Sprintf("exit code %d", ws.ExitStatus()), err: err}
	}
}

// signalName is the conventional name of the signals that end processes.
func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
		syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
		syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("%d (%v)", int(s), s)
}

// watch supervises an adopted instance, which is not our child: it polls
// the pid and its start time until the process is gone or ctx is done.
func (d *Driver) watch(ctx context.Context, in *instance) {
	t := time.NewTicker(d.opts.WatchInterval)
	defer t.Stop()
	for {
		if !sameProcess(in.pid, in.startTicks) {
			in.exitErr = errors.New("process is gone")
			close(in.done)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// exited reports whether the instance's process has exited.
func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// terminate stops the instance: SIGTERM to its process group, SIGKILL once
// the stop timeout has passed (or ctx is done), then SIGKILL to whatever is
// left of the group. It returns when no live process of the group is left,
// and releases the instance's port.
func (d *Driver) terminate(ctx context.Context, in *instance) {
	in.stopping.Store(true)
	defer d.ports.Release(in.port)
	if !in.exited() {
		_ = syscall.Kill(-in.pid, syscall.SIGTERM)
		t := time.NewTimer(d.stopTimeout())
		select {
		case <-in.done:
		case <-t.C:
			d.log.Warn("instance ignored SIGTERM, killing it", "color", in.color.String(),
				"version", in.version, "instance", in.id)
		case <-ctx.Done():
		}
		t.Stop()
	}
	d.killGroup(in)
}

// killGroup SIGKILLs the instance's process group and waits (bounded) until
// neither the instance nor any of its children is alive.
func (d *Driver) killGroup(in *instance) {
	_ = syscall.Kill(-in.pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if in.exited() && !groupAlive(in.pid) {
			return
		}
		_ = syscall.Kill(-in.pid, syscall.SIGKILL)
		select {
		case <-in.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.log.Error("instance process group still alive after SIGKILL", "color", in.color.String(),
		"version", in.version, "instance", in.id)
}
