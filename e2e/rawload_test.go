package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawLoad is a client that never retries: each worker sends one GET per tick
// on its own keep-alive connection, written and parsed by hand (no
// http.Transport, which would retry a request on a reused connection). A
// connection the server closed while idle is noticed before the next
// request is written, as every keep-alive client does, and dialled again;
// that costs no request. Every request that is sent and not answered 200,
// and every dial that is refused, counts.
type rawLoad struct {
	ok, failed, refused, redials atomic.Int64

	mu      sync.Mutex
	answers []answer
	errs    []string // the first few failures

	stop context.CancelFunc
	done sync.WaitGroup
}

// startRawLoad runs workers connections against addr, each sending one
// request every interval, until halt (registered as a cleanup too).
func startRawLoad(t *testing.T, addr string, workers int, interval time.Duration) *rawLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &rawLoad{stop: cancel}
	for range workers {
		l.done.Go(func() { l.work(ctx, addr, interval) })
	}
	t.Cleanup(l.halt)
	return l
}

func (l *rawLoad) halt() { l.stop(); l.done.Wait() }

func (l *rawLoad) work(ctx context.Context, addr string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var c *rawHTTP
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c != nil && c.closedByPeer() {
			c.close()
			c = nil
			l.redials.Add(1)
		}
		if c == nil {
			var err error
			if c, err = dialRawHTTP(addr); err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					l.refused.Add(1)
				} else {
					l.fail("dial: " + err.Error())
				}
				continue
			}
		}
		sent := time.Now()
		status, keep, err := c.get()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			l.fail(err.Error())
		case status != http.StatusOK:
			l.fail(fmt.Sprintf("status %d", status))
		default:
			l.ok.Add(1)
			l.mu.Lock()
			l.answers = append(l.answers, answer{sent: sent, at: time.Now()})
			l.mu.Unlock()
		}
		if err != nil || !keep {
			c.close()
			c = nil
		}
	}
}

func (l *rawLoad) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+msg)
	}
	l.mu.Unlock()
}

// firstAnswerAfter is how long after t the first 200 to a request sent
// after t arrived; false if none did.
func (l *rawLoad) firstAnswerAfter(t time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := time.Duration(-1)
	for _, a := range l.answers {
		if a.sent.After(t) && (best < 0 || a.at.Sub(t) < best) {
			best = a.at.Sub(t)
		}
	}
	return best, best >= 0
}

// waitAnswers waits until n more requests were answered 200 after since.
func (l *rawLoad) waitAnswers(t *testing.T, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		got := 0
		for _, a := range l.answers {
			if a.sent.After(since) {
				got++
			}
		}
		l.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d answers within %s after %s; %s", n, timeout, since.Format("15:04:05.000"), l)
}

func (l *rawLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d ok, %d failed, %d refused, %d idle connections closed by the server; first failures: %v",
		l.ok.Load(), l.failed.Load(), l.refused.Load(), l.redials.Load(), l.errs)
}

// answer is one request answered 200: when it was sent and answered.
type answer struct{ sent, at time.Time }

// rawHTTP is one keep-alive HTTP/1.1 connection.
type rawHTTP struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRawHTTP(addr string) (*rawHTTP, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawHTTP{conn: c, br: bufio.NewReader(c)}, nil
}

func (c *rawHTTP) close() { c.conn.Close() }

// closedByPeer reports whether the server closed (or reset) the connection
// while it was idle: a read that does not time out at once means EOF, an
// error or bytes nobody asked for.
func (c *rawHTTP) closedByPeer() bool {
	c.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.br.Peek(1)
	c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// get sends one GET / and reads the whole response; keep reports whether
// the connection can carry another request.
func (c *rawHTTP) get() (status int, keep bool, err error) {
	c.conn.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.conn, "GET / HTTP/1.1\r\nHost: web\r\n\r\n"); err != nil {
		return 0, false, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, false, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, !resp.Close, nil
}
