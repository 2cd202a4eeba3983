// Package demo is `cutover demo`: a self-contained showcase that needs only
// the cutover binary. It starts a daemon in a temporary directory with the
// built-in demo web app (the hidden `cutover demo-app` command), puts load
// on it, deploys a good release with a canary and a bad one that the
// analysis rolls back, and prints what happened with the figures.
//
// Everything it starts it stops (unless --keep), and it talks to the daemon
// only through the typed API client, like any other user of cutover.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/deploy"
)

// Run runs the demo and returns the process exit code: 0 when the good
// release was promoted with no failed request and the bad one was rolled
// back, 1 otherwise, 2 for bad arguments.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "leave the daemon and the demo app running for exploration (stop with Ctrl-C)")
	rps := fs.Int("rps", 400, "requests per second of demo traffic")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cutover demo [--keep] [--rps N]\n\nA blue/green release start to finish on this machine: v1 live, v2 canaried\nwith zero failed requests, a bad v3 rolled back automatically.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *rps < 50 || *rps > 5000 {
		fmt.Fprintln(stderr, "cutover demo: --rps must be between 50 and 5000")
		return 2
	}
	d, err := setUp(*keep)
	if err != nil {
		fmt.Fprintf(stderr, "cutover demo: %v\n", err)
		return 1
	}
	defer d.cleanUp()
	if err := d.run(ctx, stdout, *rps, *keep); err != nil {
		fmt.Fprintf(stderr, "cutover demo: %v\n", err)
		fmt.Fprintf(stderr, "cutover demo: the daemon's log is in %s\n", filepath.Join(d.dir, "daemon.log"))
		return 1
	}
	return 0
}

type demo struct {
	dir                     string
	keepDir                 bool
	public, preview, apiURL string
	cfgPath                 string
	logFile                 *os.File
}

// setUp writes the demo's configuration into a fresh temporary directory.
func setUp(keep bool) (*demo, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the cutover binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "cutover-demo-")
	if err != nil {
		return nil, err
	}
	d := &demo{dir: dir, keepDir: keep}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	d.public, d.preview = "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]
	apiAddr := "127.0.0.1:" + ports[2]
	faults := filepath.Join(dir, "faults.json")
	if err := os.WriteFile(faults, []byte(`{"v3": {"error_rate": 0.05}}`+"\n"), 0o644); err != nil {
		return nil, err
	}
	d.cfgPath = filepath.Join(dir, "cutover.yaml")
	if err := os.WriteFile(d.cfgPath, []byte(demoConfig(exe, faults, apiAddr, d.public, d.preview)), 0o644); err != nil {
		return nil, err
	}
	return d, nil
}

// demoConfig is a real cutover.yaml; it is left in the demo directory so the
// user can read what produced the run. Pauses and analysis windows are
// short so the whole story fits in well under a minute.
func demoConfig(exe, faults, api, public, preview string) string {
	return fmt.Sprintf(`# Written by cutover demo.
api:
  listen: %s
state_dir: state
services:
  web:
    listen: %s
    preview_listen: %s
    instances: 2
    runtime:
      process:
        command: [%q, "demo-app", "--listen", "127.0.0.1:${PORT}", "--version", "${VERSION}", "--faults", %q]
        stop_timeout: 5s
        start_timeout: 20s
    health:
      path: /healthz
      interval: 250ms
      timeout: 1s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 5s
    strategy:
      steps:
        - {weight: 10, pause: 4s}
        - {weight: 50, pause: 4s}
      analysis:
        interval: 500ms
        max_error_rate: 1%%
        max_p99_latency: 500ms
        min_requests: 20
    keep_previous: 1h
    quiet_period: 2s
`, api, public, preview, exe, faults)
}

func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		out = append(out, port)
	}
	return out, nil
}

func (d *demo) cleanUp() {
	if d.logFile != nil {
		d.logFile.Close()
	}
	if !d.keepDir {
		os.RemoveAll(d.dir)
	}
}

// run starts the daemon in-process and tells the story.
func (d *demo) run(ctx context.Context, out io.Writer, rps int, keep bool) error {
	cfg, err := config.Load(d.cfgPath)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	d.logFile, err = os.Create(filepath.Join(d.dir, "daemon.log"))
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	dmn, err := daemon.New(cfg, daemon.Options{
		Logger:              slog.New(slog.NewTextHandler(d.logFile, nil)),
		Ready:               func(u string) { ready <- u },
		StopInstancesOnExit: true,
	})
	if err != nil {
		return err
	}
	dctx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	daemonDone := make(chan error, 1)
	go func() { daemonDone <- dmn.Run(dctx) }()
	defer func() {
		stopDaemon()
		<-daemonDone
	}()
	select {
	case d.apiURL = <-ready:
	case err := <-daemonDone:
		return fmt.Errorf("daemon did not start: %v", err)
	case <-time.After(15 * time.Second):
		return errors.New("daemon did not start within 15s")
	case <-ctx.Done():
		return ctx.Err()
	}
	c := client.New(d.apiURL, "", nil)
	s := &story{out: out, c: c, start: time.Now()}
	fmt.Fprintf(out, "cutover demo: a blue/green release, start to finish, on this machine\n\n")
	fmt.Fprintf(out, "  public router  http://%s   (what users hit)\n", d.public)
	fmt.Fprintf(out, "  preview        http://%s   (reaches only the candidate)\n", d.preview)
	fmt.Fprintf(out, "  control API    %s\n", d.apiURL)
	fmt.Fprintf(out, "  dashboard      %s/   (watch the release in a browser)\n", d.apiURL)
	fmt.Fprintf(out, "  config         %s\n", d.cfgPath)
	fmt.Fprintf(out, "  traffic        ~%d req/s from a client that never retries\n\n", rps)
	return s.tell(ctx, d, rps, keep)
}

// story is the demo's three acts and their figures.
type story struct {
	out   io.Writer
	c     *client.Client
	start time.Time
	load  *load
}

func (s *story) tell(ctx context.Context, d *demo, rps int, keep bool) error {
	fmt.Fprintln(s.out, "1/3  v1 goes live (the first deployment of a service needs no canary)")
	if _, err := s.deployAndFollow(ctx, "v1", deploy.OutcomePromoted); err != nil {
		return err
	}
	s.load = newLoad("http://" + d.public + "/?format=json")
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { s.load.run(lctx, 8, rps); close(loadDone) }()
	defer func() { stopLoad(); <-loadDone }()
	time.Sleep(time.Second) // let traffic reach a steady rate before the switch

	fmt.Fprintln(s.out, "\n2/3  v2 with a canary: 10% -> 50% -> 100%, analysed every 500ms")
	before := s.load.snapshot()
	v2, err := s.deployAndFollow(ctx, "v2", deploy.OutcomePromoted)
	if err != nil {
		return err
	}
	during := s.load.snapshot().since(before)
	fmt.Fprintf(s.out, "     promoted: %d requests during the switch, %d failed\n", during.total, during.failed)

	fmt.Fprintln(s.out, "\n3/3  v3, which fails 5% of its requests: the analysis should roll it back")
	v3, err := s.deployAndFollow(ctx, "v3", deploy.OutcomeRolledBack)
	if err != nil {
		return err
	}
	firstErr, decided := s.load.firstError("v3"), decisionTime(v3)
	var detect time.Duration
	if !firstErr.IsZero() && !decided.IsZero() {
		detect = decided.Sub(firstErr)
	}
	fmt.Fprintf(s.out, "     rolled back: %s\n", v3.Reason)

	total := s.load.snapshot()
	fmt.Fprintln(s.out, "\nSummary")
	fmt.Fprintf(s.out, "  requests served                 %d (v1 %d, v2 %d, v3 %d)\n", total.total,
		sum(total.byVersion["v1"]), sum(total.byVersion["v2"]), sum(total.byVersion["v3"]))
	fmt.Fprintf(s.out, "  failed requests, v2 switch      %d\n", during.failed)
	fmt.Fprintf(s.out, "  v2 canary took                  %s\n", v2.EndedAt.Sub(v2.StartedAt).Round(100*time.Millisecond))
	if detect > 0 {
		fmt.Fprintf(s.out, "  v3 first error -> rolled back   %s\n", detect.Round(10*time.Millisecond))
	}
	fmt.Fprintf(s.out, "  v3 requests that failed         %d of %d (users exposed only at the 10%% step)\n",
		total.byVersion["v3"].fail, sum(total.byVersion["v3"]))
	fmt.Fprintf(s.out, "  whole demo                      %s\n", time.Since(s.start).Round(100*time.Millisecond))
	if during.failed != 0 {
		return fmt.Errorf("%d requests failed during the v2 switch; cutover promises none", during.failed)
	}
	if !keep {
		fmt.Fprintln(s.out, "\nTo explore afterwards (the dashboard, status, history, metrics, the page itself), run: cutover demo --keep")
		return nil
	}
	// The load keeps running (until Ctrl-C), so that the dashboard's charts
	// and a deployment started from it have traffic to show and judge.
	fmt.Fprintf(s.out, "\n--keep: the daemon is running with v2 live and ~%d req/s of traffic; Ctrl-C to stop. Try:\n", rps)
	fmt.Fprintf(s.out, "  open %s/                     the dashboard: deploy, pause, roll back from the page\n", d.apiURL)
	fmt.Fprintf(s.out, "  open http://%s                     the demo page (reload it: blue or green?)\n", d.public)
	fmt.Fprintf(s.out, "  cutover status web --api %s\n", d.apiURL)
	fmt.Fprintf(s.out, "  cutover history web --api %s\n", d.apiURL)
	fmt.Fprintf(s.out, "  cutover deploy web v4 --wait --api %s\n", d.apiURL)
	fmt.Fprintf(s.out, "  curl %s/metrics\n", d.apiURL)
	<-ctx.Done()
	return nil
}

// decisionTime is when the controller decided to roll back: the time of the
// recorded decision (the candidate's drain and stop come after it).
func decisionTime(dep deploy.Deployment) time.Time {
	for i := len(dep.Events) - 1; i >= 0; i-- {
		if ev := dep.Events[i]; ev.Type == deploy.EventDecision && ev.Verdict != nil {
			return ev.Time
		}
	}
	return dep.EndedAt
}

func sum(t tally) uint64 { return t.ok + t.fail }

// deployAndFollow starts a deployment, prints one progress line a second
// until it ends, and checks it ended as expected.
func (s *story) deployAndFollow(ctx context.Context, version string, want deploy.Outcome) (deploy.Deployment, error) {
	started := time.Now()
	dep, err := s.c.Deploy(ctx, "web", version, "")
	if err != nil {
		return dep, fmt.Errorf("deploy %s: %w", version, err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prev snapshot
	if s.load != nil {
		prev = s.load.snapshot()
	}
	deadline := time.After(45 * time.Second)
	for {
		select {
		case <-ctx.Done():
			return dep, ctx.Err()
		case <-deadline:
			return dep, fmt.Errorf("deployment of %s did not finish within 45s", version)
		case <-tick.C:
		}
		got, err := s.find(ctx, dep.ID)
		if err != nil {
			return dep, err
		}
		if got.Outcome != deploy.OutcomeRunning && got.Outcome != "" {
			if got.Outcome != want {
				return got, fmt.Errorf("deployment of %s ended %s, expected %s: %s", version, got.Outcome, want, got.Reason)
			}
			fmt.Fprintf(s.out, "     [%5.1fs] %s %s\n", time.Since(started).Seconds(), got.Outcome, version)
			return got, nil
		}
		st, err := s.c.Status(ctx, "web")
		if err != nil {
			return dep, err
		}
		line := fmt.Sprintf("     [%5.1fs] %-12s weights blue %5.1f%% green %5.1f%%", time.Since(started).Seconds(), st.Phase, st.Weights["blue"], st.Weights["green"])
		if st.Deployment != nil && st.Deployment.Step > 0 {
			line += fmt.Sprintf("  step %d/%d", st.Deployment.Step, st.Deployment.Steps)
		}
		if s.load != nil {
			cur := s.load.snapshot()
			w := cur.since(prev)
			prev = cur
			for _, c := range []string{"blue", "green"} {
				t := w.byColor[c]
				line += fmt.Sprintf(" | %s %d rps %.1f%% err", c, sum(t), pct(t.fail, sum(t)))
			}
		}
		if st.Analysis != nil {
			line += " | analysis " + string(st.Analysis.Result)
		}
		fmt.Fprintln(s.out, strings.TrimRight(line, " "))
	}
}

func (s *story) find(ctx context.Context, id string) (deploy.Deployment, error) {
	hist, err := s.c.History(ctx, "web", 5)
	if err != nil {
		return deploy.Deployment{}, err
	}
	for _, h := range hist {
		if h.ID == id {
			return h, nil
		}
	}
	return deploy.Deployment{}, fmt.Errorf("deployment %s is missing from history", id)
}

func pct(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
