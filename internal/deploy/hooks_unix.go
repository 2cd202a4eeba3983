//go:build unix

package deploy

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes a timed-out or cancelled hook take its children
// (a `sleep` under `sh -c`) down with it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
