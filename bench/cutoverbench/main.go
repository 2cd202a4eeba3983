// Command cutoverbench runs cutover's router in-process with a blue and a
// green pool (one backend each, started separately) split by weight, and
// prints its public address as its first line of output. With -cpuprofile
// it writes a CPU profile of its whole life when it gets SIGINT or SIGTERM.
//
//	go run ./bench/cutoverbench -blue 127.0.0.1:8081 -green 127.0.0.1:8082 -weight 10
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cutover/cutover/bench"
)

func main() {
	blue := flag.String("blue", "", "blue backend host:port (required)")
	green := flag.String("green", "", "green backend host:port (required)")
	weight := flag.Float64("weight", 10, "green's (the candidate's) weight")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file on exit")
	flag.Parse()
	if *blue == "" || *green == "" {
		fmt.Fprintln(os.Stderr, "cutoverbench: -blue and -green are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *blue, *green, *weight, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "cutoverbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, blue, green string, weight float64, cpuprofile string) error {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := bench.StartCutover(ctx, blue, green, weight, logger)
	if err != nil {
		return err
	}
	fmt.Println(c.Addr)
	<-ctx.Done()
	return nil
}
