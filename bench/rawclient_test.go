package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestRawConnReadsSizedChunkedAndFailedResponses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle("/sized", NewBackend("green"))
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Color", "blue")
		for range 3 {
			io.WriteString(w, strings.Repeat("x", 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Color", "blue")
		http.Error(w, "no", http.StatusBadGateway)
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	})
	addr := serveLocal(ctx, t, mux)

	cases := []struct {
		path   string
		status int
		color  string
		err    bool
	}{
		{"/sized", 200, "green", false},
		{"/chunked", 200, "blue", false},
		{"/fail", 502, "blue", false},
		{"/hijack", 0, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			rc, err := DialRaw(addr, "bench.local", tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			// Three in a row prove the body was consumed exactly and the
			// connection stays usable.
			for i := range 3 {
				resp, err := rc.Do()
				if tc.err {
					if err == nil {
						t.Fatalf("request %d: got %+v, want an error for a closed connection", i, resp)
					}
					return
				}
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if resp.Status != tc.status || resp.Color != tc.color {
					t.Fatalf("request %d: got status %d colour %q, want %d %q", i, resp.Status, resp.Color, tc.status, tc.color)
				}
			}
		})
	}
}

func TestRawConnRejectsBodyWithoutLength(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Color: blue\r\n\r\nuntil close")
	}()
	rc, err := DialRaw(ln.Addr().String(), "x", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if resp, err := rc.Do(); err == nil {
		t.Fatalf("got %+v, want an error: a body without length cannot be kept alive", resp)
	}
}
