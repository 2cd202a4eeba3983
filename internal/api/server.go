package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/conndrain"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server. The zero value serves without a token and
// logs nowhere.
type Options struct {
	// Token, when not empty, is the bearer token every mutating request
	// (POST, DELETE) needs, and every request from a non-loopback client.
	// It is never logged.
	Token string
	// Logger receives server-side failures; nil discards them.
	Logger *slog.Logger
	// Heartbeat is the interval of SSE heartbeat comments; default 15s.
	Heartbeat time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers (slow clients); default 5s. Used by Serve.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds writing a non-streamed response, and each write
	// of a streamed one; default 30s. Used by Serve.
	WriteTimeout time.Duration
	// Listen is the configured listen address (api.listen). Its host, when
	// it is a name or a specific IP, is a Host the API answers to on any
	// port. Optional: loopback names and IPs and the IP a request arrived
	// on are always answered.
	Listen string
	// AllowedHosts are further values of the Host header the API answers
	// to (api.allowed_hosts): "name" matches that name on any port,
	// "name:port" only on that port (a Host without a port is port 80),
	// "*.example.com" any name under example.com but not example.com
	// itself. Names are compared without regard to case or a trailing
	// dot; IPs are written as in a URL ("10.0.0.5", "[fd00::2]:7070").
	// Every other Host gets 421 Misdirected Request (see host.go):
	// that is what stops DNS rebinding.
	AllowedHosts []string
}

// Server is the control API. Create it with NewServer.
type Server struct {
	b         Backend
	tokenHash [sha256.Size]byte
	hasToken  bool
	log       *slog.Logger
	heartbeat time.Duration
	readHdr   time.Duration
	writeTO   time.Duration
	hosts     hostRule
	handler   http.Handler
	metricsH  http.Handler // the backend's Gatherer, through promhttp

	stopOnce sync.Once
	stopped  chan struct{} // closed when Serve shuts down: ends streams
	lnClosed chan struct{} // closed once Serve has closed its listener
	lnOnce   sync.Once
}

// NewServer returns a Server delegating to b.
func NewServer(b Backend, opts Options) *Server {
	s := &Server{
		b:         b,
		log:       opts.Logger,
		heartbeat: opts.Heartbeat,
		readHdr:   opts.ReadHeaderTimeout,
		writeTO:   opts.WriteTimeout,
		hosts:     newHostRule(opts.Listen, opts.AllowedHosts),
		stopped:   make(chan struct{}),
		lnClosed:  make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// Accept picks the text format or OpenMetrics; a collector's error
	// fails the scrape (500) and is logged, rather than serving a partial
	// answer a scraper would take as whole.
	s.metricsH = promhttp.HandlerFor(b.Gatherer(), promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	})
	if s.heartbeat <= 0 {
		s.heartbeat = 15 * time.Second
	}
	if s.readHdr <= 0 {
		s.readHdr = 5 * time.Second
	}
	if s.writeTO <= 0 {
		s.writeTO = 30 * time.Second
	}
	if opts.Token != "" {
		// Comparing hashes keeps the comparison constant-time even in
		// the token's length.
		s.tokenHash = sha256.Sum256([]byte(opts.Token))
		s.hasToken = true
	}
	s.handler = s.routes()
	return s
}

// Handler returns the API's HTTP handler, with the Host check,
// authentication and cross-origin protection applied.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.writeError(w, r, err)
			}
		})
	}
	handle("GET /healthz", s.healthz)
	handle("GET /metrics", s.metrics)
	handle("GET /v1/services", s.listServices)
	handle("GET /v1/services/{name}", s.status)
	handle("POST /v1/services/{name}/deployments", s.deploy)
	handle("GET /v1/services/{name}/deployments", s.history)
	handle("GET /v1/services/{name}/deployments/{id}", s.deployment)
	handle("POST /v1/services/{name}/promote", s.action(Backend.Promote))
	handle("POST /v1/services/{name}/pause", s.action(Backend.Pause))
	handle("POST /v1/services/{name}/resume", s.action(Backend.Resume))
	handle("POST /v1/services/{name}/abort", s.action(Backend.Abort))
	handle("POST /v1/services/{name}/rollback", s.action(Backend.Rollback))
	handle("POST /v1/services/{name}/down", s.action(Backend.Down))
	handle("POST /v1/services/{name}/up", s.action(Backend.Up))
	handle("GET /v1/services/{name}/logs", s.logs)
	handle("POST /v1/services/{name}/instances", s.instances(Backend.Register))
	handle("DELETE /v1/services/{name}/instances", s.instances(Backend.Deregister))
	handle("GET /v1/events", s.events)
	handle("POST /v1/reload", s.reload)
	handle("POST /v1/upgrade", s.upgrade)
	handle("GET /v1/services/{name}/traffic", s.traffic)
	s.mountDashboard(mux)

	// Browsers must not be able to drive the API from another site (the
	// daemon listens on loopback without a token by default).
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusForbidden, CodeForbidden, "cross-origin request refused"))
	}))
	return s.checkHost(cop.Handler(s.authenticate(s.gateWrites(s.jsonMisses(mux)))))
}

// jsonMisses answers requests that match no route with a JSON error body
// instead of the mux's plain text, keeping the Allow header of a 405.
func (s *Server) jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if probe.status == http.StatusMethodNotAllowed {
			s.writeError(w, r, errorf(probe.status, CodeMethod,
				fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)))
			return
		}
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such path %s", r.URL.Path)))
	})
}

// statusProbe records the status and headers the mux would send.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// authenticate enforces the token rules: with a token set, mutating
// requests and requests from non-loopback clients need it; /healthz is
// always open so that load balancers can probe the daemon.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hasToken || r.URL.Path == "/healthz" || isDashboardFile(r) {
			next.ServeHTTP(w, r)
			return
		}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		if safe && isLoopback(r.RemoteAddr) {
			next.ServeHTTP(w, r)
			return
		}
		if !s.tokenOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover"`)
			s.writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized,
				"missing or wrong bearer token (set CUTOVER_TOKEN)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tokenOK(header string) bool {
	const prefix = "Bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// isLoopback reports whether a host:port (or bare host) is a loopback IP.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return false
}

// CheckListen refuses to serve the API on a non-loopback address without a
// token. addr is host:port as in the config's api.listen; a name other than
// "localhost" or an empty host (all interfaces) counts as non-loopback.
func CheckListen(addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api listen address %q: %w", addr, err)
	}
	if host == "localhost" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("api listen address %q is not loopback: set api.token_file so that the API requires a token", addr)
}

// Serve serves the API on ln until ctx is done, then shuts down: streams
// end at once, the listener closes, and for conndrain.Grace each client
// connection is closed after its next response (ln may be shared with a
// new daemon during an upgrade, which takes the client's next connection:
// see package conndrain); then other requests get up to 5 seconds to
// finish. It applies timeouts against slow clients. It returns nil after a
// shutdown caused by ctx, or the error that stopped serving.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.readHdr,
		ReadTimeout:       s.readHdr + 30*time.Second,
		WriteTimeout:      s.writeTO,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	var conns conndrain.Tracker
	conns.Track(srv)
	srv.RegisterOnShutdown(s.stopStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.stopStreams()
		return fmt.Errorf("serve api on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.stopStreams()
	_ = ln.Close()
	s.lnOnce.Do(func() { close(s.lnClosed) }) // held writes may now go to the new daemon
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		s.log.Debug("api listener closed", "err", err)
	}
	conns.Drain(time.Now().Add(conndrain.Grace))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("shut down api on %s: %w", ln.Addr(), err), srv.Close())
	}
	return err
}

func (s *Server) stopStreams() { s.stopOnce.Do(func() { close(s.stopped) }) }
