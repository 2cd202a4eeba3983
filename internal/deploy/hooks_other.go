//go:build !unix

package deploy

import (
	"context"
	"os/exec"
)

// hookCommand runs a hook line through `sh -c`. Process groups do not exist
// here: WaitDelay still bounds a hook whose children outlive it, and a hook
// running when the daemon is killed runs on.
func hookCommand(ctx context.Context, line string) *exec.Cmd {
	return exec.CommandContext(ctx, "sh", "-c", line)
}

func runHookProcess(cmd *exec.Cmd) error { return cmd.Run() }
