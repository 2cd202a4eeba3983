//go:build unix && !linux

package deploy

import (
	"context"
	"os/exec"
	"syscall"
)

// hookCommand runs a hook line through `sh -c` in its own process group, so
// that a timed-out or cancelled hook takes its children (a `sleep` under
// `sh -c`) down with it. Only Linux has a parent death signal: here a hook
// that is running when the daemon is killed with SIGKILL runs on (see
// hooks_linux.go).
func hookCommand(ctx context.Context, line string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

func runHookProcess(cmd *exec.Cmd) error { return cmd.Run() }
