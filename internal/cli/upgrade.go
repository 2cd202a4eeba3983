package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

const upgradeHelp = `Replace the running daemon with a new binary without losing a request: the
new process (the daemon's own executable path by default, or --binary FILE)
takes over the listening sockets, the state store and the controllers, adopts
the running instances and serves; the old one then stops accepting, finishes
its in-flight requests (within drain_timeout) and exits. A new binary that
fails to start leaves the running daemon serving; upgrade prints why and exits 1.
SIGUSR2 to the daemon does the same with its own executable path.`

// upgradeCommand is `cutover upgrade [--binary FILE]`.
func (a *app) upgradeCommand(o *opts) *cobra.Command {
	var binary string
	cmd := a.command("upgrade [--binary FILE]", "replace the running daemon with the binary on disk, no request lost",
		nargs(0, 0), func(a *app, o *opts, pos []string) int { return a.upgrade(binary) })
	cmd.Long = upgradeHelp
	cmd.Flags().StringVar(&binary, "binary", "", "the new cutover binary (default: the running daemon's executable path)")
	daemonConfigFlag(cmd, o)
	return cmd
}

func (a *app) upgrade(binary string) int {
	if binary != "" {
		abs, err := filepath.Abs(binary)
		if err != nil {
			return a.fail(err)
		}
		binary = abs
	}
	ctx, cancel := context.WithTimeout(a.ctx, 3*time.Minute)
	defer cancel()
	pid, err := a.client().Upgrade(ctx, binary)
	if err != nil {
		return a.fail(fmt.Errorf("upgrade: %w", err))
	}
	fmt.Fprintf(a.stdout, "upgraded: the new daemon (pid %d) serves\n", pid)
	return ExitOK
}
