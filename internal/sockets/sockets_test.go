package sockets

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestMatch(t *testing.T) {
	a := listen(t, "127.0.0.1:0")
	b := listen(t, "127.0.0.1:0")
	any := listen(t, "0.0.0.0:0")
	aAddr, bAddr := a.Addr().String(), b.Addr().String()
	_, anyPort, _ := net.SplitHostPort(any.Addr().String())
	tests := []struct {
		name    string
		socks   []Socket
		wants   []Want
		inherit []string // wants that get an inherited socket
		err     string   // part of the error; "" for none
	}{
		{name: "by address", socks: []Socket{{Listener: a}, {Listener: b}},
			wants:   []Want{{"api.listen", bAddr}, {"services.web.listen", aAddr}, {"services.web.preview_listen", "127.0.0.1:1"}},
			inherit: []string{"api.listen", "services.web.listen"}},
		{name: "by name with a port 0 in the config", socks: []Socket{{Name: "services.web.listen", Listener: a}},
			wants: []Want{{"services.web.listen", "127.0.0.1:0"}}, inherit: []string{"services.web.listen"}},
		{name: "unknown name falls back to the address", socks: []Socket{{Name: "cutover", Listener: a}},
			wants: []Want{{"services.web.listen", aAddr}}, inherit: []string{"services.web.listen"}},
		{name: "unspecified host", socks: []Socket{{Listener: any}},
			wants: []Want{{"services.web.listen", ":" + anyPort}}, inherit: []string{"services.web.listen"}},
		{name: "socket that matches nothing", socks: []Socket{{Listener: a}, {Listener: b}},
			wants: []Want{{"services.web.listen", aAddr}}, err: "inherited socket " + bAddr + " matches no listener"},
		{name: "port 0 matches nothing by address", socks: []Socket{{Listener: a}},
			wants: []Want{{"services.web.listen", "127.0.0.1:0"}}, err: "matches no listener"},
		{name: "named socket on the wrong address", socks: []Socket{{Name: "api.listen", Listener: a}},
			wants: []Want{{"api.listen", bAddr}, {"services.web.listen", aAddr}},
			err:   `inherited socket "api.listen" on ` + aAddr + " is for api.listen, which is configured as " + bAddr},
		{name: "two sockets for one listener", socks: []Socket{{Name: "api.listen", Listener: a}, {Listener: a}},
			wants: []Want{{"api.listen", aAddr}}, err: "two inherited sockets for api.listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Match closes the sockets on error; give it duplicates.
			socks := make([]Socket, len(tc.socks))
			for i, s := range tc.socks {
				socks[i] = Socket{Name: s.Name, Listener: dup(t, s.Listener)}
			}
			l, err := Match(socks, tc.wants)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Match error %v, want one containing %q", err, tc.err)
				}
				for _, s := range socks {
					if _, err := s.Listener.Accept(); err == nil {
						t.Fatal("a socket was left open after a failed Match")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for _, w := range tc.wants {
				want := contains(tc.inherit, w.Name)
				if got := l.Inherited(w.Name); got != want {
					t.Errorf("Inherited(%s) = %v, want %v", w.Name, got, want)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dup(t *testing.T, ln net.Listener) net.Listener {
	t.Helper()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// An inherited socket serves the connections that were queued on it before
// this process took it, and a listener with no inherited socket is bound.
func TestListenUsesTheInheritedSocket(t *testing.T) {
	held := listen(t, "127.0.0.1:0")
	c, err := net.Dial("tcp", held.Addr().String()) // queued in the backlog, nobody accepts yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := Match([]Socket{{Listener: dup(t, held)}}, []Want{{"services.web.listen", held.Addr().String()}, {"api.listen", "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen("services.web.listen", "ignored")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held.Close() // the original goes away; the inherited duplicate keeps the queue
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	if s, err := ln.Accept(); err != nil {
		t.Fatalf("queued connection not accepted on the inherited socket: %v", err)
	} else {
		s.Close()
	}
	api, err := l.Listen("api.listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	files, err := l.Files()
	if err != nil {
		t.Fatal(err)
	}
	defer CloseFiles(files)
	if len(files) != 2 || files[0].Name != "api.listen" || files[1].Name != "services.web.listen" {
		t.Fatalf("Files = %v, want api.listen and services.web.listen", files)
	}
}

// TestFromEnv runs this test binary as a child that inherits sockets the way
// systemd passes them, and checks what it reports back.
func TestFromEnv(t *testing.T) {
	a := listen(t, "127.0.0.1:0")
	b := listen(t, "127.0.0.1:0")
	files := []*os.File{fileOf(t, a), fileOf(t, b)}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{name: "for this process", env: []string{"LISTEN_PID=self", "LISTEN_FDS=2", "LISTEN_FDNAMES=api.listen:web"},
			want: fmt.Sprintf("api.listen=%s,web=%s;env=", a.Addr(), b.Addr())},
		{name: "without names", env: []string{"LISTEN_PID=self", "LISTEN_FDS=2"},
			want: fmt.Sprintf("=%s,=%s;env=", a.Addr(), b.Addr())},
		{name: "for another process", env: []string{"LISTEN_PID=1", "LISTEN_FDS=2"}, want: ";env="},
		{name: "not a count", env: []string{"LISTEN_PID=self", "LISTEN_FDS=two"}, want: `error: socket activation: LISTEN_FDS="two" is not a count`},
		{name: "not a socket", env: []string{"LISTEN_PID=self", "LISTEN_FDS=3"}, want: "error: socket activation: fd 5 is not a listening socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := files
			if strings.Contains(tc.name, "not a socket") {
				r, w, _ := os.Pipe()
				defer r.Close()
				defer w.Close()
				extra = append(append([]*os.File{}, files...), r)
			}
			// LISTEN_PID=self is resolved by the child itself, standing in for
			// the shim a supervisor uses (see testsupport.Activator).
			cmd := exec.Command(os.Args[0], "-test.run=^TestFromEnvChild$")
			cmd.Env = append(os.Environ(), append(tc.env, "SOCKETS_TEST_CHILD=1")...)
			cmd.ExtraFiles = extra
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			got := ""
			for _, line := range strings.Split(string(out), "\n") {
				if r, ok := strings.CutPrefix(line, "RESULT "); ok {
					got = r
				}
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("child reported %q, want %q", got, tc.want)
			}
		})
	}
}

func fileOf(t *testing.T, ln net.Listener) *os.File {
	t.Helper()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFromEnvChild(t *testing.T) {
	if os.Getenv("SOCKETS_TEST_CHILD") != "1" {
		t.Skip("helper for TestFromEnv")
	}
	if os.Getenv("LISTEN_PID") == "self" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	socks, err := FromEnv(os.Getenv, os.Unsetenv, os.Getpid())
	if err != nil {
		fmt.Printf("RESULT error: %v\n", err)
		return
	}
	parts := make([]string, len(socks))
	for i, s := range socks {
		parts[i] = s.Name + "=" + s.Listener.Addr().String()
	}
	fmt.Printf("RESULT %s;env=%s%s%s\n", strings.Join(parts, ","), os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"))
}

// Listening sockets sent over a Pair arrive as working listeners, with the
// message they came with.
func TestConnPassesSockets(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	here, there, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	peer, err := FileConn(there)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	f := fileOf(t, ln)
	type msg struct {
		Step  string   `json:"step"`
		Names []string `json:"names"`
	}
	if err := here.Send(msg{Step: "sockets", Names: []string{"api.listen"}}, []*os.File{f}); err != nil {
		t.Fatal(err)
	}
	var got msg
	peer.SetDeadline(time.Now().Add(5 * time.Second))
	files, err := peer.Receive(&got)
	if err != nil {
		t.Fatal(err)
	}
	socks, err := Listen(files, got.Names)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(socks)
	if got.Step != "sockets" || len(socks) != 1 || socks[0].Listener.Addr().String() != ln.Addr().String() {
		t.Fatalf("received %+v with %v", got, socks)
	}
	ln.Close()
	f.Close()
	c, err := net.Dial("tcp", socks[0].Listener.Addr().String())
	if err != nil {
		t.Fatalf("dial the passed socket after the sender closed its copies: %v", err)
	}
	c.Close()
	if _, err := socks[0].Listener.Accept(); err != nil {
		t.Fatal(err)
	}
	// The other end going away is reported as such.
	here.Close()
	if _, err := peer.Receive(&got); err != ErrClosed {
		t.Fatalf("Receive after the peer closed: %v, want ErrClosed", err)
	}
}
