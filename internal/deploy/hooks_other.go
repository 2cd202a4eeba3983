//go:build !unix

package deploy

import "os/exec"

// ownProcessGroup is a no-op where process groups do not exist; WaitDelay
// still bounds a hook whose children outlive it.
func ownProcessGroup(cmd *exec.Cmd) {}
