package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/cutover/cutover/internal/awsfake"
)

// TestStandaloneProcess builds the command, runs it on a topology with a
// real target, and drives it as the real binary would: the SDK's default
// chain from the printed environment, the data plane, a control knob.
func TestStandaloneProcess(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "awsfake")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "blue") }))
	defer app.Close()
	topo := `{"load_balancers":[{"name":"prod","target_groups":[{"name":"web-blue","targets":["` + app.Listener.Addr().String() + `"]},{"name":"web-green"}],
		"listeners":[{"port":80,"forward":{"web-blue":1,"web-green":0}}]}],"hosted_zones":["example.com"],"alarms":[{"name":"web-5xx"}]}`
	path := filepath.Join(dir, "topology.json")
	if err := os.WriteFile(path, []byte(topo), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-topology", path, "-health-interval", "50ms")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var created awsfake.Created
	if err := json.NewDecoder(stdout).Decode(&created); err != nil {
		t.Fatalf("reading what the fake created: %v", err)
	}
	for _, kv := range created.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := elb.NewFromConfig(cfg)
	blue := created.TargetGroups["web-blue"].ARN
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := c.DescribeTargetHealth(context.Background(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(blue)})
		if err != nil {
			t.Fatalf("DescribeTargetHealth through AWS_ENDPOINT_URL: %v", err)
		}
		if len(out.TargetHealthDescriptions) == 1 && out.TargetHealthDescriptions[0].TargetHealth.State == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target never healthy: %+v", out.TargetHealthDescriptions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(created.Listeners["prod/80"].URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "blue" {
		t.Errorf("data plane answered %q", b)
	}
	resp, err = http.Post(created.Endpoint+awsfake.ControlPrefix+"throttle?service=elasticloadbalancing&op=DescribeListeners&n=1", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := c.DescribeListeners(context.Background(), &elb.DescribeListenersInput{ListenerArns: []string{created.Listeners["prod/80"].ARN}}); err != nil {
		t.Errorf("DescribeListeners through one throttle: %v", err)
	}
	resp, err = http.Get(created.Endpoint + awsfake.ControlPrefix + "calls?service=elasticloadbalancing&op=DescribeListeners")
	if err != nil {
		t.Fatal(err)
	}
	var calls map[string]int
	json.NewDecoder(resp.Body).Decode(&calls)
	resp.Body.Close()
	if calls["calls"] != 2 {
		t.Errorf("calls = %v, want 2", calls)
	}
	resp, err = http.Post(created.Endpoint+awsfake.ControlPrefix+"alarm?name=web-5xx&state=ALARM&reason=test", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("setting the topology's alarm: %v %v", resp, err)
	}
	resp.Body.Close()
}
