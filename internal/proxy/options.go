package proxy

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/cutover/cutover/internal/health"
)

// The defaults New gives the fields of Options left zero.
const (
	// DefaultDrainTimeout bounds how long a pool or instance leaving
	// rotation, and the router itself at shutdown, may finish in-flight
	// requests before long-lived streams are cut.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultReadHeaderTimeout bounds how long a client may take to send a
	// request's header.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a client's keep-alive connection may
	// wait for its next request.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultUpstreamHeaderTimeout bounds how long an instance may take to
	// start its response (its header) once it has the request; the router
	// answers 504 after it.
	DefaultUpstreamHeaderTimeout = 60 * time.Second
)

// NoStickyCookie as Options.StickyCookie disables stickiness: every public
// request is split by the weights alone.
const NoStickyCookie = "-"

// DefaultStickyCookie is the sticky cookie's name for a service whose
// Options.StickyCookie is "": "cutover_" followed by the service's name.
func DefaultStickyCookie(service string) string { return "cutover_" + service }

// Options configure a Router. Every field but Service has a useful zero
// value; New gives zero durations the Default* values above and health
// checks health.Config's defaults. New reads the files (certificate,
// fallback page); SetLive, and WatchCertificate for the certificate, read
// them again.
type Options struct {
	// Service is the service's name, for logs, errors, the default sticky
	// cookie and the service label of the metrics. Required.
	Service string
	// TrustedProxies are addresses or CIDR prefixes ("10.0.0.0/8",
	// "192.0.2.7") whose X-Forwarded-* headers are kept and extended; from
	// anyone else they are replaced.
	TrustedProxies []string
	// StickyCookie is the name of the cookie that keeps a client on its
	// colour: "" is DefaultStickyCookie(Service), NoStickyCookie ("-")
	// disables stickiness.
	StickyCookie string
	// FallbackPage is a file served with 503 when no pool is healthy; ""
	// serves a built-in page.
	FallbackPage string
	// TLSCert and TLSKey are PEM files of the public listener's certificate
	// chain and private key; when set, the public listener serves HTTPS
	// (HTTP/2 and HTTP/1.1). Both "" serve plain HTTP.
	TLSCert, TLSKey string
	// UpstreamTLS, when not nil, makes the router and its health checks
	// speak HTTPS to instances with this client configuration; nil speaks
	// plain HTTP. The router keeps it: the caller must not modify it after
	// New, and may share it with other readers (the runtime's health gates).
	UpstreamTLS *tls.Config
	// Health is how every instance is actively checked while it is a member.
	Health health.Config
	// DrainTimeout bounds draining; 0 is DefaultDrainTimeout.
	DrainTimeout time.Duration
	// ReadHeaderTimeout bounds a client's request header; 0 is
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds a client's idle keep-alive connection; 0 is
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// UpstreamHeaderTimeout bounds an instance's time to its response
	// header; 0 is DefaultUpstreamHeaderTimeout.
	UpstreamHeaderTimeout time.Duration
	// H2C allows cleartext HTTP/2 (prior knowledge) on the public listener.
	H2C bool
	// Logger receives the router's logs; nil discards them.
	Logger *slog.Logger
}

// live is the part of o that SetLive changes.
func (o Options) live() Live {
	return Live{TrustedProxies: o.TrustedProxies, FallbackPage: o.FallbackPage, Health: o.Health,
		DrainTimeout: o.DrainTimeout, TLSCert: o.TLSCert, TLSKey: o.TLSKey,
		ReadHeaderTimeout: o.ReadHeaderTimeout, IdleTimeout: o.IdleTimeout, UpstreamHeaderTimeout: o.UpstreamHeaderTimeout}
}

// withDefaults is the one place the router's defaults are applied.
func (o Options) withDefaults() Options {
	if o.StickyCookie == "" {
		o.StickyCookie = DefaultStickyCookie(o.Service)
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.UpstreamHeaderTimeout <= 0 {
		o.UpstreamHeaderTimeout = DefaultUpstreamHeaderTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
