// Command dockerapp is the application the Docker runtime's tests run in
// containers built FROM scratch. It listens on :$PORT and is steered by
// its environment:
//
//	APP_CRASH=1          print a line and exit with status 3 at once
//	APP_EXIT_AFTER=dur   exit with status 4 after dur
//	APP_IGNORE_TERM=1    print a line on SIGTERM and keep serving
//
// GET / answers "VERSION COLOR INSTANCE" (and X-Version: VERSION); GET /healthz 200; GET
// /sha?name=VAR the SHA-256 of the variable's value (so a test can check
// a secret arrived without the secret appearing anywhere). With
// -healthcheck it probes its own /healthz and exits 0 or 1 (for a
// HEALTHCHECK); with -healthcheck -fail it always exits 1. On SIGTERM it
// finishes in-flight requests and exits 0.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	check := flag.Bool("healthcheck", false, "probe /healthz and exit")
	fail := flag.Bool("fail", false, "with -healthcheck: always fail")
	flag.Parse()
	port := os.Getenv("PORT")
	if *check {
		if *fail {
			os.Exit(1)
		}
		r, err := http.Get("http://127.0.0.1:" + port + "/healthz")
		if err != nil || r.StatusCode != 200 {
			os.Exit(1)
		}
		os.Exit(0)
	}
	id := fmt.Sprintf("%s %s %s", os.Getenv("VERSION"), os.Getenv("COLOR"), os.Getenv("INSTANCE"))
	if os.Getenv("APP_CRASH") == "1" {
		fmt.Println("crashing on purpose:", id)
		os.Exit(3)
	}
	if d, err := time.ParseDuration(os.Getenv("APP_EXIT_AFTER")); err == nil {
		time.AfterFunc(d, func() { fmt.Println("exiting after", d); os.Exit(4) })
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/sha", func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.Sum256([]byte(os.Getenv(r.URL.Query().Get("name"))))
		w.Write([]byte(hex.EncodeToString(sum[:])))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Version", os.Getenv("VERSION"))
		fmt.Fprintln(w, id)
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		if os.Getenv("APP_IGNORE_TERM") == "1" {
			fmt.Println("SIGTERM: ignored", id)
			return
		}
		fmt.Println("SIGTERM: shutting down", id)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Println("listening on", srv.Addr, "as", id)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Println(err)
		os.Exit(1)
	}
}
