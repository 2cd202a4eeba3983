// Package handover replaces a running cutover daemon with a new process (a
// new binary, or the same one) without refusing a connection or failing a
// request: the listening sockets pass from the old daemon to the new one, and
// the state store and the controllers pass with an explicit, crash-safe
// exchange so that two daemons never both run a controller.
//
// # Protocol
//
// The old daemon (O) starts the new one (N) with one end of a unix
// SOCK_SEQPACKET socket pair as descriptor 3, named by CUTOVER_HANDOVER_FD.
// Each step is one JSON message; O's routers serve throughout.
//
//  1. O -> N "sockets": every listening socket O serves on (public, preview,
//     API), attached with SCM_RIGHTS and named by its configuration key.
//  2. N loads and validates its configuration and matches the sockets to it
//     (an inherited socket its configuration does not name is an error),
//     then N -> O "ready". N has not opened the store.
//  3. O stops its controllers and the runtime drivers' supervision (instances
//     keep running), and closes the store, releasing its file lock. O -> N
//     "released".
//  4. N opens the store, restores the state, adopts the instances, starts its
//     routers on the inherited sockets and its controllers, then N -> O
//     "serving". For a moment both processes accept on the same sockets;
//     both route with the same persisted split to the same instances.
//  5. O stops accepting, lets in-flight requests and streams finish within
//     drain_timeout, and exits 0.
//
// Failure at any step leaves O serving, and Upgrade returns why:
//
//   - N cannot be started, exits, reports an error ("failed") or does not
//     say "ready" within the timeout before step 3: O kills N (if still
//     running) and changes nothing; its controllers never stopped.
//   - O cannot release (step 3 failed part-way): O kills N and reclaims.
//   - N exits, fails or times out after "released" and before "serving": O
//     kills N and waits until it is gone (which releases the store's file
//     lock if N had taken it), then reopens the store and starts new
//     controllers and drivers as a restart would (Old.Reclaim). O's routers
//     never stopped, so no request failed; deployments were frozen for the
//     length of the attempt.
//   - O dies at any point: N sees the channel close. Before "released" N
//     gives up and exits (O's death is a crash like any other). After
//     "released" N needs nothing more from O and carries on.
//
// The store's file lock makes the exchange safe even if a step is wrong: N
// cannot open the store while O holds it, and O reclaims only after N is
// dead.
package handover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/sockets"
)

// EnvFD names the descriptor of the hand-over channel in the new daemon's
// environment.
const EnvFD = "CUTOVER_HANDOVER_FD"

// Steps of the protocol.
const (
	stepSockets  = "sockets"
	stepReady    = "ready"
	stepReleased = "released"
	stepServing  = "serving"
	stepFailed   = "failed"
)

// message is one step on the channel.
type message struct {
	Step  string   `json:"step"`
	Names []string `json:"names,omitempty"` // stepSockets: the attached sockets' keys, in order
	Error string   `json:"error,omitempty"` // stepFailed
	PID   int      `json:"pid,omitempty"`
}

// Old is what the daemon being replaced does at steps 3 and on failure.
type Old interface {
	// Release stops the controllers and the runtime drivers' supervision,
	// leaving instances running and routers serving, and closes the store.
	Release() error
	// Reclaim undoes Release after the new daemon failed: it reopens the
	// store and starts new drivers and controllers over the running
	// instances.
	Reclaim() error
}

// Options describe the new daemon to start.
type Options struct {
	// Binary is the executable to run; Args its arguments (without argv[0]).
	Binary string
	Args   []string
	// Env is its environment; Dir its working directory ("" for this one's).
	Env []string
	Dir string
	// Stdout and Stderr receive its output; they stay its output after this
	// process exits, so pass this process's own.
	Stdout, Stderr io.Writer
	// Files are the listening sockets to hand over, named by key.
	Files []sockets.NamedFile
	// Timeout bounds each wait: for "ready", and for "serving" (which
	// includes adopting instances). Zero is one minute.
	Timeout time.Duration
}

// Error is a failed upgrade: the step it failed at and why. The old daemon
// serves on in every case.
type Error struct {
	// Step is "start", "ready", "release" or "serving".
	Step string
	// Reclaimed reports that the store and the controllers were taken back
	// after they had been released.
	Reclaimed bool
	Err       error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("upgrade failed (%s): %v; the running daemon keeps serving", e.Step, e.Err)
	if e.Reclaimed {
		s += " and took its store and controllers back"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Upgrade starts the new daemon, hands it the sockets, store and controllers
// as the package doc describes, and returns its pid once it serves. The
// caller then stops accepting, drains and exits. On error (an *Error) the
// new process is gone and this daemon still serves, with its controllers
// running.
func Upgrade(ctx context.Context, o Options, old Old) (pid int, err error) {
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	n, err := start(ctx, o)
	if err != nil {
		return 0, &Error{Step: "start", Err: err}
	}
	defer n.conn.Close()
	if err := n.await(ctx, stepReady, o.Timeout); err != nil {
		n.kill()
		return 0, &Error{Step: "ready", Err: err}
	}
	fail := func(step string, err error) (int, error) {
		n.kill()
		if rerr := old.Reclaim(); rerr != nil {
			return 0, &Error{Step: step, Err: errors.Join(err, fmt.Errorf("taking the store back: %w", rerr))}
		}
		return 0, &Error{Step: step, Reclaimed: true, Err: err}
	}
	if err := old.Release(); err != nil {
		return fail("release", err)
	}
	if err := n.conn.Send(message{Step: stepReleased}, nil); err != nil {
		return fail("release", err)
	}
	if err := n.await(ctx, stepServing, o.Timeout); err != nil {
		return fail("serving", err)
	}
	return n.cmd.Process.Pid, nil
}

// newDaemon is the process being started and its side of the channel.
type newDaemon struct {
	cmd    *exec.Cmd
	conn   *sockets.Conn
	exited chan struct{}
	msgs   chan message
}

func start(ctx context.Context, o Options) (*newDaemon, error) {
	conn, childEnd, err := sockets.Pair()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary, o.Args...)
	cmd.Env = append(withoutKey(o.Env, EnvFD), EnvFD+"=3")
	cmd.Dir, cmd.Stdout, cmd.Stderr = o.Dir, o.Stdout, o.Stderr
	cmd.ExtraFiles = []*os.File{childEnd}
	err = cmd.Start()
	childEnd.Close()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	n := &newDaemon{cmd: cmd, conn: conn, exited: make(chan struct{}), msgs: make(chan message, 4)}
	go func() { cmd.Wait(); close(n.exited) }()
	go n.receive()
	files := make([]*os.File, len(o.Files))
	names := make([]string, len(o.Files))
	for i, f := range o.Files {
		files[i], names[i] = f.File, f.Name
	}
	if err := conn.Send(message{Step: stepSockets, Names: names}, files); err != nil {
		// A binary that exits at once can close its end before the
		// sockets reach it: tell how it ended rather than "broken pipe".
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			t := time.NewTimer(o.Timeout)
			err = n.died(ctx, t.C)
			t.Stop()
		}
		n.kill()
		conn.Close()
		return nil, fmt.Errorf("hand the sockets to %s: %w", o.Binary, err)
	}
	return n, nil
}

// receive forwards the new daemon's messages until the channel closes.
func (n *newDaemon) receive() {
	defer close(n.msgs)
	for {
		var m message
		files, err := n.conn.Receive(&m)
		for _, f := range files {
			f.Close() // the new daemon sends none
		}
		if err != nil {
			return // died tells why
		}
		n.msgs <- m
	}
}

// await waits for step from the new daemon.
func (n *newDaemon) await(ctx context.Context, step string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	exited := n.exited
	for {
		select {
		case m, ok := <-n.msgs:
			switch {
			case !ok:
				return n.died(ctx, t.C)
			case m.Step == stepFailed:
				return fmt.Errorf("the new cutover (pid %d) failed: %s", n.cmd.Process.Pid, m.Error)
			case exited == nil:
				// It has exited: only why it failed still matters.
			case m.Step == step:
				return nil
			default:
				return fmt.Errorf("the new cutover (pid %d) sent %q while %q was expected", n.cmd.Process.Pid, m.Step, step)
			}
		case <-exited:
			// What it sent before exiting may still be on its way
			// through receive, which ends when the channel does: read
			// on, so that a "failed" and its reason are not lost to the
			// bare exit status.
			exited = nil
		case <-t.C:
			if exited == nil {
				// It exited, and a process it left behind holds the channel open.
				return n.died(ctx, t.C)
			}
			return fmt.Errorf("the new cutover (pid %d) did not report %q within %s", n.cmd.Process.Pid, step, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// died describes the new daemon's end after the channel closed or it
// exited. A closed channel means the process is on its way out, but a
// loaded machine can take seconds to show its exit, so died waits for it
// until giveUp fires (the step's own timeout) or ctx ends: a fixed grace
// shorter than that reported a binary that exited 1 as one that merely
// closed the channel (or as a broken pipe), without saying why.
func (n *newDaemon) died(ctx context.Context, giveUp <-chan time.Time) error {
	select {
	case <-n.exited: // an exit already seen wins over a timer that fired too
	default:
		select {
		case <-n.exited:
		case <-giveUp:
			return fmt.Errorf("the new cutover (pid %d) closed the hand-over channel and did not exit", n.cmd.Process.Pid)
		case <-ctx.Done():
			return fmt.Errorf("the new cutover (pid %d) closed the hand-over channel: %w", n.cmd.Process.Pid, ctx.Err())
		}
	}
	st := n.cmd.ProcessState
	if st == nil {
		return fmt.Errorf("the new cutover exited before taking over")
	}
	return fmt.Errorf("the new cutover (pid %d) exited before taking over: %s", n.cmd.Process.Pid, st)
}

// kill ends the new daemon and waits until it is gone, so that whatever it
// held (the store's lock) is released.
func (n *newDaemon) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func withoutKey(env []string, key string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// Child is the new daemon's side of the channel.
type Child struct {
	conn *sockets.Conn
}

// FromEnv returns the hand-over channel when this process was started by
// Upgrade, else nil. It unsets EnvFD so no child of this daemon sees it.
func FromEnv(getenv func(string) string, unsetenv func(string) error) (*Child, error) {
	v := getenv(EnvFD)
	_ = unsetenv(EnvFD)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not a descriptor", EnvFD, v)
	}
	syscall.CloseOnExec(fd)
	conn, err := sockets.FileConn(os.NewFile(uintptr(fd), "handover"))
	if err != nil {
		return nil, err
	}
	return &Child{conn: conn}, nil
}

// Sockets receives the listening sockets (step 1).
func (c *Child) Sockets() ([]sockets.Socket, error) {
	var m message
	files, err := c.conn.Receive(&m)
	if err != nil {
		return nil, fmt.Errorf("receive the sockets from the running cutover: %w", err)
	}
	if m.Step != stepSockets {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("the running cutover sent %q instead of the sockets", m.Step)
	}
	return sockets.Listen(files, m.Names)
}

// AwaitStore reports that the configuration is valid and the sockets
// matched (step 2), and waits until the running daemon released the store
// (step 3).
func (c *Child) AwaitStore() error {
	if err := c.conn.Send(message{Step: stepReady, PID: os.Getpid()}, nil); err != nil {
		return err
	}
	var m message
	if _, err := c.conn.Receive(&m); err != nil {
		return fmt.Errorf("wait for the running cutover to release the store: %w", err)
	}
	if m.Step != stepReleased {
		return fmt.Errorf("the running cutover sent %q instead of releasing the store", m.Step)
	}
	return nil
}

// Serving reports that this daemon serves (step 4) and closes the channel.
func (c *Child) Serving() error {
	defer c.conn.Close()
	return c.conn.Send(message{Step: stepServing, PID: os.Getpid()}, nil)
}

// Fail tells the running daemon why this one cannot take over, and closes
// the channel.
func (c *Child) Fail(err error) {
	_ = c.conn.Send(message{Step: stepFailed, Error: err.Error()}, nil) // it also sees the exit
	c.conn.Close()
}
