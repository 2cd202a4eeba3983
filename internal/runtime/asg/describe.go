package asg

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2t "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// Describe implements runtime.Describer: the colour's group settings and
// the launch template version it runs, or would run for rel.
func (d *Driver) Describe(ctx context.Context, color route.Color, rel *runtime.Release) (runtime.Description, error) {
	groups, err := d.describeGroups(ctx)
	if err != nil {
		return runtime.Description{}, err
	}
	g := groups[color&1]
	desc := runtime.Description{Color: color}
	if g == nil {
		if rel == nil || groups[color.Other()&1] == nil {
			return desc, nil
		}
		// delete_group: the group is created again from the live one's
		// settings, so it would run those.
		g = groups[color.Other()&1]
	}
	desc.Version = g.tags[TagVersion]
	var data *ec2t.ResponseLaunchTemplateData
	ltVersion := g.ltVersion
	if rel != nil {
		desc.Version = rel.Version
		data, ltVersion, err = d.wouldRun(ctx, rel.Version)
	} else if g.ltName != "" {
		var num int64
		data, num, err = d.versionDataOf(ctx, g.ltName, g.ltVersion)
		if num > 0 {
			ltVersion = strconv.FormatInt(num, 10)
		}
	}
	if err != nil {
		return desc, fmt.Errorf("asg group %s (%s): %w", g.name, color, err)
	}
	f := &desc.Fields
	add := func(name, value string, expected bool) {
		*f = append(*f, runtime.Field{Name: name, Value: value, Expected: expected})
	}
	add("group", d.group(color), true)
	add("launch_template", g.ltName, false)
	add("launch_template_version", ltVersion, true)
	add("subnets", strings.Join(g.subnets, ","), false)
	add("availability_zones", strings.Join(g.zones, ","), false)
	add("health_check_type", g.healthCheck, false)
	add("health_check_grace_period", strconv.Itoa(int(g.grace))+"s", false)
	add("target_groups", strings.Join(g.targetGroups, ","), true)
	add("desired_capacity", strconv.Itoa(int(g.desired)), true)
	if data != nil {
		add("image_id", aws.ToString(data.ImageId), d.opts.VersionFrom == FromImageID)
		add("instance_type", string(data.InstanceType), false)
		add("security_groups", strings.Join(securityGroups(data), ","), false)
		add("iam_instance_profile", iamProfile(data.IamInstanceProfile), false)
		add("key_name", aws.ToString(data.KeyName), false)
		*f = append(*f, runtime.Field{Name: "user_data", Value: hashOf(aws.ToString(data.UserData)), Secret: true,
			Expected: d.opts.VersionFrom == FromParameter})
	}
	keys := make([]string, 0, len(g.tags))
	for k := range g.tags {
		if k != TagColor && k != TagVersion {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := g.tags[k]
		if g.name != d.group(color) { // the group to be created again
			v = colorSwapped(v)
		}
		add("tag:"+k, v, v == color.String())
	}
	return desc, nil
}

// wouldRun is the launch template data a release would run, and the
// version it runs in ("new" for a version Start would make).
func (d *Driver) wouldRun(ctx context.Context, version string) (*ec2t.ResponseLaunchTemplateData, string, error) {
	if d.opts.VersionFrom == FromTemplateVersion {
		data, num, err := d.versionData(ctx, version)
		return data, strconv.FormatInt(num, 10), err
	}
	data, num, err := d.versionData(ctx, "$Default")
	if err != nil {
		return nil, "", err
	}
	c := *data
	switch d.opts.VersionFrom {
	case FromImageID:
		c.ImageId = aws.String(version)
	case FromParameter:
		if ud, err := base64.StdEncoding.DecodeString(aws.ToString(c.UserData)); err == nil {
			c.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(ud), "${VERSION}", version))))
		}
	}
	return &c, fmt.Sprintf("new from %d", num), nil
}

// versionDataOf reads the version of the named template a group runs.
func (d *Driver) versionDataOf(ctx context.Context, name, v string) (*ec2t.ResponseLaunchTemplateData, int64, error) {
	if name != d.opts.LaunchTemplate {
		// The group runs another template than the configured one: say so
		// rather than compare the wrong template's versions.
		return nil, 0, fmt.Errorf("the group runs launch template %s, the configuration names %s", name, d.opts.LaunchTemplate)
	}
	if v == "" {
		v = "$Default"
	}
	return d.versionData(ctx, v)
}

func securityGroups(data *ec2t.ResponseLaunchTemplateData) []string {
	set := map[string]bool{}
	for _, s := range data.SecurityGroupIds {
		set[s] = true
	}
	for _, s := range data.SecurityGroups {
		set[s] = true
	}
	for _, ni := range data.NetworkInterfaces {
		for _, s := range ni.Groups {
			set[s] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func iamProfile(p *ec2t.LaunchTemplateIamInstanceProfileSpecification) string {
	if p == nil {
		return ""
	}
	if a := aws.ToString(p.Arn); a != "" {
		return a
	}
	return aws.ToString(p.Name)
}

func hashOf(s string) string {
	if s == "" {
		return ""
	}
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:6])
}

// Drift compares what the candidate colour would run for version with
// what the other (live) colour runs, and returns each difference in
// settings that should be the same (the write-ups' snowflakes), like
// "instance_type: blue t3.small, green t3.large". Fields that differ by
// design (version, colour, capacity, target groups) are not differences.
func (d *Driver) Drift(ctx context.Context, candidate route.Color, version string) ([]string, error) {
	live, err := d.Describe(ctx, candidate.Other(), nil)
	if err != nil {
		return nil, err
	}
	cand, err := d.Describe(ctx, candidate, &runtime.Release{Version: version})
	if err != nil {
		return nil, err
	}
	return Compare(live, cand), nil
}

// Compare returns the differences between two colours' descriptions in
// the fields that are not expected to differ, in a's field order, then b's.
func Compare(a, b runtime.Description) []string {
	if len(a.Fields) == 0 || len(b.Fields) == 0 {
		return nil
	}
	bf := map[string]runtime.Field{}
	for _, f := range b.Fields {
		bf[f.Name] = f
	}
	seen := map[string]bool{}
	var diffs []string
	show := func(f runtime.Field, ok bool) string {
		switch {
		case !ok:
			return "(not set)"
		case f.Value == "":
			return `""`
		}
		return f.Value
	}
	for _, f := range a.Fields {
		seen[f.Name] = true
		g, ok := bf[f.Name]
		if f.Expected && (!ok || g.Expected) {
			continue
		}
		if !ok || g.Value != f.Value {
			diffs = append(diffs, fmt.Sprintf("%s: %s %s, %s %s", f.Name, a.Color, show(f, true), b.Color, show(g, ok)))
		}
	}
	for _, g := range b.Fields {
		if !seen[g.Name] && !g.Expected {
			diffs = append(diffs, fmt.Sprintf("%s: %s (not set), %s %s", g.Name, a.Color, b.Color, show(g, true)))
		}
	}
	return diffs
}
