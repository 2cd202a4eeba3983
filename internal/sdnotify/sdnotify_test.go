package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a datagram socket as systemd does for $NOTIFY_SOCKET.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyPathAndAbstractSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := "@cutover-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, name := range []string{path, abstract} {
		c := listen(t, name)
		n := New(name)
		if !n.Enabled() {
			t.Fatalf("%s: not enabled", name)
		}
		if err := n.Notify(Ready, Status("serving 2 services\nfine"), MainPID(42)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := read(t, c)
		want := "READY=1\nSTATUS=serving 2 services fine\nMAINPID=42\n"
		if got != want {
			t.Errorf("%s: sent %q, want %q (one datagram, a line per state, no newline inside a value)", name, got, want)
		}
	}
}

func TestMonotonicIsTheKernelClock(t *testing.T) {
	kv := Monotonic()
	v, ok := strings.CutPrefix(kv, "MONOTONIC_USEC=")
	us, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || us <= 0 {
		t.Fatalf("Monotonic() = %q, want MONOTONIC_USEC=<positive microseconds>", kv)
	}
	// CLOCK_MONOTONIC counts from boot: not the wall clock.
	if wall := time.Now().UnixMicro(); us > wall/2 {
		t.Errorf("MONOTONIC_USEC=%d looks like wall-clock time (%d)", us, wall)
	}
}

func TestNoSocketSendsNothing(t *testing.T) {
	var n Notifier
	if n.Enabled() {
		t.Fatal("zero Notifier is enabled")
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
}

func TestAbsentManagerIsAnError(t *testing.T) {
	err := New(filepath.Join(t.TempDir(), "none")).Notify(Ready)
	if err == nil || !strings.Contains(err.Error(), "notify the service manager on") {
		t.Fatalf("err = %v, want one naming the socket", err)
	}
}
