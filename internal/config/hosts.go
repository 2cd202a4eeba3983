package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// HostList is an ordered list of Host patterns (api.allowed_hosts). Unlike
// a slice it is comparable, so that API values compare with == (a reload
// compares them to tell that the API needs a restart). The zero value is
// the empty list.
type HostList struct {
	quoted string // each pattern strconv.Quote'd, back to back: injective, so == compares lists
}

// Hosts returns a HostList holding patterns in order.
func Hosts(patterns ...string) HostList {
	var b strings.Builder
	for _, p := range patterns {
		b.WriteString(strconv.Quote(p))
	}
	return HostList{quoted: b.String()}
}

// List returns the patterns in order; nil for an empty list.
func (h HostList) List() []string {
	var out []string
	for rest := h.quoted; rest != ""; {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			break // cannot happen: only Hosts builds the string
		}
		p, _ := strconv.Unquote(q)
		out = append(out, p)
		rest = rest[len(q):]
	}
	return out
}

const hostWant = "must be a host name or IP address, optionally with :port, like cutover.example.com, " +
	"cutover.example.com:7070, *.example.com or 10.0.0.5 (got %q)"

// allowedHost checks one api.allowed_hosts entry: a host name, "*." and a
// domain name, or an IP address, each optionally with ":port"; IPv6 with a
// port in brackets. The API (internal/api, host.go) matches them.
func (v *validator) allowedHost(key, h string) {
	switch {
	case strings.TrimSpace(h) == "":
		v.add(key, "must not be empty")
		return
	case h == "*":
		v.add(key, `"*" would answer any Host and undo the protection against DNS rebinding: list the names clients use`)
		return
	case strings.ContainsAny(h, "/@ \t\r\n") || strings.ContainsFunc(h, func(r rune) bool { return r < ' ' || r == 0x7f }):
		v.add(key, hostWant, h)
		return
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return // an IP address without a port
	}
	rest, wildcard := strings.CutPrefix(h, "*.")
	host, port, ok := splitHostPattern(rest)
	if !ok {
		v.add(key, hostWant, h)
		return
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add(key, "port must be 1-65535 (got %q)", h)
			return
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		if wildcard {
			v.add(key, "a wildcard must be followed by a domain name, not an IP address (got %q)", h)
		}
		return
	}
	if !validHostName(host) {
		v.add(key, hostWant, h)
	}
}

// splitHostPattern splits host[:port] or [ipv6][:port]; port is "" when absent.
func splitHostPattern(s string) (host, port string, ok bool) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, after, found := strings.Cut(rest, "]")
		if !found {
			return "", "", false
		}
		if after == "" {
			return host, "", true
		}
		port, ok := strings.CutPrefix(after, ":")
		return host, port, ok && port != ""
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", true
	case 1:
		host, port, _ := strings.Cut(s, ":")
		return host, port, port != ""
	}
	return "", "", false
}

// validHostName reports whether s is a DNS name: dot-separated labels of
// letters, digits, '-' and '_', with at most one trailing dot.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
