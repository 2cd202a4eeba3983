package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Validate checks the configuration's meaning: names, addresses, ranges,
// steps and the files it refers to. It returns nil or a *ValidationError
// with every problem; for a Config from Load or Parse each problem carries
// the line of the offending key (or of its nearest parent when the key is
// missing). Relative paths of a Config built in code are checked against
// the current directory.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.api()
	if strings.TrimSpace(c.StateDir) == "" {
		v.add("state_dir", "must not be empty")
	} else if fi, err := os.Stat(c.StateDir); err == nil && !fi.IsDir() {
		v.add("state_dir", "%s exists and is not a directory", c.StateDir)
	}
	if len(c.Services) == 0 {
		v.add("services", "at least one service is required")
	}
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v.service("services."+name, name, c.Services[name])
	}
	v.listens(names)
	if len(v.probs) == 0 {
		return nil
	}
	sortProblems(v.probs)
	return &ValidationError{Problems: v.probs}
}

// sortProblems puts problems in file order; those without a line (about
// the file as a whole, or a Config built in code) keep their order at the end.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		return li != 0 && (lj == 0 || li < lj)
	})
}

type validator struct {
	c     *Config
	probs []Problem
}

// add records a problem at key, located at the key or its nearest parent.
func (v *validator) add(key, format string, args ...any) {
	p := Problem{File: v.c.name, Key: key, Msg: fmt.Sprintf(format, args...)}
	if p.File == "" {
		p.File = v.c.File
	}
	for k := key; k != ""; k = parentKey(k) {
		if pos, ok := v.c.pos[k]; ok {
			p.Line, p.Column = pos.line, pos.col
			break
		}
	}
	v.probs = append(v.probs, p)
}

// parentKey strips the last ".name" or "[i]" from a dotted key.
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

func (v *validator) api() {
	a := v.c.API
	host, _, ok := v.addr("api.listen", a.Listen, true)
	if ok && a.TokenFile == "" && !isLoopback(host) {
		v.add("api.listen", "%s is reachable from other machines, and the API can deploy and roll back: "+
			"set api.token_file, or listen on 127.0.0.1", a.Listen)
	}
	v.file("api.token_file", a.TokenFile)
	for i, h := range a.AllowedHosts.List() {
		v.allowedHost(fmt.Sprintf("api.allowed_hosts[%d]", i), h)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// addr checks a required host:port with a numeric port; port 0 (any free
// port) is allowed when anyPort.
func (v *validator) addr(key, s string, anyPort bool) (host string, port int, ok bool) {
	if s == "" {
		v.add(key, "required (an address like 127.0.0.1:8080)")
		return "", 0, false
	}
	host, ps, err := net.SplitHostPort(s)
	if err == nil {
		port, err = strconv.Atoi(ps)
	}
	if err != nil || port < 0 || port > 65535 {
		v.add(key, "must be host:port with a numeric port, like 127.0.0.1:8080 or :8080 (got %q)", s)
		return "", 0, false
	}
	if port == 0 && !anyPort {
		v.add(key, "needs a port other than 0 (got %q)", s)
		return "", 0, false
	}
	return host, port, true
}

// file checks that an optional file exists and is not a directory.
func (v *validator) file(key, path string) {
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		v.add(key, "cannot use %s: %v", path, unwrapPath(err))
	case fi.IsDir():
		v.add(key, "%s is a directory, not a file", path)
	}
}

// unwrapPath drops the path os.Stat repeats in its error.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (v *validator) service(key, name string, s *Service) {
	if !validName(name) {
		v.add(key, "service name must be 1-63 characters of a-z, 0-9 and '-' (got %q)", name)
	}
	if s == nil {
		v.add(key, "must be a mapping")
		return
	}
	if s.Name != name {
		v.add(key+".name", "is %q but the service is listed as %q", s.Name, name)
	}
	v.addr(key+".listen", s.Listen, true)
	if s.PreviewListen != "" {
		v.addr(key+".preview_listen", s.PreviewListen, true)
	}
	if s.TLS != nil {
		for _, f := range []struct{ k, p string }{{"cert", s.TLS.Cert}, {"key", s.TLS.Key}} {
			if f.p == "" {
				v.add(key+".tls."+f.k, "required when tls is set (a PEM file)")
			}
			v.file(key+".tls."+f.k, f.p)
		}
	}
	for i, p := range s.TrustedProxies {
		if !validPrefix(p) {
			v.add(fmt.Sprintf("%s.trusted_proxies[%d]", key, i), "must be a CIDR like 10.0.0.0/8 or an IP address (got %q)", p)
		}
	}
	if s.StickyCookie != "-" && !validCookieName(s.StickyCookie) {
		v.add(key+".sticky_cookie", `must be a cookie name, or "-" to disable stickiness (got %q)`, s.StickyCookie)
	}
	if s.Instances < 1 {
		v.add(key+".instances", "must be at least 1 (got %d)", s.Instances)
	}
	v.startParallel(key+".start.parallel", s.Start.Parallel, s.Instances)
	v.runtime(key+".runtime", s.Runtime)
	v.traffic(key+".traffic", s)
	v.health(key+".health", s.Health)
	v.positive(key+".timeouts.read_header", s.Timeouts.ReadHeader)
	v.positive(key+".timeouts.idle", s.Timeouts.Idle)
	v.positive(key+".timeouts.upstream_header", s.Timeouts.UpstreamHeader)
	v.positive(key+".drain_timeout", s.DrainTimeout)
	v.strategy(key+".strategy", s.Strategy)
	v.notNegative(key+".keep_previous", s.KeepPrevious)
	v.notNegative(key+".quiet_period", s.QuietPeriod)
	v.hooks(key+".hooks", s.Hooks)
	v.file(key+".fallback_page", s.FallbackPage)
	v.preflight(key+".preflight", s)
}

// validName reports whether name matches [a-z0-9-]{1,63}.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func validPrefix(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validCookieName reports whether s is an RFC 6265 token.
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, "must be greater than 0 (got %s)", d)
	}
}

func (v *validator) notNegative(key string, d time.Duration) {
	if d < 0 {
		v.add(key, "must not be negative (got %s)", d)
	}
}

func (v *validator) runtime(key string, r Runtime) {
	switch set := runtimesSet(r); len(set) {
	case 0:
		v.add(key, "needs one of process (local processes), docker (containers), static (fixed addresses) or asg (Auto Scaling groups)")
	case 1:
	case 2:
		v.add(key, "sets both %s and %s; choose one", set[0], set[1])
	default:
		v.add(key, "sets %s; choose one", strings.Join(set, ", "))
	}
	if r.ASG != nil {
		v.asg(key+".asg", r.ASG)
	}
	if r.Docker != nil {
		v.docker(key+".docker", r.Docker)
	}
	if p := r.Process; p != nil {
		pk := key + ".process"
		switch {
		case len(p.Command) == 0:
			v.add(pk+".command", `must not be empty (argv, like ["./app", "--port", "${PORT}"])`)
		case strings.TrimSpace(p.Command[0]) == "":
			v.add(pk+".command[0]", "the program must not be empty")
		}
		for name := range p.Env {
			if name == "" || strings.ContainsAny(name, "=\x00") {
				v.add(pk+".env", "%q is not a valid environment variable name", name)
			}
		}
		if p.Dir != "" {
			if fi, err := os.Stat(p.Dir); err != nil {
				v.add(pk+".dir", "cannot use %s: %v", p.Dir, unwrapPath(err))
			} else if !fi.IsDir() {
				v.add(pk+".dir", "%s is not a directory", p.Dir)
			}
		}
		v.envFile(pk+".env_file", p.EnvFile)
		v.secrets(pk+".secrets", p.Secrets)
		v.inheritEnv(pk+".inherit_env", p.InheritEnv)
		v.positive(pk+".stop_timeout", p.StopTimeout)
		v.positive(pk+".start_timeout", p.StartTimeout)
	}
	if s := r.Static; s != nil {
		versions := make([]string, 0, len(s.Versions))
		for ver := range s.Versions {
			versions = append(versions, ver)
		}
		sort.Strings(versions)
		for _, ver := range versions {
			vk := key + ".static.versions." + ver
			if strings.TrimSpace(ver) == "" {
				v.add(vk, "a version name must not be empty")
			}
			if len(s.Versions[ver]) == 0 {
				v.add(vk, "lists no addresses")
			}
			for i, a := range s.Versions[ver] {
				ak := fmt.Sprintf("%s[%d]", vk, i)
				if host, _, ok := v.addr(ak, a, false); ok && host == "" {
					v.add(ak, "needs a host, like 10.0.1.5:8080 (got %q)", a)
				}
			}
		}
	}
	if u := r.UpstreamTLS; u != nil {
		v.file(key+".upstream_tls.ca_file", u.CAFile)
	}
}

func (v *validator) health(key string, h Health) {
	if !strings.HasPrefix(h.Path, "/") {
		v.add(key+".path", "must be an absolute URL path like /healthz (got %q)", h.Path)
	}
	v.positive(key+".interval", h.Interval)
	v.positive(key+".timeout", h.Timeout)
	if h.HealthyThreshold < 1 {
		v.add(key+".healthy_threshold", "must be at least 1 (got %d)", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 1 {
		v.add(key+".unhealthy_threshold", "must be at least 1 (got %d)", h.UnhealthyThreshold)
	}
}

func (v *validator) strategy(key string, s Strategy) {
	prev := 0.0 // the last weight accepted: a refused one is no floor for the next
	for i, st := range s.Steps {
		sk := fmt.Sprintf("%s.steps[%d]", key, i)
		switch {
		case !(st.Weight > 0 && st.Weight <= 100):
			v.add(sk+".weight", "must be greater than 0 and at most 100 (got %s)", pct(st.Weight))
		case st.Weight < MinWeight:
			v.add(sk+".weight", "must be at least %s, the smallest share of traffic the router can give (got %s)", pct(MinWeight), pct(st.Weight))
		case !onWeightGrid(st.Weight):
			v.add(sk+".weight", "must be a multiple of %s: the router splits traffic in steps of %s%% (got %s)", pct(MinWeight), pct(MinWeight), pct(st.Weight))
		case st.Weight <= prev:
			v.add(sk+".weight", "must be greater than the previous step's %s (got %s)", pct(prev), pct(st.Weight))
		default:
			prev = st.Weight
		}
		if !st.Manual {
			v.notNegative(sk+".pause", st.Pause)
		}
	}
	a := s.Analysis
	ak := key + ".analysis"
	v.positive(ak+".interval", a.Interval)
	if !(a.MaxErrorRate >= 0 && a.MaxErrorRate <= 1) {
		v.add(ak+".max_error_rate", "must be between 0%% and 100%% (got %s%%)", pct(a.MaxErrorRate*100))
	}
	v.notNegative(ak+".max_p99_latency", a.MaxP99Latency)
	if a.MinRequests < 0 {
		v.add(ak+".min_requests", "must not be negative (got %d)", a.MinRequests)
	}
	v.positive(key+".progress_deadline", s.ProgressDeadline)
}

// MinWeight is the smallest step weight, in percent, and the grid every
// weight is on: the router splits traffic into 10000 buckets (route.Buckets),
// so it cannot honour a finer share.
const MinWeight = 0.01

// onWeightGrid reports whether w (percent) is a whole number of MinWeight
// steps, allowing for the rounding of decimal fractions in binary.
func onWeightGrid(w float64) bool {
	n := w / MinWeight
	return math.Abs(n-math.Round(n)) < 1e-6
}

// pct formats a percent figure without trailing zeros: 50, 12.5.
func pct(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// listens reports two listeners that cannot both bind: the same port on
// the same host, or on any host when one of them is a wildcard. Port 0
// (any free port) never conflicts.
func (v *validator) listens(names []string) {
	type listener struct{ key, addr, host, port string }
	var ls []listener
	add := func(key, addr string) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" {
			return
		}
		switch host {
		case "", "0.0.0.0", "::":
			host = "*"
		case "localhost":
			host = "127.0.0.1"
		}
		ls = append(ls, listener{key, addr, host, port})
	}
	add("api.listen", v.c.API.Listen)
	for _, name := range names {
		if s := v.c.Services[name]; s != nil {
			add("services."+name+".listen", s.Listen)
			add("services."+name+".preview_listen", s.PreviewListen)
		}
	}
	for i, l := range ls {
		for _, prev := range ls[:i] {
			if l.port == prev.port && (l.host == prev.host || l.host == "*" || prev.host == "*") {
				where := prev.key
				if pos, ok := v.c.pos[prev.key]; ok {
					where = fmt.Sprintf("%s (line %d)", prev.key, pos.line)
				}
				v.add(l.key, "%s is already used by %s", l.addr, where)
				break
			}
		}
	}
}
