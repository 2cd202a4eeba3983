package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// After a request with both Content-Length and Transfer-Encoding the
// router closes the client connection once it has answered (RFC 9112
// 6.3): a proxy in front of it may have framed the request by its
// Content-Length, and whatever follows on the connection is suspect.
func TestContentLengthWithTransferEncodingClosesConnection(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	raw, closed := rawClient(t, strings.TrimPrefix(r.url, "http://"),
		"POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 2*time.Second)
	if code := statusOf(raw); code != http.StatusOK || !strings.HasSuffix(raw, "hello") {
		t.Fatalf("status %d, want 200 with the chunked body:\n%s", code, raw)
	}
	if !closed {
		t.Fatal("connection still open 2s after answering a request with Content-Length and Transfer-Encoding")
	}
}

// Bytes a WebSocket client sends right behind its upgrade request, before
// the 101 arrives (in the same write here), reach the instance once the
// connection is upgraded.
func TestWebSocketBytesBefore101AreForwarded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.URL.Path == "/healthz" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				io.Copy(c, br) // echo, what br holds first
			}()
		}
	}()
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-1", Addr: ln.Addr().String()}})
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframe-0\n")
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if got, err := br.ReadString('\n'); got != "frame-0\n" {
		t.Fatalf("echo of the bytes sent before the 101: %q, %v", got, err)
	}
	io.WriteString(c, "frame-1\n")
	if got, err := br.ReadString('\n'); got != "frame-1\n" {
		t.Fatalf("echo after the 101: %q, %v", got, err)
	}
}

// An upgrade to a protocol name ReverseProxy refuses (not printable
// ASCII) is the client's error: 400, a 4xx of its colour, no ejection.
func TestInvalidUpgradeIsTheClientsError(t *testing.T) {
	in := newInstance(t, "web-blue-1", nil)
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	raw, _ := rawClient(t, strings.TrimPrefix(r.url, "http://"),
		"GET / HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: w\xc3\xa9bsocket\r\n\r\n", time.Second)
	if code := statusOf(raw); code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400:\n%s", code, raw)
	}
	eventually(t, "request recorded", 2*time.Second, func() bool { return r.Counts(route.Blue).Requests == 1 })
	if c := r.Counts(route.Blue); c.Class[4] != 1 || c.Class[5] != 0 || c.UpstreamFailures != 0 {
		t.Fatalf("counts %+v, want one client error", c)
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("instance ejected for a client's invalid upgrade")
	}
}
