package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// The labels every container of cutover's carries.
const (
	LabelService  = "cutover.service"
	LabelColor    = "cutover.color"
	LabelVersion  = "cutover.version"
	LabelInstance = "cutover.instance"
)

// instance is one container of a pool.
type instance struct {
	slot      int
	id        string // <service>-<color>-<slot>
	host      *host
	cid       string // the container's ID
	port      int    // the host port the router dials
	ownPort   bool   // port came from the allocator (host networking)
	startedAt time.Time
	healthy   bool // guarded by Driver.mu
}

func instanceID(service string, c route.Color, slot int) string {
	return service + "-" + c.String() + "-" + strconv.Itoa(slot)
}

func (in *instance) addr() string { return net.JoinHostPort(in.host.addr, strconv.Itoa(in.port)) }

func (in *instance) public(service string, p *pool) runtime.Instance {
	return runtime.Instance{ID: in.id, Service: service, Color: p.color, Version: p.version,
		Addr: in.addr(), StartedAt: in.startedAt}
}

// shortID is a container ID as the docker CLI shows it.
func shortID(id string) string { return id[:min(12, len(id))] }

// launch creates and starts a slot's container on h. It returns once the
// engine runs it and its published port is known.
func (d *Driver) launch(ctx context.Context, p *pool, slot int, h *host) (*instance, error) {
	in := &instance{slot: slot, id: instanceID(d.name, p.color, slot), host: h}
	l, err := d.readEnv()
	if err != nil {
		return nil, err
	}
	hostNet := d.opts.Network == "host"
	port := d.opts.Port
	if hostNet {
		if port, err = d.opts.Ports.Allocate(); err != nil {
			return nil, err
		}
		in.port, in.ownPort = port, true
	}
	vars := map[string]string{"PORT": strconv.Itoa(port), "VERSION": p.version, "COLOR": p.color.String(),
		"SERVICE": d.name, "INSTANCE": in.id}
	env, _ := d.containerEnv(l, p.env, vars)
	labels := maps.Clone(d.opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, map[string]string{LabelService: d.name, LabelColor: p.color.String(),
		LabelVersion: p.version, LabelInstance: in.id})
	stop := stopSeconds(d.opts.StopTimeout)
	cport := nat.Port(strconv.Itoa(d.opts.Port) + "/tcp")
	cfg := &container.Config{Image: p.image, Env: env, Labels: labels, StopSignal: "SIGTERM", StopTimeout: &stop}
	hc := &container.HostConfig{
		Resources: container.Resources{Memory: d.opts.Memory, NanoCPUs: d.opts.NanoCPUs},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
	if hostNet {
		hc.NetworkMode = "host"
	} else {
		cfg.ExposedPorts = nat.PortSet{cport: {}}
		hc.PortBindings = nat.PortMap{cport: {{HostIP: h.publishIP()}}}
		if d.opts.Network != "" {
			hc.NetworkMode = container.NetworkMode(d.opts.Network)
		}
	}
	name := fmt.Sprintf("%s-%s", in.id, randHex(3))
	created, err := h.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		d.releasePort(in)
		return nil, fmt.Errorf("host %s: create container of %s: %w", h.name, p.image, err)
	}
	in.cid = created.ID
	if err := h.cli.ContainerStart(ctx, in.cid, container.StartOptions{}); err != nil {
		d.remove(context.WithoutCancel(ctx), in)
		return nil, fmt.Errorf("host %s: start container %s: %w", h.name, shortID(in.cid), err)
	}
	in.startedAt = time.Now()
	if !hostNet {
		info, err := h.cli.ContainerInspect(ctx, in.cid)
		if err != nil {
			d.remove(context.WithoutCancel(ctx), in)
			return nil, fmt.Errorf("host %s: inspect container %s: %w", h.name, shortID(in.cid), err)
		}
		if in.port, err = publishedPort(info, cport); err != nil {
			// It exited before the engine even published its port: its
			// output says why.
			out := d.tail(context.WithoutCancel(ctx), in, 20)
			d.remove(context.WithoutCancel(ctx), in)
			return nil, fmt.Errorf("host %s: container %s: %w\nlast output:\n%s", h.name, shortID(in.cid), err, out)
		}
	}
	d.log.Info("container started", "color", p.color.String(), "version", p.version, "instance", in.id,
		"host", h.name, "container", shortID(in.cid), "addr", in.addr())
	return in, nil
}

func publishedPort(info container.InspectResponse, cport nat.Port) (int, error) {
	if info.NetworkSettings == nil {
		return 0, errors.New("no network settings")
	}
	for _, b := range info.NetworkSettings.Ports[cport] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			return p, nil
		}
	}
	if info.State != nil && !info.State.Running {
		return 0, &exitedError{code: info.State.ExitCode, msg: info.State.Error}
	}
	return 0, fmt.Errorf("port %s is not published", cport)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *Driver) releasePort(in *instance) {
	if in.ownPort {
		d.opts.Ports.Release(in.port)
		in.ownPort = false
	}
}

// exitedError says that a container is no longer running.
type exitedError struct {
	code int
	msg  string
}

func (e *exitedError) Error() string {
	s := "container exited with status " + strconv.Itoa(e.code)
	if e.code == 137 {
		s += " (killed; out of memory?)"
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// state is what an inspection of a container found.
type state struct {
	running bool
	exit    *exitedError
	// health is the HEALTHCHECK's status ("" when the image has none).
	health string
}

// inspect reads a container's state. A container that is gone reads as
// exited; any other error is the host's.
func (d *Driver) inspect(ctx context.Context, in *instance) (state, error) {
	info, err := in.host.cli.ContainerInspect(ctx, in.cid)
	if client.IsErrNotFound(err) {
		return state{exit: &exitedError{code: -1, msg: "removed"}}, nil
	}
	if err != nil {
		return state{}, err
	}
	st := state{running: info.State != nil && info.State.Running}
	if info.State != nil {
		if !st.running {
			st.exit = &exitedError{code: info.State.ExitCode, msg: info.State.Error}
		}
		if info.State.Health != nil {
			st.health = info.State.Health.Status
		}
	}
	return st, nil
}

// waitHealthy polls the container until its HTTP health check passes and,
// when its image has a HEALTHCHECK, the engine finds it healthy too. A
// container that exits meanwhile fails at once with an *exitedError.
func (d *Driver) waitHealthy(ctx context.Context, in *instance) error {
	delay := 20 * time.Millisecond
	var probe error = errors.New("not probed yet")
	health := ""
	for {
		st, err := d.inspect(ctx, in)
		switch {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("host %s: %w", in.host.name, err)
		case st.exit != nil:
			return st.exit
		}
		health = st.health
		if health == "unhealthy" {
			return fmt.Errorf("container %s: its HEALTHCHECK reports it unhealthy", shortID(in.cid))
		}
		probe = d.gate.Check(ctx, in.addr())
		if probe == nil && (health == "" || health == "healthy") {
			return nil
		}
		select {
		case <-ctx.Done():
			why := fmt.Sprintf("last probe: %v", probe)
			if probe == nil {
				why = "HEALTHCHECK status " + health
			}
			return fmt.Errorf("not healthy in time (%s): %w", why, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// stopSeconds is the stop timeout in the engine's whole seconds, rounded
// up: a timeout under a second must not become 0, which is SIGKILL right
// after SIGTERM.
func stopSeconds(t time.Duration) int {
	return int((t + time.Second - 1) / time.Second)
}

// stopContainer stops a container gracefully (SIGTERM, then the engine's
// SIGKILL after StopTimeout) and removes it.
func (d *Driver) stopContainer(ctx context.Context, in *instance) {
	secs := stopSeconds(d.opts.StopTimeout)
	sctx, cancel := context.WithTimeout(ctx, d.opts.StopTimeout+15*time.Second)
	defer cancel()
	if err := in.host.cli.ContainerStop(sctx, in.cid, container.StopOptions{Signal: "SIGTERM", Timeout: &secs}); err != nil && !client.IsErrNotFound(err) {
		d.log.Warn("stopping container", "instance", in.id, "host", in.host.name, "container", shortID(in.cid), "err", err)
	}
	d.remove(ctx, in)
}

// remove deletes a container (killing it if it still runs) and frees its
// port.
func (d *Driver) remove(ctx context.Context, in *instance) {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := in.host.cli.ContainerRemove(rctx, in.cid, container.RemoveOptions{Force: true})
	if err != nil && !client.IsErrNotFound(err) {
		d.log.Warn("removing container", "instance", in.id, "host", in.host.name, "container", shortID(in.cid), "err", err)
	}
	d.releasePort(in)
}

// tail is the container's last n lines of output.
func (d *Driver) tail(ctx context.Context, in *instance, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := in.host.cli.ContainerLogs(ctx, in.cid, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	if out := strings.TrimRight(buf.String(), "\n"); out != "" {
		return out
	}
	return "(no output)"
}
