// Command backend is the tiny HTTP server put behind every proxy in the
// benchmark. It prints the address it listens on as its first line of output
// and answers every request with a short body and an X-Color header.
//
//	go run ./bench/backend -listen 127.0.0.1:0 -color blue
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
	color := flag.String("color", "blue", "colour named in the X-Color header and the body")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *color); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, color string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return bench.Serve(ctx, bench.NewServer(bench.NewBackend(color)), ln)
}
