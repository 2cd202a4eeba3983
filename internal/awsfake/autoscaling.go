package awsfake

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AutoScaling simulates EC2 Auto Scaling groups and the EC2 side they need
// (launch templates and their versions, instances): a group launches
// instances up to its desired capacity from its launch template version;
// an instance is a real local process, the command the test registered
// for the version's image (RegisterImage), listening on a port of its own
// on 127.0.0.1. It goes Pending, then InService after PendingDelay, when
// it is registered in the group's target groups of the fake ELBv2 (whose
// real health checks then judge it). With health check type ELB an
// instance unhealthy in a target group past the grace period is
// terminated and replaced, like one whose process exits; every launch and
// termination is a scaling activity with AWS's wording.
//
// Tests build groups and templates with the Go methods; the code under
// test drives them through the Auto Scaling (awsQuery) and EC2 (EC2 query)
// APIs. It is safe for concurrent use.
type AutoScaling struct {
	s    *Server
	opts AutoScalingOptions

	mu        sync.Mutex
	groups    map[string]*asGroup
	templates map[string]*launchTemplate // by name
	images    map[string]Image
	instances map[string]*asInstance
	tokens    map[string]int64 // CreateLaunchTemplateVersion client tokens
	seq       int
}

// AutoScalingOptions tune the simulation.
type AutoScalingOptions struct {
	// PendingDelay is how long a launched instance stays Pending before it
	// is InService (default 300ms).
	PendingDelay time.Duration
	// Tick is how often groups are reconciled (default 50ms).
	Tick time.Duration
	// RetryLaunch is how long a group waits after a failed launch (default 500ms).
	RetryLaunch time.Duration
}

// Image is what an "AMI" runs: a command, with ${PORT} in its arguments
// and the PORT variable set to the instance's port (and INSTANCE_ID,
// IMAGE_ID).
type Image struct {
	Command []string
	Env     []string
	Dir     string
}

type asGroup struct {
	name, arn         string
	ltName, ltVersion string // ltVersion as set: a number, $Default or $Latest
	min, max, desired int
	subnets, zones    []string
	healthCheck       string
	grace             int
	targetGroups      []string
	tags              []asTag
	created           time.Time
	activities        []*activity // newest last
	nextLaunch        time.Time
}

type asTag struct {
	key, value string
	propagate  bool
}

type activity struct {
	id, description, cause, status, message string
	start, end                              time.Time
}

type asInstance struct {
	id, group, zone, image, instanceType string
	ltVersion                            int64
	state, health                        string
	port                                 int
	launched, inServiceAt                time.Time
	cmd                                  *exec.Cmd
	exited                               chan struct{}
	exitErr                              error
	registered                           bool
	activity                             *activity
}

var autoScalings sync.Map // *Server -> *AutoScaling

func init() {
	extraServices["autoscaling"] = func(s *Server) Service {
		a := newAutoScaling(s)
		s.Handle("ec2", a.ec2Service())
		return a.service()
	}
}

func newAutoScaling(s *Server) *AutoScaling {
	a := &AutoScaling{s: s, groups: map[string]*asGroup{}, templates: map[string]*launchTemplate{},
		images: map[string]Image{}, instances: map[string]*asInstance{}, tokens: map[string]int64{}}
	a.opts = a.opts.withDefaults()
	autoScalings.Store(s, a)
	s.Go(func(ctx context.Context) {
		a.run(ctx)
		autoScalings.Delete(s)
	})
	return a
}

func (o AutoScalingOptions) withDefaults() AutoScalingOptions {
	if o.PendingDelay == 0 {
		o.PendingDelay = 300 * time.Millisecond
	}
	if o.Tick == 0 {
		o.Tick = 50 * time.Millisecond
	}
	if o.RetryLaunch == 0 {
		o.RetryLaunch = 500 * time.Millisecond
	}
	return o
}

// AutoScaling returns the server's Auto Scaling and EC2 simulation.
func (s *Server) AutoScaling() *AutoScaling {
	a, _ := autoScalings.Load(s)
	return a.(*AutoScaling)
}

// SetOptions changes the simulation's timings.
func (a *AutoScaling) SetOptions(o AutoScalingOptions) {
	a.mu.Lock()
	a.opts = o.withDefaults()
	a.mu.Unlock()
}

// RegisterImage makes ami an image whose instances run img.
func (a *AutoScaling) RegisterImage(ami string, img Image) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.images[ami] = img
}

// GroupSpec describes a group for CreateGroup.
type GroupSpec struct {
	Name string
	// LaunchTemplate is the template's name; Version "" is $Default.
	LaunchTemplate, Version string
	Min, Max, Desired       int
	Subnets                 []string
	Zones                   []string // default us-east-1a
	HealthCheckType         string   // EC2 (default) or ELB
	HealthCheckGracePeriod  int      // seconds
	TargetGroups            []string
	Tags                    map[string]string // not propagated
}

// CreateGroup creates a group, as CreateAutoScalingGroup does.
func (a *AutoScaling) CreateGroup(spec GroupSpec) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := &asGroup{name: spec.Name, ltName: spec.LaunchTemplate, ltVersion: spec.Version, min: spec.Min, max: spec.Max,
		desired: spec.Desired, subnets: spec.Subnets, zones: spec.Zones, healthCheck: spec.HealthCheckType,
		grace: spec.HealthCheckGracePeriod, targetGroups: spec.TargetGroups}
	keys := make([]string, 0, len(spec.Tags))
	for k := range spec.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g.tags = append(g.tags, asTag{key: k, value: spec.Tags[k]})
	}
	return a.createLocked(g)
}

func (a *AutoScaling) createLocked(g *asGroup) error {
	if g.name == "" {
		return ValidationError("AutoScalingGroupName must not be empty")
	}
	if a.groups[g.name] != nil {
		return Errorf("AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name %s already exists", g.name)
	}
	if a.templates[g.ltName] == nil {
		return ValidationError("You must use a valid fully-formed launch template. The specified launch template, with template name %s, does not exist.", g.ltName)
	}
	if g.ltVersion == "" {
		g.ltVersion = "$Default"
	}
	if g.healthCheck == "" {
		g.healthCheck = "EC2"
	}
	if len(g.zones) == 0 {
		g.zones = []string{a.s.opts.Region + "a"}
	}
	if err := checkSizes(g.min, g.max, g.desired); err != nil {
		return err
	}
	g.created = time.Now()
	g.arn = fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", a.s.opts.Region, a.s.opts.Account, randomUUID(), g.name)
	a.groups[g.name] = g
	return nil
}

func checkSizes(minSize, maxSize, desired int) error {
	if minSize < 0 || maxSize < minSize {
		return ValidationError("Max bound, %d, must be greater than or equal to min bound, %d", maxSize, minSize)
	}
	if desired < minSize || desired > maxSize {
		return ValidationError("Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, minSize, maxSize)
	}
	return nil
}

// GroupInfo is a group's state for a test's assertions.
type GroupInfo struct {
	Desired, Min, Max     int
	LaunchTemplateVersion string
	// States counts instances by lifecycle state.
	States map[string]int
	Tags   map[string]string
}

// Group returns a group's state; ok is false when it does not exist.
func (a *AutoScaling) Group(name string) (GroupInfo, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.groups[name]
	if g == nil {
		return GroupInfo{}, false
	}
	info := GroupInfo{Desired: g.desired, Min: g.min, Max: g.max, LaunchTemplateVersion: g.ltVersion,
		States: map[string]int{}, Tags: map[string]string{}}
	for _, in := range a.instancesOfLocked(g.name) {
		info.States[in.state]++
	}
	for _, t := range g.tags {
		info.Tags[t.key] = t.value
	}
	return info, true
}

// SetTag sets a tag of a group (a change made behind cutover's back).
func (a *AutoScaling) SetTag(group, key, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if g := a.groups[group]; g != nil {
		g.setTag(key, value, false)
	}
}

func (g *asGroup) setTag(k, v string, propagate bool) {
	for i := range g.tags {
		if g.tags[i].key == k {
			g.tags[i].value, g.tags[i].propagate = v, propagate
			return
		}
	}
	g.tags = append(g.tags, asTag{key: k, value: v, propagate: propagate})
	sort.Slice(g.tags, func(i, j int) bool { return g.tags[i].key < g.tags[j].key })
}

func (a *AutoScaling) instancesOfLocked(group string) []*asInstance {
	var out []*asInstance
	for _, in := range a.instances {
		if in.group == group {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].launched.Before(out[j].launched) || out[i].launched.Equal(out[j].launched) && out[i].id < out[j].id
	})
	return out
}

// run reconciles every group until the server closes; then it stops every
// instance's process.
func (a *AutoScaling) run(ctx context.Context) {
	a.mu.Lock()
	tick := a.opts.Tick
	a.mu.Unlock()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			for _, in := range a.instances {
				in.kill()
			}
			a.mu.Unlock()
			return
		case <-t.C:
		}
		a.mu.Lock()
		now := time.Now()
		for _, g := range a.groups {
			a.reconcileLocked(g, now)
		}
		a.mu.Unlock()
	}
}

// reconcileLocked moves instances through their lifecycle and the group
// towards its desired capacity.
func (a *AutoScaling) reconcileLocked(g *asGroup, now time.Time) {
	live := 0
	for _, in := range a.instancesOfLocked(g.name) {
		a.stepLocked(g, in, now)
		if in.state == "Pending" || in.state == "InService" {
			live++
		}
	}
	for ; live > g.desired; live-- {
		victim := a.victimLocked(g)
		if victim == nil {
			break
		}
		a.terminateLocked(g, victim, fmt.Sprintf("At %s a user request update of AutoScalingGroup constraints to min: %d, max: %d, desired: %d changing the desired capacity from %d to %d.  At %s an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from %d to %d.  At %s instance %s was selected for termination.",
			stamp(now), g.min, g.max, g.desired, live, g.desired, stamp(now), live, g.desired, stamp(now), victim.id))
	}
	if live < g.desired && !now.Before(g.nextLaunch) {
		for ; live < g.desired; live++ {
			if !a.launchLocked(g, now, live) {
				g.nextLaunch = now.Add(a.opts.RetryLaunch)
				break
			}
		}
	}
}

// victimLocked picks the instance to terminate on scale-in: one of an
// older launch template version first, then the oldest (AWS's default
// policy, simplified).
func (a *AutoScaling) victimLocked(g *asGroup) *asInstance {
	cur := a.resolveVersionLocked(g.ltName, g.ltVersion)
	var best *asInstance
	for _, in := range a.instancesOfLocked(g.name) {
		if in.state != "Pending" && in.state != "InService" {
			continue
		}
		if best == nil || (best.ltVersion == cur && in.ltVersion != cur) {
			best = in
		}
	}
	return best
}

// stepLocked advances one instance: Pending -> InService, health checks,
// termination of a dead process, removal once terminated.
func (a *AutoScaling) stepLocked(g *asGroup, in *asInstance, now time.Time) {
	select {
	case <-in.exited:
		if in.state == "Pending" || in.state == "InService" {
			in.health = "Unhealthy"
			a.terminateLocked(g, in, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 instance status checks failure (the image's command exited: %v).", stamp(now), in.exitErr))
		}
	default:
	}
	switch in.state {
	case "Pending":
		if !now.Before(in.launched.Add(a.opts.PendingDelay)) {
			in.state, in.inServiceAt = "InService", now
			for _, tg := range g.targetGroups {
				if err := a.s.ELB().RegisterTarget(tg, in.id, in.port); err != nil {
					in.activity.status, in.activity.message = "Failed", err.Error()
				}
			}
			in.registered = true
			if in.activity.status == "InProgress" {
				in.activity.status, in.activity.end = "Successful", now
			}
		}
	case "InService":
		if g.healthCheck == "ELB" && now.After(in.inServiceAt.Add(time.Duration(g.grace)*time.Second)) {
			for _, tg := range g.targetGroups {
				hs, err := a.s.ELB().Health(tg)
				if err != nil {
					continue
				}
				for _, h := range hs {
					if h.ID == in.id && h.State == StateUnhealthy {
						in.health = "Unhealthy"
						a.terminateLocked(g, in, fmt.Sprintf("At %s an instance was taken out of service in response to an ELB system health check failure (target group %s: %s).", stamp(now), tg, h.Description))
						return
					}
				}
			}
		}
	case "Terminating":
		select {
		case <-in.exited:
			in.state = "Terminated"
		default:
		}
	case "Terminated":
		delete(a.instances, in.id)
	}
}

// launchLocked starts one instance from the group's launch template
// version; a launch that fails is recorded as a failed activity.
func (a *AutoScaling) launchLocked(g *asGroup, now time.Time, live int) bool {
	act := &activity{id: randomUUID(), status: "InProgress", start: now,
		cause: fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %d to %d.", stamp(now), live, g.desired)}
	g.activities = append(g.activities, act)
	fail := func(msg string) bool {
		act.description = "Launching a new EC2 instance.  Status Reason: " + msg
		act.status, act.message, act.end = "Failed", msg+" Launching EC2 instance failed.", now
		return false
	}
	lt := a.templates[g.ltName]
	if lt == nil {
		return fail(fmt.Sprintf("The specified launch template, with template name %s, does not exist.", g.ltName))
	}
	num := a.resolveVersionLocked(g.ltName, g.ltVersion)
	v := lt.versions[num]
	if v == nil {
		return fail(fmt.Sprintf("The specified launch template version %s of %s does not exist.", g.ltVersion, g.ltName))
	}
	img, ok := a.images[v.data.ImageID]
	if !ok || len(img.Command) == 0 {
		return fail(fmt.Sprintf("The image id '[%s]' does not exist.", v.data.ImageID))
	}
	port, err := freePort()
	if err != nil {
		return fail("Insufficient capacity: " + err.Error())
	}
	a.seq++
	id := fmt.Sprintf("i-%017x", uint64(time.Now().UnixNano())<<8|uint64(a.seq&0xff))
	args := make([]string, len(img.Command))
	for i, s := range img.Command {
		args[i] = strings.ReplaceAll(s, "${PORT}", strconv.Itoa(port))
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = img.Dir
	cmd.Env = append(append(os.Environ(), img.Env...), "PORT="+strconv.Itoa(port), "INSTANCE_ID="+id, "IMAGE_ID="+v.data.ImageID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Sprintf("The image %s cannot run: %v.", v.data.ImageID, err))
	}
	zone := g.zones[len(a.instancesOfLocked(g.name))%len(g.zones)]
	in := &asInstance{id: id, group: g.name, zone: zone, image: v.data.ImageID, instanceType: v.data.InstanceType,
		ltVersion: num, state: "Pending", health: "Healthy", port: port, launched: now, cmd: cmd,
		exited: make(chan struct{}), activity: act}
	act.description = "Launching a new EC2 instance: " + id
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		in.exitErr = err
		a.mu.Unlock()
		close(in.exited)
	}()
	a.s.ELB().SetInstanceHost(id, "127.0.0.1")
	a.instances[id] = in
	return true
}

// terminateLocked deregisters the instance from the group's target groups
// and stops its process.
func (a *AutoScaling) terminateLocked(g *asGroup, in *asInstance, cause string) {
	now := time.Now()
	if in.registered {
		for _, tg := range g.targetGroups {
			_ = a.s.ELB().DeregisterTarget(tg, in.id, in.port)
		}
		in.registered = false
	}
	if in.activity != nil && in.activity.status == "InProgress" {
		in.activity.status, in.activity.end = "Cancelled", now
		in.activity.message = "Instance " + in.id + " was terminated before it was InService."
	}
	g.activities = append(g.activities, &activity{id: randomUUID(), description: "Terminating EC2 instance: " + in.id,
		cause: cause, status: "Successful", start: now, end: now})
	in.state = "Terminating"
	in.kill()
}

// kill stops the instance's process group: SIGTERM, then SIGKILL after 2s.
func (in *asInstance) kill() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	pid := in.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	exited := in.exited
	go func() {
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func randomUUID() string {
	b := randomID(16)
	return b[:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:32]
}
