package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/awsfake"
)

// These tests run the real binary against internal/awsfake: the SDK's
// default chain reaches the fake through AWS_ENDPOINT_URL, the fake ALB's
// data plane forwards real requests to the process runtime's instances
// (which cutover registers in the target groups), and the fake CloudWatch
// serves the data plane's own counts as 1-second metrics after a delay.

// metricDelay is the fake CloudWatch's publication delay in these tests.
const metricDelay = time.Second

// awsEnv is one test's fake AWS with an ALB and a cutover configured to use it.
type awsEnv struct {
	*env
	fake            *awsfake.Server
	listener        awsfake.Listener
	test            awsfake.Listener
	blueTG, greenTG awsfake.TargetGroup
	// extraEnv is added to the daemon's environment.
	extraEnv []string
}

// newALBEnv builds the fake ALB (blue and green ip target groups, a
// production listener and a test listener) and a cutover config with
// traffic.alb and the given steps and extra analysis lines.
func newALBEnv(t *testing.T, analysisExtra string, steps ...string) *awsEnv {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{MetricDelay: metricDelay, HealthInterval: 200 * time.Millisecond})
	elb := fake.ELB()
	lb := elb.CreateLoadBalancer("prod")
	hc := awsfake.HealthCheck{Path: "/healthz"}
	blue := elb.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-blue", TargetType: "ip", HealthCheck: hc, DeregistrationDelay: time.Second})
	green := elb.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-green", TargetType: "ip", HealthCheck: hc, DeregistrationDelay: time.Second})
	ln, err := elb.CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: blue.ARN, Weight: 1}, awsfake.Weight{TargetGroupARN: green.ARN, Weight: 0})
	if err != nil {
		t.Fatalf("fake listener: %v", err)
	}
	test, err := elb.CreateListener(lb.ARN, 8080, awsfake.Weight{TargetGroupARN: green.ARN, Weight: 1})
	if err != nil {
		t.Fatalf("fake test listener: %v", err)
	}
	e := newEnvKeep(t, "1h", steps...)
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "    health:\n", fmt.Sprintf(`    traffic:
      alb:
        listener_arn: %s
        target_groups: {blue: %s, green: %s}
        test_listener_arn: %s
    health:
`, ln.ARN, blue.ARN, green.ARN, test.ARN), 1)
	cfg = strings.Replace(cfg, "        min_requests: 20\n", "        min_requests: 20\n"+analysisExtra, 1)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &awsEnv{env: e, fake: fake, listener: ln, test: test, blueTG: blue, greenTG: green}
}

// startAWS runs `cutover serve` with the fake's environment (endpoint,
// region, static keys), its config set to 1-second CloudWatch periods
// read once the fake's delay has passed (strategy.analysis.cloudwatch).
func (a *awsEnv) startAWS() {
	a.t.Helper()
	e := a.env
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	if cfg := string(b); !strings.Contains(cfg, "cloudwatch:") {
		cw := fmt.Sprintf("        cloudwatch: {period: 1s, delay: %s}\n", metricDelay+500*time.Millisecond)
		cfg = strings.Replace(cfg, "        min_requests: 20\n", "        min_requests: 20\n"+cw, 1)
		if !strings.Contains(cfg, "cloudwatch:") {
			a.t.Fatalf("no strategy.analysis to add cloudwatch to in:\n%s", cfg)
		}
		if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
			a.t.Fatal(err)
		}
	}
	e.daemonMu.Lock()
	defer e.daemonMu.Unlock()
	e.logs = &lockedWriter{}
	cmd := exec.Command(binary, "serve", "-c", e.cfg)
	cmd.Env = append(append(os.Environ(), a.fake.Env()...), a.extraEnv...)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	e.daemon, e.exited = cmd, make(chan struct{})
	go func(ch chan struct{}) { cmd.Wait(); close(ch) }(e.exited)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + e.api + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-e.exited:
			a.t.Fatalf("cutover serve exited during start-up:\n%s", e.logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
	a.t.Fatalf("cutover serve did not answer within 20s:\n%s", e.logs)
}

// weights returns the fake listener's forward weights as blue, green.
func (a *awsEnv) weights() (blue, green int) {
	a.t.Helper()
	ws, err := a.fake.ELB().Forward(a.listener.ARN)
	if err != nil {
		a.t.Fatal(err)
	}
	for _, w := range ws {
		switch w.TargetGroupARN {
		case a.blueTG.ARN:
			blue = w.Weight
		case a.greenTG.ARN:
			green = w.Weight
		}
	}
	return blue, green
}

// albTraffic is a client that never retries, sending POSTs to the fake
// ALB's data plane from a few keep-alive connections until stopped.
type albTraffic struct {
	ok, failed atomic.Uint64
	mu         sync.Mutex
	versions   map[string]uint64
	lastErr    atomic.Value
	stop       context.CancelFunc
	done       sync.WaitGroup
}

func startALBTraffic(t *testing.T, url string, workers int) *albTraffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &albTraffic{stop: cancel, versions: map[string]uint64{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	for range workers {
		tr.done.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/?format=json", strings.NewReader("x"))
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					if err == nil {
						resp.Body.Close()
					}
					return
				}
				if err != nil {
					tr.failed.Add(1)
					tr.lastErr.Store(err.Error())
					time.Sleep(5 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				v := resp.Header.Get("X-Version")
				if resp.StatusCode != http.StatusOK {
					tr.failed.Add(1)
					tr.lastErr.Store(fmt.Sprintf("status %d from %q", resp.StatusCode, v))
				} else {
					tr.ok.Add(1)
				}
				tr.mu.Lock()
				tr.versions[v]++
				tr.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(tr.halt)
	return tr
}

func (tr *albTraffic) halt() { tr.stop(); tr.done.Wait() }

func (tr *albTraffic) served(v string) uint64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.versions[v]
}

// deployLive makes v1 live on blue through the ALB.
func (a *awsEnv) deployLive() {
	a.t.Helper()
	a.mustCLI(0, "deploy", "web", "v1", "--wait", "--strategy", "all-at-once")
	a.waitFor("v1 live", 30*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v1" })
	if b, g := a.weights(); b == 0 || g != 0 {
		a.t.Fatalf("after the first deployment the listener forwards blue %d green %d, want all to blue", b, g)
	}
}

// history returns the service's history as JSON text.
func (a *awsEnv) history() string {
	return a.mustCLI(0, "history", "web", "--json")
}

func TestAWSALBShiftsByListenerWeightsWithoutFailedRequests(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 10, pause: 2s}", "{weight: 50, pause: 2s}")
	a.startAWS()
	a.deployLive()
	tr := startALBTraffic(t, a.listener.URL, 4)
	time.Sleep(500 * time.Millisecond)

	// Watch the weights the fake ALB holds while the deployment runs.
	seen := map[[2]int]bool{}
	var seenMu sync.Mutex
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			b, g := a.weights()
			seenMu.Lock()
			seen[[2]int{b, g}] = true
			seenMu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	a.mustCLI(0, "deploy", "web", "v2", "--wait")
	took := time.Since(start)
	close(stop)
	watch.Wait()
	time.Sleep(300 * time.Millisecond)
	tr.halt()

	for _, want := range [][2]int{{900, 100}, {500, 500}, {0, 999}} {
		if !seen[want] {
			t.Errorf("the listener never forwarded blue %d / green %d; seen %v", want[0], want[1], seen)
		}
	}
	for w := range seen {
		if w[0] == 0 && w[1] == 0 {
			t.Errorf("the listener forwarded with both weights 0")
		}
	}
	if n := tr.failed.Load(); n != 0 {
		t.Errorf("%d requests failed through the fake ALB during the weight changes (last: %v)", n, tr.lastErr.Load())
	}
	if tr.served("v2") == 0 || tr.served("v1") == 0 {
		t.Errorf("both versions should have served: v1 %d, v2 %d", tr.served("v1"), tr.served("v2"))
	}
	t.Logf("ALB weight changes 10/50/100: %d requests, %d failed; v1 %d, v2 %d; deployment took %s",
		tr.ok.Load()+tr.failed.Load(), tr.failed.Load(), tr.served("v1"), tr.served("v2"), took.Round(time.Millisecond))

	out := a.mustCLI(0, "status", "web")
	if !strings.Contains(out, "alb: weights blue 0% green 100%") {
		t.Errorf("status does not show the ALB's actual weights:\n%s", out)
	}
	// The load balancer's own 5xx (per load balancer in CloudWatch, no
	// colour named): none, since no request failed.
	if !strings.Contains(out, "alb: load balancer 5xx since the daemon started: 0 (HTTPCode_ELB_5XX_Count") {
		t.Errorf("status does not show the load balancer's own 5xx:\n%s", out)
	}
	var st struct {
		Traffic struct {
			Engine  string             `json:"engine"`
			Weights map[string]float64 `json:"weights"`
			LB5xx   *uint64            `json:"load_balancer_5xx"`
		} `json:"traffic"`
	}
	if err := json.Unmarshal([]byte(a.mustCLI(0, "status", "web", "--json")), &st); err != nil || st.Traffic.Engine != "alb" || st.Traffic.Weights["green"] != 100 ||
		st.Traffic.LB5xx == nil || *st.Traffic.LB5xx != 0 {
		t.Errorf("status --json traffic = %+v (%v)", st.Traffic, err)
	}
}

func TestAWSALBBadVersionRolledBackByCloudWatch(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 50, pause: 60s}")
	a.startAWS()
	a.deployLive()
	tr := startALBTraffic(t, a.listener.URL, 4)
	time.Sleep(500 * time.Millisecond)

	a.mustCLI(0, "deploy", "web", "bad")
	var shifted time.Time
	a.waitFor("the bad version taking weight", 30*time.Second, func(s status) bool {
		if s.Phase == "shifting" && shifted.IsZero() {
			shifted = time.Now()
		}
		return !shifted.IsZero()
	})
	a.waitFor("rollback", 60*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v1" })
	took := time.Since(shifted)
	if b, g := a.weights(); g != 0 || b == 0 {
		t.Errorf("after the rollback the listener forwards blue %d green %d", b, g)
	}
	tr.halt()
	h := a.history()
	if !strings.Contains(h, "rolled_back") || !strings.Contains(h, "error rate") {
		t.Errorf("history does not record the CloudWatch-fed verdict:\n%s", h)
	}
	t.Logf("bad version rolled back %s after it took 50%% (CloudWatch 1s periods, %s publication delay, analysis every 300ms); %d requests served, %d failed (the bad version's own 5xx)",
		took.Round(10*time.Millisecond), metricDelay, tr.ok.Load()+tr.failed.Load(), tr.failed.Load())
	if took > 30*time.Second {
		t.Errorf("rollback took %s", took)
	}
}

func TestAWSALBAlarmRollsBack(t *testing.T) {
	a := newALBEnv(t, "        alarms: [web-5xx]\n", "{weight: 10, pause: 60s}")
	a.fake.CloudWatch().PutAlarm(awsfake.AlarmSpec{Name: "web-5xx", Threshold: 5,
		Dimensions: map[string]string{"TargetGroup": a.greenTG.Dimension}})
	a.startAWS()
	a.deployLive()
	a.mustCLI(0, "deploy", "web", "v2")
	a.waitFor("shifting", 30*time.Second, func(s status) bool { return s.Phase == "shifting" })
	reason := "Threshold Crossed: 1 datapoint [9.0] was greater than the threshold (5.0)."
	if err := a.fake.CloudWatch().SetAlarm("web-5xx", awsfake.AlarmAlarm, reason); err != nil {
		t.Fatal(err)
	}
	fired := time.Now()
	a.waitFor("rollback on the alarm", 20*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v1" })
	t.Logf("alarm in ALARM to rolled back: %s", time.Since(fired).Round(10*time.Millisecond))
	h := a.history()
	if !strings.Contains(h, "web-5xx") || !strings.Contains(h, "Threshold Crossed") {
		t.Errorf("history does not carry the alarm and its reason:\n%s", h)
	}
	if _, g := a.weights(); g != 0 {
		t.Errorf("green keeps weight %d after the alarm's rollback", g)
	}
}

func TestAWSALBWeightsChangedBehindCutoverRefused(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 10, pause: 3s}", "{weight: 50, pause: 3s}")
	a.startAWS()
	a.deployLive()
	// The dry run names the calls and changes nothing.
	plan := a.mustCLI(0, "deploy", "web", "v2", "--dry-run", "-c", a.cfg)
	for _, want := range []string{"live blue, candidate green", "elasticloadbalancing:ModifyListener ListenerArn=" + a.listener.ARN,
		a.greenTG.ARN + " weight 100] (10% on green)", a.greenTG.ARN + " weight 500] (50% on green)", "DescribeTargetHealth"} {
		if !strings.Contains(plan, want) {
			t.Errorf("deploy --dry-run lacks %q:\n%s", want, plan)
		}
	}
	if st := a.status(); st.Phase != "idle" {
		t.Errorf("deploy --dry-run started something: %+v", st)
	}
	startALBTraffic(t, a.listener.URL, 2)
	a.mustCLI(0, "deploy", "web", "v2")
	a.waitFor("step 1", 30*time.Second, func(s status) bool { return s.Phase == "shifting" })
	// Someone in the console moves the weights.
	if err := a.fake.ELB().SetForward(a.listener.ARN, awsfake.Weight{TargetGroupARN: a.blueTG.ARN, Weight: 700},
		awsfake.Weight{TargetGroupARN: a.greenTG.ARN, Weight: 300}); err != nil {
		t.Fatal(err)
	}
	a.waitFor("the deployment paused", 20*time.Second, func(s status) bool { return s.Phase == "paused" })
	if b, g := a.weights(); b != 700 || g != 300 {
		t.Errorf("cutover overwrote the console's weights: blue %d green %d", b, g)
	}
	out := a.mustCLI(0, "status", "web")
	if !strings.Contains(out, "drift") || !strings.Contains(out, "changed outside cutover") {
		t.Errorf("status does not say the weights were changed behind cutover's back:\n%s", out)
	}
	h := a.history()
	if !strings.Contains(h, "changed outside cutover") {
		t.Errorf("history does not say why the deployment paused:\n%s", h)
	}
	// Put them back as cutover last wrote them (step 1's 10%): it writes
	// the split it holds, and resume goes on.
	if err := a.fake.ELB().SetForward(a.listener.ARN, awsfake.Weight{TargetGroupARN: a.blueTG.ARN, Weight: 900},
		awsfake.Weight{TargetGroupARN: a.greenTG.ARN, Weight: 100}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b, g := a.weights(); b != 500 || g != 500; b, g = a.weights() {
		if time.Now().After(deadline) {
			t.Fatalf("once set back, the listener should get the paused step's 50%%; it forwards blue %d green %d", b, g)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.mustCLI(0, "resume", "web")
	a.waitFor("promoted", 40*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v2" })
	if b, g := a.weights(); b != 0 || g != 999 {
		t.Errorf("after the promotion the listener forwards blue %d green %d", b, g)
	}
}

func TestAWSALBThrottlingSurvived(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 50, pause: 1s}")
	a.startAWS()
	a.deployLive()
	tr := startALBTraffic(t, a.listener.URL, 2)
	before := a.fake.Calls("elasticloadbalancing", "ModifyListener")
	a.fake.Throttle("elasticloadbalancing", "ModifyListener", 4)
	a.fake.Throttle("elasticloadbalancing", "DescribeTargetHealth", 4)
	a.mustCLI(0, "deploy", "web", "v2", "--wait")
	if b, g := a.weights(); b != 0 || g != 999 {
		t.Errorf("after a throttled deployment the listener forwards blue %d green %d", b, g)
	}
	tr.halt()
	if n := tr.failed.Load(); n != 0 {
		t.Errorf("%d requests failed through the fake ALB while its API throttled (last: %v)", n, tr.lastErr.Load())
	}
	if n := a.fake.Calls("elasticloadbalancing", "ModifyListener") - before; n < 6 {
		t.Errorf("ModifyListener was called %d times; the 4 throttled calls should have been retried", n)
	}
}

// TestAWSALBFailingCallsPauseAtASafeWeight: the ALB's API answers 503 to
// every ModifyListener, long past the SDK's retries (AWS_MAX_ATTEMPTS=2
// makes that quick), when the deployment moves from 10% to 50%. It
// pauses there saying why in status and history, the listener keeps the
// 10% split it had (never half of a change, never both weights 0, no
// failed request), and once the API answers again the driver writes the
// held 50% by itself and `cutover resume` goes on to the promotion.
func TestAWSALBFailingCallsPauseAtASafeWeight(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 10, pause: 2s}", "{weight: 50, pause: 1s}")
	a.extraEnv = []string{"AWS_MAX_ATTEMPTS=2"}
	a.startAWS()
	a.deployLive()
	tr := startALBTraffic(t, a.listener.URL, 2)
	seen := map[[2]int]bool{}
	var seenMu sync.Mutex
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			b, g := a.weights()
			seenMu.Lock()
			seen[[2]int{b, g}] = true
			seenMu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	a.mustCLI(0, "deploy", "web", "v2")
	deadline := time.Now().Add(30 * time.Second)
	for b, g := a.weights(); b != 900 || g != 100; b, g = a.weights() {
		if time.Now().After(deadline) {
			t.Fatalf("step 1 never reached the listener: blue %d green %d", b, g)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := a.fake.Calls("elasticloadbalancing", "ModifyListener")
	a.fake.Unavailable("elasticloadbalancing", "ModifyListener", -1)
	a.waitFor("paused", 30*time.Second, func(s status) bool { return s.Phase == "paused" })
	paused := time.Now()
	tries := a.fake.Calls("elasticloadbalancing", "ModifyListener") - before
	if tries < 2 {
		t.Errorf("ModifyListener was tried %d times before the pause; the SDK should have retried it", tries)
	}
	out := a.mustCLI(0, "status", "web")
	if !strings.Contains(out, "alb pending:") || !strings.Contains(out, "keeps failing") || !strings.Contains(out, "ServiceUnavailable") {
		t.Errorf("status does not say the split is pending and why:\n%s", out)
	}
	if !strings.Contains(out, "alb: weights blue 90% green 10%") {
		t.Errorf("status does not show the ALB still at 10%%:\n%s", out)
	}
	if h := a.history(); !strings.Contains(h, "paused") || !strings.Contains(h, "keeps failing") {
		t.Errorf("history does not say why the deployment paused:\n%s", h)
	}
	// Held at 10% while the API fails, the driver retrying meanwhile.
	time.Sleep(2 * time.Second)
	if b, g := a.weights(); b != 900 || g != 100 {
		t.Errorf("while ModifyListener fails the listener forwards blue %d green %d, want the 10%% split it had", b, g)
	}
	if st := a.status(); st.Phase != "paused" {
		t.Errorf("phase %q while the API fails, want paused", st.Phase)
	}
	retried := a.fake.Calls("elasticloadbalancing", "ModifyListener") - before
	a.fake.ClearFaults()
	deadline = time.Now().Add(20 * time.Second)
	for b, g := a.weights(); b != 500 || g != 500; b, g = a.weights() {
		if time.Now().After(deadline) {
			t.Fatalf("once the API answers, the held 50%% should be written; the listener forwards blue %d green %d", b, g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	written := time.Since(paused)
	a.mustCLI(0, "resume", "web")
	a.waitFor("promoted", 40*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v2" })
	close(stop)
	watch.Wait()
	tr.halt()
	if b, g := a.weights(); b != 0 || g != 999 {
		t.Errorf("after the promotion the listener forwards blue %d green %d", b, g)
	}
	if out := a.mustCLI(0, "status", "web"); strings.Contains(out, "pending") {
		t.Errorf("status still shows a pending write after the promotion:\n%s", out)
	}
	for w := range seen {
		switch w {
		case [2]int{999, 0}, [2]int{900, 100}, [2]int{500, 500}, [2]int{0, 999}:
		default:
			t.Errorf("the listener held blue %d / green %d, a split cutover never asked for", w[0], w[1])
		}
	}
	if n := tr.failed.Load(); n != 0 {
		t.Errorf("%d requests failed through the fake ALB while its API failed (last: %v)", n, tr.lastErr.Load())
	}
	t.Logf("ModifyListener failing: paused at 10%% (%d calls by the time status said paused, %d more while paused); 50%% written %s after the pause was seen (API back after 2s of it); %d requests, %d failed",
		tries, retried-tries, written.Round(10*time.Millisecond), tr.ok.Load()+tr.failed.Load(), tr.failed.Load())
}

// r53Env is a fake Route53 zone with two weighted alias records to two
// fake ALBs, one per colour, each forwarding to its colour's target group.
type r53Env struct {
	*env
	fake            *awsfake.Server
	zone            awsfake.HostedZone
	urls            map[string]string // alias DNS name -> listener URL
	blueTG, greenTG awsfake.TargetGroup
}

const r53TTL = 2 * time.Second

func newRoute53Env(t *testing.T, keep string, steps ...string) *r53Env {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{MetricDelay: metricDelay, ChangeSyncDelay: 500 * time.Millisecond, HealthInterval: 200 * time.Millisecond})
	elb := fake.ELB()
	hc := awsfake.HealthCheck{Path: "/healthz"}
	r := &r53Env{fake: fake, urls: map[string]string{}}
	var dns [2]string
	for i, name := range []string{"blue", "green"} {
		lb := elb.CreateLoadBalancer(name + "-lb")
		tg := elb.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-" + name, TargetType: "ip", HealthCheck: hc, DeregistrationDelay: time.Second})
		ln, err := elb.CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: tg.ARN, Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		r.urls[strings.TrimSuffix(lb.DNSName, ".")+"."] = ln.URL
		dns[i] = lb.DNSName
		if i == 0 {
			r.blueTG = tg
		} else {
			r.greenTG = tg
		}
	}
	r.zone = fake.Route53().CreateHostedZone("example.com.")
	// The write-ups' catch-all: www fails over from the weighted records
	// to a static S3 website.
	if err := fake.Route53().SetRecord(r.zone.ID, awsfake.Record{Name: "www.example.com.", Type: "A", SetIdentifier: "primary", Failover: "PRIMARY",
		Alias: &awsfake.Alias{HostedZoneID: r.zone.ID, DNSName: "api.example.com.", EvaluateTargetHealth: true}}); err != nil {
		t.Fatal(err)
	}
	if err := fake.Route53().SetRecord(r.zone.ID, awsfake.Record{Name: "www.example.com.", Type: "A", SetIdentifier: "catch-all", Failover: "SECONDARY",
		Alias: &awsfake.Alias{HostedZoneID: "Z3AQBSTGFYJSTF", DNSName: "s3-website-us-east-1.amazonaws.com."}}); err != nil {
		t.Fatal(err)
	}
	e := newEnvKeep(t, keep, steps...)
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "    health:\n", fmt.Sprintf(`    traffic:
      route53:
        hosted_zone_id: %s
        record: api.example.com.
        type: A
        ttl: %s
        targets:
          blue: {alias: %s, zone: Z35SXDOTRQ7X7K}
          green: {alias: %s, zone: Z35SXDOTRQ7X7K}
        target_groups: {blue: %s, green: %s}
        failover_record: www.example.com.
    health:
`, r.zone.ID, r53TTL, dns[0], dns[1], r.blueTG.ARN, r.greenTG.ARN), 1)
	cfg = strings.Replace(cfg, "    quiet_period: 1s\n", "    quiet_period: 3s\n", 1)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.env = e
	return r
}

func (r *r53Env) startAWS() {
	r.t.Helper()
	(&awsEnv{env: r.env, fake: r.fake}).startAWS()
}

// dnsClient resolves api.example.com through the fake's name servers,
// keeps the answer for the TTL as a resolver would, and sends POSTs to the
// ALB it names, never retrying. pin, when set, is a client that ignores
// TTLs and keeps using the first answer naming that ALB.
type dnsClient struct {
	albTraffic
	lastTo map[string]time.Time // alias -> when the last request to it ended
}

func (r *r53Env) startDNSClient(workers int, pin string, stopAfter time.Duration) *dnsClient {
	ctx, cancel := context.WithCancel(context.Background())
	if stopAfter > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), stopAfter)
	}
	c := &dnsClient{albTraffic: albTraffic{stop: cancel, versions: map[string]uint64{}}, lastTo: map[string]time.Time{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	for range workers {
		c.done.Go(func() {
			var target string
			var until time.Time
			for ctx.Err() == nil {
				if pin != "" {
					target = pin
				} else if time.Now().After(until) {
					rec, ok := r.fake.Route53().Resolve(r.zone.ID, "api.example.com.", "A")
					if !ok || rec.Alias == nil {
						c.failed.Add(1)
						c.lastErr.Store("no DNS answer")
						time.Sleep(50 * time.Millisecond)
						continue
					}
					target, until = strings.TrimSuffix(rec.Alias.DNSName, ".")+".", time.Now().Add(r53TTL)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.urls[target]+"/?format=json", strings.NewReader("x"))
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					if err == nil {
						resp.Body.Close()
					}
					return
				}
				if err != nil {
					c.failed.Add(1)
					c.lastErr.Store(err.Error())
					time.Sleep(5 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				v := resp.Header.Get("X-Version")
				if resp.StatusCode != http.StatusOK {
					c.failed.Add(1)
					c.lastErr.Store(fmt.Sprintf("status %d from %q via %s", resp.StatusCode, v, target))
				} else {
					c.ok.Add(1)
				}
				c.mu.Lock()
				c.versions[v]++
				c.lastTo[target] = time.Now()
				c.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	r.t.Cleanup(c.halt)
	return c
}

// historyEvents reads the newest deployment's events from history --json.
func historyEvents(t *testing.T, e *env) []struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Message string    `json:"message"`
} {
	t.Helper()
	var ds []struct {
		Events []struct {
			Time    time.Time `json:"time"`
			Type    string    `json:"type"`
			Message string    `json:"message"`
		} `json:"events"`
	}
	out := e.mustCLI(0, "history", "web", "--json")
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) == 0 {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	return ds[0].Events
}

func TestAWSRoute53HonoursTTLBeforeJudgingAndRetiring(t *testing.T) {
	r := newRoute53Env(t, "1s", "{weight: 50, pause: 2s}")
	r.startAWS()
	r.mustCLI(0, "deploy", "web", "v1", "--wait", "--strategy", "all-at-once")
	blueAlias := ""
	for a := range r.urls {
		if strings.HasPrefix(a, "blue-lb") {
			blueAlias = a
		}
	}
	c := r.startDNSClient(3, "", 0)
	time.Sleep(time.Second)

	start := time.Now()
	r.mustCLI(0, "deploy", "web", "v2", "--wait")
	promoted := time.Now()
	// A client that ignores TTLs keeps using blue's ALB for 6 s more:
	// blue must not be retired under it.
	pinned := r.startDNSClient(1, blueAlias, 6*time.Second)

	// The step's clock started after INSYNC + TTL: the step lasted at
	// least TTL + pause, and history says when its clock started.
	evs := historyEvents(t, r.env)
	var stepAt, appliedAt, passedAt time.Time
	for _, ev := range evs {
		switch {
		case ev.Type == "step" && strings.Contains(ev.Message, "step 1 of 1"):
			stepAt = ev.Time
		case ev.Type == "step" && strings.Contains(ev.Message, "applied by the router"):
			appliedAt = ev.Time
		case ev.Type == "decision" && strings.Contains(ev.Message, "passed"):
			passedAt = ev.Time
		}
	}
	if stepAt.IsZero() || appliedAt.IsZero() || passedAt.IsZero() {
		t.Fatalf("history lacks the step, its settling or its verdict: %+v", evs)
	}
	if d := passedAt.Sub(stepAt); d < r53TTL+2*time.Second {
		t.Errorf("the 2s step passed %s after its weights were written; INSYNC + TTL %s + pause should come first", d, r53TTL)
	}
	t.Logf("Route53 step: written %s, INSYNC %s later, judged from INSYNC + TTL, passed %s after written; deployment %s",
		stepAt.Format("15:04:05.000"), appliedAt.Sub(stepAt).Round(time.Millisecond), passedAt.Sub(stepAt).Round(time.Millisecond), promoted.Sub(start).Round(time.Millisecond))

	// Blue is retired only once TTL has passed since its weight went 0 and
	// CloudWatch saw it quiet for quiet_period (3s) after the pinned client stopped.
	st := r.waitFor("blue retired", 60*time.Second, func(s status) bool { return s.Previous == nil })
	retired := time.Now()
	pinned.halt()
	c.halt()
	pinned.mu.Lock()
	lastBlue := pinned.lastTo[blueAlias]
	pinned.mu.Unlock()
	if st.Live == nil || st.Live.Version != "v2" {
		t.Fatalf("live is %+v", st.Live)
	}
	if n := pinned.failed.Load(); n != 0 {
		t.Errorf("the client that ignores TTLs got %d failed requests from blue: it was retired under it (last: %v)", n, pinned.lastErr.Load())
	}
	if n := c.failed.Load(); n != 0 {
		t.Errorf("the TTL-honouring client got %d failed requests (last: %v)", n, c.lastErr.Load())
	}
	if gap := retired.Sub(lastBlue); gap < 3*time.Second {
		t.Errorf("blue was retired %s after its last request; quiet_period is 3s", gap)
	}
	if retired.Sub(promoted) < r53TTL {
		t.Errorf("blue was retired %s after its weight went 0, before the TTL %s", retired.Sub(promoted), r53TTL)
	}
	t.Logf("blue retired %s after the promotion, %s after the TTL-ignoring client's last request (%d requests to blue after the promotion)",
		retired.Sub(promoted).Round(time.Millisecond), retired.Sub(lastBlue).Round(time.Millisecond), pinned.ok.Load())
}

func TestAWSALBKill9MidDeploymentResumesWithoutFailedRequests(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 10, pause: 3s}", "{weight: 50, pause: 2s}")
	a.startAWS()
	a.deployLive()
	tr := startALBTraffic(t, a.listener.URL, 3)
	a.mustCLI(0, "deploy", "web", "v2")
	a.waitFor("step 1", 30*time.Second, func(s status) bool { return s.Phase == "shifting" })
	a.kill9()
	// The ALB goes on serving the split while cutover is down.
	time.Sleep(time.Second)
	if b, g := a.weights(); b != 900 || g != 100 {
		t.Fatalf("while cutover is down the listener forwards blue %d green %d, want 900/100", b, g)
	}
	a.startAWS()
	a.waitFor("promoted after the restart", 60*time.Second, func(s status) bool {
		return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v2"
	})
	tr.halt()
	if b, g := a.weights(); b != 0 || g != 999 {
		t.Errorf("after the resumed promotion the listener forwards blue %d green %d", b, g)
	}
	if n := tr.failed.Load(); n != 0 {
		t.Errorf("%d requests failed through the fake ALB across cutover's kill -9 and restart (last: %v)", n, tr.lastErr.Load())
	}
	if out := a.mustCLI(0, "status", "web"); strings.Contains(out, "drift") {
		t.Errorf("the restarted daemon took its own weights for a console change:\n%s", out)
	}
	t.Logf("kill -9 at 10%%, restart, promoted: %d requests through the fake ALB, %d failed", tr.ok.Load()+tr.failed.Load(), tr.failed.Load())
}

func TestAWSRoute53MissingCatchAllRefusedAtStart(t *testing.T) {
	r := newRoute53Env(t, "1h")
	// Point failover_record at a name with no failover pair: the daemon
	// must say what is missing and not start.
	b, err := os.ReadFile(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.cfg, []byte(strings.Replace(string(b), "failover_record: www.example.com.", "failover_record: shop.example.com.", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "-c", r.cfg)
	cmd.Env = append(os.Environ(), r.fake.Env()...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "shop.example.com.: no PRIMARY failover record") {
		t.Fatalf("cutover serve with no catch-all record: err %v, output:\n%s", err, out)
	}
}

// versionAt sends one GET to url and returns the version that answered.
func versionAt(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url + "/")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Version"), nil
}

// The ALB test listener (traffic.alb.test_listener_arn) is the preview
// address: while a deployment holds its first step, it forwards to the
// candidate colour only, whichever colour that is this time, and the
// production listener keeps serving live.
func TestAWSALBTestListenerPreviewsTheCandidate(t *testing.T) {
	a := newALBEnv(t, "", "{weight: 10, pause: 1h}")
	a.startAWS()
	a.deployLive() // v1 on blue
	for _, d := range []struct{ version, candidate, live string }{{"v2", "green", "v1"}, {"v3", "blue", "v2"}} {
		a.mustCLI(0, "deploy", "web", d.version)
		a.waitFor(d.version+" at its first step", 60*time.Second, func(s status) bool {
			return s.Candidate != nil && s.Candidate.Version == d.version && s.Weights[d.candidate] > 0
		})
		seen := map[string]int{}
		for range 20 {
			code, v, err := versionAt(a.test.URL)
			if err != nil || code != 200 {
				t.Fatalf("preview of %s through the test listener: %d %v", d.version, code, err)
			}
			seen[v]++
		}
		if seen[d.version] != 20 {
			t.Errorf("the test listener answered %v during %s's deployment, want only %s (the %s candidate)", seen, d.version, d.version, d.candidate)
		}
		ws, err := a.fake.ELB().Forward(a.test.ARN)
		tg := map[string]string{"blue": a.blueTG.ARN, "green": a.greenTG.ARN}[d.candidate]
		if err != nil || len(ws) != 1 || ws[0].TargetGroupARN != tg {
			t.Errorf("the test listener forwards %+v (%v), want only the %s target group", ws, err, d.candidate)
		}
		if code, v, err := versionAt(a.listener.URL); err != nil || code != 200 || (v != d.live && v != d.version) {
			t.Errorf("production listener during the preview: %d %q %v", code, v, err)
		}
		a.mustCLI(0, "promote", "web")
		a.waitFor(d.version+" live", 60*time.Second, func(s status) bool {
			return s.Phase == "idle" && s.Live != nil && s.Live.Version == d.version
		})
	}
}
