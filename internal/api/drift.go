package api

import "context"

type allowDriftKey struct{}

// WithAllowDrift marks a deploy call's context with the request's
// allow_drift (`cutover deploy --allow-drift`): the backend deploys even
// when the drift check between the colours finds differences.
func WithAllowDrift(ctx context.Context) context.Context {
	return context.WithValue(ctx, allowDriftKey{}, true)
}

// AllowDrift reports whether ctx carries WithAllowDrift.
func AllowDrift(ctx context.Context) bool {
	v, _ := ctx.Value(allowDriftKey{}).(bool)
	return v
}
