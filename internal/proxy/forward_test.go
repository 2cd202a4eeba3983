package proxy

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

func TestInstanceKilledUnderLoadLosesNoRequest(t *testing.T) {
	ins := []*instance{newInstance(t, "web-blue-1", nil), newInstance(t, "web-blue-2", nil), newInstance(t, "web-blue-3", nil)}
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(ins...))
	c := client()
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(r.url + "/")
				if err != nil {
					failed.Add(1)
					t.Errorf("client error: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("status %d", resp.StatusCode)
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	victim := ins[1]
	victim.srv.Listener.Close()
	victim.srv.CloseClientConnections()
	killedAt := ok.Load()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed after an instance died", failed.Load(), ok.Load()+failed.Load())
	}
	if ok.Load()-killedAt < 100 {
		t.Fatalf("only %d requests after the kill; the test proves nothing", ok.Load()-killedAt)
	}
	if h, total := r.Healthy(route.Blue); h != 2 || total != 3 {
		t.Fatalf("Healthy(blue) = %d/%d, want the dead instance out", h, total)
	}
	if f := r.Counts(route.Blue).UpstreamFailures; f != 0 {
		t.Fatalf("%d upstream failures surfaced", f)
	}
}

func TestRetryOnDeadAddressAndEject(t *testing.T) {
	live := newInstance(t, "web-blue-1", nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	svc := testService()
	svc.Health.Interval = time.Hour // only passive ejection acts here
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-0", Addr: dead}, live.backend()})
	c := client()
	for range 50 {
		req, _ := http.NewRequest(http.MethodPost, r.url+"/", strings.NewReader("payload"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Instance") != "web-blue-1" {
			t.Fatalf("POST got %d from %q", resp.StatusCode, resp.Header.Get("X-Instance"))
		}
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatalf("dead instance not ejected: %d healthy", h)
	}
}

func TestUpstreamHeaderTimeoutIs504(t *testing.T) {
	slow := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	svc := testService()
	svc.UpstreamHeaderTimeout = 150 * time.Millisecond
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(slow))
	code, _, _ := get(t, client(), r.url+"/")
	if code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", code)
	}
	if c := r.Counts(route.Blue); c.UpstreamFailures != 1 || c.Class[5] != 1 {
		t.Fatalf("counts %+v, want one upstream failure", c)
	}
}

func TestForwardedHeaders(t *testing.T) {
	echo := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("Connection")+r.Header.Get("X-Hop"))
	})
	for _, tc := range []struct {
		name, trusted, want string
	}{
		{"untrusted client is replaced", "10.0.0.0/8", "127.0.0.1|http|web.example|"},
		{"trusted proxy is extended", "127.0.0.0/8", "6.6.6.6, 127.0.0.1|https|orig.example|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService()
			svc.TrustedProxies = []string{tc.trusted}
			r := startRouter(t, svc)
			r.SetPool(route.Blue, "v1", backends(echo))
			req, _ := http.NewRequest(http.MethodGet, r.url+"/", nil)
			req.Host = "web.example"
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "orig.example")
			req.Header.Set("Connection", "X-Hop")
			req.Header.Set("X-Hop", "secret")
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tc.want {
				t.Fatalf("upstream saw %q, want %q", b, tc.want)
			}
		})
	}
}

func TestSlowlorisClosedByHeaderTimeout(t *testing.T) {
	svc := testService()
	svc.ReadHeaderTimeout = 200 * time.Millisecond
	r := startRouter(t, svc)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web.exa"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn) // returns when the router closes the connection
	if took := time.Since(start); err != nil || took > 3*time.Second {
		t.Fatalf("stalled header: connection closed after %s (err %v), want ~200ms", took, err)
	}
}

func TestTrailersPassThrough(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc123")
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	resp, err := client().Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Fatalf("body %q trailer %v", b, resp.Trailer)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the client closes
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	conn, br := upgrade(t, r.url)
	defer conn.Close()
	for i := range 5 {
		msg := fmt.Sprintf("frame-%d\n", i)
		io.WriteString(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
}

// upgrade opens a raw connection through the router and completes a
// WebSocket-style upgrade handshake.
func upgrade(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return conn, br
}

func sseInstance(t *testing.T, id string, next <-chan struct{}) *instance {
	return newInstance(t, id, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
}

func TestSSEFlushesEveryEvent(t *testing.T) {
	next := make(chan struct{})
	in := sseInstance(t, "web-blue-1", next)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	resp, err := client().Get(r.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 5 {
		// The instance sends event i only; it waits for us before the next,
		// so reading it proves the router flushed it on its own.
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
}

func TestDrainFinishesInFlightAndCutsStreams(t *testing.T) {
	release := make(chan struct{})
	slow := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			_, _ = io.Copy(io.Discard, conn) // until the router cuts it
			return
		}
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: hello\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		<-release
		io.WriteString(w, "finished")
	})
	svc := testService()
	svc.DrainTimeout = 600 * time.Millisecond
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(slow))
	c := client()

	slowDone := make(chan string, 1)
	go func() {
		_, _, body := get(t, c, r.url+"/slow")
		slowDone <- body
	}()
	stream, err := c.Get(r.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	ws, wsr := upgrade(t, r.url)
	defer ws.Close()
	eventually(t, "requests in flight", 2*time.Second, func() bool { return r.Counts(route.Blue).InFlight == 3 })

	go func() { time.Sleep(200 * time.Millisecond); close(release) }()
	start := time.Now()
	if err := r.Drain(context.Background(), route.Blue); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if body := <-slowDone; body != "finished" {
		t.Fatalf("in-flight request during drain got %q", body)
	}
	// At least the drain timeout: the streams hold the drain open that long.
	// At most the timeout plus cutting the streams and unwinding their
	// handlers, which -race on a shared 2-core machine stretches well past
	// the 600ms itself; a drain that waited for the streams to end would
	// never return at all.
	if took < 550*time.Millisecond || took > 3*time.Second {
		t.Fatalf("drain took %s, want about the 600ms drain timeout (at most 3s)", took)
	}
	readErr := make(chan error, 1)
	go func() { _, err := io.ReadAll(stream.Body); readErr <- err }()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("SSE stream ended cleanly; want it cut at the drain deadline")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("SSE stream still open 2s after the drain deadline")
	}
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := wsr.ReadString('\n'); err == nil || isTimeoutErr(err) {
		t.Fatalf("upgraded connection not cut: %v", err)
	}
	// Out of rotation now: the fallback answers.
	if code, _, _ := get(t, c, r.url+"/"); code != 503 {
		t.Fatalf("after draining the only pool: status %d, want 503", code)
	}
	if r.Counts(route.Blue).InFlight != 0 {
		t.Fatalf("in flight after drain: %d", r.Counts(route.Blue).InFlight)
	}
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// patternReader yields n bytes of a repeating 256-byte pattern without
// holding them.
type patternReader struct{ n, off int64 }

var pattern = func() []byte {
	b := make([]byte, 64<<10+256)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	start := int(p.off % 256)
	n := copy(b, pattern[start:])
	p.off += int64(n)
	return n, nil
}

func TestLargeBodiesStreamWithBoundedMemory(t *testing.T) {
	const size = 100 << 20
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := crc32.NewIEEE()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, &patternReader{n: size})
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	c := client()

	var peak atomic.Uint64
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	})

	want := crc32.NewIEEE()
	io.Copy(want, &patternReader{n: size})
	req, _ := http.NewRequest(http.MethodPost, r.url+"/upload", &patternReader{n: size})
	req.ContentLength = size
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprintf("%d %x", size, want.Sum(nil)) {
		t.Fatalf("upload arrived as %q", b)
	}
	resp, err = c.Get(r.url + "/download")
	if err != nil {
		t.Fatal(err)
	}
	got := crc32.NewIEEE()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	close(stop)
	wg.Wait()
	if d := int64(peak.Load()) - int64(base.HeapInuse); d > 32<<20 {
		t.Fatalf("heap in use grew by %d MiB while streaming 2x100 MiB", d>>20)
	}
	t.Logf("heap in use grew by at most %.1f MiB", float64(int64(peak.Load())-int64(base.HeapInuse))/(1<<20))
}
