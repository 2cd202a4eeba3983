package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/cutover/cutover/internal/runtime/runtimetest"
	"github.com/cutover/cutover/internal/testsupport"
)

// engine is the Docker Engine the package's tests share, started by
// TestMain with the test images built once.
var engine *testsupport.Dockerd

// The test images: the same static app, steered by ENV lines.
var testImages = map[string]string{
	"app:v1":     "",
	"app:v2":     "",
	"app:crash":  "ENV APP_CRASH=1",
	"app:hc":     `HEALTHCHECK --interval=300ms --timeout=1s --retries=1 CMD ["/app", "-healthcheck"]`,
	"app:hcfail": `HEALTHCHECK --interval=300ms --timeout=1s --retries=1 CMD ["/app", "-healthcheck", "-fail"]`,
}

func TestMain(m *testing.M) {
	var err error
	engine, err = testsupport.LaunchDockerd(testsupport.DockerdOptions{Bridge: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerd is needed by these tests:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	for tag, extra := range testImages {
		if err = testsupport.BuildImage(ctx, engine.Host, tag, extra); err != nil {
			break
		}
	}
	cancel()
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	engine.Stop()
	os.Exit(code)
}

// logBuffer is a slog destination a test reads back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newDriver is a driver of service "web" on the test engine; change
// adjusts its options.
func newDriver(t *testing.T, change func(*Options)) (*Driver, *runtimetest.Recorder, *logBuffer) {
	t.Helper()
	rec := runtimetest.NewRecorder()
	logs := &logBuffer{}
	o := Options{Service: "web", Instances: 2, Image: "app:${VERSION}", Hosts: []string{engine.Host}, Port: 8080,
		Pull: PullNever, StopTimeout: 5 * time.Second, StartTimeout: 30 * time.Second,
		Listener: rec, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		RestartBackoff: 50 * time.Millisecond, WatchInterval: 100 * time.Millisecond}
	if change != nil {
		change(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		removeService(t, o.Service)
	})
	return d, rec, logs
}

// engineClient is an API client of the test engine, for checks the
// driver does not offer.
func engineClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(engine.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// containers lists the service's containers on the test engine.
func containers(t *testing.T, service string, all bool) []container.Summary {
	t.Helper()
	list, err := engineClient(t).ContainerList(context.Background(), container.ListOptions{All: all,
		Filters: filters.NewArgs(filters.Arg("label", LabelService+"="+service))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func removeService(t *testing.T, service string) {
	cli := engineClient(t)
	for _, c := range containers(t, service, true) {
		cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return strings.TrimSpace(string(b))
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
