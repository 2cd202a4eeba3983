// Command switchtest checks that changing cutover's weights loses no request
// and takes effect at once. It runs the router in-process with a blue and a
// green backend, holds 32 keep-alive connections on it at full speed with a
// client that never retries, flips the weights 1,000 times (100/0 <-> 0/100,
// then 90/10 <-> 10/90) and prints what the clients saw. It exits 1 when a
// request failed or an old colour answered after a full swap.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cutover/cutover/bench"
)

func main() {
	var opts bench.SwitchOptions
	flag.IntVar(&opts.Conns, "conns", 32, "keep-alive connections")
	flag.IntVar(&opts.Flips, "flips", 1000, "weight changes (half full swaps, half 90/10 <-> 10/90)")
	flag.DurationVar(&opts.Hold, "hold", 0, "time between flips (default 10ms)")
	flag.Float64Var(&opts.Minor, "minor", 10, "candidate weight of a 90/10 split, in the router's unit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchtest:", err)
		os.Exit(2)
	}
	rep.Print(func(format string, args ...any) { fmt.Printf(format, args...) })
	if !rep.OK() {
		os.Exit(1)
	}
}

func run(ctx context.Context, opts bench.SwitchOptions) (*bench.SwitchReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blue, err := bench.StartBackend(ctx, "blue")
	if err != nil {
		return nil, err
	}
	green, err := bench.StartBackend(ctx, "green")
	if err != nil {
		return nil, err
	}
	c, err := bench.StartCutover(ctx, blue, green, 0, nil)
	if err != nil {
		return nil, err
	}
	opts.Addr, opts.Splitter = c.Addr, c.Router
	return bench.RunSwitchTest(ctx, opts)
}
