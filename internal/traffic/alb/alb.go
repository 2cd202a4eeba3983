// Package alb is the traffic driver that moves a service's traffic with an
// Application Load Balancer: the weights of one forward action over the
// blue and green target groups, in a listener's default action or in one
// listener rule.
//
// Guarantees:
//   - A weight change is one ModifyListener (or ModifyRule) call carrying
//     the whole forward action, so the ALB goes from one split to the next
//     with nothing in between; the two weights never sum to 0.
//   - No weight is given to a target group without a healthy target:
//     DescribeTargetHealth is asked right before every change.
//   - Before every change the listener's (rule's) current weights are read
//     and compared with what cutover last wrote, kept in a ledger file in
//     the state directory (internal/traffic.Ledger) so that the check
//     survives restarts. Weights changed behind cutover's back are never
//     overwritten: the change is refused with both sets of weights named,
//     and the deployment pauses (deploy.PauseError) until they are set back.
//   - A call that keeps failing after the SDK's retries (throttling,
//     5xx) pauses the deployment at the split the ALB still serves; the
//     router keeps trying to write the split the controller last asked for.
//   - A colour is drained only once the listener (rule) read back gives
//     its target group weight 0: until then Drain returns a
//     deploy.StillRoutedError and the controller does not stop the pool
//     (a rollback whose write failed leaves the candidate running).
//   - Target group stickiness settings in the forward action are kept as
//     the user set them.
//
// It relies on the controller for the rest: the order of splits, health
// gates before traffic, and the quiet period before a pool is stopped
// (Sealed is false: an ALB gives no signal that a target group's last
// request has finished, so the controller waits until CloudWatch has
// counted no request for quiet_period).
//
// Counts come from an analysis source (CloudWatch), Healthy from the
// target groups' health as last polled. When Local is set (the embedded
// proxy on the service's own listen address) every split, preview and
// drain is applied to it too, so both paths in agree.
//
// Concurrency: all methods are safe for concurrent use; Healthy, Counts,
// Split, Sealed and TrafficStatus never wait for AWS.
package alb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic"
)

// API is the part of the ELBv2 client the router uses.
type API interface {
	DescribeListeners(ctx context.Context, in *elb.DescribeListenersInput, opts ...func(*elb.Options)) (*elb.DescribeListenersOutput, error)
	DescribeRules(ctx context.Context, in *elb.DescribeRulesInput, opts ...func(*elb.Options)) (*elb.DescribeRulesOutput, error)
	ModifyListener(ctx context.Context, in *elb.ModifyListenerInput, opts ...func(*elb.Options)) (*elb.ModifyListenerOutput, error)
	ModifyRule(ctx context.Context, in *elb.ModifyRuleInput, opts ...func(*elb.Options)) (*elb.ModifyRuleOutput, error)
	DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, opts ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	DescribeTargetGroupAttributes(ctx context.Context, in *elb.DescribeTargetGroupAttributesInput, opts ...func(*elb.Options)) (*elb.DescribeTargetGroupAttributesOutput, error)
	RegisterTargets(ctx context.Context, in *elb.RegisterTargetsInput, opts ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, in *elb.DeregisterTargetsInput, opts ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
}

// Counter is the analysis source: per-colour cumulative counters.
type Counter interface {
	Counts(route.Color) metrics.Counts
}

// Options configure a Router.
type Options struct {
	Service string
	Client  API
	// ListenerARN is the production listener; RuleARN, when set, the rule
	// of it whose actions are written instead of the default action.
	ListenerARN, RuleARN string
	// TestListenerARN, when set, is the preview listener.
	TestListenerARN string
	// TargetGroups are the target group ARNs, indexed by route.Color.
	TargetGroups [2]string
	// Counts is the analysis source; nil counts nothing.
	Counts Counter
	// Ledger records what was last written; required.
	Ledger *traffic.Ledger
	// Local, when set, gets every split, preview and drain too.
	Local deploy.Router
	// Poll is how often target health and the listener are read; default 1s.
	Poll time.Duration
	// CallTimeout bounds one change with its retries; default 60s.
	CallTimeout time.Duration
	// Alarms, when set, returns the alarms in ALARM, for status.
	Alarms func() []string
	// LoadBalancer5xx, when set, returns the load balancers' own 5xx
	// count since start and whether it is known, for status.
	LoadBalancer5xx func() (uint64, bool)
	// CountsLag is how long Counts trail what is served (CloudWatch's
	// metric period and publication delay): the controller waits the
	// quiet period on top of it (deploy.Lagged).
	CountsLag time.Duration
	Logger    *slog.Logger
}

// Router implements deploy.Router with an ALB.
type Router struct {
	opts Options
	log  *slog.Logger

	writeMu sync.Mutex // serialises changes to the listener

	mu      sync.Mutex
	live    route.Color
	weight  float64
	want    map[string]int64 // the split the controller last asked for
	pending string           // why want is not written yet
	drift   string
	actual  map[string]int64
	readAt  time.Time
	health  [2][2]int // healthy, total
	zeroAt  [2]time.Time
	first   bool // no split asked for yet: the first is Restore's
	preview route.Color
	hasPrev bool
}

var (
	_ deploy.Router          = (*Router)(nil)
	_ deploy.TrafficReporter = (*Router)(nil)
	_ deploy.Lagged          = (*Router)(nil)
)

// New returns a Router; Run polls health and the listener.
func New(o Options) (*Router, error) {
	if o.Client == nil || o.Ledger == nil || o.ListenerARN == "" || o.TargetGroups[0] == "" || o.TargetGroups[1] == "" {
		return nil, errors.New("alb router: Client, Ledger, ListenerARN and both TargetGroups are required")
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Router{opts: o, log: o.Logger.With("service", o.Service), first: true}, nil
}

// what names the resource whose forward action cutover writes.
func (r *Router) what() string {
	if r.opts.RuleARN != "" {
		return "ALB rule " + r.opts.RuleARN
	}
	return "ALB listener " + r.opts.ListenerARN
}

// Weights returns the ALB weights (0-999) for the split: live gets
// 100-w percent, live.Other() w percent, in thousandths capped at 999.
func (r *Router) Weights(live route.Color, w float64) map[string]int64 {
	cand := int64(math.Round(w * 10))
	keep := int64(1000) - cand
	return map[string]int64{
		r.opts.TargetGroups[live&1]:       min(keep, 999),
		r.opts.TargetGroups[live.Other()]: min(cand, 999),
	}
}

// SetSplit writes the split as one forward action. It returns a
// *deploy.PauseError when the listener's weights are not what cutover
// last wrote or when the ALB keeps failing, and a plain error when a
// colour that would get weight has no healthy target. The first call
// (the controller's restore) never fails: the ALB already serves what it
// serves, and a failure is reported in status and retried by Run.
func (r *Router) SetSplit(live route.Color, w float64) error {
	want := r.Weights(live, w)
	r.mu.Lock()
	first := r.first
	r.first = false
	r.live, r.weight, r.want = live, w, want
	r.mu.Unlock()
	if r.opts.Local != nil {
		if err := r.opts.Local.SetSplit(live, w); err != nil {
			r.log.Warn("local router refused the split", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.CallTimeout)
	defer cancel()
	err := r.write(ctx, want)
	if err != nil && first {
		r.log.Error("restoring the split on the ALB", "err", err)
		return nil
	}
	return err
}

// write makes the listener forward by want unless it already does.
func (r *Router) write(ctx context.Context, want map[string]int64) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for _, c := range route.Colors {
		tg := r.opts.TargetGroups[c]
		if want[tg] == 0 {
			continue
		}
		healthy, _, err := r.targetHealth(ctx, tg)
		if err != nil {
			return r.failed(want, fmt.Errorf("DescribeTargetHealth %s: %w", tg, err))
		}
		if healthy == 0 {
			err := fmt.Errorf("%s target group %s has no healthy target: not giving it weight %d", c, tg, want[tg])
			r.setPending(want, err.Error())
			return err
		}
	}
	cur, actions, err := r.read(ctx)
	if err != nil {
		return r.failed(want, err)
	}
	if err := r.opts.Ledger.Check(r.what(), cur); err != nil {
		r.mu.Lock()
		r.drift, r.pending = err.Error(), "refused: "+err.Error()
		r.mu.Unlock()
		return &deploy.PauseError{Err: err}
	}
	r.mu.Lock()
	r.drift = ""
	r.mu.Unlock()
	// The engine holds what the ledger allows: the last write, or the
	// one in progress (a call that timed out, or failed after the engine
	// took it). Record it as the last write, so that the next check
	// compares with what the engine holds, not with an older split.
	if last := r.opts.Ledger.Last(); last == nil || !last.Equal(cur) {
		if err := r.opts.Ledger.Adopt(cur, time.Now()); err != nil {
			return err
		}
	}
	if equalWeights(cur, want) {
		r.written(want)
		return nil
	}
	// A pending split the controller has replaced since (the poller's
	// retry of a split refused for want of a healthy target, while the
	// controller rolls back) is not written: the newer split's own write
	// follows, and the engine must not get the stale one meanwhile.
	r.mu.Lock()
	stale := !equalWeights(r.want, want)
	r.mu.Unlock()
	if stale {
		return nil
	}
	if err := r.opts.Ledger.Begin(want, time.Now()); err != nil {
		return err // nothing was called
	}
	all := withForward(actions, r.opts.TargetGroups, want)
	if r.opts.RuleARN != "" {
		_, err = r.opts.Client.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(r.opts.RuleARN), Actions: all})
	} else {
		_, err = r.opts.Client.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(r.opts.ListenerARN), DefaultActions: all})
	}
	if err != nil {
		// The ledger keeps the write as pending: the ALB holds either
		// split, and both are cutover's.
		return r.failed(want, fmt.Errorf("%s: %w", modifyName(r.opts.RuleARN), err))
	}
	if err := r.opts.Ledger.Commit(true); err != nil {
		r.log.Error("recording the split written", "err", err)
	}
	r.written(want)
	r.log.Info("ALB weights written", "weights", want)
	return nil
}

func modifyName(rule string) string {
	if rule != "" {
		return "ModifyRule"
	}
	return "ModifyListener"
}

// failed records that the ALB did not take want and returns the pause.
func (r *Router) failed(want map[string]int64, err error) error {
	err = fmt.Errorf("%s keeps failing (the split it serves is unchanged; cutover retries): %w", r.what(), err)
	r.setPending(want, err.Error())
	return &deploy.PauseError{Err: err}
}

func (r *Router) setPending(want map[string]int64, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if equalWeights(r.want, want) {
		r.pending = why
	}
}

func (r *Router) written(want map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sawLocked(want)
	if equalWeights(r.want, want) {
		r.pending = ""
	}
}

// sawLocked records weights the ALB holds (read or written) and, for a
// target group whose weight has just reached 0 there, when it did: the
// drain's deregistration delay counts from the ALB's change, not from
// when the controller asked for it (a write may fail and be made later).
func (r *Router) sawLocked(cur map[string]int64) {
	now := time.Now()
	for _, c := range route.Colors {
		tg := r.opts.TargetGroups[c]
		if cur[tg] == 0 && (r.actual == nil || r.actual[tg] != 0 || r.zeroAt[c].IsZero()) {
			r.zeroAt[c] = now
		}
	}
	r.actual, r.readAt = cur, now
}

// read returns the forward weights of the listener's default action (or
// the rule's actions) and all its actions.
func (r *Router) read(ctx context.Context) (map[string]int64, []types.Action, error) {
	var actions []types.Action
	if r.opts.RuleARN != "" {
		out, err := r.opts.Client.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{r.opts.RuleARN}})
		if err != nil {
			return nil, nil, fmt.Errorf("DescribeRules %s: %w", r.opts.RuleARN, err)
		}
		if len(out.Rules) != 1 {
			return nil, nil, fmt.Errorf("DescribeRules %s: %d rules", r.opts.RuleARN, len(out.Rules))
		}
		actions = out.Rules[0].Actions
	} else {
		out, err := r.opts.Client.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{r.opts.ListenerARN}})
		if err != nil {
			return nil, nil, fmt.Errorf("DescribeListeners %s: %w", r.opts.ListenerARN, err)
		}
		if len(out.Listeners) != 1 {
			return nil, nil, fmt.Errorf("DescribeListeners %s: %d listeners", r.opts.ListenerARN, len(out.Listeners))
		}
		actions = out.Listeners[0].DefaultActions
	}
	for _, a := range actions {
		if a.Type == types.ActionTypeEnumForward {
			return Weights(a), actions, nil
		}
	}
	return map[string]int64{}, actions, nil
}

// withForward is the actions with their forward action (or, when there is
// none, their fixed-response or redirect action) replaced by the weighted
// forward: the authenticate-oidc / authenticate-cognito actions before it
// are kept as they are, so that a weight change never turns a listener's
// or rule's authentication off.
func withForward(actions []types.Action, tgs [2]string, want map[string]int64) []types.Action {
	terminal := -1
	for i, a := range actions {
		switch a.Type {
		case types.ActionTypeEnumForward:
			terminal = i
		case types.ActionTypeEnumFixedResponse, types.ActionTypeEnumRedirect:
			if terminal < 0 || actions[terminal].Type != types.ActionTypeEnumForward {
				terminal = i
			}
		}
	}
	if terminal < 0 {
		if len(actions) == 0 {
			return []types.Action{forward(types.Action{}, tgs, want)}
		}
		// Only authenticate actions (which AWS would refuse): the forward
		// goes after them.
		last := actions[len(actions)-1]
		fwd := forward(types.Action{}, tgs, want)
		if last.Order != nil {
			fwd.Order = aws.Int32(*last.Order + 1)
		}
		return append(slices.Clone(actions), fwd)
	}
	out := slices.Clone(actions)
	cur := actions[terminal]
	if cur.Type != types.ActionTypeEnumForward {
		cur = types.Action{Order: cur.Order}
	}
	out[terminal] = forward(cur, tgs, want)
	return out
}

// Weights reads a forward action's weights by target group ARN; a forward
// action naming a single target group gives it weight 1000 equivalent
// (it gets all traffic), which cutover writes as 999.
func Weights(a types.Action) map[string]int64 {
	out := map[string]int64{}
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		for _, tg := range a.ForwardConfig.TargetGroups {
			w := int64(1)
			if tg.Weight != nil {
				w = int64(*tg.Weight)
			}
			out[aws.ToString(tg.TargetGroupArn)] = w
		}
		if len(out) == 1 {
			for k := range out {
				out[k] = 999
			}
		}
		return out
	}
	if a.TargetGroupArn != nil {
		out[*a.TargetGroupArn] = 999
	}
	return out
}

// forward is the weighted forward action, keeping cur's stickiness.
func forward(cur types.Action, tgs [2]string, want map[string]int64) types.Action {
	fc := &types.ForwardActionConfig{}
	if cur.ForwardConfig != nil {
		fc.TargetGroupStickinessConfig = cur.ForwardConfig.TargetGroupStickinessConfig
	}
	for _, tg := range tgs {
		fc.TargetGroups = append(fc.TargetGroups, types.TargetGroupTuple{TargetGroupArn: aws.String(tg), Weight: aws.Int32(int32(want[tg]))})
	}
	a := types.Action{Type: types.ActionTypeEnumForward, ForwardConfig: fc}
	if cur.Order != nil {
		a.Order = cur.Order
	}
	return a
}

func equalWeights(a, b map[string]int64) bool {
	if len(a) != len(b) {
		// A target group missing from one side counts as weight 0.
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		for k, v := range b {
			if a[k] != v {
				return false
			}
		}
		return true
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// targetHealth counts a target group's healthy and registered targets.
func (r *Router) targetHealth(ctx context.Context, tg string) (healthy, total int, err error) {
	out, err := r.opts.Client.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return 0, 0, err
	}
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth == nil {
			continue
		}
		switch d.TargetHealth.State {
		case types.TargetHealthStateEnumDraining, types.TargetHealthStateEnumUnhealthyDraining:
			continue
		case types.TargetHealthStateEnumHealthy:
			healthy++
		}
		total++
	}
	return healthy, total, nil
}

// Split returns the split the controller last asked for.
func (r *Router) Split() (route.Color, float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live, r.weight
}

// Drain waits, within ctx, until the ALB itself gives the colour's target
// group weight 0 (read from the listener or rule, not taken from what the
// controller asked for: a write that failed or was refused leaves the
// colour routed), then for its deregistration delay to pass since that
// change (what the ALB gives a request in flight), and for the local
// router's drain. While the ALB still routes the colour when ctx ends it
// returns a *deploy.StillRoutedError: the pool must not be stopped.
func (r *Router) Drain(ctx context.Context, color route.Color) error {
	if r.opts.Local != nil {
		if err := r.opts.Local.Drain(ctx, color); err != nil {
			return err
		}
	}
	tg := r.opts.TargetGroups[color&1]
	for {
		cur, _, err := r.read(ctx)
		if err == nil {
			r.mu.Lock()
			r.sawLocked(cur)
			r.mu.Unlock()
			if cur[tg] == 0 {
				break
			}
			err = fmt.Errorf("%s still gives %s target group %s weight %d", r.what(), color, tg, cur[tg])
		}
		t := time.NewTimer(min(r.opts.Poll, 200*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return &deploy.StillRoutedError{Err: fmt.Errorf("drain %s: %w", color, err)}
		case <-t.C:
		}
	}
	delay := r.deregistrationDelay(ctx, tg)
	r.mu.Lock()
	since := r.zeroAt[color&1]
	r.mu.Unlock()
	if since.IsZero() {
		since = time.Now()
	}
	wait := time.Until(since.Add(delay))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("drain %s: target group deregistration delay %s not over: %w", color, delay, ctx.Err())
	case <-t.C:
		return nil
	}
}

// deregistrationDelay reads the target group's deregistration_delay
// (300s when it cannot be read: the ALB's default).
func (r *Router) deregistrationDelay(ctx context.Context, tg string) time.Duration {
	out, err := r.opts.Client.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		r.log.Warn("reading the deregistration delay", "target_group", tg, "err", err)
		return 300 * time.Second
	}
	for _, a := range out.Attributes {
		if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
			if n, err := strconv.Atoi(aws.ToString(a.Value)); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 300 * time.Second
}

// CountsLag implements deploy.Lagged.
func (r *Router) CountsLag() time.Duration { return r.opts.CountsLag }

// Counts returns the analysis source's counters for the colour.
func (r *Router) Counts(color route.Color) metrics.Counts {
	if r.opts.Counts == nil {
		return metrics.Counts{}
	}
	return r.opts.Counts.Counts(color)
}

// Healthy reports the colour's target group's health as last polled.
func (r *Router) Healthy(color route.Color) (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.health[color&1]
	return h[0], h[1]
}

// SetPreview points the test listener (if any) at the colour's target group.
func (r *Router) SetPreview(color route.Color) {
	if r.opts.Local != nil {
		r.opts.Local.SetPreview(color)
	}
	r.mu.Lock()
	r.preview, r.hasPrev = color, true
	r.mu.Unlock()
	if r.opts.TestListenerARN == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.CallTimeout)
	defer cancel()
	if err := r.writePreview(ctx, color); err != nil {
		r.log.Error("pointing the ALB test listener at the candidate", "color", color, "err", err)
	}
}

func (r *Router) writePreview(ctx context.Context, color route.Color) error {
	tg := r.opts.TargetGroups[color&1]
	out, err := r.opts.Client.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{r.opts.TestListenerARN}})
	if err != nil {
		return fmt.Errorf("DescribeListeners %s: %w", r.opts.TestListenerARN, err)
	}
	if len(out.Listeners) == 1 {
		for _, a := range out.Listeners[0].DefaultActions {
			if w := Weights(a); len(w) == 1 && w[tg] > 0 {
				return nil
			}
		}
	}
	_, err = r.opts.Client.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(r.opts.TestListenerARN),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})
	if err != nil {
		return fmt.Errorf("ModifyListener %s: %w", r.opts.TestListenerARN, err)
	}
	return nil
}

// Undrain puts the colour back in the local router's rotation; the ALB
// has no rotation beyond weights.
func (r *Router) Undrain(color route.Color) {
	if r.opts.Local != nil {
		r.opts.Local.Undrain(color)
	}
}

// Sealed is false: the ALB gives no proof that a target group's last
// request has ended, so the controller waits for CloudWatch to count
// none for quiet_period.
func (r *Router) Sealed(route.Color) bool { return false }

// TrafficStatus is the ALB's side, as last read.
func (r *Router) TrafficStatus() *deploy.TrafficStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	rd := traffic.Reading{Engine: "alb", ReadAt: r.readAt, Pending: r.pending, Drift: r.drift}
	for _, c := range route.Colors {
		rd.Raw[c] = r.actual[r.opts.TargetGroups[c]]
		rd.Total += rd.Raw[c]
	}
	return traffic.Status(rd, traffic.Extras{Ledger: r.opts.Ledger, Alarms: r.opts.Alarms, LoadBalancer5xx: r.opts.LoadBalancer5xx})
}

// Run polls target health and the listener's weights until ctx ends, and
// writes the split the controller asked for while it is pending.
func (r *Router) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Poll)
	defer t.Stop()
	for {
		r.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Router) poll(ctx context.Context) {
	for _, c := range route.Colors {
		h, n, err := r.targetHealth(ctx, r.opts.TargetGroups[c])
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("reading target health", "color", c, "err", err)
			}
			continue
		}
		r.mu.Lock()
		r.health[c] = [2]int{h, n}
		r.mu.Unlock()
	}
	cur, _, err := r.read(ctx)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.sawLocked(cur)
	want, pending := r.want, r.pending
	r.mu.Unlock()
	if err := r.opts.Ledger.Check(r.what(), cur); err != nil {
		r.mu.Lock()
		r.drift = err.Error()
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.drift = ""
	r.mu.Unlock()
	if want != nil && pending != "" {
		if err := r.write(ctx, want); err == nil {
			r.log.Info("pending split written", "weights", want)
		}
	}
}

// SetTargets makes the colour's target group hold exactly addrs
// ("IP:port", the process runtime's instances): RegisterTargets for the
// new ones, DeregisterTargets for the others.
func (r *Router) SetTargets(ctx context.Context, color route.Color, addrs []string) error {
	return SetTargets(ctx, r.opts.Client, r.opts.TargetGroups[color&1], addrs, r.log.With("color", color))
}

// Registrar is the part of the ELBv2 client SetTargets uses.
type Registrar interface {
	DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, opts ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	RegisterTargets(ctx context.Context, in *elb.RegisterTargetsInput, opts ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, in *elb.DeregisterTargetsInput, opts ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
}

// SetTargets makes target group tg hold exactly addrs ("IP:port"):
// RegisterTargets for the new ones, DeregisterTargets for the others
// (targets already draining are left to finish).
func SetTargets(ctx context.Context, client Registrar, tg string, addrs []string, log *slog.Logger) error {
	want := map[string]types.TargetDescription{}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("register %s in %s: %w", a, tg, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("register %s in %s: port %q", a, tg, port)
		}
		want[net.JoinHostPort(host, port)] = types.TargetDescription{Id: aws.String(host), Port: aws.Int32(int32(p))}
	}
	out, err := client.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return fmt.Errorf("DescribeTargetHealth %s: %w", tg, err)
	}
	var gone []types.TargetDescription
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil {
			continue
		}
		key := net.JoinHostPort(aws.ToString(d.Target.Id), strconv.Itoa(int(aws.ToInt32(d.Target.Port))))
		if _, ok := want[key]; ok {
			if d.TargetHealth == nil || (d.TargetHealth.State != types.TargetHealthStateEnumDraining && d.TargetHealth.State != types.TargetHealthStateEnumUnhealthyDraining) {
				delete(want, key)
			}
			continue
		}
		if d.TargetHealth != nil && d.TargetHealth.State == types.TargetHealthStateEnumDraining {
			continue
		}
		gone = append(gone, types.TargetDescription{Id: d.Target.Id, Port: d.Target.Port})
	}
	if len(want) > 0 {
		var add []types.TargetDescription
		for _, t := range want {
			add = append(add, t)
		}
		if _, err := client.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: add}); err != nil {
			return fmt.Errorf("RegisterTargets %s: %w", tg, err)
		}
	}
	if len(gone) > 0 {
		if _, err := client.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: gone}); err != nil {
			return fmt.Errorf("DeregisterTargets %s: %w", tg, err)
		}
	}
	log.Info("target group membership", "target_group", tg, "registered", len(want), "deregistered", len(gone))
	return nil
}
