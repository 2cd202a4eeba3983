package docker

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// TestAdoptFillsEmptySlotsWithoutCrashLoop adopts a pool none of whose
// containers survived: the slots are filled again, and the empty slots do
// not count as exits (three of them, with two restarts allowed, used to
// fail the pool at once, which rolls a live pool back after a restart).
func TestAdoptFillsEmptySlotsWithoutCrashLoop(t *testing.T) {
	d, rec, _ := newDriver(t, func(o *Options) { o.Instances = 3; o.CrashLoopRestarts = 2 })
	notices, err := d.Adopt(context.Background(), []runtime.PoolRef{{Color: route.Blue, Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notices: %q", notices)
	rec.WaitPool(t, route.Blue, 30*time.Second, "3 blue containers started again", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 3
	})
	time.Sleep(300 * time.Millisecond)
	if f := rec.FailedEvents(); len(f) != 0 {
		t.Errorf("adopting a pool with empty slots failed it: %v", f[0].Err)
	}
	if n := len(containers(t, "web", true)); n != 3 {
		t.Errorf("%d containers, want 3", n)
	}
}

// stopWatcher is a listener that, when a colour's pool is reported
// empty, records whether the engine still runs its containers untouched:
// the pool must leave the router before any container is signalled.
type stopWatcher struct {
	*runtimetest.Recorder
	t       *testing.T
	mu      sync.Mutex
	atEmpty []string // per container: "running" and whether SIGTERM was seen yet
}

func (w *stopWatcher) Pool(c route.Color, version string, ins []runtime.Instance) {
	if len(ins) == 0 {
		cli := engineClient(w.t)
		for _, s := range containers(w.t, "web", true) {
			info, err := cli.ContainerInspect(context.Background(), s.ID)
			if err != nil {
				continue
			}
			rc, err := cli.ContainerLogs(context.Background(), s.ID, container.LogsOptions{ShowStdout: true})
			var out bytes.Buffer
			if err == nil {
				stdcopy.StdCopy(&out, &out, rc)
				rc.Close()
			}
			w.mu.Lock()
			w.atEmpty = append(w.atEmpty, info.State.Status+" sigterm="+boolText(strings.Contains(out.String(), "SIGTERM")))
			w.mu.Unlock()
		}
	}
	w.Recorder.Pool(c, version, ins)
}

func boolText(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TestStopLeavesRouterThenSIGTERMThenTimeoutThenRemoval stops a container
// that ignores SIGTERM, with a stop timeout under a second: the pool is
// reported empty while the container still runs unsignalled, SIGTERM
// reaches the app, the engine waits the timeout (rounded up to a whole
// second, never down to 0, which is SIGKILL at once) and the container
// is removed.
func TestStopLeavesRouterThenSIGTERMThenTimeoutThenRemoval(t *testing.T) {
	w := &stopWatcher{Recorder: runtimetest.NewRecorder(), t: t}
	d, _, _ := newDriver(t, func(o *Options) {
		o.Instances = 1
		o.StopTimeout = 400 * time.Millisecond
		o.Env = map[string]string{"APP_IGNORE_TERM": "1"}
		o.Listener = w
	})
	ctx := context.Background()
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	id := containers(t, "web", false)[0].ID
	rc, err := engineClient(t).ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	followed := make(chan struct{})
	go func() { stdcopy.StdCopy(&out, &out, rc); rc.Close(); close(followed) }()
	began := time.Now()
	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	<-followed
	t.Logf("stop of a container that ignores SIGTERM, stop timeout 400ms: %s", took.Round(time.Millisecond))
	w.mu.Lock()
	atEmpty := w.atEmpty
	w.mu.Unlock()
	if len(atEmpty) != 1 || atEmpty[0] != "running sigterm=no" {
		t.Errorf("when the pool was reported empty the containers were %q, want one running and not yet signalled", atEmpty)
	}
	if !strings.Contains(out.String(), "SIGTERM: ignored") {
		t.Errorf("the app never saw SIGTERM before it was killed; its output:\n%s", out.String())
	}
	if took < 900*time.Millisecond || took > 8*time.Second {
		t.Errorf("stop took %s, want the stop timeout rounded up to 1s before the engine's SIGKILL", took)
	}
	if n := len(containers(t, "web", true)); n != 0 {
		t.Errorf("%d containers left after Stop, want 0", n)
	}
}

func TestStopSecondsRoundsUp(t *testing.T) {
	for in, want := range map[time.Duration]int{400 * time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 10 * time.Second: 10} {
		if got := stopSeconds(in); got != want {
			t.Errorf("stopSeconds(%s) = %d, want %d", in, got, want)
		}
	}
}

// TestStopRemovesContainersThePoolDoesNotHold stops a pool beside which
// a container of its colour runs that the driver does not hold (as one
// left on a host that was down at Adopt, or a replacement whose create
// the stop cut short): Stop leaves no container of the colour running,
// and the other colour's containers are untouched.
func TestStopRemovesContainersThePoolDoesNotHold(t *testing.T) {
	ctx := context.Background()
	d, _, _ := newDriver(t, func(o *Options) { o.Instances = 1 })
	if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, route.Green, runtime.Release{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	cli := engineClient(t)
	stray, err := cli.ContainerCreate(ctx, &container.Config{Image: "app:v1", Env: []string{"PORT=8080"},
		Labels: map[string]string{LabelService: "web", LabelColor: "blue", LabelVersion: "v1", LabelInstance: "web-blue-1"}},
		nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, stray.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, route.Blue); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range containers(t, "web", true) {
		left = append(left, c.Labels[LabelColor]+"/"+c.Labels[LabelVersion])
	}
	if len(left) != 1 || left[0] != "green/v2" {
		t.Errorf("containers after Stop of blue: %v, want green's only", left)
	}
}

// TestHostPasswordNeverShown gives the driver (which the daemon only
// builds from a validated config, but other callers need not) a host
// whose URL holds a password: the unreachable host's error names it
// without the password.
func TestHostPasswordNeverShown(t *testing.T) {
	_, err := New(Options{Service: "web", Image: "app:v1", Port: 8080, Hosts: []string{"tcp://ops:hunter2-7f1c@127.0.0.1:[x"}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a host that is no URL: err = %v, want one without the password", err)
	}
	d, _, logs := newDriver(t, func(o *Options) {
		o.Hosts = []string{"tcp://ops:hunter2-7f1c@127.0.0.1:1"}
		o.PingTimeout = time.Second
	})
	_, err = d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err == nil || !strings.Contains(err.Error(), "tcp://ops:xxxxx@127.0.0.1:1") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want it to name the unreachable host, password masked", err)
	}
	if strings.Contains(err.Error()+logs.String(), "hunter2") {
		t.Errorf("the host's password shows:\n%v\n%s", err, logs.String())
	}
}

// TestAdoptGatesContainersBeforeTraffic adopts a running container that
// does not pass the health check (its app listens on another port than
// the one published, as a replacement still starting when the daemon
// died does not answer yet): it is never reported to the router, it is
// removed, and its slot gets a healthy container.
func TestAdoptGatesContainersBeforeTraffic(t *testing.T) {
	ctx := context.Background()
	cli := engineClient(t)
	cport := nat.Port("8080/tcp")
	bad, err := cli.ContainerCreate(ctx, &container.Config{Image: "app:v1", Env: []string{"PORT=9999", "VERSION=v1"},
		ExposedPorts: nat.PortSet{cport: {}},
		Labels:       map[string]string{LabelService: "web", LabelColor: "blue", LabelVersion: "v1", LabelInstance: "web-blue-1"}},
		&container.HostConfig{PortBindings: nat.PortMap{cport: {{HostIP: "127.0.0.1"}}}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, bad.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := cli.ContainerInspect(ctx, bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	port, err := publishedPort(info, cport)
	if err != nil {
		t.Fatal(err)
	}
	badAddr := "127.0.0.1:" + itoa(port)
	d, rec, _ := newDriver(t, func(o *Options) { o.Instances = 1; o.StartTimeout = 2 * time.Second })
	notices, err := d.Adopt(ctx, []runtime.PoolRef{{Color: route.Blue, Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notices: %q", notices)
	ev := rec.WaitPool(t, route.Blue, 30*time.Second, "a healthy blue container", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 1
	})
	if got := get(t, "http://"+ev.Instances[0].Addr+"/"); got != "v1 blue web-blue-1" {
		t.Errorf("blue's instance answers %q", got)
	}
	for _, e := range rec.PoolEvents() {
		for _, in := range e.Instances {
			if in.Addr == badAddr {
				t.Errorf("the container that fails the health check was reported to the router: %+v", in)
			}
		}
	}
	if _, err := cli.ContainerInspect(ctx, bad.ID); err == nil {
		t.Errorf("the container that failed its gate still exists")
	}
	if !strings.Contains(strings.Join(notices, "\n"), "failed its health gate") {
		t.Errorf("notices do not say the container failed its gate: %q", notices)
	}
}
