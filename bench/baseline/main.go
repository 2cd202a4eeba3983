// Command baseline is the plain net/http/httputil reverse proxy that cutover's
// router must beat. It proxies everything to one upstream and prints the
// address it listens on as its first line of output.
//
//	go run ./bench/baseline -listen 127.0.0.1:0 -upstream 127.0.0.1:8081
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/cutover/cutover/bench"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "backend address host:port (required)")
	flag.Parse()
	if *upstream == "" {
		fmt.Fprintln(os.Stderr, "baseline: -upstream is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, upstream string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return bench.Serve(ctx, bench.NewServer(bench.NewBaseline(upstream)), ln)
}
