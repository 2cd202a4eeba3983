package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

// proxySubject starts one proxy in front of the blue (and green) backend
// and returns its address.
type proxySubject struct {
	name  string
	start func(ctx context.Context, tb testing.TB, blue, green string) string
}

// subjects lists what BenchmarkProxy compares; cutover_test.go adds the
// router.
var subjects = []proxySubject{
	{"direct", func(_ context.Context, _ testing.TB, blue, _ string) string { return blue }},
	{"httputil", func(ctx context.Context, tb testing.TB, blue, _ string) string {
		return serveLocal(ctx, tb, NewBaseline(blue))
	}},
}

func serveLocal(ctx context.Context, tb testing.TB, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go Serve(ctx, NewServer(h), ln)
	return ln.Addr().String()
}

// BenchmarkProxy sends GETs through each subject with 32 concurrent
// keep-alive clients. ns/op is wall time per request at that concurrency;
// allocs/op counts everything in the process (client, proxy and backend),
// so only the differences between subjects belong to the proxies.
func BenchmarkProxy(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blue, err := StartBackend(ctx, "blue")
	if err != nil {
		b.Fatal(err)
	}
	green, err := StartBackend(ctx, "green")
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range subjects {
		b.Run(s.name, func(b *testing.B) {
			url := "http://" + s.start(ctx, b, blue, green) + "/"
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = IdleConnsPerHost
			t.DisableCompression = true
			defer t.CloseIdleConnections()
			client := &http.Client{Transport: t}
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
