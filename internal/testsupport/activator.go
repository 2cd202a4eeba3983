package testsupport

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ActivatedSocket is a socket an Activator binds: its name (LISTEN_FDNAMES)
// and address.
type ActivatedSocket struct {
	Name string
	Addr string
}

// Activator stands in for systemd in tests: like a .socket unit it binds the
// listening sockets itself and holds them for its whole life, and like a
// .service unit with Restart=always and RestartSec=0 it runs a command with
// them as descriptors 3, 4, ... (LISTEN_FDS, LISTEN_FDNAMES) and starts it
// again as soon as it exits. While the command is down, clients connecting
// wait in the sockets' accept queues instead of being refused.
//
// systemd sets LISTEN_PID to the service's pid between fork and exec, which
// Go's os/exec cannot do; the Activator starts the command through
// `/bin/sh -c 'export LISTEN_PID=$$; exec "$0" "$@"'`, so LISTEN_PID is the
// pid of the shell that then becomes the command, and the command checks its
// own pid exactly as it does under systemd.
type Activator struct {
	cmd  string
	args []string
	env  []string
	out  io.Writer

	lns   []net.Listener
	files []*os.File
	names []string

	mu       sync.Mutex
	proc     *os.Process
	exited   chan struct{}
	started  []time.Time
	stopping bool
	done     chan struct{}
}

// StartActivator binds socks and starts cmd with args under it. env is the
// command's environment (nil: this process's); out receives its output.
// Stop ends it.
func StartActivator(socks []ActivatedSocket, cmd string, args, env []string, out io.Writer) (*Activator, error) {
	if env == nil {
		env = os.Environ()
	}
	a := &Activator{cmd: cmd, args: args, env: env, out: out, done: make(chan struct{})}
	for _, s := range socks {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			a.closeSockets()
			return nil, fmt.Errorf("activator: bind %s (%s): %w", s.Name, s.Addr, err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			ln.Close()
			a.closeSockets()
			return nil, err
		}
		a.lns, a.files, a.names = append(a.lns, ln), append(a.files, f), append(a.names, s.Name)
	}
	a.mu.Lock()
	err := a.spawnLocked()
	a.mu.Unlock()
	if err != nil {
		a.closeSockets()
		return nil, err
	}
	go a.supervise()
	return a, nil
}

// spawnLocked starts the command; a.mu is held, so Stop never misses a
// process started after it looked.
func (a *Activator) spawnLocked() error {
	c := exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, a.cmd}, a.args...)...)
	c.Env = append(append([]string{}, a.env...),
		fmt.Sprintf("LISTEN_FDS=%d", len(a.files)), "LISTEN_FDNAMES="+strings.Join(a.names, ":"))
	c.ExtraFiles = a.files
	c.Stdout, c.Stderr = a.out, a.out
	if err := c.Start(); err != nil {
		return fmt.Errorf("activator: start %s: %w", a.cmd, err)
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }()
	a.proc, a.exited = c.Process, exited
	a.started = append(a.started, time.Now())
	return nil
}

// supervise restarts the command whenever it exits, until Stop.
func (a *Activator) supervise() {
	defer close(a.done)
	for {
		a.mu.Lock()
		exited := a.exited
		a.mu.Unlock()
		<-exited
		a.mu.Lock()
		if a.stopping {
			a.mu.Unlock()
			return
		}
		err := a.spawnLocked()
		a.mu.Unlock()
		if err != nil {
			fmt.Fprintln(a.out, err)
			return
		}
	}
}

// PID is the pid of the command now running.
func (a *Activator) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc.Pid
}

// Starts is how many times the command was started.
func (a *Activator) Starts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.started)
}

// Kill9 kills the running command with SIGKILL, as a crash would, waits
// until it is gone and returns when it was killed. The Activator starts it
// again at once.
func (a *Activator) Kill9() time.Time {
	a.mu.Lock()
	p, exited := a.proc, a.exited
	a.mu.Unlock()
	at := time.Now()
	p.Signal(syscall.SIGKILL)
	<-exited
	return at
}

// Stop sends SIGTERM to the command, waits up to timeout for it to exit (then
// kills it), and closes the sockets.
func (a *Activator) Stop(timeout time.Duration) {
	a.mu.Lock()
	a.stopping = true
	p, exited := a.proc, a.exited
	a.mu.Unlock()
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		p.Kill()
		<-exited
	}
	<-a.done
	a.closeSockets()
}

func (a *Activator) closeSockets() {
	for i := range a.lns {
		a.lns[i].Close()
		a.files[i].Close()
	}
}
