package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/awsfake"
)

// These tests run the real binary with runtime.asg and traffic.alb against
// internal/awsfake: two Auto Scaling groups from one launch template, each
// behind its own target group of one ALB listener. The fake's "AMIs" run
// cutover's demo app as real processes, which the fake Auto Scaling
// registers in the group's target group once InService.

// newASGEnv builds the write-ups' set-up in the fake and a cutover config
// whose runtime is the two groups.
func newASGEnv(t *testing.T, keep string, steps ...string) *awsEnv {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{HealthInterval: 100 * time.Millisecond})
	as := fake.AutoScaling()
	as.SetOptions(awsfake.AutoScalingOptions{PendingDelay: 300 * time.Millisecond})
	e := newEnvKeep(t, keep, steps...)
	faults := e.dir + "/faults.json"
	for ami, version := range map[string]string{"ami-v1": "v1", "ami-v2": "v2", "ami-starting": "starting"} {
		as.RegisterImage(ami, awsfake.Image{Command: []string{binary, "demo-app", "--listen", "127.0.0.1:${PORT}", "--version", version, "--faults", faults}})
	}
	as.CreateLaunchTemplate("web", awsfake.LaunchTemplateData{ImageID: "ami-v1", InstanceType: "t3.small", SecurityGroups: []string{"sg-web"}})
	elb := fake.ELB()
	lb := elb.CreateLoadBalancer("prod")
	// A generous timeout: a probe slowed by a loaded CI machine must not
	// take an instance out (the group's ELB health check would replace it).
	hc := awsfake.HealthCheck{Path: "/healthz", Timeout: 2 * time.Second, UnhealthyThreshold: 3}
	blue := elb.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-blue", HealthCheck: hc, DeregistrationDelay: time.Second})
	green := elb.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-green", HealthCheck: hc, DeregistrationDelay: time.Second})
	ln, err := elb.CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: blue.ARN, Weight: 1}, awsfake.Weight{TargetGroupARN: green.ARN, Weight: 0})
	if err != nil {
		t.Fatal(err)
	}
	test, err := elb.CreateListener(lb.ARN, 8080, awsfake.Weight{TargetGroupARN: green.ARN, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, tg := range map[string]string{"production-blue-asg": blue.ARN, "production-green-asg": green.ARN} {
		env := strings.TrimSuffix(strings.TrimPrefix(name, "production-"), "-asg")
		if err := as.CreateGroup(awsfake.GroupSpec{Name: name, LaunchTemplate: "web", Max: 4, Subnets: []string{"subnet-a", "subnet-b"},
			HealthCheckType: "ELB", TargetGroups: []string{tg}, Tags: map[string]string{"Environment": env, "team": "web"}}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	runtime := regexp.MustCompile(`(?s)    runtime:\n      process:\n.*?start_timeout: 30s\n`)
	cfg := runtime.ReplaceAllString(string(b), `    runtime:
      asg:
        groups: {blue: production-blue-asg, green: production-green-asg}
        launch_template: {name: web}
        capacity: 2
        start_timeout: 8s
        poll: 200ms
`)
	cfg = strings.Replace(cfg, "    health:\n", `    traffic:
      alb:
        listener_arn: `+ln.ARN+`
        target_groups: {blue: `+blue.ARN+`, green: `+green.ARN+`}
        test_listener_arn: `+test.ARN+`
    health:
`, 1)
	if !strings.Contains(cfg, "asg:") {
		t.Fatalf("config without the asg runtime:\n%s", cfg)
	}
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &awsEnv{env: e, fake: fake, listener: ln, test: test, blueTG: blue, greenTG: green}
}

// group returns a group's state in the fake.
func (a *awsEnv) group(name string) awsfake.GroupInfo {
	a.t.Helper()
	g, ok := a.fake.AutoScaling().Group(name)
	if !ok {
		a.t.Fatalf("group %s does not exist", name)
	}
	return g
}

// candidateHealthyAfter reads from the history of deployment id how long
// the candidate took from the deployment's start to healthy.
func (a *awsEnv) candidateHealthyAfter(id string) time.Duration {
	a.t.Helper()
	var all []struct {
		ID        string    `json:"id"`
		StartedAt time.Time `json:"started_at"`
		Events    []struct {
			Time    time.Time `json:"time"`
			Type    string    `json:"type"`
			Message string    `json:"message"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(a.history()), &all); err != nil {
		a.t.Fatal(err)
	}
	for _, d := range all {
		if d.ID != id {
			continue
		}
		for _, ev := range d.Events {
			if ev.Type == "phase" && strings.Contains(ev.Message, "is healthy") {
				return ev.Time.Sub(d.StartedAt)
			}
		}
	}
	a.t.Fatalf("deployment %s has no healthy event:\n%s", id, a.history())
	return 0
}

func TestAWSASGBlueGreenCanaryRetireRollbackAndCrash(t *testing.T) {
	a := newASGEnv(t, "1h", "{weight: 20, pause: 1500ms}", "{weight: 50, pause: 1500ms}")
	a.startAWS()
	a.mustCLI(0, "deploy", "web", "ami-v1", "--wait", "--strategy", "all-at-once")
	a.waitFor("ami-v1 live", 30*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "ami-v1" })
	if g := a.group("production-blue-asg"); g.Desired != 2 || g.States["InService"] != 2 || g.Tags["cutover:version"] != "ami-v1" || g.Tags["cutover:color"] != "blue" {
		t.Fatalf("blue after the first deployment: %+v", g)
	}

	tr := startALBTraffic(t, a.listener.URL, 4)
	time.Sleep(300 * time.Millisecond)
	out := a.mustCLI(0, "deploy", "web", "ami-v2", "--wait")
	st := a.waitFor("ami-v2 live", 30*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "ami-v2" })
	if st.Live.Color != "green" || st.Previous == nil || st.Previous.Color != "blue" {
		t.Fatalf("after the canary: %+v\n%s", st, out)
	}
	if g := a.group("production-green-asg"); g.Desired != 2 || g.States["InService"] != 2 {
		t.Fatalf("green after the promotion: %+v", g)
	}
	if g := a.group("production-blue-asg"); g.Desired != 2 {
		t.Fatalf("blue is kept warm: %+v", g)
	}
	var hist []struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(a.history()), &hist)
	took := a.candidateHealthyAfter(hist[0].ID)
	t.Logf("deploy to candidate healthy (2 instances, Pending 300ms, ALB health every 100ms, threshold 2): %s", took.Round(time.Millisecond))
	if tr.served("v2") == 0 || tr.served("v1") == 0 {
		t.Fatalf("traffic through the fake ALB: v1 %d, v2 %d", tr.served("v1"), tr.served("v2"))
	}
	if n := tr.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during the canary (last: %v)", n, tr.lastErr.Load())
	}
	t.Logf("canary through the fake ALB: %d requests, 0 failed", tr.ok.Load())

	// Instant rollback while blue is kept; the demoted green group is
	// then scaled to zero. (With weight 0 on an ALB nothing reaches green
	// any more, so this does not show the wait for quiet: the Route53 test,
	// whose client ignores TTLs, and deploy's TestQuietPeriodCountsOnTopOfTheRoutersLag do.)
	a.mustCLI(0, "rollback", "web")
	st = a.waitFor("ami-v1 live again", 10*time.Second, func(s status) bool { return s.Live != nil && s.Live.Version == "ami-v1" })
	if b, g := a.weights(); b == 0 || g != 0 {
		t.Fatalf("after the rollback the listener forwards blue %d green %d", b, g)
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.group("production-green-asg").Desired != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("green never retired: %+v\n%s", a.group("production-green-asg"), a.history())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := tr.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed around the rollback (last: %v)", n, tr.lastErr.Load())
	}

	// kill -9 while green scales out (instances Pending for 3s); the
	// restarted daemon resumes against the groups as they are.
	a.fake.AutoScaling().SetOptions(awsfake.AutoScalingOptions{PendingDelay: 3 * time.Second})
	a.mustCLI(0, "deploy", "web", "ami-v2")
	deadline = time.Now().Add(20 * time.Second)
	for g := a.group("production-green-asg"); g.Desired != 2 || g.States["InService"] == 2; g = a.group("production-green-asg") {
		if time.Now().After(deadline) {
			t.Fatalf("green never started scaling out: %+v", g)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill9()
	if g := a.group("production-green-asg"); g.States["Pending"] == 0 {
		t.Fatalf("green was not scaling out when the daemon was killed: %+v", g)
	}
	a.startAWS()
	st = a.waitFor("ami-v2 live after the restart", 40*time.Second, func(s status) bool {
		return s.Phase == "idle" && s.Live != nil && s.Live.Version == "ami-v2"
	})
	if st.Live.Color != "green" {
		t.Fatalf("after the resumed deployment: %+v", st)
	}
	if v := a.fake.AutoScaling().TemplateVersions("web"); len(v) != 3 {
		t.Fatalf("launch template versions %v: the resumed deployment should reuse the one it made (1 default, ami-v1, ami-v2)", v)
	}
	if n := tr.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed across the crash (last: %v)", n, tr.lastErr.Load())
	}
}

func TestAWSASGNeverHealthyAndDriftRefused(t *testing.T) {
	a := newASGEnv(t, "3s")
	a.startAWS()
	a.mustCLI(0, "deploy", "web", "ami-v1", "--wait", "--strategy", "all-at-once")
	a.waitFor("ami-v1 live", 30*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "ami-v1" })

	code, out := a.cli("deploy", "web", "ami-starting", "--wait")
	if code == 0 {
		t.Fatalf("a version that never gets healthy was promoted:\n%s", out)
	}
	hist := a.history()
	if !strings.Contains(hist, "ELB system health check failure") || !strings.Contains(hist, "production-green-asg") {
		t.Fatalf("the failure does not quote the scaling activities:\n%s\n%s", out, hist)
	}
	if b, g := a.weights(); b == 0 || g != 0 {
		t.Fatalf("a failed deployment moved traffic: blue %d green %d", b, g)
	}
	a.waitFor("idle", 20*time.Second, func(s status) bool { return s.Phase == "idle" })

	// A snowflake: the idle group's tag and health check grace differ.
	a.fake.AutoScaling().SetTag("production-green-asg", "team", "payments")
	code, out = a.cli("deploy", "web", "ami-v2")
	if code != 1 || !strings.Contains(out, "tag:team: blue web, green payments") || !strings.Contains(out, "--allow-drift") {
		t.Fatalf("drift not refused with the difference named (exit %d):\n%s", code, out)
	}
	tr := startALBTraffic(t, a.listener.URL, 2)
	a.mustCLI(0, "deploy", "web", "ami-v2", "--allow-drift", "--wait", "--strategy", "all-at-once")
	st := a.waitFor("ami-v2 live", 30*time.Second, func(s status) bool { return s.Live != nil && s.Live.Version == "ami-v2" })
	if st.Previous == nil {
		t.Fatalf("no previous pool kept: %+v", st)
	}
	until, err := time.Parse(time.RFC3339, st.Previous.Until)
	if err != nil {
		t.Fatal(err)
	}

	// Clean staging: blue keeps its instances for keep_previous (3s), then
	// is scaled to zero once it has served nothing for the quiet period.
	if g := a.group("production-blue-asg"); g.Desired != 2 {
		t.Fatalf("blue was not kept warm after the promotion: %+v", g)
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.group("production-blue-asg").Desired != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("blue never retired: %+v", a.group("production-blue-asg"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now := time.Now(); now.Before(until) {
		t.Fatalf("blue was scaled to zero at %s, before keep_previous ended (%s)", now, until)
	}
	if c := a.fake.ELB().Counts(a.blueTG.ARN, time.Now().Add(-time.Second)); c.Requests != 0 {
		t.Fatalf("blue was scaled to zero %d requests into its last second", c.Requests)
	}
	if n := tr.failed.Load(); n != 0 || tr.served("v2") == 0 {
		t.Fatalf("%d requests failed (last %v), %d served by v2", n, tr.lastErr.Load(), tr.served("v2"))
	}
}

// The groups also work with cutover's embedded router: the driver gives it
// each colour's healthy instances (private address, target group port).
func TestAWSASGWithEmbeddedRouter(t *testing.T) {
	a := newASGEnv(t, "1h", "{weight: 50, pause: 1s}")
	b, err := os.ReadFile(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := regexp.MustCompile(`(?s)    traffic:\n      alb:\n.*?test_listener_arn: \S+\n`).ReplaceAllString(string(b), "")
	if strings.Contains(cfg, "traffic:") {
		t.Fatalf("config still has traffic.alb:\n%s", cfg)
	}
	if err := os.WriteFile(a.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	a.startAWS()
	a.mustCLI(0, "deploy", "web", "ami-v1", "--wait", "--strategy", "all-at-once")
	tr := a.startTraffic(4)
	time.Sleep(300 * time.Millisecond)
	a.mustCLI(0, "deploy", "web", "ami-v2", "--wait")
	a.waitFor("ami-v2 live", 30*time.Second, func(s status) bool { return s.Phase == "idle" && s.Live != nil && s.Live.Version == "ami-v2" })
	tr.halt()
	if tr.served("v1") == 0 || tr.served("v2") == 0 {
		t.Fatalf("through the embedded router: v1 %d, v2 %d", tr.served("v1"), tr.served("v2"))
	}
	if n := tr.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed through the embedded router (last: %v)", n, tr.lastErr.Load())
	}
}
