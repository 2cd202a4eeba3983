package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// hookOutputLimit bounds how much of a hook's output reaches history.
const hookOutputLimit = 2048

// hookEnv is the environment every hook of a job gets on top of the daemon's.
func (c *Controller) hookEnv(j Job) []string {
	return []string{
		"SERVICE=" + c.cfg().Name,
		"VERSION=" + j.Version,
		"COLOR=" + j.Color.String(),
		"PREVIEW_URL=" + c.opts.PreviewURL,
		"DEPLOYMENT=" + j.Deployment,
	}
}

// runHooks runs each command through `sh -c`, in order, each bounded by
// Hooks.Timeout, and stops at the first failure. A hook runs in its own
// process group, which a timeout or cancellation kills as a whole, and on
// Linux so does the daemon's death (see hooks_linux.go). The error names the hook
// kind and command and carries the tail of its output.
func (c *Controller) runHooks(ctx context.Context, kind string, cmds []string, env []string) (string, error) {
	if len(cmds) == 0 {
		return "", nil
	}
	timeout := c.cfg().Hooks.Timeout
	for _, line := range cmds {
		if err := runHook(ctx, line, env, timeout); err != nil {
			return "", fmt.Errorf("%s hook %q: %w", kind, line, err)
		}
	}
	return fmt.Sprintf("%d %s hooks ran", len(cmds), kind), nil
}

func runHook(ctx context.Context, line string, env []string, timeout time.Duration) error {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := hookCommand(hctx, line)
	cmd.Env = append(os.Environ(), env...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a grandchild holding the pipes cannot hang us
	err := runHookProcess(cmd)
	if err == nil {
		return nil
	}
	if hctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	if s := strings.TrimSpace(out.String()); s != "" {
		return fmt.Errorf("%w; output: %s", err, s)
	}
	return err
}

// tailBuffer keeps the last hookOutputLimit bytes written to it.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if over := t.b.Len() - hookOutputLimit; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.b.String() }
