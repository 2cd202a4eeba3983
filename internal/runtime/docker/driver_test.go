package docker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
	"github.com/cutover/cutover/internal/testsupport"
)

func TestStartServesLabelsAndStops(t *testing.T) {
	d, rec, _ := newDriver(t, func(o *Options) {
		o.Labels = map[string]string{"team": "web"}
		o.Memory, o.NanoCPUs = 64<<20, 500_000_000
	})
	ctx := context.Background()
	start := time.Now()
	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 containers started and healthy in %s", time.Since(start).Round(time.Millisecond))
	if len(ins) != 2 {
		t.Fatalf("instances = %v, want 2", ins)
	}
	for i, in := range ins {
		if !strings.HasPrefix(in.Addr, "127.0.0.1:") {
			t.Errorf("instance %s addr %s: want a port published on 127.0.0.1", in.ID, in.Addr)
		}
		want := "v1 blue web-blue-" + itoa(i+1)
		if got := get(t, "http://"+in.Addr+"/"); got != want {
			t.Errorf("GET %s = %q, want %q", in.Addr, got, want)
		}
	}
	if ev, _ := rec.Last(route.Blue); len(ev.Instances) != 2 {
		t.Errorf("listener saw %d instances, want 2", len(ev.Instances))
	}
	list := containers(t, "web", true)
	if len(list) != 2 {
		t.Fatalf("engine has %d containers, want 2", len(list))
	}
	for _, c := range list {
		info, err := engineClient(t).ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if hc := info.HostConfig; hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 {
			t.Errorf("container %s limits: memory %d, nano CPUs %d", c.ID[:12], hc.Memory, hc.NanoCPUs)
		}
		l := c.Labels
		if l[LabelColor] != "blue" || l[LabelVersion] != "v1" || !strings.HasPrefix(l[LabelInstance], "web-blue-") || l["team"] != "web" {
			t.Errorf("container %s labels %v", c.ID[:12], l)
		}
	}
	var logs bytes.Buffer
	blue := route.Blue
	if err := d.Logs(ctx, &blue, false, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"blue-1 | listening on :8080 as v1 blue web-blue-1", "blue-2 | listening on :8080 as v1 blue web-blue-2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	// Stop is SIGTERM, which the app handles at once: well within the
	// stop timeout, so no SIGKILL.
	stopStart := time.Now()
	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(stopStart); took >= 5*time.Second {
		t.Errorf("stop took %s: SIGTERM was not honoured", took)
	}
	if n := len(containers(t, "web", true)); n != 0 {
		t.Errorf("%d containers left after Stop, want 0 (removed)", n)
	}
	if ev, _ := rec.Last(route.Blue); len(ev.Instances) != 0 {
		t.Errorf("listener's last blue pool has %d instances after Stop", len(ev.Instances))
	}
}

func TestAdoptTakesRunningContainersAndRemovesTheRest(t *testing.T) {
	ctx := context.Background()
	d1, _, _ := newDriver(t, nil)
	if _, err := d1.Start(ctx, route.Blue, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Start(ctx, route.Green, runtime.Release{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	before := map[string]bool{}
	for _, c := range containers(t, "web", false) {
		if c.Labels[LabelColor] == "blue" {
			before[c.ID] = true
		}
	}
	// A stray second container claiming slot 1 of blue.
	cli := engineClient(t)
	dup, err := cli.ContainerCreate(ctx, &container.Config{Image: "app:v1", Env: []string{"PORT=8080"},
		Labels: map[string]string{LabelService: "web", LabelColor: "blue", LabelVersion: "v1", LabelInstance: "web-blue-1"}},
		nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, dup.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	d1.Close() // the daemon goes away; its containers stay

	d2, rec, _ := newDriver(t, nil)
	notices, err := d2.Adopt(ctx, []runtime.PoolRef{{Color: route.Blue, Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notices: %q", notices)
	ins := d2.Instances(route.Blue)
	if len(ins) != 2 {
		t.Fatalf("adopted %d blue instances, want 2", len(ins))
	}
	for _, in := range ins {
		if got := get(t, "http://"+in.Addr+"/"); !strings.HasPrefix(got, "v1 blue") {
			t.Errorf("adopted %s answers %q", in.ID, got)
		}
	}
	after := containers(t, "web", true)
	if len(after) != 2 {
		t.Fatalf("%d containers after adoption, want the 2 of blue (green and the duplicate removed)", len(after))
	}
	for _, c := range after {
		if !before[c.ID] {
			t.Errorf("container %s (%v) is not one of blue's from before the restart", c.ID[:12], c.Labels)
		}
	}
	if ev, ok := rec.Last(route.Blue); !ok || len(ev.Instances) != 2 {
		t.Errorf("listener not told of the adopted pool: %+v", ev)
	}
}

func TestExitedContainerIsReplaced(t *testing.T) {
	ctx := context.Background()
	d, rec, _ := newDriver(t, nil)
	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	for _, c := range containers(t, "web", false) {
		if c.Labels[LabelInstance] == "web-blue-1" {
			victim = c.ID
		}
	}
	if err := engineClient(t).ContainerKill(ctx, victim, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	rec.WaitPool(t, route.Blue, 10*time.Second, "blue shrinks to 1", func(ev runtimetest.PoolEvent) bool { return len(ev.Instances) == 1 })
	ev := rec.WaitPool(t, route.Blue, 20*time.Second, "blue back to 2", func(ev runtimetest.PoolEvent) bool { return len(ev.Instances) == 2 })
	for _, in := range ev.Instances {
		if in.ID == "web-blue-1" && in.Addr == ins[0].Addr {
			t.Errorf("replacement has the old address %s", in.Addr)
		}
	}
	ids := []string{}
	for _, c := range containers(t, "web", true) {
		ids = append(ids, c.ID)
	}
	if len(ids) != 2 || slices.Contains(ids, victim) {
		t.Errorf("containers after replacement %v: want 2, without the killed %s", ids, victim[:12])
	}
}

func TestCrashingImageFailsStart(t *testing.T) {
	d, _, _ := newDriver(t, func(o *Options) { o.CrashLoopRestarts = 2 })
	_, err := d.Start(context.Background(), route.Green, runtime.Release{Version: "crash"})
	if err == nil {
		t.Fatal("a crashing image started")
	}
	for _, want := range []string{"green crash", "exited with status 3", "crashing on purpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := len(containers(t, "web", true)); n != 0 {
		t.Errorf("%d containers left after a failed start", n)
	}
}

func TestCrashLoopAfterStartFailsPool(t *testing.T) {
	d, rec, _ := newDriver(t, func(o *Options) {
		o.Instances = 1
		o.CrashLoopRestarts = 2
		o.Env = map[string]string{"APP_EXIT_AFTER": "2s"}
	})
	if _, err := d.Start(context.Background(), route.Green, runtime.Release{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	f := rec.WaitFailed(t, route.Green, 30*time.Second)
	if !strings.Contains(f.Err.Error(), "crash-looping") || !strings.Contains(f.Err.Error(), "status 4") {
		t.Errorf("failure: %v", f.Err)
	}
}

func TestHealthcheckIsRespected(t *testing.T) {
	d, _, _ := newDriver(t, func(o *Options) { o.Instances = 1; o.StartTimeout = 40 * time.Second })
	ctx := context.Background()
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "hc"}); err != nil {
		t.Fatalf("image with a passing HEALTHCHECK: %v", err)
	}
	info, err := engineClient(t).ContainerInspect(ctx, containers(t, "web", false)[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Health == nil || info.State.Health.Status != "healthy" {
		t.Errorf("pool reported before the engine found it healthy: %+v", info.State.Health)
	}
	_, err = d.Start(ctx, route.Green, runtime.Release{Version: "hcfail"})
	if err == nil || !strings.Contains(err.Error(), "HEALTHCHECK") {
		t.Fatalf("image whose HEALTHCHECK fails: err = %v, want one naming the HEALTHCHECK", err)
	}
}

func TestUnreachableHostFailsStartNamingIt(t *testing.T) {
	second := testsupport.StartDockerd(t, testsupport.DockerdOptions{})
	second.Stop()
	d, _, _ := newDriver(t, func(o *Options) { o.Hosts = []string{engine.Host, second.Host} })
	_, err := d.Start(context.Background(), route.Green, runtime.Release{Version: "v2"})
	if err == nil || !strings.Contains(err.Error(), second.Host) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want it to name the unreachable %s", err, second.Host)
	}
	if n := len(containers(t, "web", true)); n != 0 {
		t.Errorf("%d containers started although a host was unreachable", n)
	}
}

func TestPullErrorsNameHostAndRegistry(t *testing.T) {
	ctx := context.Background()
	d, _, _ := newDriver(t, func(o *Options) { o.Image = "app:${VERSION}" })
	_, err := d.Start(ctx, route.Blue, runtime.Release{Version: "nope"})
	if err == nil || !strings.Contains(err.Error(), engine.Host) || !strings.Contains(err.Error(), "pull is never") {
		t.Errorf("pull never, missing image: %v", err)
	}
	d2, _, _ := newDriver(t, func(o *Options) { o.Image = "127.0.0.1:1/web:${VERSION}"; o.Pull = PullMissing })
	_, err = d2.Start(ctx, route.Blue, runtime.Release{Version: "v9"})
	if err == nil || !strings.Contains(err.Error(), engine.Host) || !strings.Contains(err.Error(), "registry 127.0.0.1:1") {
		t.Errorf("pull from a registry that does not answer: %v", err)
	}
}

func TestSecretsReachContainersOnly(t *testing.T) {
	dir := t.TempDir()
	const fileSecret, envSecret, fileVar = "s3cr3t-from-file-91", "s3cr3t-from-env-72", "s3cr3t-env-file-55"
	secretFile := filepath.Join(dir, "db-password")
	envFile := filepath.Join(dir, "web.env")
	os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600)
	os.WriteFile(envFile, []byte("API_KEY="+fileVar+"\n"), 0o600)
	t.Setenv("CUTOVER_TEST_TOKEN", envSecret)
	d, _, logs := newDriver(t, func(o *Options) {
		o.Instances = 1
		o.EnvFile = envFile
		o.Secrets = map[string]Secret{"DB_PASSWORD": {File: secretFile}, "TOKEN": {Env: "CUTOVER_TEST_TOKEN"}}
		o.Env = map[string]string{"APP_ENV": "test"}
	})
	ctx := context.Background()
	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"DB_PASSWORD": fileSecret, "TOKEN": envSecret, "API_KEY": fileVar} {
		if got, want := get(t, "http://"+ins[0].Addr+"/sha?name="+name), sha256Hex(v); got != want {
			t.Errorf("container's %s has sha %s, want %s", name, got, want)
		}
	}
	desc, err := d.Describe(ctx, route.Blue, nil)
	if err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	for _, f := range desc.Fields {
		shown.WriteString(f.Name + "=" + f.Value + "\n")
		if (f.Name == "env.DB_PASSWORD" || f.Name == "env.TOKEN" || f.Name == "env.API_KEY") && (!f.Secret || !strings.HasPrefix(f.Value, "sha256:")) {
			t.Errorf("describe shows %s as %q (secret %v), want a hash", f.Name, f.Value, f.Secret)
		}
	}
	if !strings.Contains(shown.String(), "env.APP_ENV=test") || !strings.Contains(shown.String(), "image.digest=sha256:") {
		t.Errorf("describe lacks the plain env or the digest:\n%s", shown.String())
	}
	var out bytes.Buffer
	d.Logs(ctx, nil, false, &out)
	d.Stop(ctx, route.Blue)
	for _, s := range []string{fileSecret, envSecret, fileVar} {
		for what, text := range map[string]string{"driver log": logs.String(), "describe": shown.String(), "container logs": out.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a secret value", what)
			}
		}
	}
}

func TestLogsFollowReplacements(t *testing.T) {
	d, rec, _ := newDriver(t, func(o *Options) { o.Instances = 1 })
	if _, err := d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out testsupport.Buffer
	done := make(chan error, 1)
	go func() { done <- d.Logs(ctx, nil, true, &out) }()
	first := containers(t, "web", false)[0].ID
	if err := engineClient(t).ContainerKill(context.Background(), first, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	rec.WaitPool(t, route.Blue, 20*time.Second, "a replacement", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 1 && len(containers(t, "web", false)) == 1 && containers(t, "web", false)[0].ID != first
	})
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "blue-1 | listening on") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs -f: %v", err)
	}
	if n := strings.Count(out.String(), "blue-1 | listening on"); n != 2 {
		t.Errorf("followed output shows %d starts, want the first container's and its replacement's:\n%s", n, out.String())
	}
}
