package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// completionTimeout bounds the daemon call that completes a service name:
// a shell waiting on a dead daemon must not hang.
const completionTimeout = 2 * time.Second

// completionCommand is "cutover completion SHELL": it prints the script
// that makes SHELL complete cutover's commands, flags and service names.
func (a *app) completionCommand() *cobra.Command {
	shells := []struct {
		name string
		gen  func(root *cobra.Command, w io.Writer) error
	}{
		{"bash", func(root *cobra.Command, w io.Writer) error { return root.GenBashCompletionV2(w, true) }},
		{"zsh", (*cobra.Command).GenZshCompletion},
		{"fish", func(root *cobra.Command, w io.Writer) error { return root.GenFishCompletion(w, true) }},
		{"powershell", (*cobra.Command).GenPowerShellCompletionWithDesc},
	}
	var names []string
	for _, s := range shells {
		names = append(names, s.name)
	}
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "print a shell completion script",
		Long: `print the script that makes a shell complete cutover's commands, flags and
service names (these from the daemon, through --api or CUTOVER_API):

  bash        source <(cutover completion bash)   (needs bash-completion 2)
              or: cutover completion bash > /etc/bash_completion.d/cutover
  zsh         cutover completion zsh > "${fpath[1]}/_cutover"
  fish        cutover completion fish > ~/.config/fish/completions/cutover.fish
  powershell  cutover completion powershell | Out-String | Invoke-Expression`,
		Args:                  nargs(1, 1),
		ValidArgs:             names,
		DisableFlagsInUseLine: true,
		Run: func(cmd *cobra.Command, pos []string) {
			for _, s := range shells {
				if s.name == pos[0] {
					if err := s.gen(cmd.Root(), a.stdout); err != nil {
						a.code = a.fail(fmt.Errorf("write the %s completion script: %w", s.name, err))
					}
					return
				}
			}
			a.code = a.usageError(cmd, fmt.Sprintf("unknown shell %q: bash, zsh, fish or powershell", pos[0]))
		},
	}
}

// completeService completes a command's first argument with the names
// of the daemon's services; nothing if the daemon does not answer.
func (a *app) completeService(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(a.ctx, completionTimeout)
	defer cancel()
	all, err := a.client().Services(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]cobra.Completion, 0, len(all))
	for _, st := range all {
		names = append(names, cobra.CompletionWithDesc(st.Service, summary(st)))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
