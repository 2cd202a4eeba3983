package awsfake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// listener is an ELBv2 listener and its real HTTP listener on 127.0.0.1.
type listener struct {
	e        *ELB
	arn, id  string
	lb       *loadBalancer
	port     int
	protocol string
	actions  actions
	// defaultRule is the ARN DescribeRules gives the default rule.
	defaultRule string

	ln    net.Listener
	srv   *http.Server
	proxy *httputil.ReverseProxy
	table atomic.Pointer[routeTable]
	wg    sync.WaitGroup
}

type rule struct {
	arn        string
	listener   *listener
	priority   int
	conditions []condition
	actions    actions
}

// routeTable is the immutable snapshot the request path reads: the rules
// by priority, then the default action.
type routeTable struct {
	port  int
	rules []tableRule
	def   resolved
}

type tableRule struct {
	conds []condition
	act   resolved
}

// resolved is an action with its target groups looked up.
type resolved struct {
	typ     string
	groups  []*targetGroup
	weights []int
	total   int
	sticky  time.Duration
	fixed   *fixedResponse
}

type ctxKey struct{}

type hop struct {
	port   int // the listener's port as the API reports it
	tg     *targetGroup
	t      *target
	start  time.Time
	status int
	// connErr is set when no connection to the target could be
	// established (TargetConnectionErrorCount).
	connErr bool
}

func (e *ELB) newListener(lb *loadBalancer, port int, as actions) (*listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awsfake: listener for %s: %w", lb.name, err)
	}
	l := &listener{e: e, id: randomID(8), lb: lb, port: port, protocol: "HTTP", actions: as, ln: ln}
	l.arn = e.arn("listener/" + lb.dimension() + "/" + l.id)
	l.defaultRule = e.arn("listener-rule/" + lb.dimension() + "/" + l.id + "/" + randomID(8))
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	l.proxy = &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			h := pr.In.Context().Value(ctxKey{}).(*hop)
			pr.SetURL(&url.URL{Scheme: "http", Host: h.t.addr})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Port", strconv.Itoa(h.port))
			if pr.Out.Header.Get("X-Amzn-Trace-Id") == "" {
				pr.Out.Header.Set("X-Amzn-Trace-Id", fmt.Sprintf("Root=1-%08x-%s", time.Now().Unix(), randomID(12)))
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			h := resp.Request.Context().Value(ctxKey{}).(*hop)
			h.status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h := r.Context().Value(ctxKey{}).(*hop)
			if errors.Is(err, context.Canceled) {
				h.status = 460 // ALB's code for a client that closed the connection
				return
			}
			h.status = -http.StatusBadGateway
			var op *net.OpError
			h.connErr = errors.As(err, &op) && op.Op == "dial"
			http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		},
	}
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.srv.Serve(ln)
	}()
	return l, nil
}

func (l *listener) close() {
	l.srv.Close()
	l.wg.Wait()
}

// URL is where the listener takes requests.
func (l *listener) url() string { return "http://" + l.ln.Addr().String() }

// republishLocked rebuilds the listener's route table from its actions and
// rules and swaps it in atomically: requests in flight finish on the old
// table, the next request uses the new one, none is refused.
func (e *ELB) republishLocked(l *listener) {
	tb := &routeTable{port: l.port, def: e.resolveLocked(l.actions)}
	var rs []*rule
	for _, r := range e.rules {
		if r.listener == l {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].priority < rs[j].priority })
	for _, r := range rs {
		tb.rules = append(tb.rules, tableRule{conds: r.conditions, act: e.resolveLocked(r.actions)})
	}
	l.table.Store(tb)
}

func (e *ELB) resolveLocked(as actions) resolved {
	a := as.terminal()
	if a == nil {
		return resolved{typ: "fixed-response", fixed: &fixedResponse{status: 503}}
	}
	r := resolved{typ: a.typ, fixed: a.fixed}
	if a.sticky {
		r.sticky = time.Duration(a.stickyS) * time.Second
	}
	for _, g := range a.groups() {
		if tg := e.tgs[g.arn]; tg != nil {
			r.groups = append(r.groups, tg)
			r.weights = append(r.weights, g.weight)
			r.total += g.weight
		}
	}
	return r
}

func (tb *routeTable) match(r *http.Request) *resolved {
	for i := range tb.rules {
		ok := len(tb.rules[i].conds) > 0
		for _, c := range tb.rules[i].conds {
			if !c.match(r.Host, r.URL.Path) {
				ok = false
				break
			}
		}
		if ok {
			return &tb.rules[i].act
		}
	}
	return &tb.def
}

const (
	groupCookie  = "AWSALBTG"
	targetCookie = "AWSALB"
)

// ServeHTTP is the data plane: it picks a target group by weight (or by
// the group stickiness cookie), a target in it round-robin (or by the
// target stickiness cookie), forwards, and records the outcome.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tb := l.table.Load()
	act := tb.match(r)
	switch act.typ {
	case "fixed-response":
		l.e.stats.record(l.lb.dimension(), "", start, false, 0, act.fixed.status, 0)
		if act.fixed.contentType != "" {
			w.Header().Set("Content-Type", act.fixed.contentType)
		}
		w.WriteHeader(act.fixed.status)
		fmt.Fprint(w, act.fixed.body)
		return
	case "redirect":
		l.e.stats.record(l.lb.dimension(), "", start, false, 0, http.StatusFound, 0)
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	tg := pickGroup(act, r)
	if tg == nil {
		l.elbError(w, "", start, http.StatusServiceUnavailable)
		return
	}
	if act.sticky > 0 {
		http.SetCookie(w, &http.Cookie{Name: groupCookie, Value: tg.id, Path: "/", MaxAge: int(act.sticky / time.Second)})
	}
	t := pickTarget(tg, r, w)
	if t == nil {
		l.elbError(w, tg.dimension(), start, http.StatusServiceUnavailable)
		return
	}
	h := &hop{port: tb.port, tg: tg, t: t, start: time.Now()}
	t.inflight.Add(1)
	l.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, h)))
	t.inflight.Add(-1)
	switch {
	case h.status < 0:
		if h.connErr {
			l.e.stats.connectionError(l.lb.dimension(), tg.dimension(), start)
		}
		l.e.stats.record(l.lb.dimension(), tg.dimension(), start, true, -h.status, 0, 0)
	case h.status == 460:
		l.e.stats.record(l.lb.dimension(), tg.dimension(), start, true, 0, 0, 0)
	default:
		l.e.stats.record(l.lb.dimension(), tg.dimension(), start, true, 0, h.status, time.Since(h.start))
	}
}

func (l *listener) elbError(w http.ResponseWriter, tgDim string, start time.Time, code int) {
	l.e.stats.record(l.lb.dimension(), tgDim, start, false, code, 0, 0)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<html><body><center><h1>%d %s</h1></center></body></html>\n", code, http.StatusText(code))
}

func pickGroup(act *resolved, r *http.Request) *targetGroup {
	if act.sticky > 0 {
		if c, err := r.Cookie(groupCookie); err == nil {
			for _, g := range act.groups {
				if g.id == c.Value {
					return g
				}
			}
		}
	}
	if act.total <= 0 {
		return nil
	}
	n := rand.IntN(act.total)
	for i, wgt := range act.weights {
		if n < wgt {
			return act.groups[i]
		}
		n -= wgt
	}
	return nil
}

func pickTarget(tg *targetGroup, r *http.Request, w http.ResponseWriter) *target {
	ts := *tg.routable.Load()
	if len(ts) == 0 {
		return nil
	}
	sticky := tg.stickyCookie.Load()
	if sticky != nil && *sticky > 0 {
		if c, err := r.Cookie(targetCookie); err == nil {
			for _, t := range ts {
				if stickyValue(tg, t) == c.Value {
					return t
				}
			}
		}
	}
	t := ts[int(tg.rr.Add(1)-1)%len(ts)]
	if sticky != nil && *sticky > 0 {
		http.SetCookie(w, &http.Cookie{Name: targetCookie, Value: stickyValue(tg, t), Path: "/", MaxAge: int(*sticky / time.Second)})
	}
	return t
}

func stickyValue(tg *targetGroup, t *target) string {
	return tg.id + "." + strings.NewReplacer(":", "-", ".", "-").Replace(t.key.id) + "-" + strconv.Itoa(t.key.port)
}
