package awsfake

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Service is one simulated AWS service behind the shared endpoint. The
// server decodes nothing itself: it hands each request whose SigV4 scope
// names the service to Serve, after asking Operation for the operation's
// name (used by fault injection) and writing injected faults with
// WriteError in the service's own protocol.
type Service interface {
	// Operation names the operation a request calls (the awsQuery Action,
	// the RPC operation, or the REST operation the path and method map to);
	// "" when it cannot tell.
	Operation(r *http.Request, body []byte) string
	// Serve answers the request; body is the request body, already read.
	Serve(w http.ResponseWriter, r *http.Request, body []byte)
	// WriteError writes an error in the service's protocol.
	WriteError(w http.ResponseWriter, e *APIError)
}

// Options tunes the simulation. The zero value is usable: AWS-like
// timings shortened for tests.
type Options struct {
	// Region is the region the fake claims to be (default us-east-1).
	Region string
	// Account is the account id in ARNs (default 123456789012).
	Account string
	// ChangeSyncDelay is how long a Route53 change stays PENDING before
	// GetChange reports INSYNC (default 1s; negative: at once).
	ChangeSyncDelay time.Duration
	// MetricDelay is how long after a request its CloudWatch data point
	// becomes visible to GetMetricData (default 0).
	MetricDelay time.Duration
	// HealthInterval is the ALB health check interval (default 200ms);
	// HealthyThreshold and UnhealthyThreshold count consecutive probes
	// (defaults 2 and 2).
	HealthInterval     time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	// Log receives one line per API call (default: discarded).
	Log *slog.Logger
	// TLS serves the API over HTTPS with a self-signed certificate for
	// 127.0.0.1 (see CABundle); the load balancers' listeners stay HTTP.
	TLS bool
}

func (o Options) withDefaults() Options {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "123456789012"
	}
	switch {
	case o.ChangeSyncDelay == 0:
		o.ChangeSyncDelay = time.Second
	case o.ChangeSyncDelay < 0:
		o.ChangeSyncDelay = 0
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 200 * time.Millisecond
	}
	if o.HealthyThreshold == 0 {
		o.HealthyThreshold = 2
	}
	if o.UnhealthyThreshold == 0 {
		o.UnhealthyThreshold = 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server is a fake AWS endpoint: one HTTP server on 127.0.0.1 that serves
// every simulated service, chosen per request by the SigV4 credential
// scope. It is safe for concurrent use.
type Server struct {
	opts     Options
	ln       net.Listener
	http     *http.Server
	caPEM    []byte
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	services map[string]Service
	faults   map[faultKey]*fault
	calls    map[faultKey]int

	elb *ELB
	cw  *CloudWatch
	r53 *Route53
}

// TB is the part of testing.TB that NewTest uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// NewTest starts a Server for a test and closes it when the test ends.
func NewTest(t TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("awsfake: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// extraServices are services other files of this package add in init
// (Auto Scaling, EC2): each builder is called once per Server with the
// server, and its result serves the SigV4 service name it is keyed by.
var extraServices = map[string]func(*Server) Service{}

// New starts a Server listening on 127.0.0.1:0.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awsfake: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:     opts,
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		services: map[string]Service{},
		faults:   map[faultKey]*fault{},
		calls:    map[faultKey]int{},
	}
	s.elb = newELB(s)
	s.Handle("elasticloadbalancing", s.elb.service())
	s.cw = newCloudWatch(s)
	s.Handle("monitoring", s.cw.service())
	s.r53 = newRoute53(s)
	s.Handle("route53", s.r53.service())
	for name, build := range extraServices {
		s.Handle(name, build(s))
	}
	s.http = &http.Server{Handler: http.HandlerFunc(s.dispatch), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // a refused certificate is the client's news, not ours
	if opts.TLS {
		cert, caPEM, err := selfSigned()
		if err != nil {
			ln.Close()
			cancel()
			return nil, fmt.Errorf("awsfake: certificate: %w", err)
		}
		s.caPEM = caPEM
		s.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.http.Serve(s.ln)
	}()
	return s, nil
}

// Handle makes svc serve requests signed for the SigV4 service name (the
// fourth field of the credential scope: "elasticloadbalancing",
// "monitoring", "route53", "autoscaling", "ec2"), replacing any service
// already registered under it.
func (s *Server) Handle(name string, svc Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[name] = svc
}

// URL is the endpoint for the SDK's BaseEndpoint or AWS_ENDPOINT_URL.
func (s *Server) URL() string {
	if s.caPEM != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// CABundle is the PEM certificate that a TLS server (Options.TLS) presents,
// for AWS_CA_BUNDLE or an SDK client's RootCAs; nil without TLS.
func (s *Server) CABundle() []byte { return s.caPEM }

// Region is the region the fake answers for.
func (s *Server) Region() string { return s.opts.Region }

// Account is the account id in the fake's ARNs.
func (s *Server) Account() string { return s.opts.Account }

// Context is cancelled when the server closes; background simulation
// (health checks, instance lifecycles) should stop with it.
func (s *Server) Context() context.Context { return s.ctx }

// Go runs f in a goroutine the server waits for on Close.
func (s *Server) Go(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// ELB is the Elastic Load Balancing v2 simulation.
func (s *Server) ELB() *ELB { return s.elb }

// Config returns an aws.Config whose clients talk to this server: static
// test credentials, the fake's region and BaseEndpoint.
func (s *Server) Config() aws.Config {
	cfg := aws.Config{
		Region:       s.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSFAKE", "awsfake-secret", ""),
		BaseEndpoint: aws.String(s.URL()),
	}
	if s.caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.caPEM)
		cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.TLSClientConfig = &tls.Config{RootCAs: pool}
		})
	}
	return cfg
}

// Env returns the environment a child process (the real cutover binary)
// needs so that the SDK's default chain reaches this server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.URL(),
		"AWS_REGION=" + s.opts.Region,
		"AWS_ACCESS_KEY_ID=AKIDAWSFAKE",
		"AWS_SECRET_ACCESS_KEY=awsfake-secret",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Close stops the endpoint, every fake listener and all background work.
func (s *Server) Close() {
	s.cancel()
	s.http.Close()
	s.elb.close()
	s.wg.Wait()
}

// dispatch routes a request to its service by the SigV4 credential scope,
// falling back on the protocol's markers for unsigned requests.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.URL.Path, ControlPrefix) && r.Header.Get("Authorization") == "" {
		s.control(w, r)
		return
	}
	name := serviceOf(r, body)
	s.mu.Lock()
	svc := s.services[name]
	s.mu.Unlock()
	if svc == nil {
		writeQueryError(w, statusErrorf(http.StatusBadRequest, "UnknownService", "awsfake does not simulate service %q", name), false)
		return
	}
	if !strings.Contains(r.Header.Get("Authorization"), "Credential=") {
		svc.WriteError(w, statusErrorf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"))
		return
	}
	op := svc.Operation(r, body)
	s.opts.Log.Info("aws call", "service", name, "operation", op)
	if e := s.takeFault(name, op); e != nil {
		svc.WriteError(w, e)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	svc.Serve(w, r, body)
}

// serviceOf reads the service name from "Credential=AKID/date/region/service/aws4_request".
func serviceOf(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	if _, cred, ok := strings.Cut(auth, "Credential="); ok {
		cred, _, _ = strings.Cut(cred, ",")
		if parts := strings.Split(cred, "/"); len(parts) == 5 {
			return parts[3]
		}
	}
	switch {
	case r.Header.Get("Smithy-Protocol") != "":
		return "monitoring"
	case strings.HasPrefix(r.URL.Path, "/2013-04-01/"):
		return "route53"
	}
	switch {
	case bytes.Contains(body, []byte("Version=2015-12-01")):
		return "elasticloadbalancing"
	case bytes.Contains(body, []byte("Version=2011-01-01")):
		return "autoscaling"
	case bytes.Contains(body, []byte("Version=2016-11-15")):
		return "ec2"
	}
	return ""
}

var requestSeq atomic.Uint64

// newRequestID returns a unique request id shaped like AWS's.
func newRequestID() string {
	n := requestSeq.Add(1)
	return fmt.Sprintf("a0fa4e00-0000-4000-8000-%012x", n)
}
