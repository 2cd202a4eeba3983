package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// This file is the API's defence against DNS rebinding: a web page whose
// own name the attacker points at 127.0.0.1 (or at the daemon's address)
// is, to the browser, same-origin with the API, so cross-origin protection
// and CORS do not stop it. What gives it away is the Host header, which
// carries the attacker's name. The API therefore answers only requests
// whose Host is one of its own:
//
//   - localhost, any name under .localhost, or a loopback IP (127.0.0.0/8,
//     [::1]), on any port: browsers resolve these themselves, so no page
//     can rebind them;
//   - the IP address the request arrived on, on any port: a page can only
//     use an IP as Host when its origin is that IP, which the attacker
//     does not control; this keeps http://<host IP>:7070 working when the
//     API listens on 0.0.0.0 or on one interface;
//   - the host of the configured listen address (Options.Listen), any port;
//   - an entry of Options.AllowedHosts (api.allowed_hosts).
//
// A request without a Host header (HTTP/1.0) is answered: browsers always
// send one. Everything else gets 421 Misdirected Request.

// maxHostInMessage bounds how much of a hostile Host header is echoed.
const maxHostInMessage = 255

// hostPattern is one entry of Options.AllowedHosts.
type hostPattern struct {
	name     string // lower case, no trailing dot; the suffix after "*." for a wildcard
	wildcard bool   // "*.example.com": any name under example.com, not example.com itself
	port     string // "" matches any port
}

// hostRule decides which Host headers the API answers.
type hostRule struct {
	listenName string     // host of Options.Listen when it is a name
	listenIP   netip.Addr // host of Options.Listen when it is a specific IP
	patterns   []hostPattern
}

func newHostRule(listen string, allowed []string) hostRule {
	var hr hostRule
	if host, _, err := net.SplitHostPort(listen); err == nil {
		host = normalHost(host)
		if ip, err := netip.ParseAddr(host); err == nil {
			if !ip.IsUnspecified() {
				hr.listenIP = ip.Unmap()
			}
		} else {
			hr.listenName = host
		}
	}
	for _, a := range allowed {
		if p, ok := parseHostPattern(a); ok {
			hr.patterns = append(hr.patterns, p)
		}
	}
	return hr
}

// parseHostPattern reads "name", "name:port", "*.suffix[:port]", "10.0.0.5",
// "fd00::2" or "[fd00::2]:7070". It reports false for an entry that can
// never match a Host (config validation refuses those with a message).
func parseHostPattern(s string) (hostPattern, bool) {
	s = strings.TrimSpace(s)
	var p hostPattern
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		p.name = ip.Unmap().String()
		return p, true
	}
	host, port, ok := splitHost(s)
	if !ok || host == "" {
		return p, false
	}
	p.port = port
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		p.wildcard, host = true, rest
	}
	p.name = normalHost(host)
	if ip, err := netip.ParseAddr(p.name); err == nil {
		if p.wildcard {
			return p, false
		}
		p.name = ip.Unmap().String()
	}
	return p, p.name != "" && !strings.ContainsAny(p.name, "*/@ ")
}

// splitHost splits a Host header value into host and port; port is "" when
// absent. IPv6 addresses come in brackets, which it removes. It reports
// false for a value that is not host[:port] with a numeric port.
func splitHost(h string) (host, port string, ok bool) {
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		host, rest := h[1:end], h[end+1:]
		if rest == "" {
			return host, "", true
		}
		if rest[0] != ':' {
			return "", "", false
		}
		return host, rest[1:], validPort(rest[1:])
	}
	switch strings.Count(h, ":") {
	case 0:
		return h, "", true
	case 1:
		host, port, _ = strings.Cut(h, ":")
		return host, port, validPort(port)
	}
	return h, "", true // a bare IPv6 address
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// normalHost lower-cases a host name and drops one trailing dot, so that
// "LocalHost." and "localhost" are the same name.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allows reports whether the API answers a request with Host header value
// host that arrived on the local address local (nil when unknown).
func (hr hostRule) allows(host string, local net.Addr) bool {
	if host == "" {
		return true
	}
	name, port, ok := splitHost(host)
	if !ok {
		return false
	}
	name = normalHost(name)
	if name == "" {
		return false
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		ip = ip.Unmap()
		if ip.IsLoopback() || ip == hr.listenIP || ip == localIP(local) {
			return true
		}
		name = ip.String()
	} else if name == hr.listenName {
		return true
	}
	if port == "" {
		port = "80"
	}
	for _, p := range hr.patterns {
		if p.port != "" && p.port != port {
			continue
		}
		if p.wildcard {
			if strings.HasSuffix(name, "."+p.name) {
				return true
			}
		} else if name == p.name {
			return true
		}
	}
	return false
}

// localIP returns the IP of a connection's local address, or the zero
// Addr when there is none.
func localIP(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok || ip.IsUnspecified() {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// checkHost answers 421 to a request whose Host is not one of the API's
// own (see the top of this file), before anything else looks at it.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if s.hosts.allows(r.Host, local) {
			next.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, errorf(http.StatusMisdirectedRequest, CodeHostNotAllowed, hostMessage(r.Host)))
	})
}

func hostMessage(host string) string {
	shown := host
	if len(shown) > maxHostInMessage {
		shown = shown[:maxHostInMessage] + "..."
	}
	name, _, ok := splitHost(host)
	if !ok || name == "" || len(host) > maxHostInMessage {
		return fmt.Sprintf("Host %q is not an address of this API (a defence against DNS rebinding): "+
			"it answers to its listen address, localhost and loopback IPs, and the names listed in api.allowed_hosts", shown)
	}
	return fmt.Sprintf("Host %q is not an address of this API (a defence against DNS rebinding): "+
		"it answers to its listen address, localhost and loopback IPs, and the names listed in api.allowed_hosts; "+
		"to reach it as %s, add %q to api.allowed_hosts and restart the daemon", shown, name, normalHost(name))
}
