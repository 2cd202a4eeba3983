package e2e

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeManager is the part of systemd a Type=notify service talks to: a
// datagram socket at $NOTIFY_SOCKET that learns each sender's pid from the
// kernel (SO_PASSCRED) and, like NotifyAccess=main, takes messages only
// from the unit's main process, which MAINPID= moves.
type fakeManager struct {
	t    *testing.T
	conn *net.UnixConn
	path string

	mu       sync.Mutex
	main     int
	accepted []notice
	ignored  []notice
	changed  chan struct{} // closed and replaced on every message
}

type notice struct {
	pid   int
	state string
}

func newFakeManager(t *testing.T) *fakeManager {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1) })
	if serr != nil {
		t.Fatal(serr)
	}
	m := &fakeManager{t: t, conn: conn, path: path, changed: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go m.receive()
	return m
}

func (m *fakeManager) receive() {
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	for {
		n, oobn, _, _, err := m.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		pid := 0
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range msgs {
				if cred, err := syscall.ParseUnixCredentials(&c); err == nil {
					pid = int(cred.Pid)
				}
			}
		}
		m.mu.Lock()
		if m.main == 0 {
			m.main = pid // the process systemd started; checked by the test
		}
		// Access is checked once per message, against the main pid before it.
		from := m.main
		for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			nt := notice{pid, line}
			if pid != from {
				m.ignored = append(m.ignored, nt)
				continue
			}
			m.accepted = append(m.accepted, nt)
			if v, ok := strings.CutPrefix(line, "MAINPID="); ok {
				m.main, _ = strconv.Atoi(v)
			}
		}
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
	}
}

// await waits until the main process has sent a state starting with
// prefix after the first skip accepted notices, and returns its index and
// the pid that sent it.
func (m *fakeManager) await(prefix string, skip int) (int, int) {
	m.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		m.mu.Lock()
		for i := skip; i < len(m.accepted); i++ {
			if strings.HasPrefix(m.accepted[i].state, prefix) {
				defer m.mu.Unlock()
				return i, m.accepted[i].pid
			}
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			m.mu.Lock()
			defer m.mu.Unlock()
			m.t.Fatalf("the service manager got no %q from its main process (pid %d); accepted %v, ignored %v", prefix, m.main, m.accepted, m.ignored)
		}
	}
}

// Under systemd (Type=notify, NotifyAccess=main) the daemon says when it is
// ready, brackets a reload with RELOADING=1 and READY=1, hands the unit's
// main pid to the daemon an upgrade started (so systemd does not take the
// old one's exit for the service's end), and the new main process says
// when it stops. Nothing is sent by a process that is not the main one.
func TestServiceManagerFollowsReloadUpgradeAndStop(t *testing.T) {
	m := newFakeManager(t)
	t.Setenv("NOTIFY_SOCKET", m.path)
	e := newEnv(t)
	e.start()
	t.Cleanup(e.stopUpgraded)
	first := e.daemon.Process.Pid
	ready, by := m.await("READY=1", 0)
	if by != first {
		t.Fatalf("READY=1 came from pid %d, want the daemon started, %d", by, first)
	}
	e.mustCLI(0, "deploy", "web", "v1", "--wait")

	e.mustCLI(0, "reload")
	reloading, _ := m.await("RELOADING=1", ready+1)
	m.await("MONOTONIC_USEC=", reloading+1)
	reloaded, _ := m.await("READY=1", reloading+1)

	e.mustCLI(0, "upgrade")
	next := e.daemonPID()
	if next == first {
		t.Fatalf("after upgrade the pid file still names pid %d", first)
	}
	moved, by := m.await("MAINPID="+strconv.Itoa(next), reloaded+1)
	if by != first {
		t.Errorf("MAINPID=%d was sent by pid %d, want the replaced daemon %d", next, by, first)
	}
	e.mustServe("v1")
	// (e.exited also waits for the new daemon, which shares its output.)
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(first, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replaced daemon did not exit within 30s")
		}
	}

	if err := syscall.Kill(next, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, by = m.await("STOPPING=1", moved+1)
	if by != next {
		t.Errorf("STOPPING=1 was sent by pid %d, want the upgraded daemon %d", by, next)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ignored) != 0 {
		t.Errorf("messages from processes that were not the main one (systemd would ignore and log them): %v", m.ignored)
	}
	t.Logf("the service manager saw %v", m.accepted)
}
