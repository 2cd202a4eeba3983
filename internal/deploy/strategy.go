package deploy

import (
	"fmt"
	"time"
)

// The strategy presets accepted by Deploy besides "" (the service's
// configured steps).
const (
	StrategyConfig     = ""
	StrategyAllAtOnce  = "all-at-once"
	StrategyCanary10   = "canary10-5m" // 10% for 5 minutes, then 100%
	StrategyLinear10   = "linear10-1m" // 10%, 20% ... 100%, each held for a minute
	strategyRollbackTo = "rollback"    // history records of an instant rollback
)

// Steps resolves a strategy name into the steps of a deployment. The
// promotion to 100% after the last step is implicit, so all-at-once has no
// steps. It fails with ErrInvalid for an unknown name.
func Steps(strategy string, configured []Step) ([]Step, error) {
	switch strategy {
	case StrategyConfig:
		return append([]Step{}, configured...), nil
	case StrategyAllAtOnce:
		return nil, nil
	case StrategyCanary10:
		return []Step{{Weight: 10, Pause: 5 * time.Minute}}, nil
	case StrategyLinear10:
		out := make([]Step, 0, 10)
		for w := 10; w <= 100; w += 10 {
			out = append(out, Step{Weight: float64(w), Pause: time.Minute})
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown strategy %q (want %q, %q or %q, or none for the configured steps)",
		ErrInvalid, strategy, StrategyAllAtOnce, StrategyCanary10, StrategyLinear10)
}

// strategyName is how history and status name a strategy.
func strategyName(s string) string {
	if s == StrategyConfig {
		return "config"
	}
	return s
}
