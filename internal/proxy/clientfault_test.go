package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/analysis"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// candidateCookie returns a sticky cookie value that the router's current
// table sends to the candidate (the live colour's other).
func candidateCookie(t *testing.T, r *Router) string {
	t.Helper()
	tbl := r.table.Load()
	live, _ := r.Split()
	for i := range 100000 {
		v := strconv.Itoa(i)
		if tbl.ColorFor(route.Bucket(v)) == live.Other() {
			return v
		}
	}
	t.Fatal("no cookie value lands on the candidate")
	return ""
}

// statusOf parses the first response in raw, or returns 0.
func statusOf(raw string) int {
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

// canary starts a router with blue live and green the candidate at 10%,
// and returns it with a cookie that pins a client to green.
func canary(t *testing.T) (*running, string) {
	t.Helper()
	echo := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}
	blue, green := newInstance(t, "web-blue-1", echo), newInstance(t, "web-green-1", echo)
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	mustSplit(t, r.Router, route.Blue, 10)
	return r, candidateCookie(t, r.Router)
}

// assertGreenUnharmed checks that green's window holds only client errors
// (n of them), that the analysis would not fail green for it, and that
// green is still selected for its sticky clients.
func assertGreenUnharmed(t *testing.T, r *running, cookie string, before, blueBefore metrics.Counts, n uint64) {
	t.Helper()
	eventually(t, "requests recorded", 2*time.Second, func() bool {
		c := r.Counts(route.Green)
		return c.InFlight == 0 && c.Requests-before.Requests >= n
	})
	w := r.Counts(route.Green).Sub(before)
	if w.Class[4] != n || w.Class[5] != 0 || w.UpstreamFailures != 0 {
		t.Fatalf("green's window: 4xx %d, 5xx %d, upstream failures %d; want %d client errors and nothing else", w.Class[4], w.Class[5], w.UpstreamFailures, n)
	}
	v := analysis.Evaluate(analysis.Criteria{MaxErrorRate: 0.01, MinRequests: 1}, w, r.Counts(route.Blue).Sub(blueBefore), time.Second)
	if v.Result == analysis.Fail {
		t.Fatalf("analysis fails green for its clients' broken requests: %s", v.Reason)
	}
	if h, _ := r.Healthy(route.Green); h != 1 {
		t.Fatal("green's instance was ejected for a client's broken request")
	}
	if _, inst, _ := get(t, client(), r.url+"/", "Cookie", "cutover_web="+cookie); inst != "web-green-1" {
		t.Fatalf("sticky client served by %q afterwards, want green", inst)
	}
}

// A malformed chunked request body (bad hex, an overflowing size, a bare
// LF) is the client's error: 400 with the connection closed, counted as
// 4xx on the colour it was routed to, never an upstream failure, never an
// ejection. Thirty of them during a 10% canary used to roll back a
// healthy release.
func TestMalformedChunkedBodyIsTheClientsError(t *testing.T) {
	r, cookie := canary(t)
	addr := strings.TrimPrefix(r.url, "http://")
	bodies := map[string]string{
		"bad hex":       "zz\r\nhello\r\n0\r\n\r\n",
		"overflow":      "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
		"bare LF":       "5\nhello\r\n0\r\n\r\n",
		"bad chunk end": "5\r\nhelloXX0\r\n\r\n",
	}
	before, blueBefore := r.Counts(route.Green), r.Counts(route.Blue)
	var n uint64
	for name, body := range bodies {
		for range 10 {
			raw, closed := rawClient(t, addr, "POST / HTTP/1.1\r\nHost: web\r\nCookie: cutover_web="+cookie+
				"\r\nTransfer-Encoding: chunked\r\n\r\n"+body, 3*time.Second)
			if code := statusOf(raw); code != http.StatusBadRequest || !closed {
				t.Fatalf("%s: status %d (closed %v), want 400 and the connection closed:\n%s", name, code, closed, raw)
			}
			n++
		}
	}
	assertGreenUnharmed(t, r, cookie, before, blueBefore, n)
}

// A client that gives up in the middle of its request body (on the h1
// engine with a Content-Length, on the transport with chunks) is recorded
// as a client error on its colour; nothing is ejected, and it is answered
// neither with a 5xx nor with the 200 that net/http sends for a handler
// that wrote nothing.
func TestClientAbortMidBodyIsTheClientsError(t *testing.T) {
	for name, head := range map[string]string{
		"engine":    "Content-Length: 100\r\n\r\nonly ten b",
		"transport": "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r, cookie := canary(t)
			before, blueBefore := r.Counts(route.Green), r.Counts(route.Blue)
			c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: web\r\nCookie: cutover_web="+cookie+"\r\n"+head)
			time.Sleep(50 * time.Millisecond) // the router forwards what it has
			c.(*net.TCPConn).CloseWrite()     // and the client is gone
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			raw, _ := io.ReadAll(c)
			if code := statusOf(string(raw)); code != 0 && code < 400 || code >= 500 {
				t.Fatalf("the router answered an aborted request with %d, want a client error or no answer", code)
			}
			assertGreenUnharmed(t, r, cookie, before, blueBefore, 1)
		})
	}
}

// sinkRouter is a router, not serving, whose one blue instance reads and
// drops every body; its health is probed once an hour, so only the
// request path can take the instance out.
func sinkRouter(t *testing.T) *Router {
	t.Helper()
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})
	svc := testService()
	svc.Health.Interval = time.Hour
	svc.Logger = testLogger(t)
	r, err := New(svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	r.SetPool(route.Blue, "v1", backends(in))
	return r
}

// A request body that stops arriving until the server's read deadline
// (here an embedding server's ReadTimeout) is answered 408 and counted as
// the client's, not as a 504 of the instance.
func TestRequestBodyTimeoutIs408(t *testing.T) {
	r := sinkRouter(t)
	srv := httptest.NewUnstartedServer(r.Handler())
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	for name, head := range map[string]string{
		"engine":    "Content-Length: 100\r\n\r\nslow",
		"transport": "Transfer-Encoding: chunked\r\n\r\n4\r\nslow\r\n",
	} {
		before := r.Counts(route.Blue)
		raw, _ := rawClient(t, srv.Listener.Addr().String(), "POST / HTTP/1.1\r\nHost: web\r\n"+head, 3*time.Second)
		if code := statusOf(raw); code != http.StatusRequestTimeout {
			t.Fatalf("%s: status %d, want 408:\n%s", name, code, raw)
		}
		eventually(t, "request recorded", 2*time.Second, func() bool { return r.Counts(route.Blue).InFlight == 0 })
		w := r.Counts(route.Blue).Sub(before)
		if w.Class[4] != 1 || w.Class[5] != 0 || w.UpstreamFailures != 0 {
			t.Fatalf("%s: counts %+v, want one client error", name, w)
		}
		if h, _ := r.Healthy(route.Blue); h != 1 {
			t.Fatalf("%s: instance ejected for a slow client", name)
		}
	}
}

// A body over an embedding's size limit (http.MaxBytesReader) is 413 and
// the client's, not a 502 of the instance.
func TestOversizeBodyIs413(t *testing.T) {
	r := sinkRouter(t)
	url := newTestServer(t, http.MaxBytesHandler(r.Handler(), 16))
	for _, cl := range []int64{64, -1} { // the engine, the transport
		req, _ := http.NewRequest(http.MethodPost, url+"/", io.NopCloser(strings.NewReader(strings.Repeat("x", 64))))
		req.ContentLength = cl
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("length %d: status %d, want 413", cl, resp.StatusCode)
		}
	}
	if c := r.Counts(route.Blue); c.Class[4] != 2 || c.Class[5] != 0 || c.UpstreamFailures != 0 {
		t.Fatalf("counts %+v, want two client errors", c)
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("instance ejected for an oversize body")
	}
}

// An instance that refuses an upload with 413 and resets the connection
// before the router has sent the whole body gets its answer to the
// client: a 4xx of the colour, not a 502, and no ejection.
func TestH1EarlyAnswerToAnUploadReachesTheClient(t *testing.T) {
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
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err == nil && req.URL.Path != "/healthz" {
					io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
					c.(*net.TCPConn).SetLinger(0) // unread body: a reset
				} else if err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
				c.Close()
			}()
		}
	}()
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-1", Addr: ln.Addr().String()}})
	pr, pw := io.Pipe()
	go func() {
		pw.Write(make([]byte, 10<<10)) // the router sends the header and 8 KiB
		time.Sleep(200 * time.Millisecond)
		pw.Write(make([]byte, 50<<10)) // the instance has reset by now
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/", pr)
	req.ContentLength = 60 << 10 // the h1 engine's path
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "big" {
		t.Fatalf("client got %d %q, want the instance's 413", resp.StatusCode, b)
	}
	if c := r.Counts(route.Blue); c.Class[5] != 0 || c.UpstreamFailures != 0 {
		t.Fatalf("counts %+v: the instance's 413 counted as a failure", c)
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("instance ejected for refusing an upload")
	}
}
