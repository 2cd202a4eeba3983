package handover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/sockets"
)

// fakeOld records what the protocol asked of the running daemon.
type fakeOld struct {
	releases, reclaims int
	releaseErr         error
}

func (o *fakeOld) Release() error { o.releases++; return o.releaseErr }
func (o *fakeOld) Reclaim() error { o.reclaims++; return nil }

// TestChild is the new daemon in these tests: this test binary run again,
// doing what HANDOVER_TEST_MODE says.
func TestChild(t *testing.T) {
	mode := os.Getenv("HANDOVER_TEST_MODE")
	if mode == "" {
		t.Skip("helper for the Upgrade tests")
	}
	if mode == "exit" {
		os.Exit(1)
	}
	c, err := FromEnv(os.Getenv, os.Unsetenv)
	if err != nil || c == nil {
		fmt.Fprintln(os.Stderr, "no channel:", err)
		os.Exit(3)
	}
	if mode == "close-then-exit" {
		// The channel closes at once and the exit shows seconds later,
		// as for a binary that exits at start on a loaded machine.
		c.conn.Close()
		time.Sleep(3 * time.Second)
		os.Exit(1)
	}
	socks, err := c.Sockets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	switch mode {
	case "fail":
		c.Fail(errors.New("cutover.yaml:3: unknown key \"lisen\""))
		os.Exit(1)
	case "hang":
		time.Sleep(time.Minute)
	}
	if err := c.AwaitStore(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	switch mode {
	case "die-after-release":
		os.Exit(2)
	case "fail-after-release":
		c.Fail(errors.New("open state store: in use"))
		os.Exit(1)
	case "hang-after-release":
		time.Sleep(time.Minute)
	}
	// serve: prove the socket works by accepting the connection the test made.
	if len(socks) != 1 || socks[0].Name != "services.web.listen" {
		c.Fail(fmt.Errorf("received %v", socks))
		os.Exit(1)
	}
	if conn, err := socks[0].Listener.Accept(); err == nil {
		conn.Write([]byte("new"))
		conn.Close()
	}
	c.Serving()
}

func upgradeWith(t *testing.T, mode string, old *fakeOld) (int, error, net.Conn) {
	t.Helper()
	return upgradeWithin(t, mode, old, 2*time.Second)
}

// upgradeWithin is upgradeWith with the given Timeout for each step.
func upgradeWithin(t *testing.T, mode string, old *fakeOld, timeout time.Duration) (int, error, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A client waiting in the queue: the new daemon must answer it.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pid, err := Upgrade(context.Background(), Options{
		Binary: os.Args[0], Args: []string{"-test.run=^TestChild$"},
		Env:    append(os.Environ(), "HANDOVER_TEST_MODE="+mode),
		Stdout: os.Stderr, Stderr: os.Stderr,
		Files:   []sockets.NamedFile{{Name: "services.web.listen", File: f}},
		Timeout: timeout,
	}, old)
	return pid, err, conn
}

func TestUpgradeHandsOverTheSockets(t *testing.T) {
	old := &fakeOld{}
	pid, err, conn := upgradeWith(t, "serve", old)
	if err != nil {
		t.Fatal(err)
	}
	if pid <= 0 || old.releases != 1 || old.reclaims != 0 {
		t.Fatalf("pid %d, %d releases, %d reclaims; want a pid, 1 release, 0 reclaims", pid, old.releases, old.reclaims)
	}
	buf := make([]byte, 3)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != nil || string(buf) != "new" {
		t.Fatalf("the queued client got %q (%v) from the passed socket, want \"new\"", buf, err)
	}
}

// Every failure leaves the running daemon as it was: released and reclaimed
// when the failure came after the release, untouched before it.
func TestUpgradeFailures(t *testing.T) {
	tests := []struct {
		mode       string
		releaseErr error
		step       string
		why        string
		released   bool
	}{
		{mode: "exit", step: "ready", why: "exited before taking over: exit status 1"},
		{mode: "fail", step: "ready", why: `failed: cutover.yaml:3: unknown key "lisen"`},
		{mode: "hang", step: "ready", why: `did not report "ready" within 2s`},
		{mode: "serve", releaseErr: errors.New("controller web: stuck"), step: "release", why: "controller web: stuck", released: true},
		{mode: "die-after-release", step: "serving", why: "exited before taking over: exit status 2", released: true},
		{mode: "fail-after-release", step: "serving", why: "failed: open state store: in use", released: true},
		{mode: "hang-after-release", step: "serving", why: `did not report "serving" within 2s`, released: true},
	}
	for _, tc := range tests {
		name := tc.mode
		if tc.releaseErr != nil {
			name = "release fails"
		}
		t.Run(name, func(t *testing.T) {
			old := &fakeOld{releaseErr: tc.releaseErr}
			_, err, _ := upgradeWith(t, tc.mode, old)
			var ue *Error
			if !errors.As(err, &ue) {
				t.Fatalf("Upgrade: %v, want an *Error", err)
			}
			if ue.Step != tc.step || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Upgrade: step %q, %v; want step %q and %q", ue.Step, err, tc.step, tc.why)
			}
			want := 0
			if tc.released {
				want = 1
			}
			if old.releases != want || old.reclaims != want || ue.Reclaimed != tc.released {
				t.Fatalf("%d releases, %d reclaims, Reclaimed %v; want %d, %d, %v", old.releases, old.reclaims, ue.Reclaimed, want, want, tc.released)
			}
		})
	}
}

// A new daemon whose channel closes well before its exit can be seen is
// reported by how it exited, whichever of start and ready noticed: the old
// daemon waits for the exit as long as the step may take, not for a fixed
// grace that a loaded machine outlasts (which reported a bare "closed the
// hand-over channel" or "broken pipe", and never the exit status).
func TestUpgradeReportsASlowExitByItsStatus(t *testing.T) {
	old := &fakeOld{}
	_, err, _ := upgradeWithin(t, "close-then-exit", old, time.Minute)
	var ue *Error
	if !errors.As(err, &ue) {
		t.Fatalf("Upgrade: %v, want an *Error", err)
	}
	if (ue.Step != "start" && ue.Step != "ready") || !strings.Contains(err.Error(), "exited before taking over: exit status 1") {
		t.Fatalf("Upgrade: step %q, %v; want start or ready, and the exit status", ue.Step, err)
	}
	if old.releases != 0 || old.reclaims != 0 {
		t.Fatalf("%d releases, %d reclaims for a daemon that never said ready; want none", old.releases, old.reclaims)
	}
}

func TestUpgradeBinaryThatCannotStart(t *testing.T) {
	old := &fakeOld{}
	_, err := Upgrade(context.Background(), Options{Binary: "/nonexistent/cutover"}, old)
	var ue *Error
	if !errors.As(err, &ue) || ue.Step != "start" || !strings.Contains(err.Error(), "/nonexistent/cutover") {
		t.Fatalf("Upgrade: %v, want a start error naming the binary", err)
	}
	if old.releases != 0 {
		t.Fatal("released for a binary that never started")
	}
}

// The new daemon gives up when the old one goes away before releasing the
// store.
func TestChildWhenTheOldDaemonDies(t *testing.T) {
	here, there, err := sockets.Pair()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sockets.FileConn(there)
	if err != nil {
		t.Fatal(err)
	}
	c := &Child{conn: conn}
	here.Close()
	if err := c.AwaitStore(); err == nil {
		t.Fatal("AwaitStore succeeded with the old daemon gone")
	}
}
