package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// rawBackend is an instance written on a bare socket, for answers that
// net/http would refuse to send: more bytes than announced, bodies after
// HEAD, 204 or 304, arbitrary bytes. It reads each request with
// http.ReadRequest (body drained) and hands it to answer, which writes
// whatever it likes on the connection; /healthz always gets a clean 200.
type rawBackend struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cons []net.Conn
}

// newRawBackend starts a rawBackend on 127.0.0.1:0, stopped at cleanup.
// answer returns false to close the connection.
func newRawBackend(t testing.TB, answer func(c net.Conn, req *http.Request) bool) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.cons = append(b.cons, c)
			b.mu.Unlock()
			b.wg.Go(func() { b.serve(c, answer) })
		}
	})
	t.Cleanup(b.close)
	return b
}

func (b *rawBackend) addr() string { return b.ln.Addr().String() }

func (b *rawBackend) serve(c net.Conn, answer func(net.Conn, *http.Request) bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if req.URL.Path == "/healthz" {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return
			}
			continue
		}
		if !answer(c, req) {
			return
		}
	}
}

func (b *rawBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.cons {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// rawClient sends one raw request on a new connection to addr and returns
// everything the router sent back until it closed the connection or
// wait passed without a byte, and whether it closed it.
func rawClient(t testing.TB, addr, request string, wait time.Duration) (string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			ne, ok := err.(net.Error)
			return string(got), !(ok && ne.Timeout())
		}
	}
}
