package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// Found is a container of the service that Adopt saw on a host.
type Found struct {
	Host      string
	Container string
	Color     route.Color
	Version   string
	Slot      int
	Running   bool
}

// Adopt takes over the containers a previous daemon left running, found
// on every host by their labels. For each pool in serving (what the
// controller's persisted state says must be running) the running
// containers of its colour and version are taken as they are, one per
// slot, and reported at once (they passed their gate when they started;
// the router's health checks take out one that died since); empty slots
// are filled by the supervisor. Every other container of the service
// (exited, a second one for a slot, another version, a colour that is not
// serving) is removed, so no pool is ever duplicated. A host that does
// not answer is named in the notices; its slots are filled elsewhere.
// Adopt must be called before the first Start.
func (d *Driver) Adopt(ctx context.Context, serving []runtime.PoolRef) (notices []string, err error) {
	want := map[route.Color]runtime.PoolRef{}
	for _, p := range serving {
		want[p.Color] = p
	}
	pools := map[route.Color]*pool{}
	for c, ref := range want {
		p := &pool{color: c, version: ref.Version, image: d.image(ref.Version), env: ref.Env,
			slots: make([]*instance, d.opts.Instances)}
		p.ctx, p.cancel = context.WithCancel(d.ctx)
		pools[c] = p
	}
	var stale []*instance
	for _, h := range d.hosts {
		list, err := h.cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", LabelService+"="+d.name))})
		if err != nil {
			notices = append(notices, fmt.Sprintf("docker host %s did not answer at start; its containers were not adopted: %v", h.name, err))
			continue
		}
		for _, s := range list {
			in, c, version, ok := d.parseFound(h, s)
			p := pools[c]
			switch {
			case !ok || p == nil || version != p.version || s.State != "running" || in.slot > len(p.slots) || in.port == 0:
				stale = append(stale, in)
			case p.slots[in.slot-1] != nil:
				notices = append(notices, fmt.Sprintf("%s had two containers on %s; removed %s", in.id, h.name, shortID(in.cid)))
				stale = append(stale, in)
			default:
				p.slots[in.slot-1] = in
			}
		}
	}
	stale, notices = d.gateAdopted(ctx, pools, stale, notices)
	for _, in := range stale {
		d.log.Info("removing container not adopted", "instance", in.id, "host", in.host.name, "container", shortID(in.cid))
		d.remove(ctx, in)
	}
	for _, c := range slices.Sorted(maps.Keys(pools)) {
		p := pools[c]
		n := 0
		for _, in := range p.slots {
			if in != nil {
				n++
			}
		}
		if n < len(p.slots) {
			notices = append(notices, fmt.Sprintf("%s %s had %d of %d containers running; the others are started again", c, p.version, n, len(p.slots)))
		}
		d.mu.Lock()
		d.pools[c] = p
		d.mu.Unlock()
		d.log.Info("pool adopted", "color", c.String(), "version", p.version, "containers", n)
		d.report(p)
		d.supervise(p)
	}
	return notices, nil
}

// parseFound reads a listed container's labels and published port.
func (d *Driver) parseFound(h *host, s container.Summary) (in *instance, c route.Color, version string, ok bool) {
	in = &instance{host: h, cid: s.ID, id: s.Labels[LabelInstance], startedAt: time.Unix(s.Created, 0)}
	c, err := route.ParseColor(s.Labels[LabelColor])
	if err != nil {
		return in, c, "", false
	}
	version = s.Labels[LabelVersion]
	i := strings.LastIndexByte(in.id, '-')
	if i < 0 {
		return in, c, version, false
	}
	if in.slot, err = strconv.Atoi(in.id[i+1:]); err != nil || in.slot < 1 || in.id != instanceID(d.name, c, in.slot) {
		return in, c, version, false
	}
	if d.opts.Network == "host" {
		// The container's PORT is its port; the engine does not know it.
		in.port = d.hostNetPort(h, s.ID)
		if in.port > 0 && d.opts.Ports.Reserve(in.port) {
			in.ownPort = true
		}
		return in, c, version, true
	}
	want := uint16(d.opts.Port)
	for _, p := range s.Ports {
		if p.PrivatePort == want && p.PublicPort != 0 && p.Type == "tcp" {
			in.port = int(p.PublicPort)
		}
	}
	return in, c, version, true
}

// hostNetPort reads PORT from a host-network container's environment.
func (d *Driver) hostNetPort(h *host, id string) int {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.PingTimeout)
	defer cancel()
	info, err := h.cli.ContainerInspect(ctx, id)
	if err != nil || info.Config == nil {
		return 0
	}
	for _, kv := range info.Config.Env {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			p, _ := strconv.Atoi(v)
			return p
		}
	}
	return 0
}

// Survey lists the pools running on the hosts that answer, by colour and
// version with their number of running containers, for the daemon's check
// of its state store before Adopt.
func (d *Driver) Survey(ctx context.Context) ([]runtime.PoolRef, error) {
	count := map[[2]string]int{}
	for _, h := range d.hosts {
		list, err := h.cli.ContainerList(ctx, container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", LabelService+"="+d.name), filters.Arg("status", "running"))})
		if err != nil {
			continue // Adopt names the host
		}
		for _, s := range list {
			count[[2]string{s.Labels[LabelColor], s.Labels[LabelVersion]}]++
		}
	}
	var out []runtime.PoolRef
	for _, k := range slices.SortedFunc(maps.Keys(count), func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) }) {
		c, err := route.ParseColor(k[0])
		if err != nil {
			continue
		}
		out = append(out, runtime.PoolRef{Color: c, Version: k[1], Instances: count[k]})
	}
	return out, nil
}

// removeStrays removes every container of colour c on the hosts, before
// a new pool of c starts: the colour runs nothing the driver holds, so
// any container left (a replacement that was starting when a daemon
// stopped) would otherwise run beside the new pool.
func (d *Driver) removeStrays(ctx context.Context, c route.Color) error {
	for _, h := range d.hosts {
		list, err := h.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", LabelService+"="+d.name), filters.Arg("label", LabelColor+"="+c.String()))})
		if err != nil {
			return fmt.Errorf("docker host %s: list containers: %w", h.name, err)
		}
		for _, s := range list {
			d.log.Info("removing stray container", "color", c.String(), "instance", s.Labels[LabelInstance],
				"host", h.name, "container", shortID(s.ID))
			d.remove(ctx, &instance{host: h, cid: s.ID, id: s.Labels[LabelInstance]})
		}
	}
	return nil
}

// adoptGate bounds the health gate of an adopted container: one that
// runs but does not pass within it (a replacement that was still starting
// when the daemon died, an app that hangs) is removed, and its slot
// filled by a new container, instead of getting traffic.
func (d *Driver) adoptGate() time.Duration { return min(d.opts.StartTimeout, 10*time.Second) }

// gateAdopted health-gates the adopted containers at once, as a start
// does; those that fail are taken out of their slots and added to stale.
func (d *Driver) gateAdopted(ctx context.Context, pools map[route.Color]*pool, stale []*instance, notices []string) ([]*instance, []string) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, p := range pools {
		for _, in := range p.slots {
			if in == nil {
				continue
			}
			wg.Go(func() {
				gctx, cancel := context.WithTimeout(ctx, d.adoptGate())
				err := d.waitHealthy(gctx, in)
				cancel()
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					d.mu.Lock()
					in.healthy = true
					d.mu.Unlock()
					return
				}
				d.log.Warn("adopted container failed its health gate, replacing it", "color", p.color.String(),
					"version", p.version, "instance", in.id, "host", in.host.name, "container", shortID(in.cid), "err", err)
				notices = append(notices, fmt.Sprintf("%s on %s (container %s) failed its health gate at adoption and is replaced: %v",
					in.id, in.host.name, shortID(in.cid), err))
				d.mu.Lock()
				p.slots[in.slot-1] = nil
				d.mu.Unlock()
				stale = append(stale, in)
			})
		}
	}
	wg.Wait()
	return stale, notices
}
