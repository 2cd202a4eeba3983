package config

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Docker runs instances as containers on one or more Docker Engines
// (runtime.docker).
type Docker struct {
	// Image is the image reference; ${VERSION} (and ${SERVICE}) are
	// substituted: registry.example.com/web:${VERSION}.
	Image string
	// Hosts are the engines: unix:///var/run/docker.sock, tcp://h:2376
	// (TLS from DOCKER_CERT_PATH/DOCKER_TLS_VERIFY), ssh://user@h. Empty
	// means DOCKER_HOST, or the local socket.
	Hosts []string
	// Port is the container port the application listens on (its PORT).
	Port int
	// Env, EnvFile, Secrets and InheritEnv build the container's
	// environment as for processes, except that nothing of the daemon's
	// environment (not even PATH) is passed unless InheritEnv names it.
	Env        map[string]string
	EnvFile    string
	Secrets    map[string]Secret
	InheritEnv []string
	// Network is a user network to join; "" the engine's default bridge;
	// "host" the host's network.
	Network string
	// Pull is always, missing (default) or never.
	Pull      string
	Resources DockerResources
	// StopTimeout is how long SIGTERM has before the engine's SIGKILL;
	// default 10s.
	StopTimeout time.Duration
	// StartTimeout bounds each container's pull, start and health gate;
	// default 2m.
	StartTimeout time.Duration
	// Labels are added to every container.
	Labels map[string]string
}

// DockerResources limit each container.
type DockerResources struct {
	// Memory in bytes (from "512m", "1g", a plain number of bytes); 0 none.
	Memory int64
	// CPUs is a number of CPUs (1, 0.5); 0 none.
	CPUs float64
}

func defaultDocker() *Docker {
	return &Docker{Pull: "missing", StopTimeout: 10 * time.Second, StartTimeout: 2 * time.Minute}
}

func (d *decoder) docker(n *yaml.Node, key string, r *Runtime) {
	if isNull(n) {
		return
	}
	dk := defaultDocker()
	r.Docker = dk
	strMap := func(dst *map[string]string) setter {
		return func(key string, n *yaml.Node) {
			*dst = make(map[string]string)
			d.entries(n, key, func(name, child string, _, vn *yaml.Node) {
				if v, ok := d.text(vn, child); ok {
					(*dst)[name] = v
				}
			})
		}
	}
	d.mapping(n, key, fields{
		"image":       d.str(&dk.Image),
		"hosts":       d.strs(&dk.Hosts),
		"port":        d.int(&dk.Port),
		"env":         strMap(&dk.Env),
		"env_file":    d.str(&dk.EnvFile),
		"secrets":     func(key string, n *yaml.Node) { d.secretMap(n, key, &dk.Secrets) },
		"inherit_env": d.strs(&dk.InheritEnv),
		"network":     d.str(&dk.Network),
		"pull":        d.str(&dk.Pull),
		"resources": func(key string, n *yaml.Node) {
			d.mapping(n, key, fields{
				"memory": func(key string, n *yaml.Node) { d.memory(n, key, &dk.Resources.Memory) },
				"cpus": func(key string, n *yaml.Node) {
					if isNull(n) || !d.scalar(n, key, "a number of CPUs", "!!int", "!!float") {
						return
					}
					v, err := strconv.ParseFloat(n.Value, 64)
					if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
						d.problem(n, key, "must be a number of CPUs, got %s", describe(n))
						return
					}
					dk.Resources.CPUs = v
				},
			})
		},
		"stop_timeout":  d.duration(&dk.StopTimeout),
		"start_timeout": d.duration(&dk.StartTimeout),
		"labels":        strMap(&dk.Labels),
	})
}

// secretMap decodes NAME: {file: PATH} or NAME: {env: DAEMON_VAR}.
func (d *decoder) secretMap(n *yaml.Node, key string, dst *map[string]Secret) {
	*dst = make(map[string]Secret)
	d.entries(n, key, func(name, child string, _, vn *yaml.Node) {
		var s Secret
		if !isNull(vn) && vn.Kind != yaml.MappingNode {
			d.problem(vn, child, "must be {file: PATH} or {env: DAEMON_VAR}, got %s", describe(vn))
			return
		}
		d.mapping(vn, child, fields{"file": d.str(&s.File), "env": d.str(&s.Env)})
		(*dst)[name] = s
	})
}

// memory decodes a size the way docker run --memory takes it: a number
// of bytes, or one with a b, k, m or g suffix (binary multiples).
func (d *decoder) memory(n *yaml.Node, key string, dst *int64) {
	if isNull(n) || !d.scalar(n, key, `a size like "512m"`, "!!int", "!!str") {
		return
	}
	v, err := ParseMemory(n.Value)
	if err != nil {
		d.problem(n, key, "%v", err)
		return
	}
	*dst = v
}

// ParseMemory reads "512m", "1g", "1.5g", "65536" or "64k" as bytes.
func ParseMemory(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := 1.0
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf(`must be a size like "512m" or "1g", got %q`, s)
	}
	return int64(f * mult), nil
}

// resolvePaths makes the env file and secret files absolute.
func (dk *Docker) resolvePaths(abs func(*string)) {
	abs(&dk.EnvFile)
	for name, sec := range dk.Secrets {
		abs(&sec.File)
		dk.Secrets[name] = sec
	}
}

// docker checks runtime.docker.
func (v *validator) docker(key string, dk *Docker) {
	if strings.TrimSpace(dk.Image) == "" {
		v.add(key+".image", "required (an image reference like registry.example.com/web:${VERSION})")
	}
	if dk.Port < 1 || dk.Port > 65535 {
		v.add(key+".port", "must be the container port the app listens on, 1-65535 (got %d)", dk.Port)
	}
	for i, h := range dk.Hosts {
		hk := fmt.Sprintf("%s.hosts[%d]", key, i)
		u, err := url.Parse(h)
		switch {
		case err != nil:
			// url's error quotes the whole text, a password with it.
			v.add(hk, "is not a URL")
		case hasPassword(u):
			v.add(hk, "holds a password, which would show in messages: ssh:// hosts use keys (ssh-agent, ~/.ssh/config), tcp:// hosts TLS certificates")
		case u.Scheme == "unix":
			if u.Path == "" {
				v.add(hk, "a unix host needs a socket path, like unix:///var/run/docker.sock")
			}
		case u.Scheme == "tcp" || u.Scheme == "ssh":
			if u.Hostname() == "" {
				v.add(hk, "%q has no host name", h)
			}
		default:
			v.add(hk, "%q must be unix://PATH, tcp://HOST:PORT or ssh://USER@HOST", h)
		}
	}
	for name := range dk.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			v.add(key+".env", "%q is not a valid environment variable name", name)
		}
	}
	switch dk.Pull {
	case "always", "missing", "never":
	default:
		v.add(key+".pull", "must be always, missing or never (got %q)", dk.Pull)
	}
	if dk.Resources.CPUs < 0 {
		v.add(key+".resources.cpus", "must not be negative")
	}
	for k := range dk.Labels {
		if strings.HasPrefix(k, "cutover.") {
			v.add(key+".labels."+k, "labels under cutover. are cutover's own")
		}
	}
	v.envFile(key+".env_file", dk.EnvFile)
	v.secrets(key+".secrets", dk.Secrets)
	v.inheritEnv(key+".inherit_env", dk.InheritEnv)
	v.positive(key+".stop_timeout", dk.StopTimeout)
	v.positive(key+".start_timeout", dk.StartTimeout)
}

// countSet counts the true values.
func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func hasPassword(u *url.URL) bool {
	if u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}
