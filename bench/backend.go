package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// NewBackend returns the handler of the benchmark backend. Every request
// except /healthz gets 200 with a short fixed body naming the colour and an
// X-Color header carrying it; /healthz gets 200 "ok". The header values and
// the body are built once, so a request costs the server almost nothing
// beyond net/http itself.
func NewBackend(color string) http.Handler {
	body := []byte("hello from " + color + "\n")
	colorVal := []string{color}
	typeVal := []string{"text/plain; charset=utf-8"}
	lenVal := []string{strconv.Itoa(len(body))}
	ok := []byte("ok\n")
	okLen := []string{strconv.Itoa(len(ok))}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Color"] = colorVal
		h["Content-Type"] = typeVal
		if r.URL.Path == "/healthz" {
			h["Content-Length"] = okLen
			w.Write(ok)
			return
		}
		h["Content-Length"] = lenVal
		w.Write(body)
	})
}

// NewServer returns an http.Server for h with the timeouts every bench
// program uses: generous enough never to cut a benchmark connection.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
}

// Serve runs srv on ln until ctx is done, then closes it. It returns nil
// after a shutdown caused by ctx.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// StartBackend listens on a free 127.0.0.1 port and serves the benchmark
// backend for color there until ctx is done. It returns the address.
func StartBackend(ctx context.Context, color string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go Serve(ctx, NewServer(NewBackend(color)), ln)
	return ln.Addr().String(), nil
}
