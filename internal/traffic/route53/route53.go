// Package route53 is the traffic driver that moves a service's traffic
// with two weighted Route53 records of one name, set identifiers "blue"
// and "green" (alias records to each colour's load balancer, or CNAMEs
// with a TTL).
//
// Guarantees:
//   - A weight change is one ChangeResourceRecordSets batch that UPSERTs
//     both records, so resolvers never see one colour changed without
//     the other; the two weights never are both 0 (which Route53 reads as
//     "equal").
//   - SetSplit returns once GetChange reports the change INSYNC; the
//     driver then reports the TTL as its settle time (deploy.Settler), so
//     the controller starts the step's clock and analysis window only
//     after INSYNC + TTL.
//   - Before every change both records are read (ListResourceRecordSets)
//     and compared with what cutover last wrote (the ledger in the state
//     directory); records changed behind cutover's back are not
//     overwritten: the change is refused and the deployment pauses.
//   - A demoted colour's Drain lasts until Route53 itself holds weight 0
//     for it (a refused or failed write leaves it resolved: Drain then
//     returns a deploy.StillRoutedError and the pool is not stopped) and
//     the TTL has passed since that change; Sealed is false, so the controller then waits
//     until CloudWatch has counted no request to it for quiet_period
//     (clients that ignore TTLs are real) before it is stopped.
//
// Concurrency: all methods are safe for concurrent use; Healthy, Counts,
// Split, Sealed and TrafficStatus never wait for AWS.
package route53

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/traffic"
)

// API is the part of the Route53 client the router uses.
type API interface {
	ChangeResourceRecordSets(ctx context.Context, in *r53.ChangeResourceRecordSetsInput, opts ...func(*r53.Options)) (*r53.ChangeResourceRecordSetsOutput, error)
	GetChange(ctx context.Context, in *r53.GetChangeInput, opts ...func(*r53.Options)) (*r53.GetChangeOutput, error)
	ListResourceRecordSets(ctx context.Context, in *r53.ListResourceRecordSetsInput, opts ...func(*r53.Options)) (*r53.ListResourceRecordSetsOutput, error)
}

// Counter is the analysis source: per-colour cumulative counters.
type Counter interface {
	Counts(route.Color) metrics.Counts
}

// Target is a colour's record target: an alias DNS name and its hosted
// zone, or (Zone empty, CNAME records) the CNAME's value.
type Target struct {
	Value, Zone string
}

// Options configure a Router.
type Options struct {
	Service string
	Client  API
	ZoneID  string
	// Record is the weighted records' name; Type A, AAAA or CNAME.
	Record, Type string
	TTL          time.Duration
	// Targets are indexed by route.Color.
	Targets [2]Target
	// PreviewRecord, when set, is pointed at the candidate's target.
	PreviewRecord string
	Counts        Counter
	Ledger        *traffic.Ledger
	// Local, when set, gets every split, preview and drain too.
	Local deploy.Router
	// Poll is how often the records are read for status; default 5s.
	Poll time.Duration
	// SyncPoll is how often GetChange is asked; default 1s.
	SyncPoll time.Duration
	// CallTimeout bounds one change until INSYNC; default 3m.
	CallTimeout time.Duration
	Alarms      func() []string
	// LoadBalancer5xx, when set, returns the load balancers' own 5xx
	// count since start and whether it is known, for status.
	LoadBalancer5xx func() (uint64, bool)
	// CountsLag is how long Counts trail what is served (CloudWatch's
	// metric period and publication delay): the controller waits the
	// quiet period on top of it (deploy.Lagged).
	CountsLag time.Duration
	Logger    *slog.Logger
}

// Router implements deploy.Router with Route53 weighted records.
type Router struct {
	opts Options
	log  *slog.Logger

	writeMu sync.Mutex

	mu      sync.Mutex
	live    route.Color
	weight  float64
	want    map[string]int64
	pending string
	drift   string
	actual  map[string]int64
	readAt  time.Time
	zeroAt  [2]time.Time
	settle  time.Duration // of the last SetSplit: TTL when it changed the records
	first   bool
}

var (
	_ deploy.Router          = (*Router)(nil)
	_ deploy.Settler         = (*Router)(nil)
	_ deploy.TrafficReporter = (*Router)(nil)
	_ deploy.Lagged          = (*Router)(nil)
)

// New returns a Router.
func New(o Options) (*Router, error) {
	if o.Client == nil || o.Ledger == nil || o.ZoneID == "" || o.Record == "" {
		return nil, errors.New("route53 router: Client, Ledger, ZoneID and Record are required")
	}
	if o.Type == "" {
		o.Type = "A"
	}
	if o.TTL <= 0 {
		o.TTL = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.SyncPoll <= 0 {
		o.SyncPoll = time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 3 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Record = fqdn(o.Record)
	return &Router{opts: o, log: o.Logger.With("service", o.Service), first: true}, nil
}

func fqdn(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) + "." }

func (r *Router) what() string {
	return fmt.Sprintf("Route53 records %s %s in zone %s", r.opts.Record, r.opts.Type, r.opts.ZoneID)
}

// Weights are the records' weights (0-255) for the split.
func Weights(live route.Color, w float64) map[string]int64 {
	cand := int64(math.Round(w * 2.55))
	return map[string]int64{live.String(): 255 - cand, live.Other().String(): cand}
}

// SettleAfter is the TTL when the last SetSplit changed the records, else 0.
func (r *Router) SettleAfter() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settle
}

// SetSplit writes both weighted records in one batch and waits for
// INSYNC. It returns a *deploy.PauseError when the records are not what
// cutover last wrote or when Route53 keeps failing. The first call (the
// controller's restore) never fails.
func (r *Router) SetSplit(live route.Color, w float64) error {
	want := Weights(live, w)
	r.mu.Lock()
	first := r.first
	r.first = false
	r.live, r.weight, r.want, r.settle = live, w, want, 0
	r.mu.Unlock()
	if r.opts.Local != nil {
		if err := r.opts.Local.SetSplit(live, w); err != nil {
			r.log.Warn("local router refused the split", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.CallTimeout)
	defer cancel()
	changed, err := r.write(ctx, want)
	if err != nil && first {
		r.log.Error("restoring the split on Route53", "err", err)
		return nil
	}
	if err == nil && changed {
		r.mu.Lock()
		r.settle = r.opts.TTL
		r.mu.Unlock()
	}
	return err
}

func (r *Router) write(ctx context.Context, want map[string]int64) (bool, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	cur, err := r.read(ctx)
	if err != nil {
		return false, r.failed(want, err)
	}
	if err := r.opts.Ledger.Check(r.what(), cur); err != nil {
		r.mu.Lock()
		r.drift, r.pending = err.Error(), "refused: "+err.Error()
		r.mu.Unlock()
		return false, &deploy.PauseError{Err: err}
	}
	for _, id := range slices.Sorted(maps.Keys(cur)) {
		if id != "blue" && id != "green" && cur[id] > 0 {
			err := fmt.Errorf("%s: the weighted record with set identifier %q has weight %d: it takes a share of the traffic cutover moves between blue and green; set it to 0 or delete it", r.what(), id, cur[id])
			r.mu.Lock()
			r.drift, r.pending = err.Error(), "refused: "+err.Error()
			r.mu.Unlock()
			return false, &deploy.PauseError{Err: err}
		}
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
			return false, err
		}
	}
	if equal(cur, want) {
		r.written(want)
		return false, nil
	}
	// A pending split the controller has replaced since (the poller's
	// retry of a split refused for want of a healthy target, while the
	// controller rolls back) is not written: the newer split's own write
	// follows, and the engine must not get the stale one meanwhile.
	r.mu.Lock()
	stale := !equal(r.want, want)
	r.mu.Unlock()
	if stale {
		return false, nil
	}
	if err := r.opts.Ledger.Begin(want, time.Now()); err != nil {
		return false, err
	}
	var changes []types.Change
	for _, c := range route.Colors {
		changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: r.record(c, want[c.String()])})
	}
	out, err := r.opts.Client.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(r.opts.ZoneID),
		ChangeBatch: &types.ChangeBatch{Comment: aws.String("cutover " + r.opts.Service), Changes: changes}})
	if err != nil {
		return false, r.failed(want, fmt.Errorf("ChangeResourceRecordSets: %w", err))
	}
	if err := r.opts.Ledger.Commit(true); err != nil {
		r.log.Error("recording the records written", "err", err)
	}
	if err := r.awaitSync(ctx, out.ChangeInfo); err != nil {
		return false, r.failed(want, err)
	}
	r.written(want)
	r.log.Info("Route53 weights written and in sync", "weights", want)
	return true, nil
}

// awaitSync polls GetChange until the change is INSYNC.
func (r *Router) awaitSync(ctx context.Context, ci *types.ChangeInfo) error {
	if ci == nil || ci.Id == nil {
		return errors.New("ChangeResourceRecordSets returned no change id")
	}
	status := ci.Status
	t := time.NewTicker(r.opts.SyncPoll)
	defer t.Stop()
	for status != types.ChangeStatusInsync {
		select {
		case <-ctx.Done():
			return fmt.Errorf("change %s still %s: %w", *ci.Id, status, ctx.Err())
		case <-t.C:
		}
		out, err := r.opts.Client.GetChange(ctx, &r53.GetChangeInput{Id: ci.Id})
		if err != nil {
			return fmt.Errorf("GetChange %s: %w", *ci.Id, err)
		}
		if out.ChangeInfo != nil {
			status = out.ChangeInfo.Status
		}
	}
	return nil
}

func (r *Router) record(c route.Color, weight int64) *types.ResourceRecordSet {
	tg := r.opts.Targets[c&1]
	rs := &types.ResourceRecordSet{Name: aws.String(r.opts.Record), Type: types.RRType(r.opts.Type),
		SetIdentifier: aws.String(c.String()), Weight: aws.Int64(weight)}
	r.target(rs, tg)
	return rs
}

func (r *Router) target(rs *types.ResourceRecordSet, tg Target) {
	if r.opts.Type == "CNAME" {
		rs.TTL = aws.Int64(int64(r.opts.TTL / time.Second))
		rs.ResourceRecords = []types.ResourceRecord{{Value: aws.String(tg.Value)}}
		return
	}
	rs.AliasTarget = &types.AliasTarget{DNSName: aws.String(tg.Value), HostedZoneId: aws.String(tg.Zone), EvaluateTargetHealth: true}
}

func (r *Router) failed(want map[string]int64, err error) error {
	err = fmt.Errorf("%s: Route53 keeps failing (the records keep what they had; cutover retries): %w", r.what(), err)
	r.mu.Lock()
	if equal(r.want, want) {
		r.pending = err.Error()
	}
	r.mu.Unlock()
	return &deploy.PauseError{Err: err}
}

func (r *Router) written(want map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sawLocked(want)
	if equal(r.want, want) {
		r.pending = ""
	}
}

// read returns the weights of the blue and green records.
// sawLocked records the weights Route53 holds (read or written) and, for
// a colour whose weight has just reached 0 there, when it did: the TTL a
// drain waits counts from Route53's change, not from when the controller
// asked for it (a write may fail and be made later). On the first read
// after a start, a 0 the ledger says cutover wrote counts from then.
func (r *Router) sawLocked(cur map[string]int64) {
	now := time.Now()
	for _, c := range route.Colors {
		if cur[c.String()] != 0 {
			continue
		}
		switch {
		case r.actual != nil && r.actual[c.String()] != 0, r.zeroAt[c].IsZero():
			r.zeroAt[c] = now
			if last := r.opts.Ledger.Last(); r.actual == nil && last != nil && last.Equal(cur) {
				r.zeroAt[c] = last.At
			}
		}
	}
	r.actual, r.readAt = cur, now
}

func (r *Router) read(ctx context.Context) (map[string]int64, error) {
	out, err := r.opts.Client.ListResourceRecordSets(ctx, &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(r.opts.ZoneID),
		StartRecordName: aws.String(r.opts.Record), StartRecordType: types.RRType(r.opts.Type), MaxItems: aws.Int32(10)})
	if err != nil {
		return nil, fmt.Errorf("ListResourceRecordSets %s: %w", r.opts.Record, err)
	}
	got := map[string]int64{}
	for _, rs := range out.ResourceRecordSets {
		if fqdn(aws.ToString(rs.Name)) != r.opts.Record || string(rs.Type) != r.opts.Type {
			continue
		}
		id := aws.ToString(rs.SetIdentifier)
		if id == "" || rs.Weight == nil {
			continue // the preview or failover records, not weighted
		}
		// Weighted records of other set identifiers share the name's
		// traffic too: they are read, so that one with weight is drift.
		got[id] = aws.ToInt64(rs.Weight)
	}
	return got, nil
}

func equal(a, b map[string]int64) bool {
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
	return len(a) == len(b)
}

// Split returns the split the controller last asked for.
func (r *Router) Split() (route.Color, float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live, r.weight
}

// Drain returns once Route53 holds weight 0 for the colour and the TTL has
// passed since it did (resolvers have dropped the record), or ctx ends: a
// *deploy.StillRoutedError while Route53 still resolves to the colour.
func (r *Router) Drain(ctx context.Context, color route.Color) error {
	if r.opts.Local != nil {
		if err := r.opts.Local.Drain(ctx, color); err != nil {
			return err
		}
	}
	// Route53 itself must hold weight 0 for the colour and some weight for
	// the other (both at 0 would split evenly): a write that failed or was
	// refused leaves the colour resolved, and its pool must not stop.
	for {
		cur, err := r.read(ctx)
		if err == nil {
			r.mu.Lock()
			r.sawLocked(cur)
			r.mu.Unlock()
			if cur[color.String()] == 0 && cur[color.Other().String()] > 0 {
				break
			}
			err = fmt.Errorf("%s gives %s weight %d and %s weight %d", r.what(), color, cur[color.String()], color.Other(), cur[color.Other().String()])
		}
		t := time.NewTimer(min(r.opts.Poll, 200*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return &deploy.StillRoutedError{Err: fmt.Errorf("drain %s: %w", color, err)}
		case <-t.C:
		}
	}
	r.mu.Lock()
	since := r.zeroAt[color&1]
	r.mu.Unlock()
	if since.IsZero() {
		since = time.Now()
	}
	wait := time.Until(since.Add(r.opts.TTL))
	if wait <= 0 {
		return nil
	}
	r.log.Info("waiting for the TTL since the colour's weight reached 0", "color", color, "ttl", r.opts.TTL, "left", wait.Round(time.Millisecond))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("drain %s: TTL %s since weight 0 not over: %w", color, r.opts.TTL, ctx.Err())
	case <-t.C:
		return nil
	}
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

// Healthy is the local runtime's view when there is one (Route53 has no
// health of its own here; alias records evaluate target health).
func (r *Router) Healthy(color route.Color) (int, int) {
	if r.opts.Local != nil {
		return r.opts.Local.Healthy(color)
	}
	return 0, 0
}

// SetPreview points the preview record (if any) at the colour's target.
func (r *Router) SetPreview(color route.Color) {
	if r.opts.Local != nil {
		r.opts.Local.SetPreview(color)
	}
	if r.opts.PreviewRecord == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.CallTimeout)
	defer cancel()
	rs := &types.ResourceRecordSet{Name: aws.String(fqdn(r.opts.PreviewRecord)), Type: types.RRType(r.opts.Type)}
	r.target(rs, r.opts.Targets[color&1])
	_, err := r.opts.Client.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(r.opts.ZoneID),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: rs}}}})
	if err != nil {
		r.log.Error("pointing the preview record at the candidate", "color", color, "err", err)
	}
}

// Undrain puts the colour back in the local router's rotation.
func (r *Router) Undrain(color route.Color) {
	if r.opts.Local != nil {
		r.opts.Local.Undrain(color)
	}
}

// Sealed is false: resolvers and clients may hold a record past its TTL.
func (r *Router) Sealed(route.Color) bool { return false }

// TrafficStatus is the records' side, as last read.
func (r *Router) TrafficStatus() *deploy.TrafficStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	rd := traffic.Reading{Engine: "route53", ReadAt: r.readAt, Pending: r.pending, Drift: r.drift}
	for _, v := range r.actual {
		rd.Total += v
	}
	for _, c := range route.Colors {
		rd.Raw[c] = r.actual[c.String()]
	}
	return traffic.Status(rd, traffic.Extras{Ledger: r.opts.Ledger, Alarms: r.opts.Alarms, LoadBalancer5xx: r.opts.LoadBalancer5xx})
}

// Run reads the records for status and writes a pending split until ctx ends.
func (r *Router) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Poll)
	defer t.Stop()
	for {
		if cur, err := r.read(ctx); err == nil {
			r.mu.Lock()
			r.sawLocked(cur)
			want, pending := r.want, r.pending
			r.mu.Unlock()
			if err := r.opts.Ledger.Check(r.what(), cur); err != nil {
				r.mu.Lock()
				r.drift = err.Error()
				r.mu.Unlock()
			} else {
				r.mu.Lock()
				r.drift = ""
				r.mu.Unlock()
			}
			if want != nil && pending != "" && r.TrafficStatus().Drift == "" {
				if _, err := r.write(ctx, want); err == nil {
					r.log.Info("pending split written", "weights", want)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// VerifyFailover checks, at start, that name has the failover pair the
// write-ups build for a catch-all site: a PRIMARY record that is an alias
// of the weighted record, and a SECONDARY record (the static site, e.g.
// an S3 website endpoint) that answers when the primary is unhealthy. It
// returns the SECONDARY's target, or an error saying what is missing.
func (r *Router) VerifyFailover(ctx context.Context, name string) (string, error) {
	name = fqdn(name)
	out, err := r.opts.Client.ListResourceRecordSets(ctx, &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(r.opts.ZoneID),
		StartRecordName: aws.String(name), MaxItems: aws.Int32(20)})
	if err != nil {
		return "", fmt.Errorf("failover record %s: ListResourceRecordSets: %w", name, err)
	}
	var primary, secondary *types.ResourceRecordSet
	for i := range out.ResourceRecordSets {
		rs := &out.ResourceRecordSets[i]
		if fqdn(aws.ToString(rs.Name)) != name {
			continue
		}
		switch rs.Failover {
		case types.ResourceRecordSetFailoverPrimary:
			primary = rs
		case types.ResourceRecordSetFailoverSecondary:
			secondary = rs
		}
	}
	switch {
	case primary == nil:
		return "", fmt.Errorf("failover record %s: no PRIMARY failover record in zone %s (it should be an alias of %s)", name, r.opts.ZoneID, r.opts.Record)
	case primary.AliasTarget == nil || fqdn(aws.ToString(primary.AliasTarget.DNSName)) != r.opts.Record:
		return "", fmt.Errorf("failover record %s: the PRIMARY record does not alias %s, the weighted records cutover moves", name, r.opts.Record)
	case primary.AliasTarget != nil && !primary.AliasTarget.EvaluateTargetHealth && primary.HealthCheckId == nil:
		return "", fmt.Errorf("failover record %s: the PRIMARY record has no health check and does not evaluate target health: the catch-all would never answer", name)
	case secondary == nil:
		return "", fmt.Errorf("failover record %s: no SECONDARY failover record (the static catch-all site) in zone %s", name, r.opts.ZoneID)
	}
	if secondary.AliasTarget != nil {
		return aws.ToString(secondary.AliasTarget.DNSName), nil
	}
	if len(secondary.ResourceRecords) > 0 {
		return aws.ToString(secondary.ResourceRecords[0].Value), nil
	}
	return "", nil
}
