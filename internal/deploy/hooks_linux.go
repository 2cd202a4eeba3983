package deploy

import (
	"context"
	"os/exec"
	"runtime"
	"syscall"
)

// A hook must not outlive the daemon: a daemon that is killed (kill -9, a
// crash, the OOM killer) and started again runs the interrupted
// pre_traffic or on_rollback hooks again, and a leftover copy would run
// alongside, against the same candidate. Nothing runs in the dying daemon,
// so the kernel has to do it: the hook's shell gets SIGTERM as its parent
// death signal (Pdeathsig), and it reacts by killing its whole process
// group (Setpgid), which holds everything the hook started unless that
// left the group on purpose (setsid, setpgid). Pdeathsig alone would kill
// only the shell and orphan its children (a `sleep`, a curl), hence the
// wrapper below, which runs the hook line in the background and traps the
// signal (a shell runs a trap only after a foreground command ends).
//
// hookWrapper runs the hook line ($1) with `sh -c` exactly as before, and
// exits with its status.
const hookWrapper = `trap 'kill -9 0' TERM; sh -c "$1" & wait $!`

// hookCommand returns the command that runs a hook line in its own process
// group, which the daemon's death, a timeout and ctx all kill as a whole.
func hookCommand(ctx context.Context, line string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-c", hookWrapper, "sh", line)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// runHookProcess runs cmd to its end. Linux sends the parent death signal
// when the thread that started the child exits, not the process, and the
// Go runtime may end threads (one whose goroutine exits while locked to
// it): so the child is started from a goroutine locked to its thread,
// which stays alive, busy with nothing else, until the hook has ended.
func runHookProcess(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- cmd.Run()
	}()
	return <-errc
}
