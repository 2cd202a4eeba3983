// Command cutover makes blue/green releases of HTTP services safe: it runs
// the daemon (cutover serve) and is the CLI that drives it. See the README.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cutover/cutover/internal/cli"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MainWith(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr, cli.Commands{
		Serve: func(ctx context.Context, o cli.ServeOptions, stdout, stderr io.Writer) int {
			return daemon.Serve(ctx, daemon.ServeOptions{Config: o.Config, AcceptEmptyStore: o.AcceptEmptyStore,
				StopInstancesOnExit: o.StopInstancesOnExit}, stdout, stderr)
		},
		Demo:      demo.Run,
		DemoApp:   demo.App,
		Preflight: daemon.PreflightChecker,
	})
	stop()
	os.Exit(code)
}
