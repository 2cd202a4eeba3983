// Command app is the instance that the process runtime's tests run. It
// listens on 127.0.0.1:$PORT and its behaviour is chosen through env:
//
//	APP_EXIT_AFTER=ms      exit with status 3 after ms milliseconds
//	APP_NEVER_HEALTHY=1    /healthz always answers 503
//	APP_GRANDCHILD=1       start `sleep 300` in the same process group
//	APP_IGNORE_TERM=1      ignore SIGTERM (only SIGKILL stops it)
//	APP_NOISE=n            print n lines before listening
//	APP_EVENTS=file        append "start INSTANCE UNIXNANO" at start and
//	                       "healthy INSTANCE UNIXNANO" on the first 200 of /healthz
//	APP_FAIL_FIRST=n       with APP_EVENTS: exit with status 4 before listening
//	                       while the file holds at most n starts (this one included)
//	APP_HEALTHY_AFTER=ms   /healthz answers 503 for ms after start
//	APP_MIGRATE=dir        "migrate a schema" at start like real apps do, not
//	                       safely under concurrency: when dir/schema is missing,
//	                       take dir/lock (exit 4 with a duplicate-key message if
//	                       another instance holds it), work 200ms, write dir/schema
//	APP_KILL_SELF=SIGNAL   kill itself with SIGNAL (KILL or TERM) before listening
//
// Every variable can be given for one slot only, with the slot's number as
// a suffix (APP_EXIT_AFTER_2=1 applies to the instance whose INSTANCE ends
// in -2); the suffixed one wins.
//
// GET / answers with the instance's pid, argv and whole environment, GET /slow?ms=n
// answers after n ms. After GET /hang, /healthz never answers (each request
// hangs until the client gives up) while the process stays alive; after GET
// /hang?ms=n it does so for n ms, then answers again. On SIGTERM it
// finishes in-flight requests and exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var started = time.Now()

// env reads a behaviour variable, the slot's own (NAME_<slot>) first.
func env(name string) string {
	id := os.Getenv("INSTANCE")
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		if v, ok := os.LookupEnv(name + "_" + id[i+1:]); ok {
			return v
		}
	}
	return os.Getenv(name)
}

// event appends "what INSTANCE UNIXNANO" to APP_EVENTS and returns how many
// "start" lines the file holds afterwards.
func event(what string) int {
	path := env("APP_EVENTS")
	if path == "" {
		return 0
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Println("events:", err)
		os.Exit(1)
	}
	fmt.Fprintf(f, "%s %s %d\n", what, os.Getenv("INSTANCE"), time.Now().UnixNano())
	f.Close()
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "start ")
}

// migrate is a schema migration that is not safe under concurrency, like
// many apps' own: two instances starting together collide.
func migrate(dir string) {
	if _, err := os.Stat(filepath.Join(dir, "schema")); err == nil {
		fmt.Println("app: schema is current")
		return
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		fmt.Println(`app: migrate: duplicate key value violates unique constraint "pg_type_typname_nsp_index"`)
		os.Exit(4)
	}
	if err != nil {
		fmt.Println("app: migrate:", err)
		os.Exit(1)
	}
	lock.Close()
	fmt.Println("app: migrating the schema")
	time.Sleep(200 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "schema"), []byte("v1\n"), 0o644); err != nil {
		fmt.Println("app: migrate:", err)
		os.Exit(1)
	}
	fmt.Println("app: schema migrated")
}

func main() {
	fmt.Printf("app starting pid=%d port=%s version=%s\n", os.Getpid(), os.Getenv("PORT"), os.Getenv("VERSION"))
	fmt.Fprintln(os.Stderr, "app: a line on stderr")
	if n, _ := strconv.Atoi(env("APP_NOISE")); n > 0 {
		for i := range n {
			fmt.Printf("noise line %d\n", i)
		}
	}
	n := event("start")
	if first, _ := strconv.Atoi(env("APP_FAIL_FIRST")); n > 0 && n <= first {
		fmt.Printf("app: failing start %d of the first %d on purpose\n", n, first)
		os.Exit(4)
	}
	if dir := env("APP_MIGRATE"); dir != "" {
		migrate(dir)
	}
	if sig := env("APP_KILL_SELF"); sig != "" {
		s := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM}[sig]
		fmt.Println("app: killing itself with", sig)
		signal.Reset(s)
		_ = syscall.Kill(os.Getpid(), s)
		time.Sleep(time.Minute)
	}
	if env("APP_GRANDCHILD") == "1" {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			fmt.Println("grandchild:", err)
			os.Exit(1)
		}
		fmt.Printf("grandchild pid=%d\n", c.Process.Pid)
	}
	if ms, _ := strconv.Atoi(env("APP_EXIT_AFTER")); ms > 0 {
		time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			fmt.Println("app exiting on purpose")
			os.Exit(3)
		})
	}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: handler()}
	drained := make(chan struct{})
	if env("APP_IGNORE_TERM") == "1" {
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
	var healthyOnce sync.Once
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
		if env("APP_NEVER_HEALTHY") == "1" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if ms, _ := strconv.Atoi(env("APP_HEALTHY_AFTER")); time.Since(started) < time.Duration(ms)*time.Millisecond {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		healthyOnce.Do(func() { event("healthy") })
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, "slow done")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		all := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			all[k] = v
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"pid": os.Getpid(), "args": os.Args[1:], "env": all})
	})
	return mux
}
