package bench

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// IdleConnsPerHost is the idle-connection pool size per upstream that the
// baseline uses, large enough for every benchmark's client concurrency so
// the baseline never closes and redials upstream connections (the default of
// 2 would make it measure dialing, not proxying).
const IdleConnsPerHost = 1024

// NewBaseline returns the floor cutover is measured against: a plain
// httputil.ReverseProxy to a single upstream ("host:port") over a clone of
// the default transport with a larger idle pool.
func NewBaseline(upstream string) http.Handler {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = IdleConnsPerHost
	t.MaxIdleConnsPerHost = IdleConnsPerHost
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.Transport = t
	return rp
}
