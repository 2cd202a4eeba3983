package asg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	ast "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbt "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// groupState is one Auto Scaling group as DescribeAutoScalingGroups says.
type groupState struct {
	name                  string
	min, max, desired     int32
	ltName, ltVersion     string
	subnets, zones        []string
	healthCheck           string
	grace                 int32
	targetGroups          []string
	tags                  map[string]string
	propagate             map[string]bool
	instances             []groupInstance
	terminationPolicies   []string
	defaultCooldown       int32
	serviceLinkedRoleARN  string
	newInstancesProtected bool
}

type groupInstance struct {
	id, state, health, ltVersion, zone, image string
}

func (i groupInstance) terminating() bool {
	return strings.HasPrefix(i.state, "Terminat")
}

// describeGroups reads both groups; a group that does not exist is nil.
func (d *Driver) describeGroups(ctx context.Context) ([2]*groupState, error) {
	var out [2]*groupState
	p := autoscaling.NewDescribeAutoScalingGroupsPaginator(d.as, &autoscaling.DescribeAutoScalingGroupsInput{
		AutoScalingGroupNames: []string{d.opts.Groups[0], d.opts.Groups[1]},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("describe auto scaling groups: %w", err)
		}
		for _, g := range page.AutoScalingGroups {
			gs := newGroupState(g)
			for i, name := range d.opts.Groups {
				if gs.name == name {
					out[i] = gs
				}
			}
		}
	}
	return out, nil
}

func newGroupState(g ast.AutoScalingGroup) *groupState {
	gs := &groupState{
		name: aws.ToString(g.AutoScalingGroupName), min: aws.ToInt32(g.MinSize), max: aws.ToInt32(g.MaxSize),
		desired: aws.ToInt32(g.DesiredCapacity), healthCheck: aws.ToString(g.HealthCheckType),
		grace: aws.ToInt32(g.HealthCheckGracePeriod), zones: sorted(g.AvailabilityZones),
		targetGroups: sorted(g.TargetGroupARNs), tags: map[string]string{}, propagate: map[string]bool{},
		terminationPolicies: g.TerminationPolicies, defaultCooldown: aws.ToInt32(g.DefaultCooldown),
		serviceLinkedRoleARN: aws.ToString(g.ServiceLinkedRoleARN), newInstancesProtected: aws.ToBool(g.NewInstancesProtectedFromScaleIn),
	}
	if s := aws.ToString(g.VPCZoneIdentifier); s != "" {
		gs.subnets = sorted(strings.Split(s, ","))
	}
	if lt := g.LaunchTemplate; lt != nil {
		gs.ltName, gs.ltVersion = aws.ToString(lt.LaunchTemplateName), aws.ToString(lt.Version)
	}
	for _, t := range g.Tags {
		gs.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		gs.propagate[aws.ToString(t.Key)] = aws.ToBool(t.PropagateAtLaunch)
	}
	for _, in := range g.Instances {
		gi := groupInstance{id: aws.ToString(in.InstanceId), state: string(in.LifecycleState),
			health: aws.ToString(in.HealthStatus), zone: aws.ToString(in.AvailabilityZone), image: aws.ToString(in.ImageId)}
		if lt := in.LaunchTemplate; lt != nil {
			gi.ltVersion = aws.ToString(lt.Version)
		}
		gs.instances = append(gs.instances, gi)
	}
	return gs
}

func sorted(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// checkColorTag refuses a group whose cutover:color tag names the other colour.
func checkColorTag(g *groupState, c route.Color) error {
	if t, ok := g.tags[TagColor]; ok && t != "" && t != c.String() {
		return fmt.Errorf("the group's tag %s is %q, but the configuration makes it the %s group (are groups.blue and groups.green swapped?)", TagColor, t, c)
	}
	return nil
}

// healthy returns the group's instances that run ltVersion, are InService
// and Healthy for Auto Scaling and healthy in every target group of the
// group, as runtime instances of version; and how many are InService.
func (d *Driver) healthy(ctx context.Context, c route.Color, g *groupState, version, ltVersion string) ([]runtime.Instance, int, error) {
	inService := map[string]bool{}
	var ids []string
	for _, in := range g.instances {
		if in.state == string(ast.LifecycleStateInService) && strings.EqualFold(in.health, "Healthy") && d.runsRelease(in, version, ltVersion) {
			inService[in.id] = true
			ids = append(ids, in.id)
		}
	}
	if len(ids) == 0 {
		return nil, 0, nil
	}
	// ports holds each instance's port in the first target group; an
	// instance must be healthy in all of them.
	ports := map[string]int32{}
	okIn := map[string]int{}
	for _, tg := range g.targetGroups {
		out, err := d.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
		if err != nil {
			return nil, len(ids), fmt.Errorf("describe target health of %s: %w", tg, err)
		}
		for _, th := range out.TargetHealthDescriptions {
			if th.Target == nil {
				continue // an answer without its target names no instance
			}
			id := aws.ToString(th.Target.Id)
			if th.TargetHealth == nil || th.TargetHealth.State != elbt.TargetHealthStateEnumHealthy || !inService[id] {
				continue
			}
			okIn[id]++
			if _, ok := ports[id]; !ok {
				ports[id] = aws.ToInt32(th.Target.Port)
			}
		}
	}
	var ready []string
	for _, id := range ids {
		if okIn[id] == len(g.targetGroups) {
			ready = append(ready, id)
		}
	}
	if len(ready) == 0 {
		return nil, len(ids), nil
	}
	addrs, err := d.privateIPs(ctx, ready)
	if err != nil {
		return nil, len(ids), err
	}
	insts := make([]runtime.Instance, 0, len(ready))
	now := time.Now()
	for _, id := range ready {
		port := int(ports[id])
		if d.opts.Port > 0 {
			port = d.opts.Port
		}
		ip := addrs[id]
		if ip == "" || port == 0 {
			continue
		}
		insts = append(insts, runtime.Instance{ID: id, Service: d.opts.Service, Color: c, Version: version,
			Addr: net.JoinHostPort(ip, strconv.Itoa(port)), StartedAt: now})
	}
	sort.Slice(insts, func(i, j int) bool { return insts[i].ID < insts[j].ID })
	return insts, len(ids), nil
}

// runsRelease reports whether an instance runs the release: it was
// launched from ltVersion, or (version_from image_id) from the release's
// image, as instances started before cutover managed the group were.
func (d *Driver) runsRelease(in groupInstance, version, ltVersion string) bool {
	return in.ltVersion == ltVersion || (d.opts.VersionFrom == FromImageID && in.image != "" && in.image == version)
}

// privateIPs maps instance ids to their private addresses.
func (d *Driver) privateIPs(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	p := ec2.NewDescribeInstancesPaginator(d.ec2, &ec2.DescribeInstancesInput{InstanceIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out[aws.ToString(in.InstanceId)] = aws.ToString(in.PrivateIpAddress)
			}
		}
	}
	return out, nil
}

// waitCapacity waits until desired instances of ltVersion are healthy, at
// most the start timeout; past it, the error quotes the group's scaling
// activities.
func (d *Driver) waitCapacity(ctx context.Context, c route.Color, version, ltVersion string, desired int32) ([]runtime.Instance, error) {
	name := d.group(c)
	wctx, cancel := context.WithTimeout(ctx, d.opts.StartTimeout)
	defer cancel()
	every := min(d.opts.Poll, time.Second)
	var (
		insts     []runtime.Instance
		inService int
	)
	for {
		groups, err := d.describeGroups(wctx)
		if err == nil && groups[c&1] == nil {
			err = errors.New("the group disappeared")
		}
		if err == nil {
			insts, inService, err = d.healthy(wctx, c, groups[c&1], version, ltVersion)
		}
		if err == nil && len(insts) >= int(desired) {
			return insts, nil
		}
		if err != nil && wctx.Err() == nil {
			d.log.Warn("waiting for capacity", "color", c, "group", name, "err", err)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			msgs := d.activities(ctx, name)
			return nil, fmt.Errorf("%d of %d instances healthy (%d InService) after %s; scaling activities: %s",
				len(insts), desired, inService, d.opts.StartTimeout, msgs)
		case <-time.After(every):
		}
	}
}

// activities is what the group's latest scaling activities say went
// wrong, newest first, in Auto Scaling's own words: failed launches with
// their status messages, terminations with their cause (an instance that
// failed its ELB health check); the latest activities when none did.
// Repeats are counted, not repeated.
func (d *Driver) activities(ctx context.Context, name string) string {
	out, err := d.as.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{
		AutoScalingGroupName: aws.String(name), MaxRecords: aws.Int32(20),
	})
	if err != nil {
		return "(cannot read them: " + err.Error() + ")"
	}
	var bad, all []string
	count := map[string]int{}
	for _, a := range out.Activities {
		line := aws.ToString(a.Description)
		if m := aws.ToString(a.StatusMessage); m != "" {
			line += ": " + m
		}
		line += " [" + string(a.StatusCode) + "]"
		all = append(all, line)
		failed := a.StatusCode != ast.ScalingActivityStatusCodeSuccessful && a.StatusCode != ast.ScalingActivityStatusCodeInProgress
		if strings.HasPrefix(aws.ToString(a.Description), "Terminating") && strings.Contains(aws.ToString(a.Cause), "health check") {
			failed = true
			line = causeOf(aws.ToString(a.Cause))
		} else if failed {
			line = aws.ToString(a.StatusMessage)
			if line == "" {
				line = aws.ToString(a.Description)
			}
		}
		if !failed {
			continue
		}
		if count[line]++; count[line] == 1 {
			bad = append(bad, line)
		}
	}
	for i, l := range bad {
		if n := count[l]; n > 1 {
			bad[i] = fmt.Sprintf("%s (%d times)", l, n)
		}
	}
	switch {
	case len(bad) > 0:
		return strings.Join(bad, "; ")
	case len(all) > 0:
		return strings.Join(all[:min(3, len(all))], "; ")
	}
	return "(none)"
}

// causeOf keeps the sentence of an activity's cause that says why
// ("an instance was taken out of service in response to ...").
func causeOf(cause string) string {
	if i := strings.Index(cause, "an instance was taken out of service"); i >= 0 {
		c := cause[i:]
		if j := strings.Index(c, ".  "); j >= 0 {
			c = c[:j+1]
		}
		return c
	}
	return cause
}

// waitEmpty waits until the group has no instance left.
func (d *Driver) waitEmpty(ctx context.Context, name string) error {
	wctx, cancel := context.WithTimeout(ctx, d.opts.StartTimeout)
	defer cancel()
	for {
		out, err := d.as.DescribeAutoScalingGroups(wctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		if err == nil && (len(out.AutoScalingGroups) == 0 || len(out.AutoScalingGroups[0].Instances) == 0) {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("instances still running %s after scaling to zero; scaling activities: %s", d.opts.StartTimeout, d.activities(ctx, name))
		case <-time.After(min(d.opts.Poll, time.Second)):
		}
	}
}

func (d *Driver) scaleToZero(ctx context.Context, name string) error {
	_, err := d.as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0),
	})
	if err != nil {
		return fmt.Errorf("scale to zero: %w", err)
	}
	return nil
}

// setGroup points the group at the launch template version with its
// capacity, then tags it with the colour and version.
func (d *Driver) setGroup(ctx context.Context, name, ltVersion string, desired, minSize, maxSize int32, c route.Color, version string) error {
	_, err := d.as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &ast.LaunchTemplateSpecification{LaunchTemplateName: aws.String(d.opts.LaunchTemplate), Version: aws.String(ltVersion)},
		MinSize:              aws.Int32(minSize), MaxSize: aws.Int32(maxSize), DesiredCapacity: aws.Int32(desired),
	})
	if err != nil {
		return fmt.Errorf("update group to launch template %s version %s, %d instances: %w", d.opts.LaunchTemplate, ltVersion, desired, err)
	}
	d.log.Info("group updated", "color", c, "group", name, "version", version, "launch_template_version", ltVersion, "desired", desired)
	return d.tag(ctx, name, c, version)
}

// tag writes cutover:color and cutover:version on the group (not
// propagated to instances).
func (d *Driver) tag(ctx context.Context, name string, c route.Color, version string) error {
	tag := func(k, v string) ast.Tag {
		return ast.Tag{ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group"),
			Key: aws.String(k), Value: aws.String(v), PropagateAtLaunch: aws.Bool(false)}
	}
	_, err := d.as.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []ast.Tag{tag(TagColor, c.String()), tag(TagVersion, version)}})
	if err != nil {
		return fmt.Errorf("tag the group: %w", err)
	}
	return nil
}

// createFrom creates a deleted group again with the live group's settings
// (delete_group's counterpart), at zero capacity, tagged as the live one
// but for the colour tags.
func (d *Driver) createFrom(ctx context.Context, name string, live *groupState) error {
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &ast.LaunchTemplateSpecification{LaunchTemplateName: aws.String(d.opts.LaunchTemplate), Version: aws.String("$Default")},
		MinSize:              aws.Int32(0), MaxSize: aws.Int32(max(live.max, 1)), DesiredCapacity: aws.Int32(0),
		TargetGroupARNs: d.targetGroupsFor(live, name), HealthCheckType: aws.String(live.healthCheck),
		HealthCheckGracePeriod: aws.Int32(live.grace), TerminationPolicies: live.terminationPolicies,
	}
	if len(live.subnets) > 0 {
		in.VPCZoneIdentifier = aws.String(strings.Join(live.subnets, ","))
	} else {
		in.AvailabilityZones = live.zones
	}
	for k, v := range live.tags {
		if k == TagColor || k == TagVersion {
			continue
		}
		in.Tags = append(in.Tags, ast.Tag{Key: aws.String(k), Value: aws.String(colorSwapped(v)), PropagateAtLaunch: aws.Bool(live.propagate[k])})
	}
	sort.Slice(in.Tags, func(i, j int) bool { return *in.Tags[i].Key < *in.Tags[j].Key })
	if _, err := d.as.CreateAutoScalingGroup(ctx, in); err != nil {
		return fmt.Errorf("create the deleted group again from %s: %w", live.name, err)
	}
	d.log.Info("group created again from the live group's settings", "group", name, "from", live.name)
	return nil
}

// colorSwapped turns a colour-named tag value (Environment: blue) into
// the other colour's.
func colorSwapped(v string) string {
	switch v {
	case "blue":
		return "green"
	case "green":
		return "blue"
	}
	return v
}

// targetGroupsFor is the target groups a re-created group gets: the
// configured ones of its colour, else those it had when this driver
// deleted it.
func (d *Driver) targetGroupsFor(_ *groupState, name string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, g := range d.opts.Groups {
		if g == name {
			if len(d.opts.TargetGroups[i]) > 0 {
				return d.opts.TargetGroups[i]
			}
			return d.deletedTGs[i]
		}
	}
	return nil
}

// deleteGroup deletes the group, its instances with it, and the launch
// template version cutover made for it.
func (d *Driver) deleteGroup(ctx context.Context, g *groupState) error {
	for i, n := range d.opts.Groups {
		if n == g.name {
			d.mu.Lock()
			d.deletedTGs[i] = g.targetGroups
			d.mu.Unlock()
		}
	}
	if _, err := d.as.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(g.name), ForceDelete: aws.Bool(true),
	}); err != nil {
		return fmt.Errorf("asg group %s: delete: %w", g.name, err)
	}
	d.log.Info("group deleted", "group", g.name)
	if d.opts.VersionFrom == FromTemplateVersion || g.ltVersion == "" || strings.HasPrefix(g.ltVersion, "$") {
		return nil
	}
	if _, err := d.ec2.DeleteLaunchTemplateVersions(ctx, &ec2.DeleteLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(d.opts.LaunchTemplate), Versions: []string{g.ltVersion},
	}); err != nil {
		return fmt.Errorf("asg group %s deleted; its launch template version %s: %w", g.name, g.ltVersion, err)
	}
	return nil
}
