package docker

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

func itoa(n int) string { return strconv.Itoa(n) }

// Describe says what colour c runs (rel nil) or would run for rel: the
// image and its digest on the first host, the hosts, port, network, pull
// policy, resources, labels and the environment of its first instance,
// with the inherited, env file, release and secret values hashed.
func (d *Driver) Describe(ctx context.Context, c route.Color, rel *runtime.Release) (runtime.Description, error) {
	desc := runtime.Description{Color: c}
	var version string
	var relEnv map[string]string
	if rel != nil {
		version, relEnv = rel.Version, rel.Env
	} else {
		d.mu.Lock()
		p := d.pools[c]
		if p != nil {
			version, relEnv = p.version, p.env
		}
		d.mu.Unlock()
		if p == nil {
			return desc, nil
		}
	}
	desc.Version = version
	img := d.image(version)
	add := func(name, value string, secret, expected bool) {
		desc.Fields = append(desc.Fields, runtime.Field{Name: name, Value: value, Secret: secret, Expected: expected})
	}
	add("image", img, false, true)
	add("image.digest", d.digest(ctx, img), false, true)
	var hosts []string
	for _, h := range d.hosts {
		hosts = append(hosts, redactURL(h.name))
	}
	add("hosts", strings.Join(hosts, ","), false, false)
	add("port", itoa(d.opts.Port), false, false)
	add("network", d.opts.Network, false, false)
	add("pull", d.opts.Pull, false, false)
	add("resources.memory", strconv.FormatInt(d.opts.Memory, 10), false, false)
	add("resources.cpus", strconv.FormatFloat(float64(d.opts.NanoCPUs)/1e9, 'g', -1, 64), false, false)
	add("stop_timeout", d.opts.StopTimeout.String(), false, false)
	for _, k := range slices.Sorted(maps.Keys(d.opts.Labels)) {
		add("labels."+k, d.opts.Labels[k], false, false)
	}
	l, err := d.readEnv()
	if err != nil {
		return desc, err
	}
	port := itoa(d.opts.Port)
	if d.opts.Network == "host" {
		port = "(a free host port)"
	}
	vars := map[string]string{"PORT": port, "VERSION": version, "COLOR": c.String(), "SERVICE": d.name,
		"INSTANCE": instanceID(d.name, c, 1)}
	env, secret := d.containerEnv(l, relEnv, vars)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		_, own := vars[k]
		if secret[k] {
			v = hashValue(v)
		}
		add("env."+k, v, secret[k], own && k != "SERVICE")
	}
	return desc, nil
}

// digest is the image's repository digest (or its ID when it has none)
// on the first host that has it, or "(not present)".
func (d *Driver) digest(ctx context.Context, img string) string {
	for _, h := range d.hosts {
		info, err := h.cli.ImageInspect(ctx, img)
		if err != nil {
			continue
		}
		if len(info.RepoDigests) > 0 {
			return info.RepoDigests[0]
		}
		return info.ID
	}
	return "(not present)"
}
