package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/envfile"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// This file tells the daemon what the persisted state expects of the
// runtime after a restart, so that the phase rules stay in this package.

// Serving returns the pools that passed their health gate and that a
// restarted daemon must find running as they were: live, the previous
// pool while it is kept warm (not once it is being retired), and a
// candidate that has taken traffic and is not being rolled back. A
// candidate still provisioning or verifying is not among them: the
// resumed controller starts, and so gates, it again. A service that is
// down has none: the down stopped them on purpose (an up interrupted by
// the restart is run again by the resumed controller).
func (c *Controller) Serving() []runtime.PoolRef {
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	if st.Down != nil {
		return nil
	}
	var out []runtime.PoolRef
	if st.Live != nil {
		out = append(out, runtime.PoolRef{Color: st.Live.Color, Version: st.Live.Version, Env: st.ColorEnv[st.Live.Color&1]})
	}
	if r := st.Run; r != nil && (st.Phase == PhaseShifting || st.Phase == PhasePaused) {
		out = append(out, runtime.PoolRef{Color: r.Candidate.Color, Version: r.Candidate.Version, Env: r.Env})
	}
	if p := st.Previous; p != nil && !st.Retiring {
		out = append(out, runtime.PoolRef{Color: p.Color, Version: p.Version, Env: st.ColorEnv[p.Color&1]})
	}
	return out
}

// TrafficColors returns the colours public traffic goes to under the
// persisted split: live, and the other colour while its weight is above
// zero. A restarted daemon waits for these pools, and only these, before
// it opens the public listener. A service that is down has none.
func (c *Controller) TrafficColors() []route.Color {
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	if st.Live == nil || st.Down != nil {
		return nil
	}
	out := []route.Color{st.Live.Color}
	if st.Weight > 0 {
		out = append(out, st.Live.Color.Other())
	}
	return out
}

// Empty reports whether the state names no pool at all: no live pool, no
// deployment under way or finishing, nothing kept warm. A service whose
// runtime still runs instances while its state is empty has lost its
// state; the daemon refuses to start over it.
func (c *Controller) Empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Live == nil && c.st.Run == nil && c.st.Previous == nil && c.st.Job == nil
}

// strategyAdopted is the strategy of the history record AssumeLive writes.
const strategyAdopted = "adopted"

// AssumeLive makes p the live pool of a service whose state is empty (a
// store that was lost and accepted empty) while its runtime still runs p,
// so that the next deployment is judged against p on the configured steps
// instead of going to 100% at once as a first deployment. The decision is
// persisted and recorded in history with why. Call it after Restore and
// before Run.
func (c *Controller) AssumeLive(p PoolRef, why string) error {
	if !c.Empty() {
		return errors.New("assume live: the state already names pools")
	}
	now := c.opts.Now()
	c.mu.Lock()
	st := c.st.clone()
	c.mu.Unlock()
	st.Live, st.Weight, st.Phase, st.Updated = &p, 0, PhaseIdle, now
	ev := Event{Time: now, Service: st.Service, Type: EventAdopted, Phase: PhaseIdle, Actor: ActorDaemon,
		Message: fmt.Sprintf("%s %s taken as live: %s", p.Color, p.Version, why)}
	rec := Deployment{ID: c.newID(now), Service: st.Service, Version: p.Version, Color: p.Color,
		Strategy: strategyAdopted, StartedAt: now, EndedAt: now, Outcome: OutcomePromoted, Reason: ev.Message}
	ev.Deployment = rec.ID
	rec.Events = []Event{ev}
	if err := c.opts.Store.SaveDeployment(&rec); err != nil {
		return fmt.Errorf("assume %s %s live: %w", p.Color, p.Version, err)
	}
	if err := c.opts.Store.SaveState(st.Service, &st); err != nil {
		return fmt.Errorf("assume %s %s live: %w", p.Color, p.Version, err)
	}
	if err := c.opts.Router.SetSplit(p.Color, 0); err != nil {
		return fmt.Errorf("assume %s %s live: %w", p.Color, p.Version, err)
	}
	c.setPreview(PreviewColor(st))
	c.setState(st)
	if c.opts.Events != nil {
		c.opts.Events(ev)
	}
	return nil
}

// hashedEnv is env with each value replaced by "sha256:" and the first
// 12 hex digits of its SHA-256, for history.
func hashedEnv(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		sum := sha256.Sum256([]byte(v))
		out[k] = "sha256:" + hex.EncodeToString(sum[:6])
	}
	return out
}

// reservedEnv are the variables the runtime sets itself; a release may
// not set them.
var reservedEnv = []string{"PORT", "VERSION", "COLOR", "SERVICE", "INSTANCE", "CUTOVER_MARK"}

// ValidateEnv checks a release's own environment: names of letters,
// digits and underscores not starting with a digit, none of the
// runtime's own, values without NUL; at most 100 variables and 32 KiB in
// all. The error wraps ErrInvalid and names the variable, never a value.
func ValidateEnv(env map[string]string) error {
	if len(env) > 100 {
		return fmt.Errorf("%w: %d environment variables, at most 100", ErrInvalid, len(env))
	}
	size := 0
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		size += len(k) + len(v)
		switch {
		case !envfile.ValidName(k):
			return fmt.Errorf("%w: environment variable name %q: letters, digits and _ only, not starting with a digit", ErrInvalid, k)
		case slices.Contains(reservedEnv, k):
			return fmt.Errorf("%w: environment variable %s is set by cutover itself", ErrInvalid, k)
		case strings.IndexByte(v, 0) >= 0:
			return fmt.Errorf("%w: environment variable %s: the value holds a NUL byte", ErrInvalid, k)
		}
	}
	if size > 32<<10 {
		return fmt.Errorf("%w: the release's environment is %d bytes, at most 32 KiB", ErrInvalid, size)
	}
	return nil
}
