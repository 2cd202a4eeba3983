package docker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/cutover/cutover/internal/route"
)

// Logs writes the output of the colour's containers (both colours when
// color is nil) to w, read from their engines, each line prefixed with
// "<color>-<slot> | " as for processes. With follow it keeps writing new
// lines until ctx is done.
func (d *Driver) Logs(ctx context.Context, color *route.Color, follow bool, w io.Writer) error {
	type target struct {
		prefix string
		in     *instance
	}
	var targets []target
	d.mu.Lock()
	for _, c := range route.Colors {
		if color != nil && *color != c {
			continue
		}
		if p := d.pools[c]; p != nil {
			for _, in := range p.slots {
				if in != nil {
					targets = append(targets, target{c.String() + "-" + itoa(in.slot) + " | ", in})
				}
			}
		}
	}
	d.mu.Unlock()
	lw := &lockedWriter{w: w}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { errs[i] = d.containerLogs(ctx, t.in, follow, &lineWriter{prefix: t.prefix, out: lw}) })
	}
	wg.Wait()
	if follow && ctx.Err() != nil {
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
