package alb

import "context"

// PollOnce is one round of Run's poller, for tests that need it to finish
// however slow the machine is.
func (r *Router) PollOnce(ctx context.Context) { r.poll(ctx) }
