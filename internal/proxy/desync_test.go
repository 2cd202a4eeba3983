package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// An instance that sends a whole unasked response ~50 ms after the one it
// was asked for must not make the next client (on its own connection) get
// it: each client gets its own answer, on the h1 engine (plain GET), the
// transport (a body of unknown length) and ReverseProxy (a declined
// upgrade) alike. The next client asks as soon as the stray response is
// on the router's socket, before the router had to look at it: the engine
// used to pool the connection with the stray response unread and hand it
// to the next request, and http.Transport, which notices it only when its
// reader goroutine runs, handed it over on a loaded machine (guardConn).
func TestOverSentResponseNeverReachesAnotherClient(t *testing.T) {
	strayWritten := make(chan struct{}, 64)
	be := newRawBackend(t, func(c net.Conn, req *http.Request) bool {
		id := req.Header.Get("X-Req")
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(id), id)
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nPOISON!")
		select {
		case strayWritten <- struct{}{}:
		default: // the test stopped reading; never block the backend's close
		}
		return true
	})
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-1", Addr: be.addr()}})
	for _, path := range []string{"engine", "transport", "upgrade"} {
		t.Run(path, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			for i := range 20 {
				id := fmt.Sprintf("%s-%d", path, i)
				var req *http.Request
				switch path {
				case "engine":
					req, _ = http.NewRequest(http.MethodGet, r.url+"/", nil)
				case "transport":
					req, _ = http.NewRequest(http.MethodPost, r.url+"/", io.NopCloser(strings.NewReader("body")))
					req.ContentLength = -1 // chunked: the transport's path
				case "upgrade":
					req, _ = http.NewRequest(http.MethodGet, r.url+"/", nil)
					req.Header.Set("Connection", "Upgrade")
					req.Header.Set("Upgrade", "websocket")
				}
				req.Header.Set("X-Req", id)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != id {
					t.Fatalf("client %d got %d %q, want its own answer %q", i, resp.StatusCode, b, id)
				}
				select {
				case <-strayWritten: // on the router's socket: loopback writes land at once
				case <-time.After(10 * time.Second):
					t.Fatalf("client %d: the instance did not send its stray response", i)
				}
			}
		})
	}
}

// h1Token is the part of an answer that names the request it was written
// for: 16 random hex digits, which the fuzzer cannot guess.
const h1TokenLen = 16

// FuzzH1ResponseIsolation feeds the h1 engine arbitrary answers from a
// backend and checks that no answer reaches a request other than the one
// it was written for. Request i's method is GET, HEAD or POST by bits 2i
// and 2i+1 of method. Each request carries an id; the backend answers it
// with the fuzzed bytes, '@' replaced by the request's secret token, and
// pauses 20 ms at the first '~' (so that part of the answer arrives after
// the engine may have finished with the response). The engine may fail a
// request, but a response (header, body or trailer) must never contain
// another request's token. Between requests the driver waits until the
// backend has written the previous answer entirely: bytes that arrive
// after a request was sent cannot be told from its answer by any
// HTTP/1.1 client, and are out of scope.
func FuzzH1ResponseIsolation(f *testing.F) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n@"
	for _, seed := range []struct {
		method byte
		answer string
	}{
		{0, ok},
		{0, ok + ok},
		{0, ok + "~" + ok},
		{1, "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n~" + ok},
		{1, "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n" + ok},
		{0, "HTTP/1.1 204 No Content\r\n\r\n~" + ok},
		{0, "HTTP/1.1 304 Not Modified\r\nContent-Length: 16\r\n\r\n@~" + ok},
		{0, "HTTP/1.1 103 Early Hints\r\nLink: @\r\n\r\n" + ok + "~" + ok},
		{2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n@\r\n0\r\n\r\n~" + ok},
		{0, "HTTP/1.0 200 OK\r\n\r\n@"},
		{0, "HTTP/1.1 101 Switching Protocols\r\n\r\n" + ok},
	} {
		f.Add(seed.method, []byte(seed.answer))
	}
	f.Fuzz(func(t *testing.T, method byte, answer []byte) {
		if len(answer) > 4096 {
			return
		}
		checkH1Isolation(t, method, answer)
	})
}

// checkH1Isolation runs three requests through one h1 pool to a backend
// answering with answer and fails if a response carries a foreign token.
func checkH1Isolation(t *testing.T, method byte, answer []byte) {
	const n = 3
	var tokens [n]string
	for i := range tokens {
		var b [h1TokenLen / 2]byte
		rand.Read(b[:])
		tokens[i] = hex.EncodeToString(b[:])
	}
	var mu sync.Mutex
	written := map[int]chan struct{}{}
	be := newRawBackend(t, func(c net.Conn, req *http.Request) bool {
		var i int
		if _, err := fmt.Sscan(req.Header.Get("X-Id"), &i); err != nil || i < 0 || i >= n {
			return false
		}
		done := make(chan struct{})
		mu.Lock()
		written[i] = done
		mu.Unlock()
		defer close(done)
		out := bytes.ReplaceAll(answer, []byte("@"), []byte(tokens[i]))
		first, rest, paused := bytes.Cut(out, []byte("~"))
		if _, err := c.Write(first); err != nil {
			return false
		}
		if paused {
			time.Sleep(20 * time.Millisecond)
			if _, err := c.Write(rest); err != nil {
				return false
			}
		}
		// An answer the engine is still reading ends when we close; a
		// next request on this connection comes at once.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		return true
	})
	p := newH1Pool(be.addr(), newTransport(time.Second, nil), secondTimeout())
	defer p.closeIdle(true)
	methods := [...]string{http.MethodGet, http.MethodHead, http.MethodPost}
	for i := range n {
		m := methods[int(method>>(2*i))%len(methods)]
		got := h1Exchange(t, p, m, i)
		for j, tok := range tokens {
			if j != i && strings.Contains(got, tok) {
				t.Fatalf("request %d received bytes written for request %d:\n%q", i, j, got)
			}
		}
		mu.Lock()
		done := written[i]
		mu.Unlock()
		if done != nil {
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("backend still writing after 2s")
			}
			time.Sleep(2 * time.Millisecond) // the last bytes reach our socket
		}
	}
}

// h1Exchange sends request i through p and returns what came back (header
// values, body and trailers), or "" when the round trip failed.
func h1Exchange(t *testing.T, p *h1pool, method string, i int) string {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("payload")
	}
	req := httptest.NewRequestWithContext(ctx, method, "http://web.example/", body)
	if body == nil {
		req.Body = nil
	}
	req.Header.Set("X-Id", fmt.Sprint(i))
	st := &reqState{w: httptest.NewRecorder(), in: req}
	res, err := p.roundTrip(st, req, &outbound{rw: st})
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	var sb strings.Builder
	fmt.Fprint(&sb, res.Status, res.Header)
	b, _ := io.ReadAll(bufio.NewReader(res.Body))
	sb.Write(b)
	fmt.Fprint(&sb, res.Trailer)
	return sb.String()
}
