package config

import (
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// ASG makes two EC2 Auto Scaling groups a service's pools
// (runtime.asg): both run versions of one launch template, and a
// deployment gives the idle group the release's version of it.
type ASG struct {
	// Region is the groups' region; "" takes AWS_REGION / the profile's.
	Region string
	// Groups are the Auto Scaling group names of blue and green.
	Groups ColorNames
	// LaunchTemplate is the template both groups use.
	LaunchTemplate ASGLaunchTemplate
	// VersionFrom says what VERSION is: image_id (an AMI id; default),
	// parameter (replaces ${VERSION} in the template's user data) or
	// template_version (a launch template version number).
	VersionFrom string
	// Capacity is the candidate's desired capacity; 0 (match_live, the
	// default) takes the live group's. Min and max come from the live group.
	Capacity int
	// WhenRetired is scale_to_zero (default) or delete_group.
	WhenRetired string
	// StartTimeout bounds how long a group may take to have every
	// instance InService and healthy; default 10m.
	StartTimeout time.Duration
	// Port is the instances' port for the embedded router; 0 takes the
	// port the target groups register them with.
	Port int
	// Poll is how often the groups are read; default 5s.
	Poll time.Duration
}

// ColorNames holds one name per colour.
type ColorNames struct {
	Blue, Green string
}

// ASGLaunchTemplate names a launch template.
type ASGLaunchTemplate struct {
	Name string
}

func defaultASG() *ASG {
	return &ASG{VersionFrom: "image_id", WhenRetired: "scale_to_zero", StartTimeout: 10 * time.Minute, Poll: 5 * time.Second}
}

// asg decodes runtime.asg.
func (d *decoder) asg(n *yaml.Node, key string, r *Runtime) {
	if isNull(n) {
		return
	}
	a := defaultASG()
	r.ASG = a
	d.mapping(n, key, fields{
		"region": d.str(&a.Region),
		"groups": func(key string, n *yaml.Node) {
			d.mapping(n, key, fields{"blue": d.str(&a.Groups.Blue), "green": d.str(&a.Groups.Green)})
		},
		"launch_template": func(key string, n *yaml.Node) {
			d.mapping(n, key, fields{"name": d.str(&a.LaunchTemplate.Name)})
		},
		"version_from": d.str(&a.VersionFrom),
		"capacity": func(key string, n *yaml.Node) {
			s, ok := d.text(n, key)
			if !ok || s == "match_live" || s == "" {
				return
			}
			c, err := strconv.Atoi(s)
			if err != nil || c < 1 {
				d.problem(n, key, "must be match_live or a number of instances (1 or more), got %q", s)
				return
			}
			a.Capacity = c
		},
		"when_retired":  d.str(&a.WhenRetired),
		"start_timeout": d.duration(&a.StartTimeout),
		"port":          d.int(&a.Port),
		"poll":          d.duration(&a.Poll),
	})
}

// groupName is what EC2 Auto Scaling accepts as a group name.
var groupName = regexp.MustCompile(`^[\x20-\x7e]{1,255}$`)

// asg validates runtime.asg.
func (v *validator) asg(key string, a *ASG) {
	for _, g := range []struct{ key, name string }{{"blue", a.Groups.Blue}, {"green", a.Groups.Green}} {
		k := key + ".groups." + g.key
		switch {
		case g.name == "":
			v.add(k, "required: the %s Auto Scaling group's name", g.key)
		case !groupName.MatchString(g.name):
			v.add(k, "%q is not an Auto Scaling group name", g.name)
		}
	}
	if a.Groups.Blue != "" && a.Groups.Blue == a.Groups.Green {
		v.add(key+".groups", "blue and green are the same group %s; each colour needs its own", a.Groups.Blue)
	}
	if a.LaunchTemplate.Name == "" {
		v.add(key+".launch_template.name", "required: the launch template both groups use")
	}
	switch a.VersionFrom {
	case "image_id", "parameter", "template_version":
	default:
		v.add(key+".version_from", "must be image_id, parameter or template_version (got %q)", a.VersionFrom)
	}
	switch a.WhenRetired {
	case "scale_to_zero", "delete_group":
	default:
		v.add(key+".when_retired", "must be scale_to_zero or delete_group (got %q)", a.WhenRetired)
	}
	v.positive(key+".start_timeout", a.StartTimeout)
	v.positive(key+".poll", a.Poll)
	if a.Port < 0 || a.Port > 65535 {
		v.add(key+".port", "must be a port (1-65535), or 0 for the target groups' (got %d)", a.Port)
	}
}

// runtimesSet names the runtimes r sets, in the file format's order.
func runtimesSet(r Runtime) []string {
	var out []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"process", r.Process != nil}, {"docker", r.Docker != nil}, {"static", r.Static != nil}, {"asg", r.ASG != nil}} {
		if k.set {
			out = append(out, k.name)
		}
	}
	return out
}
