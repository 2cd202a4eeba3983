package proxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"strings"
)

// What the instance is told about a request: one function, outHeader,
// prepares the header of every outbound request, whichever path carries
// it (the h1 engine, the transport, ReverseProxy for upgrades).

var (
	protoHTTP   = []string{"http"}
	protoHTTPS  = []string{"https"}
	hdrTrailers = []string{"trailers"}
	hdrNoUA     = []string{""} // present and empty: the transport sends no User-Agent
	hdrUpgrade  = []string{"Upgrade"}
)

// forwardValues holds the X-Forwarded-For and -Host values outHeader
// makes, so that a request that has somewhere to keep them (pass's
// outbound) allocates no slice for them.
type forwardValues struct {
	xff [1]string
	xfh [1]string
}

// outHeader builds the outbound header from the inbound request, in this
// order: hop-by-hop fields and the fields the client's Connection header
// names are left out first, so that a client cannot name away what the
// router sets; client claims (forwarding and client-address headers in any
// spelling) are left out unless the client is a trusted proxy; then
// X-Forwarded-Host and -Proto are set unless a trusted proxy sent them,
// X-Forwarded-For gets the client's address appended, "Te: trailers"
// passes, no User-Agent is invented, and an upgrade's Connection and
// Upgrade are put back. Value slices are shared with the inbound header,
// which nobody modifies; new values live in fv.
func (be *backend) outHeader(req *http.Request, fv *forwardValues) http.Header {
	in := req.Header
	trusted := be.router.isTrusted(req.RemoteAddr)
	h := make(http.Header, len(in)+4)
	for k, vv := range in {
		if !isHopHeader(k) && (trusted || !isClientClaim(k)) {
			h[k] = vv
		}
	}
	dropConnectionFields(h, in["Connection"])
	if _, ok := h["X-Forwarded-Host"]; !ok {
		fv.xfh[0] = req.Host
		h["X-Forwarded-Host"] = fv.xfh[:]
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		if req.TLS != nil {
			h["X-Forwarded-Proto"] = protoHTTPS
		} else {
			h["X-Forwarded-Proto"] = protoHTTP
		}
	}
	if hasToken(in["Te"], "trailers") {
		h["Te"] = hdrTrailers
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		fv.xff[0] = ip
		h["X-Forwarded-For"] = fv.xff[:]
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = hdrNoUA
	}
	if up := upgradeType(in); up != "" {
		h["Connection"] = hdrUpgrade
		h["Upgrade"] = []string{up}
	}
	return h
}

// rewrite prepares ReverseProxy's outbound request (upgrades) with
// outHeader, like every other path. The query is kept as the client sent
// it, as pass keeps it (ReverseProxy drops parameters it cannot parse).
func (be *backend) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = be.router.scheme
	pr.Out.URL.Host = be.inst.Addr
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.Out.Header = be.outHeader(pr.In, new(forwardValues))
}

// clientClaims are the request headers in which a proxy tells the instance
// who the client is (lower case, besides every X-Forwarded-* field). Apps
// take them at their word, so they pass only from trusted proxies; from
// anyone else they would let a client pick the address that rate limits,
// allow lists and audit logs see, or the scheme and host an app builds
// its links and cookies for.
var clientClaims = [...]string{
	"forwarded", "x-real-ip", "true-client-ip", "x-client-ip", "x-cluster-client-ip",
	"cf-connecting-ip", "cf-connecting-ipv6", "fastly-client-ip",
}

// isClientClaim reports whether the field k is a client claim, in any
// case and with '_' for '-': Go keeps X_Forwarded_For apart from
// X-Forwarded-For, but CGI, WSGI, Rack and PHP read both as
// HTTP_X_FORWARDED_FOR.
func isClientClaim(k string) bool {
	const xf = "x-forwarded-"
	if len(k) > len(xf) && sameFieldName(k[:len(xf)], xf) {
		return true
	}
	for _, c := range clientClaims {
		if sameFieldName(k, c) {
			return true
		}
	}
	return false
}

// sameFieldName reports whether a and b name the same field for an app
// that folds case and reads '_' as '-'.
func sameFieldName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldFieldByte(a[i]) != foldFieldByte(b[i]) {
			return false
		}
	}
	return true
}

func foldFieldByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// isTrusted reports whether remote (host:port) is in trusted_proxies.
func (r *Router) isTrusted(remote string) bool {
	trusted := r.settings().trusted
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// upgradeType returns the protocol a request asks to switch to ("" for
// none), as ReverseProxy reads it: Upgrade, when Connection names it.
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// isHopHeader reports whether k (canonical) is one of the hop-by-hop
// fields that RFC 2616 13.5.1 lists (the list ReverseProxy removes).
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// dropConnectionFields deletes from h the fields that the Connection
// header values conn name (RFC 9110 7.6.1: they are for this hop only).
func dropConnectionFields(h http.Header, conn []string) {
	for _, f := range conn {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
}

// removeHopHeaders removes hop-by-hop fields and those that Connection names.
func removeHopHeaders(h http.Header) {
	dropConnectionFields(h, h["Connection"])
	for k := range h {
		if isHopHeader(k) {
			delete(h, k)
		}
	}
}

// hasToken reports whether a comma-separated header contains token,
// ignoring case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}
