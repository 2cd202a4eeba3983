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
// region, static keys) and 1-second CloudWatch periods.
func (a *awsEnv) startAWS() {
	a.t.Helper()
	e := a.env
	e.daemonMu.Lock()
	defer e.daemonMu.Unlock()
	e.logs = &lockedWriter{}
	cmd := exec.Command(binary, "serve", "-c", e.cfg)
	cmd.Env = append(append(os.Environ(), a.fake.Env()...),
		"CUTOVER_CLOUDWATCH_PERIOD=1s", "CUTOVER_CLOUDWATCH_DELAY="+(metricDelay+500*time.Millisecond).String())
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
	var st struct {
		Traffic struct {
			Engine  string             `json:"engine"`
			Weights map[string]float64 `json:"weights"`
		} `json:"traffic"`
	}
	if err := json.Unmarshal([]byte(a.mustCLI(0, "status", "web", "--json")), &st); err != nil || st.Traffic.Engine != "alb" || st.Traffic.Weights["green"] != 100 {
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
