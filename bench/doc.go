// Package bench measures cutover's data plane against its peers: a tiny
// backend to put behind every proxy, the plain net/http/httputil reverse
// proxy that serves as the floor, and helpers that stand up cutover's router
// in-process with a blue and a green pool.
//
// The programs under bench/ (backend, baseline, cutoverbench, switchtest) and
// run.sh use these pieces; bench_test.go compares the proxies with
// `go test -bench`. Nothing here reaches the cutover binary.
package bench
