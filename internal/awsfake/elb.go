package awsfake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ELB simulates Elastic Load Balancing v2 (application load balancers):
// load balancers, target groups with real HTTP health checks, listeners
// that are real HTTP listeners forwarding by weight, and listener rules.
// Tests build the topology with the Go methods (CreateLoadBalancer,
// CreateTargetGroup, CreateListener, CreateRule, RegisterTarget); the code
// under test reads and changes it through the ELBv2 API.
type ELB struct {
	s  *Server
	mu sync.Mutex
	// byARN holds every resource by its ARN.
	lbs       map[string]*loadBalancer
	tgs       map[string]*targetGroup
	listeners map[string]*listener
	rules     map[string]*rule
	// hosts maps an instance id to the host its targets are reached on
	// (127.0.0.1 when absent).
	hosts map[string]string
	stats *stats
}

type loadBalancer struct {
	arn, name, id string
	created       time.Time
}

// dimension is the LoadBalancer dimension CloudWatch uses: app/name/id.
func (lb *loadBalancer) dimension() string { return "app/" + lb.name + "/" + lb.id }

// Target states as DescribeTargetHealth reports them.
const (
	StateInitial   = "initial"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateUnused    = "unused"
	StateDraining  = "draining"
)

type targetGroup struct {
	arn, name, id string
	protocol      string
	port          int
	targetType    string
	health        HealthCheck
	attrs         map[string]string
	targets       map[targetKey]*target
	// healthy is the request path's snapshot of the targets it may use.
	routable atomic.Pointer[[]*target]
	rr       atomic.Uint64
	// stickyCookie is the lb_cookie duration, 0 when stickiness is off.
	stickyCookie atomic.Pointer[time.Duration]
}

// applyAttrsLocked publishes the attributes the request path reads.
func (tg *targetGroup) applyAttrsLocked() {
	var d time.Duration
	if tg.attrs["stickiness.enabled"] == "true" {
		secs, _ := strconv.Atoi(tg.attrs["stickiness.lb_cookie.duration_seconds"])
		d = time.Duration(secs) * time.Second
	}
	tg.stickyCookie.Store(&d)
}

// dimension is the TargetGroup dimension CloudWatch uses: targetgroup/name/id.
func (tg *targetGroup) dimension() string { return "targetgroup/" + tg.name + "/" + tg.id }

type targetKey struct {
	id   string
	port int
}

type target struct {
	key      targetKey
	addr     string
	state    string
	reason   string
	desc     string
	ok, bad  int
	drainEnd time.Time
	inflight atomic.Int64
	stop     chan struct{}
}

// HealthCheck is a target group's health check; zero fields take AWS's
// defaults for HTTP target groups, except the interval, which defaults to
// the server's Options.HealthInterval.
type HealthCheck struct {
	Path               string // default "/"
	Port               int    // 0 = the target's port ("traffic-port")
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	Matcher            string // HTTP codes, e.g. "200" or "200-299"; default "200"
}

// TargetGroupSpec describes a target group for CreateTargetGroup.
type TargetGroupSpec struct {
	Name        string
	Port        int    // default 80
	TargetType  string // "instance" (default) or "ip"
	HealthCheck HealthCheck
	// DeregistrationDelay is the deregistration_delay.timeout_seconds
	// attribute (AWS's default 300s when zero; use a negative value for 0).
	DeregistrationDelay time.Duration
	// Stickiness enables lb_cookie stickiness for that duration.
	Stickiness time.Duration
}

func newELB(s *Server) *ELB {
	return &ELB{
		s:         s,
		lbs:       map[string]*loadBalancer{},
		tgs:       map[string]*targetGroup{},
		listeners: map[string]*listener{},
		rules:     map[string]*rule{},
		hosts:     map[string]string{},
		stats:     newStats(),
	}
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *ELB) arn(resource string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:%s", e.s.opts.Region, e.s.opts.Account, resource)
}

// LoadBalancer describes a fake application load balancer.
type LoadBalancer struct {
	ARN, Name, DNSName string
	// Dimension is the LoadBalancer dimension of its CloudWatch metrics.
	Dimension string
}

// CreateLoadBalancer creates an application load balancer. It has no
// listener until CreateListener.
func (e *ELB) CreateLoadBalancer(name string) LoadBalancer {
	e.mu.Lock()
	defer e.mu.Unlock()
	lb := &loadBalancer{name: name, id: randomID(8), created: time.Now()}
	lb.arn = e.arn("loadbalancer/" + lb.dimension())
	e.lbs[lb.arn] = lb
	return e.lbInfo(lb)
}

func (e *ELB) lbInfo(lb *loadBalancer) LoadBalancer {
	return LoadBalancer{ARN: lb.arn, Name: lb.name, DNSName: e.dnsName(lb), Dimension: lb.dimension()}
}

func (e *ELB) dnsName(lb *loadBalancer) string {
	return fmt.Sprintf("%s-%s.%s.elb.amazonaws.com", lb.name, lb.id[:10], e.s.opts.Region)
}

// TargetGroup describes a fake target group.
type TargetGroup struct {
	ARN, Name string
	// Dimension is the TargetGroup dimension of its CloudWatch metrics.
	Dimension string
}

// CreateTargetGroup creates an HTTP target group.
func (e *ELB) CreateTargetGroup(spec TargetGroupSpec) TargetGroup {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg := &targetGroup{name: spec.Name, id: randomID(8), protocol: "HTTP", port: spec.Port, targetType: spec.TargetType,
		health: spec.HealthCheck, attrs: map[string]string{}, targets: map[targetKey]*target{}}
	if tg.port == 0 {
		tg.port = 80
	}
	if tg.targetType == "" {
		tg.targetType = "instance"
	}
	h := &tg.health
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Interval == 0 {
		h.Interval = e.s.opts.HealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = h.Interval
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = e.s.opts.HealthyThreshold
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = e.s.opts.UnhealthyThreshold
	}
	if h.Matcher == "" {
		h.Matcher = "200"
	}
	delay := 300
	switch {
	case spec.DeregistrationDelay < 0:
		delay = 0
	case spec.DeregistrationDelay > 0:
		delay = int(spec.DeregistrationDelay.Round(time.Second) / time.Second)
		if delay == 0 {
			delay = 1
		}
	}
	tg.attrs["deregistration_delay.timeout_seconds"] = strconv.Itoa(delay)
	tg.attrs["stickiness.enabled"] = strconv.FormatBool(spec.Stickiness > 0)
	tg.attrs["stickiness.type"] = "lb_cookie"
	stick := 86400
	if spec.Stickiness > 0 {
		stick = int(spec.Stickiness / time.Second)
	}
	tg.attrs["stickiness.lb_cookie.duration_seconds"] = strconv.Itoa(stick)
	tg.attrs["load_balancing.algorithm.type"] = "round_robin"
	tg.attrs["slow_start.duration_seconds"] = "0"
	tg.arn = e.arn("targetgroup/" + tg.name + "/" + tg.id)
	empty := []*target{}
	tg.routable.Store(&empty)
	tg.applyAttrsLocked()
	e.tgs[tg.arn] = tg
	return TargetGroup{ARN: tg.arn, Name: tg.name, Dimension: tg.dimension()}
}

// SetInstanceHost says on which host an instance's targets listen (the
// default is 127.0.0.1). The Auto Scaling fake calls it for the instances
// it starts.
func (e *ELB) SetInstanceHost(instanceID, host string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hosts[instanceID] = host
}

// RegisterTarget registers a target in a target group, as RegisterTargets
// does: id is an instance id (reached on SetInstanceHost's host, default
// 127.0.0.1) or an IP address; port 0 is the group's port. The target
// starts "initial" and its health checks begin at once.
func (e *ELB) RegisterTarget(tgARN, id string, port int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg := e.tgs[tgARN]
	if tg == nil {
		return Errorf("TargetGroupNotFound", "Target groups '%s' not found", tgARN)
	}
	return e.registerLocked(tg, id, port)
}

// checkTarget validates a target for a group as RegisterTargets does.
func checkTarget(tg *targetGroup, id string, port int) error {
	if port == 0 {
		port = tg.port
	}
	if port < 1 || port > 65535 {
		return ValidationError("1 validation error detected: Value '%d' at 'targets.member.port' failed to satisfy constraint: Member must have value between 1 and 65535", port)
	}
	isIP := net.ParseIP(id) != nil
	if tg.targetType == "ip" && (!isIP || net.ParseIP(id).To4() == nil) {
		return Errorf("InvalidTarget", "The IP address '%s' is not a valid IPv4 address", id)
	}
	if tg.targetType == "instance" && !isInstanceID(id) {
		return Errorf("InvalidTarget", "The following targets are not valid instances: '%s'", id)
	}
	return nil
}

func (e *ELB) registerLocked(tg *targetGroup, id string, port int) error {
	if err := checkTarget(tg, id, port); err != nil {
		return err
	}
	if port == 0 {
		port = tg.port
	}
	isIP := net.ParseIP(id) != nil
	key := targetKey{id, port}
	if t := tg.targets[key]; t != nil {
		if t.state != StateDraining {
			return nil // AWS treats re-registration as a no-op
		}
		// Re-registering a draining target cancels the deregistration.
		t.state, t.reason, t.desc = StateInitial, "Elb.RegistrationInProgress", "Target registration is in progress"
		t.ok, t.bad = 0, 0
		e.publishLocked(tg)
		return nil
	}
	host := "127.0.0.1"
	if isIP {
		host = id
	} else if h := e.hosts[id]; h != "" {
		host = h
	}
	t := &target{key: key, addr: net.JoinHostPort(host, strconv.Itoa(port)), state: StateInitial,
		reason: "Elb.RegistrationInProgress", desc: "Target registration is in progress", stop: make(chan struct{})}
	tg.targets[key] = t
	e.publishLocked(tg)
	e.startProbe(tg, t)
	return nil
}

func isInstanceID(id string) bool {
	if len(id) < 10 || id[:2] != "i-" {
		return false
	}
	for _, c := range id[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// DeregisterTarget deregisters a target: it drains for the group's
// deregistration delay (or until it has no request in flight) and is then
// removed.
func (e *ELB) DeregisterTarget(tgARN, id string, port int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg := e.tgs[tgARN]
	if tg == nil {
		return Errorf("TargetGroupNotFound", "Target groups '%s' not found", tgARN)
	}
	return e.deregisterLocked(tg, id, port)
}

func (e *ELB) deregisterLocked(tg *targetGroup, id string, port int) error {
	if port == 0 {
		port = tg.port
	}
	t := tg.targets[targetKey{id, port}]
	if t == nil {
		return Errorf("InvalidTarget", "The following targets are not registered in target group '%s': 'Id=%s,Port=%d'", tg.arn, id, port)
	}
	if t.state == StateDraining {
		return nil
	}
	delay, _ := strconv.Atoi(tg.attrs["deregistration_delay.timeout_seconds"])
	t.state, t.reason, t.desc = StateDraining, "Target.DeregistrationInProgress", "Target deregistration is in progress"
	t.drainEnd = time.Now().Add(time.Duration(delay) * time.Second)
	e.publishLocked(tg)
	return nil
}

// TargetHealth is one target's health as DescribeTargetHealth reports it.
type TargetHealth struct {
	ID          string
	Port        int
	Addr        string
	State       string
	Reason      string
	Description string
	// InFlight is the number of requests the data plane has open to it.
	InFlight int64
}

// Health returns the health of a target group's targets, sorted by id and
// port.
func (e *ELB) Health(tgARN string) ([]TargetHealth, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg := e.tgs[tgARN]
	if tg == nil {
		return nil, Errorf("TargetGroupNotFound", "Target groups '%s' not found", tgARN)
	}
	return e.healthLocked(tg), nil
}

func (e *ELB) healthLocked(tg *targetGroup) []TargetHealth {
	inUse := e.inUseLocked(tg)
	var out []TargetHealth
	for _, t := range tg.targets {
		h := TargetHealth{ID: t.key.id, Port: t.key.port, Addr: t.addr, State: t.state, Reason: t.reason, Description: t.desc, InFlight: t.inflight.Load()}
		if !inUse && t.state != StateDraining {
			h.State, h.Reason, h.Description = StateUnused, "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// inUseLocked reports whether any listener or rule forwards to tg.
func (e *ELB) inUseLocked(tg *targetGroup) bool {
	for _, l := range e.listeners {
		if l.actions.forwardsTo(tg.arn) {
			return true
		}
	}
	for _, r := range e.rules {
		if r.actions.forwardsTo(tg.arn) {
			return true
		}
	}
	return false
}

// lbsOfLocked lists the load balancers whose listeners or rules forward to tg.
func (e *ELB) lbsOfLocked(tg *targetGroup) []string {
	set := map[string]bool{}
	for _, l := range e.listeners {
		if l.actions.forwardsTo(tg.arn) {
			set[l.lb.arn] = true
		}
	}
	for _, r := range e.rules {
		if r.actions.forwardsTo(tg.arn) {
			set[r.listener.lb.arn] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// publishLocked stores the request path's view of tg's targets: the
// healthy ones, or, when none is healthy, the unhealthy ones (an ALB
// "fails open" when a whole group is unhealthy). Targets still in their
// initial checks or draining get no new request.
func (e *ELB) publishLocked(tg *targetGroup) {
	var healthy, open []*target
	for _, t := range tg.targets {
		switch t.state {
		case StateHealthy:
			healthy = append(healthy, t)
			open = append(open, t)
		case StateUnhealthy:
			open = append(open, t)
		}
	}
	pick := healthy
	if len(pick) == 0 {
		pick = open
	}
	sort.Slice(pick, func(i, j int) bool { return pick[i].addr < pick[j].addr })
	tg.routable.Store(&pick)
}

func (e *ELB) close() {
	e.mu.Lock()
	ls := make([]*listener, 0, len(e.listeners))
	for _, l := range e.listeners {
		ls = append(ls, l)
	}
	e.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
}
