package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/docker/docker/client"
)

// DefaultHost is the engine used when neither Options.Hosts nor
// DOCKER_HOST names one.
const DefaultHost = "unix:///var/run/docker.sock"

// host is one Docker Engine the driver runs containers on.
type host struct {
	name string // as configured: unix:///..., tcp://..., ssh://...
	// addr is the address the router reaches the host's published ports
	// at: 127.0.0.1 for a local engine, the host part of its URL otherwise.
	addr  string
	local bool
	cli   *client.Client
}

// hostNames is opts.Hosts, or the default engine.
func hostNames(hosts []string) []string {
	if len(hosts) > 0 {
		return hosts
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return []string{h}
	}
	return []string{DefaultHost}
}

// openHost makes an API client for one engine. It connects to nothing yet.
func openHost(name string) (*host, error) {
	u, err := url.Parse(name)
	if err != nil {
		return nil, errors.New("a docker host is not a URL") // url's error quotes it, password and all
	}
	// The name is what messages, logs and events show: never a password.
	h := &host{name: redactURL(name)}
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	switch u.Scheme {
	case "unix":
		h.addr, h.local = "127.0.0.1", true
		opts = append(opts, client.WithHost(name))
	case "tcp":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("docker host %q: no host name", name)
		}
		h.addr = u.Hostname()
		h.local = isLoopback(h.addr)
		// The engine ignores user information in a tcp:// host, and the
		// client's errors quote the host it was given: strip it.
		bare := *u
		bare.User = nil
		opts = append(opts, client.WithHost(bare.String()))
		if os.Getenv("DOCKER_CERT_PATH") != "" || os.Getenv("DOCKER_TLS_VERIFY") != "" {
			opts = append(opts, client.WithTLSClientConfigFromEnv())
		}
	case "ssh":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("docker host %q: no host name", name)
		}
		h.addr = u.Hostname()
		h.local = isLoopback(h.addr)
		opts = append(opts, client.WithHost("http://docker.invalid"), client.WithDialContext(sshDialer(u)))
	default:
		return nil, fmt.Errorf("docker host %q: scheme must be unix, tcp or ssh", name)
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host %s: %w", name, err)
	}
	h.cli = cli
	return h, nil
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// publishIP is where a container's port is published on its host: only on
// loopback for a local engine, which the router reaches there.
func (h *host) publishIP() string {
	if h.local {
		return "127.0.0.1"
	}
	return "0.0.0.0"
}

// ping checks that the engine answers.
func (h *host) ping(ctx context.Context) error {
	if _, err := h.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker host %s is unreachable: %w", h.name, err)
	}
	return nil
}

// sshDialer connects to an engine over ssh the way the docker CLI does:
// it runs `ssh [-l user] [-p port] host -- docker system dial-stdio` and
// speaks HTTP over the command's standard input and output. The remote
// host needs the docker CLI; the local one an ssh client with a key the
// remote accepts (ssh-agent or ~/.ssh/config).
func sshDialer(u *url.URL) func(ctx context.Context, network, addr string) (net.Conn, error) {
	args := []string{"-o", "BatchMode=yes"}
	if u.User != nil && u.User.Username() != "" {
		args = append(args, "-l", u.User.Username())
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	args = append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialCommand(ctx, "ssh", args...)
	}
}

// redactURL is a host name fit for messages (never a password).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return strings.TrimSpace(u.String())
}
