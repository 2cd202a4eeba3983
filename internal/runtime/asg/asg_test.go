package asg_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/cutover/cutover/internal/awsfake"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/asg"
)

var app string // the process runtime's test app, built once

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "asg-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	app = filepath.Join(dir, "app")
	build := exec.Command("go", "build", "-o", app, "../process/testdata/app")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test app:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// pools records what the driver reports.
type pools struct {
	mu   sync.Mutex
	last [2][]runtime.Instance
}

func (p *pools) Pool(c route.Color, _ string, insts []runtime.Instance) {
	p.mu.Lock()
	p.last[c] = insts
	p.mu.Unlock()
}
func (p *pools) Failed(route.Color, string, error) {}

// world is a fake AWS account with the write-ups' set-up: one launch
// template "web", two groups behind one ALB listener, each with its own
// target group, differing only by their Environment tag.
type world struct {
	fake        *awsfake.Server
	as          *awsfake.AutoScaling
	tgs         [2]awsfake.TargetGroup
	listenerURL string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fake := awsfake.NewTest(t, awsfake.Options{HealthInterval: 100 * time.Millisecond})
	w := &world{fake: fake, as: fake.AutoScaling()}
	w.as.SetOptions(awsfake.AutoScalingOptions{PendingDelay: 200 * time.Millisecond})
	w.as.RegisterImage("ami-v1", awsfake.Image{Command: []string{app}})
	w.as.RegisterImage("ami-v2", awsfake.Image{Command: []string{app}})
	w.as.RegisterImage("ami-broken", awsfake.Image{Command: []string{app}, Env: []string{"APP_NEVER_HEALTHY=1"}})
	w.as.CreateLaunchTemplate("web", awsfake.LaunchTemplateData{ImageID: "ami-v1", InstanceType: "t3.small",
		SecurityGroups: []string{"sg-web"}, IAMInstanceProfile: "arn:aws:iam::123456789012:instance-profile/web"})
	elb := fake.ELB()
	lb := elb.CreateLoadBalancer("web")
	for i, c := range route.Colors {
		w.tgs[i] = elb.CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-" + c.String(),
			HealthCheck: awsfake.HealthCheck{Path: "/healthz"}, DeregistrationDelay: -1})
	}
	l, err := elb.CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: w.tgs[0].ARN, Weight: 100}, awsfake.Weight{TargetGroupARN: w.tgs[1].ARN, Weight: 0})
	if err != nil {
		t.Fatal(err)
	}
	w.listenerURL = l.URL
	for i, c := range route.Colors {
		if err := w.as.CreateGroup(awsfake.GroupSpec{Name: "production-" + c.String() + "-asg", LaunchTemplate: "web",
			Min: 0, Max: 4, Desired: 0, Subnets: []string{"subnet-a", "subnet-b"}, HealthCheckType: "ELB",
			TargetGroups: []string{w.tgs[i].ARN}, Tags: map[string]string{"Environment": c.String(), "team": "web"}}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) driver(t *testing.T, lis runtime.Listener, change func(*asg.Options)) *asg.Driver {
	t.Helper()
	o := asg.Options{Service: "web", Groups: [2]string{"production-blue-asg", "production-green-asg"}, LaunchTemplate: "web",
		StartTimeout: 20 * time.Second, Poll: 200 * time.Millisecond, AWS: w.fake.Config(), Listener: lis}
	if change != nil {
		change(&o)
	}
	d, err := asg.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// imageOf asks an instance which image it runs (the test app answers GET /
// with its environment).
func imageOf(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Env map[string]string `json:"env"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("instance %s answered %s", addr, b)
	}
	return body.Env["IMAGE_ID"]
}

func TestDeployToIdleGroupThenRetire(t *testing.T) {
	w := newWorld(t)
	lis := &pools{}
	d := w.driver(t, lis, func(o *asg.Options) { o.Capacity = 0 })
	ctx := context.Background()

	// First deployment: blue has no live group to match, so it takes its
	// own minimum (at least one); give it two through the configured capacity.
	d2 := w.driver(t, &pools{}, func(o *asg.Options) { o.Capacity = 2 })
	if _, err := d2.Start(ctx, route.Blue, runtime.Release{Version: "ami-v1"}); err != nil {
		t.Fatal(err)
	}
	d2.Close()

	start := time.Now()
	insts, err := d.Start(ctx, route.Green, runtime.Release{Version: "ami-v2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy to candidate healthy (2 instances, pending 200ms, health every 100ms): %s", time.Since(start).Round(time.Millisecond))
	if len(insts) != 2 {
		t.Fatalf("green started with %d instances, want the live group's 2: %+v", len(insts), insts)
	}
	for _, in := range insts {
		if img := imageOf(t, in.Addr); img != "ami-v2" {
			t.Fatalf("green instance %s runs %q, want ami-v2", in.ID, img)
		}
	}
	g, _ := w.as.Group("production-green-asg")
	if g.Desired != 2 || g.States["InService"] != 2 || g.Tags[asg.TagVersion] != "ami-v2" || g.Tags[asg.TagColor] != "green" {
		t.Fatalf("green group after the deployment: %+v", g)
	}
	hs, _ := w.fake.ELB().Health(w.tgs[1].ARN)
	healthy := 0
	for _, h := range hs {
		if h.State == awsfake.StateHealthy {
			healthy++
		}
	}
	if healthy != 2 {
		t.Fatalf("green target group has %d healthy targets, want 2: %+v", healthy, hs)
	}
	if got := len(lis.last[route.Green]); got != 2 {
		t.Fatalf("listener got %d green instances, want 2", got)
	}

	// Retire blue: scaled to zero, no target left in its target group.
	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	b, _ := w.as.Group("production-blue-asg")
	if b.Desired != 0 || len(b.States) != 0 || b.Tags[asg.TagVersion] != "" {
		t.Fatalf("blue group after retirement: %+v", b)
	}
	if hs, _ := w.fake.ELB().Health(w.tgs[0].ARN); len(hs) != 0 {
		t.Fatalf("blue target group still has targets: %+v", hs)
	}
}

func TestNeverHealthyFailsWithScalingActivities(t *testing.T) {
	w := newWorld(t)
	d := w.driver(t, &pools{}, func(o *asg.Options) { o.StartTimeout = 3 * time.Second; o.Capacity = 1 })
	_, err := d.Start(context.Background(), route.Green, runtime.Release{Version: "ami-broken"})
	if err == nil {
		t.Fatal("a version whose instances never get healthy started")
	}
	for _, want := range []string{"production-green-asg", "0 of 1 instances healthy", "ELB system health check failure"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	_, err = d.Start(context.Background(), route.Green, runtime.Release{Version: "ami-missing"})
	if err == nil || !strings.Contains(err.Error(), "The image id '[ami-missing]' does not exist") {
		t.Fatalf("an unknown AMI: %v", err)
	}
}

func TestDriftNamesEachDifference(t *testing.T) {
	w := newWorld(t)
	d := w.driver(t, &pools{}, func(o *asg.Options) { o.Capacity = 1 })
	ctx := context.Background()
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "ami-v1"}); err != nil {
		t.Fatal(err)
	}
	diffs, err := d.Drift(ctx, route.Green, "ami-v2")
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Fatalf("groups made alike drift: %q", diffs)
	}
	// Snowflakes: a tag and a default template version with another
	// instance type and security group.
	w.as.SetTag("production-green-asg", "team", "payments")
	v, err := w.as.CreateLaunchTemplateVersion("web", func(d *awsfake.LaunchTemplateData) {
		d.InstanceType = "t3.large"
		d.SecurityGroups = []string{"sg-web", "sg-debug"}
	})
	if err != nil {
		t.Fatal(err)
	}
	w.as.SetDefaultVersion("web", v)
	diffs, err = d.Drift(ctx, route.Green, "ami-v2")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(diffs, "\n")
	for _, want := range []string{"instance_type: blue t3.small, green t3.large", "security_groups: blue sg-web, green sg-debug,sg-web", "tag:team: blue web, green payments"} {
		if !strings.Contains(got, want) {
			t.Fatalf("drift %q does not name %q", got, want)
		}
	}
	if len(diffs) != 3 {
		t.Fatalf("drift names %d differences, want 3: %q", len(diffs), got)
	}
	// cutover diff's describer, without a poller or listener, sees the same.
	desc, err := asg.NewDescriber(asg.Options{Service: "web", Groups: [2]string{"production-blue-asg", "production-green-asg"},
		LaunchTemplate: "web", AWS: w.fake.Config()})
	if err != nil {
		t.Fatal(err)
	}
	blue, err1 := desc.Describe(ctx, route.Blue, nil)
	green, err2 := desc.Describe(ctx, route.Green, &runtime.Release{Version: "ami-v2"})
	if err1 != nil || err2 != nil || strings.Join(asg.Compare(blue, green), "\n") != got {
		t.Fatalf("the describer's comparison differs: %v %v %q", err1, err2, asg.Compare(blue, green))
	}
	if err := desc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRestartedStartConvergesAndAdopts(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	d := w.driver(t, &pools{}, func(o *asg.Options) { o.Capacity = 2 })
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "ami-v1"}); err != nil {
		t.Fatal(err)
	}
	// A daemon killed while green scales out: Start is cut short.
	cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err := d.Start(cctx, route.Green, runtime.Release{Version: "ami-v2"})
	cancel()
	if err == nil {
		t.Fatal("a Start cut short returned no error")
	}
	d.Close()
	versions := len(w.as.TemplateVersions("web"))

	lis := &pools{}
	d2 := w.driver(t, lis, func(o *asg.Options) { o.Capacity = 2 })
	notices, err := d2.Adopt(ctx, []runtime.PoolRef{{Color: route.Blue, Version: "ami-v1"}})
	if err != nil || len(notices) != 0 {
		t.Fatalf("adopt: %v %q", err, notices)
	}
	if n := len(d2.Instances(route.Blue)); n != 2 {
		t.Fatalf("adopted blue has %d instances, want 2", n)
	}
	insts, err := d2.Start(ctx, route.Green, runtime.Release{Version: "ami-v2"})
	if err != nil || len(insts) != 2 {
		t.Fatalf("resumed start: %v, %d instances", err, len(insts))
	}
	if n := len(w.as.TemplateVersions("web")); n != versions {
		t.Fatalf("the resumed start made another launch template version: %d, want %d", n, versions)
	}
	// A group whose colour tag names the other colour is refused.
	w.as.SetTag("production-blue-asg", asg.TagColor, "green")
	if _, err := d2.Adopt(ctx, nil); err == nil || !strings.Contains(err.Error(), "swapped") {
		t.Fatalf("adopting a group tagged with the other colour: %v", err)
	}
}

func TestDeleteGroupAndCreateItAgain(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	d := w.driver(t, &pools{}, func(o *asg.Options) {
		o.Capacity = 1
		o.WhenRetired = asg.DeleteGroup
		o.TargetGroups = [2][]string{{w.tgs[0].ARN}, {w.tgs[1].ARN}}
	})
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "ami-v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, route.Green, runtime.Release{Version: "ami-v2"}); err != nil {
		t.Fatal(err)
	}
	before := w.as.TemplateVersions("web")
	// "Clean staging": blue and the launch template version it ran go.
	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.as.Group("production-blue-asg"); ok {
		t.Fatal("blue still exists after delete_group")
	}
	if after := w.as.TemplateVersions("web"); len(after) != len(before)-1 {
		t.Fatalf("launch template versions %v -> %v: blue's was not deleted", before, after)
	}
	// The next deployment creates blue again from green's settings, with
	// blue's own target group and Environment tag.
	insts, err := d.Start(ctx, route.Blue, runtime.Release{Version: "ami-v1"})
	if err != nil || len(insts) != 1 {
		t.Fatalf("start into a deleted group: %v (%d instances)", err, len(insts))
	}
	g, _ := w.as.Group("production-blue-asg")
	if g.Tags["Environment"] != "blue" || g.Tags["team"] != "web" || g.States["InService"] != 1 {
		t.Fatalf("blue created again: %+v", g)
	}
	if hs, _ := w.fake.ELB().Health(w.tgs[0].ARN); len(hs) != 1 || hs[0].State != awsfake.StateHealthy {
		t.Fatalf("blue's target group: %+v", hs)
	}
	if diffs, err := d.Drift(ctx, route.Green, "ami-v2"); err != nil || len(diffs) != 0 {
		t.Fatalf("a group created again from the live one drifts: %v %q", err, diffs)
	}
}

func TestVersionFromParameterAndTemplateVersion(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// A default version whose user data names the release.
	v, _ := w.as.CreateLaunchTemplateVersion("web", func(d *awsfake.LaunchTemplateData) {
		d.UserData = base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\nfetch-release /web/${VERSION}\n"))
	})
	w.as.SetDefaultVersion("web", v)
	d := w.driver(t, &pools{}, func(o *asg.Options) { o.Capacity = 1; o.VersionFrom = asg.FromParameter })
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "2024.06.1"}); err != nil {
		t.Fatal(err)
	}
	desc, err := d.Describe(ctx, route.Blue, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + sha(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\nfetch-release /web/2024.06.1\n")))
	if got := field(desc, "user_data"); got != want {
		t.Fatalf("blue's user data %s, want the default's with the version (%s)", got, want)
	}

	// template_version points the group at a version as it is.
	v2, _ := w.as.CreateLaunchTemplateVersion("web", func(d *awsfake.LaunchTemplateData) { d.ImageID = "ami-v2" })
	d2 := w.driver(t, &pools{}, func(o *asg.Options) { o.Capacity = 1; o.VersionFrom = asg.FromTemplateVersion })
	if _, err := d2.Start(ctx, route.Green, runtime.Release{Version: strconv.FormatInt(v2, 10)}); err != nil {
		t.Fatal(err)
	}
	if g, _ := w.as.Group("production-green-asg"); g.LaunchTemplateVersion != strconv.FormatInt(v2, 10) {
		t.Fatalf("green runs launch template version %s, want %d", g.LaunchTemplateVersion, v2)
	}
	if _, err := d2.Start(ctx, route.Green, runtime.Release{Version: "ami-v2"}); err == nil || !strings.Contains(err.Error(), "launch template version number") {
		t.Fatalf("template_version with an AMI id: %v", err)
	}
}

func field(d runtime.Description, name string) string {
	for _, f := range d.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// A group that served before cutover managed it is adopted by a first
// deployment of its own image, its instances untouched; one of another
// image is refused rather than scaled away.
func TestFirstDeploymentAdoptsAGroupServingBeforeCutover(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := autoscaling.NewFromConfig(w.fake.Config()).SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String("production-blue-asg"), DesiredCapacity: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g, _ := w.as.Group("production-blue-asg"); g.States["InService"] != 2; g, _ = w.as.Group("production-blue-asg") {
		if time.Now().After(deadline) {
			t.Fatalf("blue never served: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := w.driver(t, &pools{}, nil)
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "ami-v2"}); err == nil || !strings.Contains(err.Error(), "cutover did not start") {
		t.Fatalf("a first deployment of another image over serving instances: %v", err)
	}
	if g, _ := w.as.Group("production-blue-asg"); g.Desired != 2 || g.States["InService"] != 2 {
		t.Fatalf("the refused deployment touched blue: %+v", g)
	}
	insts, err := d.Start(ctx, route.Blue, runtime.Release{Version: "ami-v1"})
	if err != nil || len(insts) != 2 {
		t.Fatalf("adopting blue's own image: %v, %d instances", err, len(insts))
	}
	if g, _ := w.as.Group("production-blue-asg"); g.States["InService"] != 2 || len(g.States) != 1 || g.Tags[asg.TagVersion] != "ami-v1" {
		t.Fatalf("blue after adoption (no instance may have been replaced): %+v", g)
	}
}
