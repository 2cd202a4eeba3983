package asg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// VersionFrom says how a VERSION becomes a launch template version.
type VersionFrom string

// The ways.
const (
	// FromImageID: VERSION is an AMI id; a new launch template version is
	// made from the template's default with that image.
	FromImageID VersionFrom = "image_id"
	// FromParameter: a new launch template version is made from the
	// default with every ${VERSION} of its user data replaced by VERSION
	// (user data that reads, say, the SSM parameter /app/${VERSION}).
	FromParameter VersionFrom = "parameter"
	// FromTemplateVersion: VERSION is a launch template version number the
	// group is pointed at as it is.
	FromTemplateVersion VersionFrom = "template_version"
)

// Retire says what Stop does with a group.
type Retire string

// The retirements.
const (
	ScaleToZero Retire = "scale_to_zero"
	DeleteGroup Retire = "delete_group"
)

// Tag keys written on, and read from, the groups.
const (
	TagColor   = "cutover:color"
	TagVersion = "cutover:version"
)

// Options configure a Driver. Service, Groups, LaunchTemplate, AWS and
// Listener are required.
type Options struct {
	Service string
	// Groups are the Auto Scaling group names, indexed by colour.
	Groups [2]string
	// LaunchTemplate is the name of the template both groups use.
	LaunchTemplate string
	VersionFrom    VersionFrom // default FromImageID
	// Capacity is the candidate's desired capacity; 0 matches the live
	// group's.
	Capacity    int
	WhenRetired Retire // default ScaleToZero
	// StartTimeout bounds how long Start waits for full capacity; default 10m.
	StartTimeout time.Duration
	// Poll is how often the groups are read; default 5s.
	Poll time.Duration
	// Port is the instances' port for the embedded router; 0 takes the
	// port each target is registered with in the group's target groups.
	Port int
	// TargetGroups are the target group ARNs of each colour, which a group
	// deleted by delete_group is created again with; when unset, those the
	// group had when this driver deleted it.
	TargetGroups [2][]string
	// AWS is the SDK configuration (region, credentials, endpoint).
	AWS      aws.Config
	Listener runtime.Listener
	Logger   *slog.Logger
}

// Driver drives the two groups of one service.
type Driver struct {
	opts Options
	log  *slog.Logger
	as   *autoscaling.Client
	ec2  *ec2.Client
	elb  *elb.Client

	mu    sync.Mutex
	pools [2]pool // guarded by mu
	// starting is the colour whose Start runs; the poller leaves its
	// membership to Start until it returns.
	starting [2]bool

	// deletedTGs are the target groups of groups this driver deleted.
	deletedTGs [2][]string // guarded by mu

	// ops serialises Start and Stop per colour.
	ops [2]sync.Mutex

	stop context.CancelFunc
	done chan struct{}
}

// pool is what the driver last reported for a colour.
type pool struct {
	version   string
	instances []runtime.Instance
}

var (
	_ runtime.Driver    = (*Driver)(nil)
	_ runtime.Describer = (*Driver)(nil)
)

// New returns a driver and starts its poller.
func New(opts Options) (*Driver, error) {
	if opts.Listener == nil {
		return nil, errors.New("asg runtime: Listener is required")
	}
	d, err := newDriver(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	go d.poll(ctx)
	return d, nil
}

// NewDescriber returns a driver for Describe and Drift alone (`cutover
// diff` from the command line): it polls nothing and needs no Listener;
// Start and Stop must not be called on it.
func NewDescriber(opts Options) (*Driver, error) {
	d, err := newDriver(opts)
	if err != nil {
		return nil, err
	}
	d.stop = func() {}
	close(d.done)
	return d, nil
}

func newDriver(opts Options) (*Driver, error) {
	if opts.Service == "" || opts.Groups[0] == "" || opts.Groups[1] == "" || opts.LaunchTemplate == "" {
		return nil, errors.New("asg runtime: Service, Groups and LaunchTemplate are required")
	}
	if opts.Groups[0] == opts.Groups[1] {
		return nil, fmt.Errorf("asg runtime of %s: blue and green are the same group %s", opts.Service, opts.Groups[0])
	}
	if opts.VersionFrom == "" {
		opts.VersionFrom = FromImageID
	}
	if opts.WhenRetired == "" {
		opts.WhenRetired = ScaleToZero
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Minute
	}
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Driver{
		opts: opts,
		log:  opts.Logger.With("service", opts.Service, "runtime", "asg"),
		as:   autoscaling.NewFromConfig(opts.AWS),
		ec2:  ec2.NewFromConfig(opts.AWS),
		elb:  elb.NewFromConfig(opts.AWS),
		done: make(chan struct{}),
	}
	return d, nil
}

func (d *Driver) group(c route.Color) string { return d.opts.Groups[c&1] }

// Start implements runtime.Driver: it gives the colour's group the
// release's launch template version and the live group's capacity, and
// returns once every instance is InService and healthy in the group's
// target groups.
func (d *Driver) Start(ctx context.Context, color route.Color, rel runtime.Release) ([]runtime.Instance, error) {
	d.ops[color&1].Lock()
	defer d.ops[color&1].Unlock()
	d.setStarting(color, true)
	defer d.setStarting(color, false)
	name := d.group(color)
	fail := func(err error) ([]runtime.Instance, error) {
		return nil, fmt.Errorf("asg group %s (%s %s): %w", name, color, rel.Version, err)
	}
	groups, err := d.describeGroups(ctx)
	if err != nil {
		return fail(err)
	}
	own, live := groups[color&1], groups[color.Other()&1]
	if own == nil {
		if d.opts.WhenRetired != DeleteGroup || live == nil {
			return fail(errors.New("the group does not exist"))
		}
		if err := d.createFrom(ctx, name, live); err != nil {
			return fail(err)
		}
		if groups, err = d.describeGroups(ctx); err != nil {
			return fail(err)
		}
		own = groups[color&1]
		if own == nil {
			return fail(errors.New("the group was created but cannot be found"))
		}
	}
	if err := checkColorTag(own, color); err != nil {
		return fail(err)
	}
	ltVersion, err := d.templateVersion(ctx, color, rel.Version)
	if err != nil {
		return fail(err)
	}
	if ins := d.runningOther(own, rel.Version, ltVersion); ins > 0 {
		if own.tags[TagVersion] == "" {
			// Instances cutover did not start and the controller did not
			// drain (a group serving before cutover managed it): never
			// scale them away on a guess.
			return fail(fmt.Errorf("the group runs %d instances of another release that cutover did not start; deploy their image to adopt them, or scale the group to zero first", ins))
		}
		// Changing a group's template does not replace its instances: an
		// older release still running here goes first.
		d.log.Info("scaling the group to zero before it takes the new release", "color", color, "group", name, "instances", ins)
		if err := d.scaleToZero(ctx, name); err != nil {
			return fail(err)
		}
		if err := d.waitEmpty(ctx, name); err != nil {
			return fail(err)
		}
	}
	desired, minSize, maxSize := d.capacity(own, live)
	if err := d.setGroup(ctx, name, ltVersion, desired, minSize, maxSize, color, rel.Version); err != nil {
		return fail(err)
	}
	insts, err := d.waitCapacity(ctx, color, rel.Version, ltVersion, desired)
	if err != nil {
		return fail(err)
	}
	d.report(color, rel.Version, insts)
	return insts, nil
}

// capacity is the candidate's desired, min and max sizes: the configured
// capacity or the live group's desired one (the group's own minimum, at
// least 1, or what it runs already, when the live group runs nothing), min and max from the live group.
func (d *Driver) capacity(own, live *groupState) (desired, minSize, maxSize int32) {
	minSize, maxSize = own.min, own.max
	if live != nil && live.desired > 0 {
		minSize, maxSize = live.min, live.max
	}
	switch {
	case d.opts.Capacity > 0:
		desired = int32(d.opts.Capacity)
	case live != nil && live.desired > 0:
		desired = live.desired
	default:
		desired = max(own.desired, own.min, 1)
	}
	maxSize = max(maxSize, desired)
	minSize = min(minSize, desired)
	return desired, minSize, maxSize
}

// runningOther counts the group's instances that do not run the release.
func (d *Driver) runningOther(g *groupState, version, ltVersion string) int {
	n := 0
	for _, in := range g.instances {
		if !d.runsRelease(in, version, ltVersion) && !in.terminating() {
			n++
		}
	}
	return n
}

// Stop implements runtime.Driver: the group is scaled to zero, or deleted
// with the launch template version cutover made for it.
func (d *Driver) Stop(ctx context.Context, color route.Color) error {
	d.ops[color&1].Lock()
	defer d.ops[color&1].Unlock()
	name := d.group(color)
	groups, err := d.describeGroups(ctx)
	if err != nil {
		return fmt.Errorf("asg group %s (%s): %w", name, color, err)
	}
	g := groups[color&1]
	d.report(color, "", nil)
	if g == nil {
		return nil // deleted already
	}
	if err := checkColorTag(g, color); err != nil {
		return fmt.Errorf("asg group %s (%s): %w", name, color, err)
	}
	if d.opts.WhenRetired == DeleteGroup {
		return d.deleteGroup(ctx, g)
	}
	if err := d.scaleToZero(ctx, name); err != nil {
		return fmt.Errorf("asg group %s (%s): %w", name, color, err)
	}
	if err := d.tag(ctx, name, color, ""); err != nil {
		return fmt.Errorf("asg group %s (%s): %w", name, color, err)
	}
	if err := d.waitEmpty(ctx, name); err != nil {
		return fmt.Errorf("asg group %s (%s): %w", name, color, err)
	}
	d.log.Info("group scaled to zero", "color", color, "group", name)
	return nil
}

// Instances implements runtime.Driver.
func (d *Driver) Instances(color route.Color) []runtime.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.pools[color&1].instances)
}

// Close implements runtime.Driver: it stops polling and leaves the groups
// as they are.
func (d *Driver) Close() error {
	d.stop()
	<-d.done
	return nil
}

func (d *Driver) setStarting(c route.Color, on bool) {
	d.mu.Lock()
	d.starting[c&1] = on
	d.mu.Unlock()
}

// report records and publishes a colour's healthy instances when they changed.
func (d *Driver) report(c route.Color, version string, insts []runtime.Instance) {
	d.mu.Lock()
	p := &d.pools[c&1]
	same := p.version == version && slices.EqualFunc(p.instances, insts, func(a, b runtime.Instance) bool {
		return a.ID == b.ID && a.Addr == b.Addr
	})
	if !same {
		p.version, p.instances = version, slices.Clone(insts)
	}
	d.mu.Unlock()
	if !same {
		d.opts.Listener.Pool(c, version, slices.Clone(insts))
	}
}

// poll keeps each colour's membership current (Auto Scaling replaces
// unhealthy instances on its own) until Close.
func (d *Driver) poll(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(d.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.refresh(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("reading the groups", "err", err)
		}
	}
}

// refresh reads both groups and reports the healthy instances of those
// that run a release (tag cutover:version) and whose Start is not under way.
func (d *Driver) refresh(ctx context.Context) error {
	groups, err := d.describeGroups(ctx)
	if err != nil {
		return err
	}
	for _, c := range route.Colors {
		d.mu.Lock()
		busy, known := d.starting[c&1], d.pools[c&1].version
		d.mu.Unlock()
		g := groups[c&1]
		if busy || known == "" || g == nil || g.tags[TagVersion] != known {
			continue
		}
		insts, _, err := d.healthy(ctx, c, g, known, g.ltVersion)
		if err != nil {
			return err
		}
		d.report(c, known, insts)
	}
	return nil
}

func colorAt(i int) route.Color { return route.Colors[i&1] }
