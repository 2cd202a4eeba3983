package docker

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// An ssh:// host is reached the way the docker CLI reaches one: through
// `ssh ... docker system dial-stdio`. The test's ssh joins stdio to the
// test engine's socket, so what is checked is the driver's side: the
// command it runs and the API over the command's stdio.
func TestSSHHost(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "ssh"), "./testdata/fakessh")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fake ssh: %v\n%s", err, out)
	}
	args := filepath.Join(t.TempDir(), "args")
	t.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKESSH_ARGS", args)
	t.Setenv("FAKESSH_SOCKET", strings.TrimPrefix(engine.Host, "unix://"))
	d, _, _ := newDriver(t, func(o *Options) { o.Instances = 1; o.Hosts = []string{"ssh://deploy@127.0.0.1:2222"} })
	ins, err := d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, "http://"+ins[0].Addr+"/"); got != "v1 blue web-blue-1" {
		t.Errorf("container on the ssh host answers %q", got)
	}
	b, _ := os.ReadFile(args)
	if want := "-o BatchMode=yes -l deploy -p 2222 -- 127.0.0.1 docker system dial-stdio"; !strings.Contains(string(b), want) {
		t.Errorf("ssh ran with %q, want %q", b, want)
	}
}
