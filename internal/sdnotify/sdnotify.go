// Package sdnotify speaks systemd's service notification protocol: a
// service started with Type=notify tells its manager that it is ready,
// reloading, stopping, or that another process is now its main process, by
// sending newline-separated KEY=VALUE lines as one datagram to the unix
// socket named by $NOTIFY_SOCKET (a path, or an abstract name written with
// a leading "@"). See sd_notify(3).
//
// cutover uses it so that under systemd an upgrade (which replaces the
// daemon's process) moves the unit's main pid to the new daemon instead of
// systemd taking the old one's exit for the service's end.
package sdnotify

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// EnvSocket is the environment variable systemd names its socket in.
const EnvSocket = "NOTIFY_SOCKET"

// The states cutover sends.
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
)

// MainPID is the state that makes pid the unit's main process.
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Status is a free-form status line shown by systemctl status.
func Status(s string) string { return "STATUS=" + strings.ReplaceAll(s, "\n", " ") }

// Monotonic is the CLOCK_MONOTONIC time systemd wants beside RELOADING=1.
func Monotonic() string {
	return "MONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)
}

// Notifier sends states to one notification socket. The zero value, and a
// Notifier for an empty socket name, send nothing: cutover not started by
// a manager that listens.
type Notifier struct {
	socket string
}

// New returns a Notifier for the socket named as in $NOTIFY_SOCKET.
func New(socket string) Notifier { return Notifier{socket: socket} }

// Enabled reports whether a manager listens.
func (n Notifier) Enabled() bool { return n.socket != "" }

// Notify sends states as one message. It returns nil without sending when
// no manager listens.
func (n Notifier) Notify(states ...string) error {
	if n.socket == "" || len(states) == 0 {
		return nil
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	// Go maps a leading "@" to Linux's abstract namespace, as systemd does.
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("notify the service manager on %s: %w", n.socket, err)
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(strings.Join(states, "\n") + "\n")); err != nil {
		return fmt.Errorf("notify the service manager on %s: %w", n.socket, err)
	}
	return nil
}
