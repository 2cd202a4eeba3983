package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// HookOutputLimit bounds how much of a hook run's output is kept in the
// deployment's history and the daemon log (Event.Output): the last 4 KiB
// of what a command printed, or the first 4 KiB of a webhook's answer.
const HookOutputLimit = 4 << 10

// errTailLimit bounds the output an error message (and so a deployment's
// reason) repeats; the whole kept output is in the event.
const errTailLimit = 256

// hookEnv is the environment every command hook of a job gets on top of
// the daemon's: the service's env_file, env and secrets, then cutover's
// variables, which win. It fails when a secret or the env file cannot be
// read, naming it.
func (c *Controller) hookEnv(j Job) ([]string, error) {
	hooks := c.cfg().Hooks
	layers := []map[string]string{nil, hooks.Env, nil}
	if hooks.Secrets != nil {
		file, secrets, err := hooks.Secrets()
		if err != nil {
			return nil, fmt.Errorf("hook environment: %w", err)
		}
		layers[0], layers[2] = file, secrets
	}
	merged := map[string]string{}
	for _, l := range layers {
		maps.Copy(merged, l)
	}
	env := make([]string, 0, len(merged)+8)
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		env = append(env, k+"="+merged[k])
	}
	env = append(env,
		"SERVICE="+c.cfg().Name,
		"VERSION="+j.Version,
		"COLOR="+j.Color.String(),
		"PREVIEW_URL="+c.previewURL(),
		"DEPLOYMENT="+j.Deployment,
	)
	if r := j.Retired; r != nil {
		env = append(env, "RETIRED_COLOR="+r.Color.String(), "RETIRED_VERSION="+r.Version)
	}
	return env, nil
}

// daemonEnv is the daemon's environment as hooks get it: without the API
// token, which would let any hook drive cutover, and without systemd's
// notification socket, which would let a hook speak for the daemon to its
// service manager.
func daemonEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CUTOVER_TOKEN=") || strings.HasPrefix(kv, "NOTIFY_SOCKET=")
	})
}

// hookCall is what the hooks of one job run with.
type hookCall struct {
	kind string // the hook list's config key: "pre_provision", ...
	job  Job
	env  []string // for commands, on top of the daemon's environment
	// body returns a webhook's request body; it is called once, for the
	// job's first webhook.
	body func() ([]byte, error)
	// passed, when set, reports that the hook with index i (0-based)
	// passed, with its event message and output; it returns once the
	// controller has persisted that, or when ctx ends.
	passed func(ctx context.Context, i int, msg, output string)
}

// hookError is a failed hook run: its message names the hook kind, its
// place in the list and what failed, with the end of its output; Output
// holds all that was kept of it.
type hookError struct {
	msg    string
	output string
}

func (e *hookError) Error() string { return e.msg }

// hookOutput returns the output a failed hook kept, found anywhere in
// err's chain (a rollback job joins the hooks' error with the drain's).
func hookOutput(err error) string {
	var he *hookError
	if errors.As(err, &he) {
		return he.output
	}
	return ""
}

// runHooks runs the hooks in order from call.job.Hook on, each bounded by
// its timeout (Hooks.Timeout when it sets none), and stops at the first
// failure, returning a *hookError. Each hook that passes is reported
// through call.passed before the next one starts. A command runs through
// `sh -c` in its own process group, which a timeout or cancellation kills
// as a whole, and on Linux so does the daemon's death (see
// hooks_linux.go); a webhook is a POST (see webhook.go).
func (c *Controller) runHooks(ctx context.Context, call hookCall, hooks []Hook) (string, error) {
	if len(hooks) == 0 {
		return "", nil
	}
	var body []byte
	for i := call.job.Hook; i < len(hooks); i++ {
		h := hooks[i]
		timeout := h.Timeout
		if timeout <= 0 {
			timeout = c.cfg().Hooks.Timeout
		}
		start := time.Now()
		var out string
		var err error
		if h.URL != "" {
			if body == nil && call.body != nil {
				if body, err = call.body(); err != nil {
					return "", &hookError{msg: fmt.Sprintf("%s hook %d of %d (%s): %v", call.kind, i+1, len(hooks), hookName(h), err)}
				}
			}
			out, err = postWebhook(ctx, h.URL, body, call.kind, call.job.Deployment, timeout)
		} else {
			out, err = runHook(ctx, h.Command, call.env, timeout)
		}
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			return "", &hookError{msg: fmt.Sprintf("%s hook %d of %d (%s) failed after %s: %v", call.kind, i+1, len(hooks), hookName(h), took, err), output: out}
		}
		if call.passed != nil {
			call.passed(ctx, i, fmt.Sprintf("%s hook %d of %d (%s) passed in %s", call.kind, i+1, len(hooks), hookName(h), took), out)
		}
	}
	return fmt.Sprintf("%d %s hooks ran", len(hooks), call.kind), nil
}

// hookName is how messages name a hook: the command line, or the
// webhook's scheme and host only (its path and query often hold a secret
// token, as chat webhooks' do).
func hookName(h Hook) string {
	if h.URL != "" {
		return "POST " + redactURL(h.URL)
	}
	return fmt.Sprintf("%q", h.Command)
}

// runHook runs one command line and returns the end of its output (stdout
// and stderr interleaved, at most HookOutputLimit bytes), whether it
// passed or not. The error says how it failed, with the end of the
// output.
func runHook(ctx context.Context, line string, env []string, timeout time.Duration) (string, error) {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := hookCommand(hctx, line)
	cmd.Env = append(daemonEnv(), env...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a grandchild holding the pipes cannot hang us
	err := runHookProcess(cmd)
	output := out.String()
	if err == nil {
		return output, nil
	}
	if hctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	if s := errTail(output); s != "" {
		return output, fmt.Errorf("%w; output: %s", err, s)
	}
	return output, err
}

// errTail is the end of a hook's output that its error repeats: at most
// errTailLimit bytes, starting at a line when it can.
func errTail(out string) string {
	s := strings.TrimSpace(out)
	if len(s) <= errTailLimit {
		return s
	}
	s = s[len(s)-errTailLimit:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…" + validUTF8Start(s)
}

// tailBuffer keeps the last HookOutputLimit bytes written to it.
type tailBuffer struct {
	b   bytes.Buffer
	cut bool // bytes were dropped from the front
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if over := t.b.Len() - HookOutputLimit; over > 0 {
		t.b.Next(over)
		t.cut = true
	}
	return len(p), nil
}

// String returns what was kept; when the front was dropped it starts at
// the first whole character, after an ellipsis.
func (t *tailBuffer) String() string {
	if !t.cut {
		return t.b.String()
	}
	return "…" + validUTF8Start(t.b.String())
}

// validUTF8Start drops the continuation bytes of a character whose first
// bytes were cut off.
func validUTF8Start(s string) string {
	for i := 0; i < len(s) && i < utf8.UTFMax; i++ {
		if utf8.RuneStart(s[i]) {
			return s[i:]
		}
	}
	return s
}

// previewURL is what hooks get as PREVIEW_URL now.
func (c *Controller) previewURL() string {
	if u := c.cfg().PreviewURL; u != nil {
		return *u
	}
	return c.opts.PreviewURL
}
