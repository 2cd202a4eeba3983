package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/docker"
)

// EventPull is the type of the events that report an image pull's
// progress on a Docker host; `cutover deploy --wait` shows them.
const EventPull deploy.EventType = "pull"

// dockerOptions is the Docker runtime of a service. progress receives pull
// progress.
func dockerOptions(sc *config.Service, tlsConf *tls.Config, lis runtime.Listener, log *slog.Logger,
	ports *runtime.PortAllocator, progress func(docker.PullProgress)) docker.Options {
	dk := sc.Runtime.Docker
	secrets := make(map[string]docker.Secret, len(dk.Secrets))
	for name, s := range dk.Secrets {
		secrets[name] = docker.Secret{File: s.File, Env: s.Env}
	}
	return docker.Options{
		Service: sc.Name, Instances: sc.Instances, Image: dk.Image, Hosts: dk.Hosts, Port: dk.Port,
		Env: dk.Env, EnvFile: dk.EnvFile, Secrets: secrets, InheritEnv: dk.InheritEnv,
		Network: dk.Network, Pull: dk.Pull, Memory: dk.Resources.Memory, NanoCPUs: int64(dk.Resources.CPUs * 1e9),
		StopTimeout: dk.StopTimeout, StartTimeout: dk.StartTimeout, Labels: dk.Labels,
		Gate: gateOptions(sc, tlsConf), Listener: lis, Progress: progress, Logger: log, Ports: ports,
	}
}

// dockerSettings adds what the controller takes from a Docker runtime.
func dockerSettings(sc *config.Service, s *deploy.Settings) {
	if dk := sc.Runtime.Docker; dk != nil {
		s.StartTimeout = dk.StartTimeout
		s.Hooks.Env = dk.Env
	}
}

// newDockerDriver builds svc's Docker driver; its pull progress becomes
// events of the deployment under way.
func (d *Daemon) newDockerDriver(svc *service, sc *config.Service, tlsConf *tls.Config, lis runtime.Listener, log *slog.Logger) (*docker.Driver, error) {
	progress := func(p docker.PullProgress) {
		ev := deploy.Event{Time: time.Now(), Service: svc.name, Type: EventPull, Actor: deploy.ActorController,
			Phase: deploy.PhaseProvisioning, Message: pullMessage(p)}
		if c := svc.ctrl; c != nil {
			if st := c.Status(); st.Deployment != nil {
				ev.Deployment = st.Deployment.ID
			}
		}
		d.publish(ev)
	}
	return docker.New(dockerOptions(sc, tlsConf, lis, log, d.ports, progress))
}

// pullMessage is one line of pull progress.
func pullMessage(p docker.PullProgress) string {
	verb := "pulling"
	if p.Done {
		verb = "pulled"
	}
	return fmt.Sprintf("%s %s on %s: %d/%d layers, %s of %s", verb, p.Image, p.Host, p.LayersDone, p.Layers,
		bytesText(p.Bytes), bytesText(p.Total))
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// adoptContainers takes over the containers a previous daemon left
// running, after checking them against the restored state as for
// processes (checkStore).
func (d *Daemon) adoptContainers(ctx context.Context, svc *service, drv *docker.Driver, stateDir string) error {
	found, err := drv.Survey(ctx)
	if err != nil {
		return err
	}
	assume, err := checkStore(svc.name, svc.ctrl, found, stateDir, d.opts.AcceptEmptyStore)
	if err != nil {
		return err
	}
	if assume != nil {
		why := "the state store was empty and accepted (--accept-empty-store) while this pool was running"
		if err := svc.ctrl.AssumeLive(*assume, why); err != nil {
			return err
		}
		svc.log.Warn("running pool taken as live over an empty store", "color", assume.Color, "version", assume.Version)
	}
	notices, err := drv.Adopt(ctx, svc.ctrl.Serving())
	if err != nil {
		return fmt.Errorf("adopt containers: %w", err)
	}
	svc.notices = notices
	for _, n := range notices {
		d.publish(deploy.Event{Time: time.Now(), Service: svc.name, Type: deploy.EventNotice, Actor: deploy.ActorDaemon, Message: n})
	}
	return nil
}
