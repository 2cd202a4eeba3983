package process

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// followInterval is how often Logs with follow looks for new output.
const followInterval = 200 * time.Millisecond

func (d *Driver) logDir() string { return filepath.Join(d.stateDir, "logs", d.name) }

// logPath is <StateDir>/logs/<service>/<color>/<slot>.log; a slot keeps its
// file across replacements, so a crash and its replacement read as one story.
func (d *Driver) logPath(c route.Color, slot int) string {
	return filepath.Join(d.logDir(), c.String(), strconv.Itoa(slot)+".log")
}

// openLog opens an instance's log for appending. The child gets its own copy
// of the descriptor, so its writes never depend on the daemon being alive.
func (d *Driver) openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// tail returns the last n lines the instance wrote since it started (or
// since the last rotation).
func (d *Driver) tail(in *instance, n int) string {
	f, err := os.Open(in.logPath)
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	defer f.Close()
	const window = 64 << 10
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	from := in.logFrom
	if fi.Size() < from { // rotated since
		from = 0
	}
	from = max(from, fi.Size()-window)
	b, err := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "\n")
	if out == "" {
		return "(no output)"
	}
	return out
}

// rotateLogs checks every LogCheckInterval whether a running instance's log
// has grown past LogMaxBytes and rotates it.
func (d *Driver) rotateLogs(ctx context.Context) {
	t := time.NewTicker(d.opts.LogCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		var paths []string
		for _, p := range d.pools {
			if p == nil {
				continue
			}
			for _, in := range p.slots {
				if in != nil {
					paths = append(paths, in.logPath)
				}
			}
		}
		d.mu.Unlock()
		for _, path := range paths {
			if fi, err := os.Stat(path); err == nil && fi.Size() > d.opts.LogMaxBytes {
				if err := rotate(path, d.opts.LogKeep); err != nil {
					d.log.Error("rotate instance log", "err", err)
				}
			}
		}
	}
}

// rotate shifts path.1..path.(keep-1) up by one, copies path to path.1 and
// truncates path. The instance keeps writing to the same open file: with
// O_APPEND its next write lands at the new end. Copy and truncate (rather
// than rename) is what makes this work without the instance's cooperation;
// lines written between the copy and the truncation are lost.
func rotate(path string, keep int) error {
	_ = os.Remove(fmt.Sprintf("%s.%d", path, keep))
	for i := keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", path, i), fmt.Sprintf("%s.%d", path, i+1))
	}
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	defer src.Close()
	dst, err := os.Create(path + ".1")
	if err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	return nil
}

// Logs writes the captured output of colour c's instances (both colours
// when c is nil), oldest rotated file first, each line prefixed with
// "<color>-<slot> | ". With follow it then writes new lines as they are
// written, like tail -f, until ctx is done (and returns nil then).
func (d *Driver) Logs(ctx context.Context, c *route.Color, follow bool, w io.Writer) error {
	colors := route.Colors[:]
	if c != nil {
		colors = []route.Color{*c}
	}
	files := d.logFiles(colors)
	offsets := make(map[string]*logCursor)
	for _, lf := range files {
		cur := &logCursor{prefix: lf.prefix}
		offsets[lf.path] = cur
		for i := d.opts.LogKeep; i >= 1; i-- {
			if _, err := cur.copyRotated(fmt.Sprintf("%s.%d", lf.path, i), w); err != nil {
				return fmt.Errorf("service %s: logs: %w", d.name, err)
			}
		}
		if err := cur.copyNew(lf.path, w); err != nil {
			return fmt.Errorf("service %s: logs: %w", d.name, err)
		}
	}
	if !follow {
		for _, lf := range files {
			if err := writeLines(w, lf.prefix, offsets[lf.path].partial, true); err != nil {
				return fmt.Errorf("service %s: logs: %w", d.name, err)
			}
		}
		return nil
	}
	t := time.NewTicker(followInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, lf := range d.logFiles(colors) {
			cur := offsets[lf.path]
			if cur == nil {
				cur = &logCursor{prefix: lf.prefix}
				offsets[lf.path] = cur
			}
			if err := cur.copyNew(lf.path, w); err != nil {
				return fmt.Errorf("service %s: logs: %w", d.name, err)
			}
		}
	}
}

type logFile struct{ path, prefix string }

// logFiles lists the instance logs of the colours, by colour then slot.
func (d *Driver) logFiles(colors []route.Color) []logFile {
	var out []logFile
	for _, c := range colors {
		paths, _ := filepath.Glob(filepath.Join(d.logDir(), c.String(), "*.log"))
		sort.Slice(paths, func(i, j int) bool {
			a, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(paths[i]), ".log"))
			b, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(paths[j]), ".log"))
			return a < b
		})
		for _, p := range paths {
			slot := strings.TrimSuffix(filepath.Base(p), ".log")
			out = append(out, logFile{path: p, prefix: c.String() + "-" + slot + " | "})
		}
	}
	return out
}

// logCursor remembers how far one log file has been written out, and the
// unfinished last line.
type logCursor struct {
	prefix  string
	offset  int64
	partial []byte
}

func (cur *logCursor) copyRotated(path string, w io.Writer) (bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, writeLines(w, cur.prefix, b, true)
}

// copyNew writes what was appended to path since the last call. A file
// that shrank was rotated (truncated): it is read again from its start.
func (cur *logCursor) copyNew(path string, w io.Writer) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < cur.offset {
		cur.offset, cur.partial = 0, nil
	}
	if fi.Size() == cur.offset {
		return nil
	}
	b, err := io.ReadAll(io.NewSectionReader(f, cur.offset, fi.Size()-cur.offset))
	if err != nil {
		return err
	}
	cur.offset += int64(len(b))
	b = append(cur.partial, b...)
	i := bytes.LastIndexByte(b, '\n')
	cur.partial = append([]byte(nil), b[i+1:]...)
	return writeLines(w, cur.prefix, b[:i+1], false)
}

// writeLines writes each line of b with the prefix; a last line without a
// newline is written only when flushPartial.
func writeLines(w io.Writer, prefix string, b []byte, flushPartial bool) error {
	bw := bufio.NewWriter(w)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else if !flushPartial {
			break
		} else {
			b = nil
		}
		bw.WriteString(prefix)
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
