package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/runtime/docker"
)

// Every runtime.docker key reaches the driver's options, and the
// controller takes the docker runtime's start timeout and env.
func TestDockerOptions(t *testing.T) {
	sc := &config.Service{Name: "web", Instances: 3, Health: config.Health{Path: "/up", Timeout: 2 * time.Second},
		Runtime: config.Runtime{Docker: &config.Docker{
			Image: "r.example/web:${VERSION}", Hosts: []string{"unix:///a.sock", "tcp://10.0.1.6:2376"}, Port: 8080,
			Env: map[string]string{"A": "1"}, EnvFile: "/etc/web.env", InheritEnv: []string{"TZ"},
			Secrets: map[string]config.Secret{"PW": {File: "/etc/pw"}, "TOK": {Env: "T"}},
			Network: "back", Pull: "always", Resources: config.DockerResources{Memory: 512 << 20, CPUs: 1.5},
			StopTimeout: 3 * time.Second, StartTimeout: 40 * time.Second, Labels: map[string]string{"team": "web"},
		}}}
	o := dockerOptions(sc, nil, nil, nil, nil, nil)
	if o.Service != "web" || o.Instances != 3 || o.Image != "r.example/web:${VERSION}" || len(o.Hosts) != 2 ||
		o.Port != 8080 || o.Env["A"] != "1" || o.EnvFile != "/etc/web.env" || o.InheritEnv[0] != "TZ" ||
		o.Secrets["PW"] != (docker.Secret{File: "/etc/pw"}) || o.Secrets["TOK"] != (docker.Secret{Env: "T"}) ||
		o.Network != "back" || o.Pull != "always" || o.Memory != 512<<20 || o.NanoCPUs != 1_500_000_000 ||
		o.StopTimeout != 3*time.Second || o.StartTimeout != 40*time.Second || o.Labels["team"] != "web" ||
		o.Gate.Path != "/up" || o.Gate.Timeout != 2*time.Second {
		t.Errorf("options %+v", o)
	}
	var s deploy.Settings
	dockerSettings(sc, &s)
	if s.StartTimeout != 40*time.Second || s.Hooks.Env["A"] != "1" {
		t.Errorf("controller settings: start timeout %s, hook env %v", s.StartTimeout, s.Hooks.Env)
	}
}

func TestPullMessage(t *testing.T) {
	got := pullMessage(docker.PullProgress{Host: "unix:///a.sock", Image: "web:v2", Layers: 3, LayersDone: 1,
		Bytes: 3 << 20, Total: 48 << 20})
	if want := "pulling web:v2 on unix:///a.sock: 1/3 layers, 3.0 MiB of 48.0 MiB"; got != want {
		t.Errorf("pullMessage = %q, want %q", got, want)
	}
	if got := pullMessage(docker.PullProgress{Image: "web:v2", Done: true}); !strings.HasPrefix(got, "pulled ") {
		t.Errorf("a finished pull reads %q", got)
	}
}
