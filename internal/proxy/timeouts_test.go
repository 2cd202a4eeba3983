package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// secondTimeout is an upstream header timeout of one second for h1 pools
// built outside a router.
func secondTimeout() *atomic.Int64 {
	var d atomic.Int64
	d.Store(int64(time.Second))
	return &d
}

// rawConn is a client connection on which a test writes requests by hand.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// request writes a GET in two parts, pause apart, and returns the answer's
// status, or 0 and the error when the router closed the connection.
func (c *rawConn) request(t *testing.T, pause time.Duration) (int, error) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
		return 0, err
	}
	time.Sleep(pause)
	if _, err := io.WriteString(c, "Host: web.example\r\n\r\n"); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// closedWithin reports whether the router closes the idle connection
// within d.
func (c *rawConn) closedWithin(d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Timeouts changed by SetLive apply without a failed request: the upstream
// header timeout to the next request (on the h1 engine and through the
// transport), read_header and idle to connections accepted afterwards,
// while connections already open keep the values they were accepted with.
func TestTimeoutsChangeLive(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			time.Sleep(600 * time.Millisecond)
		}
		_, _ = io.Copy(io.Discard, req.Body)
		io.WriteString(w, "ok")
	})
	svc := testService()
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	mustSplit(t, r.Router, route.Blue, 0)

	// A client that never retries runs throughout; none of its requests
	// may fail while the timeouts change under it.
	var failed, done atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			c := client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(r.url + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = errString(resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
				}
				done.Add(1)
			}
		})
	}

	slow := func() (int, int) {
		t.Helper()
		c := client()
		resp, err := c.Get(r.url + "/slow")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// A body of unknown length goes through http.Transport, not
		// the h1 engine.
		up, err := c.Post(r.url+"/slow", "text/plain", io.MultiReader(strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		up.Body.Close()
		return resp.StatusCode, up.StatusCode
	}
	if a, b := slow(); a != http.StatusOK || b != http.StatusOK {
		t.Fatalf("with a 5s upstream header timeout a 600ms answer got %d, %d; want 200", a, b)
	}
	oldConn := dialRaw(t, r.url) // accepted with read_header 5s, idle 30s
	if st, err := oldConn.request(t, 0); st != http.StatusOK {
		t.Fatalf("first request on the kept connection: %d %v", st, err)
	}

	live := svc.live()
	live.UpstreamHeaderTimeout = 200 * time.Millisecond
	live.ReadHeaderTimeout = 300 * time.Millisecond
	live.IdleTimeout = 300 * time.Millisecond
	if err := r.SetLive(live); err != nil {
		t.Fatal(err)
	}
	if a, b := slow(); a != http.StatusGatewayTimeout || b != http.StatusGatewayTimeout {
		t.Errorf("after upstream_header 200ms a 600ms answer got %d, %d; want 504", a, b)
	}

	// A new connection gets read_header 300ms: a header sent over 600ms
	// is cut.
	if st, err := dialRaw(t, r.url).request(t, 600*time.Millisecond); st != 0 {
		t.Errorf("a header that took 600ms on a new connection was answered %d; want the connection closed at 300ms", st)
	} else {
		t.Logf("new connection, slow header: %v", err)
	}
	// And idle 300ms.
	fresh := dialRaw(t, r.url)
	if st, err := fresh.request(t, 0); st != http.StatusOK {
		t.Fatalf("request on a new connection: %d %v", st, err)
	}
	start := time.Now()
	if !fresh.closedWithin(2 * time.Second) {
		t.Error("a new connection idle for 2s was not closed; want idle 300ms")
	} else if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("a new connection was closed after %v idle; want about 300ms", el)
	}
	// The connection accepted before keeps read_header 5s and idle 30s.
	if oldConn.closedWithin(600 * time.Millisecond) {
		t.Error("the connection accepted before the change was closed after 600ms idle; it keeps idle 30s")
	}
	if st, err := oldConn.request(t, 600*time.Millisecond); st != http.StatusOK {
		t.Errorf("a 600ms header on the connection accepted before the change: %d %v; it keeps read_header 5s", st, err)
	}

	// Back to the first values: the next request waits for the slow answer again.
	if err := r.SetLive(svc.live()); err != nil {
		t.Fatal(err)
	}
	if a, b := slow(); a != http.StatusOK || b != http.StatusOK {
		t.Errorf("with upstream_header 5s again a 600ms answer got %d, %d; want 200", a, b)
	}
	if st, err := dialRaw(t, r.url).request(t, 600*time.Millisecond); st != http.StatusOK {
		t.Errorf("with read_header 5s again a 600ms header got %d %v; want 200", st, err)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests of the load failed while the timeouts changed; last: %v", n, done.Load(), lastErr.Load())
	}
	t.Logf("load: %d requests, %d failed", done.Load(), failed.Load())
}

type errString string

func (e errString) Error() string { return string(e) }
