// Command awsfake runs the fake AWS endpoint of package awsfake as its own
// process, for trying cutover's AWS drivers by hand or from scripts:
//
//	awsfake -topology topology.json > created.json
//
// It builds the topology (load balancers, target groups with their
// targets, listeners, hosted zones, alarms), prints what it created as
// JSON (ARNs, CloudWatch dimensions, listener URLs, the environment for
// the SDK), and serves until interrupted. Test knobs are under
// /_awsfake/ (see awsfake.ControlPrefix).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/awsfake"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "awsfake:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("awsfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topo := fs.String("topology", "", "JSON file describing the resources to create")
	changeDelay := fs.Duration("change-delay", time.Second, "how long a Route53 change stays PENDING")
	metricDelay := fs.Duration("metric-delay", 0, "how long a request takes to appear in CloudWatch")
	health := fs.Duration("health-interval", 200*time.Millisecond, "ALB health check interval")
	verbose := fs.Bool("v", false, "log every API call to stderr")
	caBundle := fs.String("ca-bundle", "", "serve HTTPS and write its certificate (for AWS_CA_BUNDLE) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := awsfake.Options{ChangeSyncDelay: *changeDelay, MetricDelay: *metricDelay, HealthInterval: *health}
	if *changeDelay == 0 {
		opts.ChangeSyncDelay = -1
	}
	opts.TLS = *caBundle != ""
	if *verbose {
		opts.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	var t awsfake.Topology
	if *topo != "" {
		b, err := os.ReadFile(*topo)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return fmt.Errorf("%s: %w", *topo, err)
		}
	}
	s, err := awsfake.New(opts)
	if err != nil {
		return err
	}
	defer s.Close()
	if *caBundle != "" {
		if err := os.WriteFile(*caBundle, s.CABundle(), 0o644); err != nil {
			return err
		}
	}
	created, err := s.Build(t)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(created); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
