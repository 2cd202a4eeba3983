package demo

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Faults are the misbehaviours the demo app can be told to have, so that the
// demo (and anyone exploring) can watch cutover catch a bad release.
type Faults struct {
	// ErrorRate is the fraction of requests answered with 500.
	ErrorRate float64 `json:"error_rate"`
	// Latency is added to every request.
	Latency time.Duration `json:"latency"`
	// Broken makes the app exit with status 1 at start, like a release
	// that cannot start (a bad build, a missing setting).
	Broken bool `json:"broken"`
	// Unhealthy makes /healthz answer 503 while the app keeps running,
	// like a release that starts but waits forever on a dependency.
	Unhealthy bool `json:"unhealthy"`
}

// App runs the demo web application until ctx is done: a page that shows its
// version and colour, /healthz, and /knobs to change its faults at run time
// (GET /knobs?error_rate=0.05&latency=200ms). Faults for a version can also
// come from a JSON file mapping versions to Faults (--faults FILE), which is
// how `cutover demo` makes v3 bad without touching v1 and v2.
func App(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:"+os.Getenv("PORT"), "address to listen on")
	version := fs.String("version", os.Getenv("VERSION"), "version to report")
	faultsFile := fs.String("faults", "", "JSON file of per-version faults")
	errRate := fs.Float64("error-rate", 0, "fraction of requests to fail with 500")
	latency := fs.Duration("latency", 0, "latency to add to every request")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f := Faults{ErrorRate: *errRate, Latency: *latency}
	if *faultsFile != "" {
		byVersion, err := readFaults(*faultsFile)
		if err != nil {
			fmt.Fprintf(stderr, "demo-app: %v\n", err)
			return 1
		}
		if v, ok := byVersion[*version]; ok {
			f = v
		}
	}
	if f.Broken {
		fmt.Fprintf(stderr, "demo-app %s: refusing to start: this version is configured as broken\n", *version)
		return 1
	}
	a := &app{version: *version, color: os.Getenv("COLOR"), instance: os.Getenv("INSTANCE")}
	a.faults.Store(&f)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "demo-app: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "demo-app %s (%s) listening on %s, faults %+v\n", a.version, a.color, ln.Addr(), f)
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "demo-app: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "demo-app: stopped")
	return 0
}

func readFaults(path string) (map[string]Faults, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("faults file: %w", err)
	}
	var raw map[string]struct {
		ErrorRate float64 `json:"error_rate"`
		Latency   string  `json:"latency"`
		Broken    bool    `json:"broken"`
		Unhealthy bool    `json:"unhealthy"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("faults file %s: %w", path, err)
	}
	out := make(map[string]Faults, len(raw))
	for v, r := range raw {
		f := Faults{ErrorRate: r.ErrorRate, Broken: r.Broken, Unhealthy: r.Unhealthy}
		if r.Latency != "" {
			d, err := time.ParseDuration(r.Latency)
			if err != nil {
				return nil, fmt.Errorf("faults file %s: version %s: latency: %w", path, v, err)
			}
			f.Latency = d
		}
		out[v] = f
	}
	return out, nil
}

type app struct {
	version, color, instance string
	faults                   atomic.Pointer[Faults]
	served                   atomic.Uint64
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if a.faults.Load().Unhealthy {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /knobs", a.knobs)
	mux.HandleFunc("/", a.page)
	return mux
}

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	f := a.faults.Load()
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		}
	}
	n := a.served.Add(1)
	w.Header().Set("X-Version", a.version)
	w.Header().Set("X-Color", a.color)
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		http.Error(w, "demo-app: injected failure", http.StatusInternalServerError)
		return
	}
	if r.URL.Query().Get("format") == "json" || r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"version": a.version, "color": a.color, "instance": a.instance, "served": n})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	bg := "#2b6cb0"
	if a.color == "green" {
		bg = "#2f855a"
	}
	fmt.Fprintf(w, `<!doctype html><html><head><title>demo %s</title></head>
<body style="font-family:sans-serif;background:%s;color:white;text-align:center;padding-top:15vh">
<h1>version %s</h1><p>colour %s, instance %s, request #%d</p></body></html>
`, html.EscapeString(a.version), bg, html.EscapeString(a.version), html.EscapeString(a.color), html.EscapeString(a.instance), n)
}

func (a *app) knobs(w http.ResponseWriter, r *http.Request) {
	f := *a.faults.Load()
	q := r.URL.Query()
	if s := q.Get("error_rate"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1 {
			http.Error(w, "error_rate: want a number from 0 to 1", http.StatusBadRequest)
			return
		}
		f.ErrorRate = v
	}
	if s := q.Get("latency"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			http.Error(w, "latency: want a duration such as 200ms", http.StatusBadRequest)
			return
		}
		f.Latency = d
	}
	a.faults.Store(&f)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"error_rate": f.ErrorRate, "latency": f.Latency.String()})
}
