package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/cutover/cutover/internal/route"
)

// followScan is how often Logs with follow looks for containers that
// started since (replacements).
const followScan = 500 * time.Millisecond

// Logs writes the output of the colour's containers (both colours when
// color is nil) to w, read from their engines, each line prefixed with
// "<color>-<slot> | " as for processes. With follow it keeps writing new
// lines, including those of containers that replace others meanwhile,
// until ctx is done. The output of a container that was removed (stopped,
// or replaced after it exited) went with it; the driver's errors and
// crash-loop reports carry its last lines.
func (d *Driver) Logs(ctx context.Context, color *route.Color, follow bool, w io.Writer) error {
	lw := &lockedWriter{w: w}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	seen := map[string]bool{}
	scan := func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, c := range route.Colors {
			p := d.pools[c]
			if (color != nil && *color != c) || p == nil {
				continue
			}
			for _, in := range p.slots {
				if in == nil || seen[in.cid] {
					continue
				}
				seen[in.cid] = true
				lineW := &lineWriter{prefix: c.String() + "-" + itoa(in.slot) + " | ", out: lw}
				wg.Go(func() {
					if err := d.containerLogs(ctx, in, follow, lineW); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("instance %s on %s: %w", in.id, in.host.name, err))
						mu.Unlock()
					}
				})
			}
		}
	}
	scan()
	if follow {
		t := time.NewTicker(followScan)
		defer t.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-t.C:
				scan()
			}
		}
	}
	wg.Wait()
	if follow {
		return nil
	}
	return errors.Join(errs...)
}

func (d *Driver) containerLogs(ctx context.Context, in *instance, follow bool, w *lineWriter) error {
	rc, err := in.host.cli.ContainerLogs(ctx, in.cid, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	w.flush()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// lockedWriter serialises whole lines from several containers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) write(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(b)
	return err
}

// lineWriter prefixes each complete line and hands it on.
type lineWriter struct {
	prefix  string
	out     *lockedWriter
	partial []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := append([]byte(l.prefix), l.partial[:i+1]...)
		l.partial = l.partial[i+1:]
		if err := l.out.write(line); err != nil {
			return 0, err
		}
	}
}

func (l *lineWriter) flush() {
	if len(l.partial) > 0 {
		l.out.write(append(append([]byte(l.prefix), l.partial...), '\n'))
		l.partial = nil
	}
}
