package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

// completionTimeout bounds the daemon call that completes a service name:
// a shell waiting on a dead daemon must not hang.
const completionTimeout = 2 * time.Second

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
