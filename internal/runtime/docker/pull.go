package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// progressEvery spaces the pull progress reports of one pull.
const progressEvery = 500 * time.Millisecond

// ensureImages makes img present on each host at once, per Options.Pull.
func (d *Driver) ensureImages(ctx context.Context, img string, hosts map[*host]bool) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for h := range hosts {
		wg.Go(func() {
			if err := d.ensureImage(ctx, img, h); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ensureImage makes img present on h: pulled always, when missing, or
// never (then it must be there).
func (d *Driver) ensureImage(ctx context.Context, img string, h *host) error {
	if d.opts.Pull != PullAlways {
		_, err := h.cli.ImageInspect(ctx, img)
		if err == nil {
			return nil
		}
		if !client.IsErrNotFound(err) {
			return fmt.Errorf("host %s: inspect image %s: %w", h.name, img, err)
		}
		if d.opts.Pull == PullNever {
			return fmt.Errorf("host %s: image %s is not present and pull is never", h.name, img)
		}
	}
	return d.pull(ctx, img, h)
}

// registryOf is the registry an image reference is pulled from.
func registryOf(img string) string {
	named, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return "(unparsable reference)"
	}
	return reference.Domain(named)
}

// pull pulls img on h, reporting progress; its error names the host, the
// registry and what went wrong.
func (d *Driver) pull(ctx context.Context, img string, h *host) error {
	reg := registryOf(img)
	fail := func(err error) error {
		return fmt.Errorf("host %s: pull %s from registry %s: %s", h.name, img, reg, pullReason(err, reg))
	}
	auth, err := registryAuth(reg)
	if err != nil {
		return fail(err)
	}
	d.log.Info("pulling image", "host", h.name, "image", img, "registry", reg)
	rc, err := h.cli.ImagePull(ctx, img, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	if err := d.followPull(rc, PullProgress{Host: h.name, Image: img}); err != nil {
		return fail(err)
	}
	return nil
}

// layer is what a pull's stream said of one layer.
type layer struct {
	current, total int64
	done           bool
}

// followPull reads a pull's JSON stream to its end, reporting progress.
func (d *Driver) followPull(r io.Reader, pr PullProgress) error {
	layers := map[string]*layer{}
	var order []string
	last := time.Time{}
	emit := func(force bool) {
		if !force && time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		pr.Layers, pr.LayersDone, pr.Bytes, pr.Total = len(order), 0, 0, 0
		for _, id := range order {
			l := layers[id]
			if l.done {
				pr.LayersDone++
			}
			pr.Bytes += l.current
			pr.Total += l.total
		}
		d.opts.Progress(pr)
	}
	dec := json.NewDecoder(r)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
		if m.ID == "" || strings.HasPrefix(m.Status, "Pulling from") {
			continue
		}
		l := layers[m.ID]
		if l == nil {
			if m.Status == "Pulling fs layer" || m.Status == "Waiting" || m.Status == "Already exists" ||
				m.Status == "Downloading" {
				l = &layer{}
				layers[m.ID] = l
				order = append(order, m.ID)
			} else {
				continue
			}
		}
		switch m.Status {
		case "Downloading":
			if m.Progress != nil {
				l.current, l.total = m.Progress.Current, max(l.total, m.Progress.Total)
			}
		case "Download complete", "Verifying Checksum":
			l.current = max(l.current, l.total)
		case "Pull complete", "Already exists":
			l.current, l.done = max(l.current, l.total), true
		}
		emit(false)
	}
	pr.Done = true
	emit(true)
	return nil
}

// pullReason says in words what a failed pull's error means.
func pullReason(err error, reg string) string {
	msg := err.Error()
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "unauthorized") || strings.Contains(low, "authentication required") ||
		strings.Contains(low, "denied") || strings.Contains(low, "no basic auth credentials"):
		return fmt.Sprintf("authentication failed (check the credentials for %s in %s): %s", reg, dockerConfigPath(), msg)
	case strings.Contains(low, "not found") || strings.Contains(low, "manifest unknown"):
		return "image not found: " + msg
	default:
		return msg
	}
}
