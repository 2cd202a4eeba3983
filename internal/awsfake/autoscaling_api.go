package awsfake

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// The Auto Scaling API (awsQuery, version 2011-01-01) over the simulation
// of autoscaling.go.

func (a *AutoScaling) service() *QueryService {
	return &QueryService{XMLNS: "http://autoscaling.amazonaws.com/doc/2011-01-01/", Actions: map[string]QueryAction{
		"DescribeAutoScalingGroups": a.describeGroups,
		"UpdateAutoScalingGroup":    a.updateGroup,
		"SetDesiredCapacity":        a.setDesiredCapacity,
		"CreateOrUpdateTags":        a.createOrUpdateTags,
		"DescribeScalingActivities": a.describeScalingActivities,
		"CreateAutoScalingGroup":    a.createGroup,
		"DeleteAutoScalingGroup":    a.deleteGroup,
	}}
}

type xLTSpec struct {
	ID      string `xml:"LaunchTemplateId,omitempty"`
	Name    string `xml:"LaunchTemplateName,omitempty"`
	Version string `xml:"Version,omitempty"`
}

type xASInstance struct {
	InstanceID       string   `xml:"InstanceId"`
	InstanceType     string   `xml:"InstanceType,omitempty"`
	ImageID          string   `xml:"ImageId,omitempty"`
	AvailabilityZone string   `xml:"AvailabilityZone"`
	LifecycleState   string   `xml:"LifecycleState"`
	HealthStatus     string   `xml:"HealthStatus"`
	LaunchTemplate   *xLTSpec `xml:"LaunchTemplate,omitempty"`
	Protected        bool     `xml:"ProtectedFromScaleIn"`
}

type xTag struct {
	ResourceID        string `xml:"ResourceId"`
	ResourceType      string `xml:"ResourceType"`
	Key               string `xml:"Key"`
	Value             string `xml:"Value"`
	PropagateAtLaunch bool   `xml:"PropagateAtLaunch"`
}

type xGroup struct {
	Name                string        `xml:"AutoScalingGroupName"`
	ARN                 string        `xml:"AutoScalingGroupARN"`
	LaunchTemplate      *xLTSpec      `xml:"LaunchTemplate,omitempty"`
	MinSize             int           `xml:"MinSize"`
	MaxSize             int           `xml:"MaxSize"`
	DesiredCapacity     int           `xml:"DesiredCapacity"`
	DefaultCooldown     int           `xml:"DefaultCooldown"`
	AvailabilityZones   []string      `xml:"AvailabilityZones>member"`
	TargetGroupARNs     []string      `xml:"TargetGroupARNs>member"`
	HealthCheckType     string        `xml:"HealthCheckType"`
	HealthCheckGrace    int           `xml:"HealthCheckGracePeriod"`
	Instances           []xASInstance `xml:"Instances>member"`
	CreatedTime         string        `xml:"CreatedTime"`
	VPCZoneIdentifier   string        `xml:"VPCZoneIdentifier,omitempty"`
	Tags                []xTag        `xml:"Tags>member"`
	TerminationPolicies []string      `xml:"TerminationPolicies>member"`
}

func (a *AutoScaling) xGroupLocked(g *asGroup) xGroup {
	x := xGroup{Name: g.name, ARN: g.arn, MinSize: g.min, MaxSize: g.max, DesiredCapacity: g.desired, DefaultCooldown: 300,
		AvailabilityZones: g.zones, TargetGroupARNs: g.targetGroups, HealthCheckType: g.healthCheck, HealthCheckGrace: g.grace,
		CreatedTime: isoTime(g.created), VPCZoneIdentifier: strings.Join(g.subnets, ","), TerminationPolicies: []string{"Default"}}
	if lt := a.templates[g.ltName]; lt != nil {
		x.LaunchTemplate = &xLTSpec{ID: lt.id, Name: lt.name, Version: g.ltVersion}
	}
	for _, in := range a.instancesOfLocked(g.name) {
		xi := xASInstance{InstanceID: in.id, InstanceType: in.instanceType, ImageID: in.image, AvailabilityZone: in.zone, LifecycleState: in.state, HealthStatus: in.health}
		if x.LaunchTemplate != nil {
			xi.LaunchTemplate = &xLTSpec{ID: x.LaunchTemplate.ID, Name: x.LaunchTemplate.Name, Version: strconv.FormatInt(in.ltVersion, 10)}
		}
		x.Instances = append(x.Instances, xi)
	}
	for _, t := range g.tags {
		x.Tags = append(x.Tags, xTag{ResourceID: g.name, ResourceType: "auto-scaling-group", Key: t.key, Value: t.value, PropagateAtLaunch: t.propagate})
	}
	return x
}

func (a *AutoScaling) describeGroups(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := q.Strings("AutoScalingGroupNames")
	if len(names) == 0 {
		for n := range a.groups {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	out := struct {
		Groups []xGroup `xml:"AutoScalingGroups>member"`
	}{Groups: []xGroup{}}
	for _, n := range names {
		if g := a.groups[n]; g != nil {
			out.Groups = append(out.Groups, a.xGroupLocked(g))
		}
	}
	return out, nil
}

func (a *AutoScaling) groupLocked(q *Query) (*asGroup, error) {
	name, err := q.Required("AutoScalingGroupName")
	if err != nil {
		return nil, err
	}
	g := a.groups[name]
	if g == nil {
		return nil, ValidationError("AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
	}
	return g, nil
}

// launchTemplateParam reads LaunchTemplate.{LaunchTemplateName,LaunchTemplateId,Version}.
func (a *AutoScaling) launchTemplateParam(q *Query) (name, version string, set bool, err error) {
	p := "LaunchTemplate."
	if !q.Has(p+"LaunchTemplateName") && !q.Has(p+"LaunchTemplateId") {
		return "", "", false, nil
	}
	name = q.Get(p + "LaunchTemplateName")
	if id := q.Get(p + "LaunchTemplateId"); id != "" {
		name = ""
		for _, lt := range a.templates {
			if lt.id == id {
				name = lt.name
			}
		}
	}
	lt := a.templates[name]
	if lt == nil {
		return "", "", false, ValidationError("You must use a valid fully-formed launch template. The specified launch template does not exist.")
	}
	version = q.Get(p + "Version")
	if version == "" {
		version = "$Default"
	}
	if lt.versions[a.resolveVersionLocked(name, version)] == nil {
		return "", "", false, ValidationError("You must use a valid fully-formed launch template. The specified launch template version %s does not exist.", version)
	}
	return name, version, true, nil
}

func (a *AutoScaling) updateGroup(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, err := a.groupLocked(q)
	if err != nil {
		return nil, err
	}
	minSize, maxSize, desired := g.min, g.max, g.desired
	for name, dst := range map[string]*int{"MinSize": &minSize, "MaxSize": &maxSize, "DesiredCapacity": &desired} {
		v, ok, err := q.Int(name)
		if err != nil {
			return nil, err
		}
		if ok {
			*dst = int(v)
		}
	}
	// AWS moves desired inside new bounds when only the bounds are given.
	if !q.Has("DesiredCapacity") {
		desired = max(min(desired, maxSize), minSize)
	}
	if err := checkSizes(minSize, maxSize, desired); err != nil {
		return nil, err
	}
	name, version, set, err := a.launchTemplateParam(q)
	if err != nil {
		return nil, err
	}
	if set {
		g.ltName, g.ltVersion = name, version
	}
	g.min, g.max, g.desired = minSize, maxSize, desired
	if v, ok, err := q.Int("HealthCheckGracePeriod"); err != nil {
		return nil, err
	} else if ok {
		g.grace = int(v)
	}
	if q.Has("HealthCheckType") {
		g.healthCheck = q.Get("HealthCheckType")
	}
	if q.Has("VPCZoneIdentifier") {
		g.subnets = strings.Split(q.Get("VPCZoneIdentifier"), ",")
	}
	g.nextLaunch = time.Time{}
	return nil, nil
}

func (a *AutoScaling) setDesiredCapacity(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, err := a.groupLocked(q)
	if err != nil {
		return nil, err
	}
	v, ok, err := q.Int("DesiredCapacity")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ValidationError("1 validation error detected: Value null at 'desiredCapacity' failed to satisfy constraint: Member must not be null")
	}
	if int(v) < g.min || int(v) > g.max {
		return nil, ValidationError("New SetDesiredCapacity value %d is below min value %d or above max value %d for the AutoScalingGroup.", v, g.min, g.max)
	}
	g.desired = int(v)
	g.nextLaunch = time.Time{}
	return nil, nil
}

func (a *AutoScaling) createOrUpdateTags(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range q.Members("Tags") {
		name := q.Get(p + ".ResourceId")
		g := a.groups[name]
		if g == nil {
			return nil, ValidationError("AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
		}
		key := q.Get(p + ".Key")
		if key == "" {
			return nil, ValidationError("Tag key must not be empty")
		}
		g.setTag(key, q.Get(p+".Value"), q.Get(p+".PropagateAtLaunch") == "true")
	}
	return nil, nil
}

type xActivity struct {
	ID            string `xml:"ActivityId"`
	Group         string `xml:"AutoScalingGroupName"`
	Description   string `xml:"Description"`
	Cause         string `xml:"Cause"`
	StartTime     string `xml:"StartTime"`
	EndTime       string `xml:"EndTime,omitempty"`
	StatusCode    string `xml:"StatusCode"`
	StatusMessage string `xml:"StatusMessage,omitempty"`
	Progress      int    `xml:"Progress"`
	Details       string `xml:"Details"`
}

func (a *AutoScaling) describeScalingActivities(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, err := a.groupLocked(q)
	if err != nil {
		return nil, err
	}
	limit := 100
	if v, ok, err := q.Int("MaxRecords"); err != nil {
		return nil, err
	} else if ok && v > 0 {
		limit = int(v)
	}
	out := struct {
		Activities []xActivity `xml:"Activities>member"`
	}{Activities: []xActivity{}}
	for i := len(g.activities) - 1; i >= 0 && len(out.Activities) < limit; i-- {
		act := g.activities[i]
		progress := 100
		if act.status == "InProgress" {
			progress = 30
		}
		out.Activities = append(out.Activities, xActivity{ID: act.id, Group: g.name, Description: act.description, Cause: act.cause,
			StartTime: isoTime(act.start), EndTime: isoTime(act.end), StatusCode: act.status, StatusMessage: act.message,
			Progress: progress, Details: `{"Subnet ID":"` + strings.Join(g.subnets, ",") + `"}`})
	}
	return out, nil
}

func (a *AutoScaling) createGroup(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name, err := q.Required("AutoScalingGroupName")
	if err != nil {
		return nil, err
	}
	lt, version, set, err := a.launchTemplateParam(q)
	if err != nil {
		return nil, err
	}
	if !set {
		return nil, ValidationError("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	g := &asGroup{name: name, ltName: lt, ltVersion: version, healthCheck: q.Get("HealthCheckType"),
		targetGroups: q.Strings("TargetGroupARNs"), zones: q.Strings("AvailabilityZones")}
	for field, dst := range map[string]*int{"MinSize": &g.min, "MaxSize": &g.max, "DesiredCapacity": &g.desired, "HealthCheckGracePeriod": &g.grace} {
		v, _, err := q.Int(field)
		if err != nil {
			return nil, err
		}
		*dst = int(v)
	}
	if s := q.Get("VPCZoneIdentifier"); s != "" {
		g.subnets = strings.Split(s, ",")
	}
	for _, p := range q.Members("Tags") {
		g.setTag(q.Get(p+".Key"), q.Get(p+".Value"), q.Get(p+".PropagateAtLaunch") == "true")
	}
	return nil, a.createLocked(g)
}

func (a *AutoScaling) deleteGroup(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, err := a.groupLocked(q)
	if err != nil {
		return nil, err
	}
	ins := a.instancesOfLocked(g.name)
	if len(ins) > 0 && q.Get("ForceDelete") != "true" {
		return nil, Errorf("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
	}
	for _, in := range ins {
		if in.state == "Pending" || in.state == "InService" {
			a.terminateLocked(g, in, "At "+stamp(time.Now())+" the group was deleted.")
		}
		// The instances go on terminating without their group.
		in.group = ""
		go func(in *asInstance) {
			<-in.exited
			a.mu.Lock()
			delete(a.instances, in.id)
			a.mu.Unlock()
		}(in)
	}
	delete(a.groups, g.name)
	return nil, nil
}
