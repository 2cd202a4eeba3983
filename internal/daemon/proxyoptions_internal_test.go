package daemon

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/proxy"
)

// The router gets every router setting of the service, and the instance
// TLS configuration the health gates get, not a copy of its own.
func TestProxyOptions(t *testing.T) {
	sc := &config.Service{
		Name: "web", Listen: "127.0.0.1:8080", H2C: true,
		TLS:            &config.TLS{Cert: "/etc/web/cert.pem", Key: "/etc/web/key.pem"},
		TrustedProxies: []string{"10.0.0.0/8"}, StickyCookie: "-", FallbackPage: "/srv/down.html",
		Runtime: config.Runtime{Static: &config.Static{}, UpstreamTLS: &config.UpstreamTLS{ServerName: "web.internal"}},
		Health: config.Health{Path: "/up", Interval: 2 * time.Second, Timeout: 3 * time.Second,
			HealthyThreshold: 4, UnhealthyThreshold: 5},
		Timeouts:     config.Timeouts{ReadHeader: 6 * time.Second, Idle: 7 * time.Second, UpstreamHeader: 8 * time.Second},
		DrainTimeout: 9 * time.Second,
	}
	tlsConf, err := instanceTLS(sc)
	if err != nil {
		t.Fatal(err)
	}
	got := proxyOptions(sc, tlsConf, nil)
	want := proxy.Options{
		Service: "web", TrustedProxies: []string{"10.0.0.0/8"}, StickyCookie: "-", FallbackPage: "/srv/down.html",
		TLSCert: "/etc/web/cert.pem", TLSKey: "/etc/web/key.pem", UpstreamTLS: tlsConf,
		Health:       health.Config{Path: "/up", Interval: 2 * time.Second, Timeout: 3 * time.Second, HealthyThreshold: 4, UnhealthyThreshold: 5},
		DrainTimeout: 9 * time.Second, ReadHeaderTimeout: 6 * time.Second, IdleTimeout: 7 * time.Second,
		UpstreamHeaderTimeout: 8 * time.Second, H2C: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("proxyOptions =\n%+v\nwant\n%+v", got, want)
	}
	if got.UpstreamTLS != tlsConf || gateOptions(sc, tlsConf).TLS != tlsConf {
		t.Error("the router and the health gates do not share one instance TLS configuration")
	}
	sc.TLS = nil
	if o := proxyOptions(sc, nil, nil); o.TLSCert != "" || o.TLSKey != "" || o.UpstreamTLS != nil {
		t.Errorf("a service without TLS got %q %q %v", o.TLSCert, o.TLSKey, o.UpstreamTLS)
	}
}

// A CA file that cannot be read fails the service's start (instanceTLS),
// rather than trusting the system roots.
func TestInstanceTLSMissingCAFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	sc := &config.Service{Name: "web", Runtime: config.Runtime{UpstreamTLS: &config.UpstreamTLS{CAFile: missing}}}
	if _, err := instanceTLS(sc); err == nil || !strings.Contains(err.Error(), "ca_file") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing CA file: %v", err)
	}
}
