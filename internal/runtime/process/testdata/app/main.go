// Command app is the instance that the process runtime's tests run. It
// listens on 127.0.0.1:$PORT and its behaviour is chosen through env:
//
//	APP_EXIT_AFTER=ms      exit with status 3 after ms milliseconds
//	APP_NEVER_HEALTHY=1    /healthz always answers 503
//	APP_GRANDCHILD=1       start `sleep 300` in the same process group
//	APP_IGNORE_TERM=1      ignore SIGTERM (only SIGKILL stops it)
//	APP_NOISE=n            print n lines before listening
//
// GET / answers with the instance's identity and argv, GET /slow?ms=n
// answers after n ms. After GET /hang, /healthz never answers (each request
// hangs until the client gives up) while the process stays alive; after GET
// /hang?ms=n it does so for n ms, then answers again. On SIGTERM it
// finishes in-flight requests and exits 0.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	fmt.Printf("app starting pid=%d port=%s version=%s\n", os.Getpid(), os.Getenv("PORT"), os.Getenv("VERSION"))
	fmt.Fprintln(os.Stderr, "app: a line on stderr")
	if n, _ := strconv.Atoi(os.Getenv("APP_NOISE")); n > 0 {
		for i := range n {
			fmt.Printf("noise line %d\n", i)
		}
	}
	if os.Getenv("APP_GRANDCHILD") == "1" {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			fmt.Println("grandchild:", err)
			os.Exit(1)
		}
		fmt.Printf("grandchild pid=%d\n", c.Process.Pid)
	}
	if ms, _ := strconv.Atoi(os.Getenv("APP_EXIT_AFTER")); ms > 0 {
		time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			fmt.Println("app exiting on purpose")
			os.Exit(3)
		})
	}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: handler()}
	drained := make(chan struct{})
	if os.Getenv("APP_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		go func() {
			<-ctx.Done()
			fmt.Println("app: SIGTERM, draining")
			_ = srv.Shutdown(context.Background())
			close(drained)
		}()
	}
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Println("app: listen:", err)
		os.Exit(2)
	}
	<-drained
	fmt.Println("app: stopped")
}

func handler() http.Handler {
	mux := http.NewServeMux()
	var hungUntil atomic.Int64 // unix nanoseconds; 0 when not hung
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		until := int64(math.MaxInt64)
		if ms, _ := strconv.Atoi(r.URL.Query().Get("ms")); ms > 0 {
			until = time.Now().Add(time.Duration(ms) * time.Millisecond).UnixNano()
		}
		hungUntil.Store(until)
		fmt.Println("app: /healthz hangs until", time.Unix(0, until).UTC())
		fmt.Fprintln(w, "hanging")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if left := time.Until(time.Unix(0, hungUntil.Load())); hungUntil.Load() != 0 && left > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(left):
			}
		}
		if os.Getenv("APP_NEVER_HEALTHY") == "1" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, "slow done")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"pid": os.Getpid(), "args": os.Args[1:],
			"env": map[string]string{
				"PORT": os.Getenv("PORT"), "VERSION": os.Getenv("VERSION"), "COLOR": os.Getenv("COLOR"),
				"SERVICE": os.Getenv("SERVICE"), "INSTANCE": os.Getenv("INSTANCE"), "APP_ENV": os.Getenv("APP_ENV"),
			},
		})
	})
	return mux
}
