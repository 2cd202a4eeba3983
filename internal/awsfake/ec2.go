package awsfake

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The EC2 side of the Auto Scaling simulation: launch templates with
// versions, and DescribeInstances for the instances the groups launch. EC2
// speaks its own query dialect: lists flattened as Name.N in requests,
// results directly under <ActionResponse> with camelCase elements and
// lists of <item>.

type launchTemplate struct {
	id, name   string
	defaultVer int64
	latest     int64
	versions   map[int64]*ltVersion
	created    time.Time
}

type ltVersion struct {
	number      int64
	description string
	created     time.Time
	data        LaunchTemplateData
}

// LaunchTemplateData is the part of a launch template version the fake
// keeps and compares.
type LaunchTemplateData struct {
	ImageID, InstanceType, KeyName string
	// UserData is base64, as EC2 stores it.
	UserData       string
	SecurityGroups []string
	// IAMInstanceProfile is an ARN or a name.
	IAMInstanceProfile string
}

// CreateLaunchTemplate creates a template whose version 1 (the default)
// holds data; it returns the template's id.
func (a *AutoScaling) CreateLaunchTemplate(name string, data LaunchTemplateData) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	lt := &launchTemplate{id: "lt-" + randomID(9)[:17], name: name, defaultVer: 1, latest: 1, created: now,
		versions: map[int64]*ltVersion{1: {number: 1, created: now, data: data}}}
	a.templates[name] = lt
	return lt.id
}

// CreateLaunchTemplateVersion adds a version made from the default with
// changes applied; it returns its number.
func (a *AutoScaling) CreateLaunchTemplateVersion(name string, change func(*LaunchTemplateData)) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.templates[name]
	if lt == nil {
		return 0, Errorf("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
	}
	d := lt.versions[lt.defaultVer].data
	d.SecurityGroups = append([]string(nil), d.SecurityGroups...)
	change(&d)
	return a.addVersionLocked(lt, d, ""), nil
}

// SetDefaultVersion makes a version the template's default.
func (a *AutoScaling) SetDefaultVersion(name string, v int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if lt := a.templates[name]; lt != nil && lt.versions[v] != nil {
		lt.defaultVer = v
	}
}

// TemplateVersions returns the numbers of a template's versions.
func (a *AutoScaling) TemplateVersions(name string) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int64
	if lt := a.templates[name]; lt != nil {
		for n := range lt.versions {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (a *AutoScaling) addVersionLocked(lt *launchTemplate, d LaunchTemplateData, desc string) int64 {
	lt.latest++
	lt.versions[lt.latest] = &ltVersion{number: lt.latest, description: desc, created: time.Now(), data: d}
	return lt.latest
}

// resolveVersionLocked turns "$Default", "$Latest" or a number into a
// version number (0 when unknown).
func (a *AutoScaling) resolveVersionLocked(name, v string) int64 {
	lt := a.templates[name]
	if lt == nil {
		return 0
	}
	switch v {
	case "", "$Default":
		return lt.defaultVer
	case "$Latest":
		return lt.latest
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (a *AutoScaling) templateLocked(q *Query) (*launchTemplate, error) {
	if id := q.Get("LaunchTemplateId"); id != "" {
		for _, lt := range a.templates {
			if lt.id == id {
				return lt, nil
			}
		}
		return nil, Errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
	}
	name, err := q.Required("LaunchTemplateName")
	if err != nil {
		return nil, err
	}
	lt := a.templates[name]
	if lt == nil {
		return nil, Errorf("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
	}
	return lt, nil
}

func (a *AutoScaling) ec2Service() *QueryService {
	return &QueryService{XMLNS: "http://ec2.amazonaws.com/doc/2016-11-15/", EC2: true, Actions: map[string]QueryAction{
		"CreateLaunchTemplateVersion":    a.createLaunchTemplateVersion,
		"DescribeLaunchTemplateVersions": a.describeLaunchTemplateVersions,
		"DeleteLaunchTemplateVersions":   a.deleteLaunchTemplateVersions,
		"DescribeInstances":              a.describeInstances,
	}}
}

type xLTVersion struct {
	LaunchTemplateID   string  `xml:"launchTemplateId"`
	LaunchTemplateName string  `xml:"launchTemplateName"`
	VersionNumber      int64   `xml:"versionNumber"`
	VersionDescription string  `xml:"versionDescription,omitempty"`
	CreateTime         string  `xml:"createTime"`
	CreatedBy          string  `xml:"createdBy"`
	DefaultVersion     bool    `xml:"defaultVersion"`
	Data               xLTData `xml:"launchTemplateData"`
}

type xLTData struct {
	ImageID        string   `xml:"imageId,omitempty"`
	InstanceType   string   `xml:"instanceType,omitempty"`
	KeyName        string   `xml:"keyName,omitempty"`
	UserData       string   `xml:"userData,omitempty"`
	IAM            *xIAM    `xml:"iamInstanceProfile,omitempty"`
	SecurityGroups []string `xml:"securityGroupIdSet>item,omitempty"`
}

type xIAM struct {
	Arn  string `xml:"arn,omitempty"`
	Name string `xml:"name,omitempty"`
}

func (a *AutoScaling) xVersion(lt *launchTemplate, v *ltVersion) xLTVersion {
	d := v.data
	x := xLTVersion{LaunchTemplateID: lt.id, LaunchTemplateName: lt.name, VersionNumber: v.number, VersionDescription: v.description,
		CreateTime: isoTime(v.created), CreatedBy: "arn:aws:iam::" + a.s.opts.Account + ":user/awsfake", DefaultVersion: v.number == lt.defaultVer,
		Data: xLTData{ImageID: d.ImageID, InstanceType: d.InstanceType, KeyName: d.KeyName, UserData: d.UserData, SecurityGroups: d.SecurityGroups}}
	if p := d.IAMInstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			x.Data.IAM = &xIAM{Arn: p}
		} else {
			x.Data.IAM = &xIAM{Name: p}
		}
	}
	return x
}

func (a *AutoScaling) createLaunchTemplateVersion(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt, err := a.templateLocked(q)
	if err != nil {
		return nil, err
	}
	token := q.Get("ClientToken")
	if n, ok := a.tokens[lt.id+"/"+token]; ok && token != "" && lt.versions[n] != nil {
		return struct {
			V xLTVersion `xml:"launchTemplateVersion"`
		}{a.xVersion(lt, lt.versions[n])}, nil
	}
	var d LaunchTemplateData
	if sv := q.Get("SourceVersion"); sv != "" {
		src := lt.versions[a.resolveVersionLocked(lt.name, sv)]
		if src == nil {
			return nil, Errorf("InvalidLaunchTemplateVersion.NotFound", "The specified launch template version %s does not exist.", sv)
		}
		d = src.data
		d.SecurityGroups = append([]string(nil), d.SecurityGroups...)
	}
	p := "LaunchTemplateData."
	set := func(name string, dst *string) {
		if q.Has(p + name) {
			*dst = q.Get(p + name)
		}
	}
	set("ImageId", &d.ImageID)
	set("InstanceType", &d.InstanceType)
	set("KeyName", &d.KeyName)
	set("UserData", &d.UserData)
	set("IamInstanceProfile.Arn", &d.IAMInstanceProfile)
	set("IamInstanceProfile.Name", &d.IAMInstanceProfile)
	if sgs := q.EC2Strings(p + "SecurityGroupId"); len(sgs) > 0 {
		d.SecurityGroups = sgs
	}
	n := a.addVersionLocked(lt, d, q.Get("VersionDescription"))
	if token != "" {
		a.tokens[lt.id+"/"+token] = n
	}
	return struct {
		V xLTVersion `xml:"launchTemplateVersion"`
	}{a.xVersion(lt, lt.versions[n])}, nil
}

func (a *AutoScaling) describeLaunchTemplateVersions(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt, err := a.templateLocked(q)
	if err != nil {
		return nil, err
	}
	want := q.EC2Strings("LaunchTemplateVersion")
	var nums []int64
	if len(want) == 0 {
		for n := range lt.versions {
			nums = append(nums, n)
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	}
	for _, w := range want {
		n := a.resolveVersionLocked(lt.name, w)
		if lt.versions[n] == nil {
			return nil, Errorf("InvalidLaunchTemplateVersion.NotFound", "Could not find launch template version %s for launch template %s.", w, lt.id)
		}
		nums = append(nums, n)
	}
	out := struct {
		Set []xLTVersion `xml:"launchTemplateVersionSet>item"`
	}{}
	for _, n := range nums {
		out.Set = append(out.Set, a.xVersion(lt, lt.versions[n]))
	}
	return out, nil
}

func (a *AutoScaling) deleteLaunchTemplateVersions(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt, err := a.templateLocked(q)
	if err != nil {
		return nil, err
	}
	type item struct {
		ID      string `xml:"launchTemplateId"`
		Name    string `xml:"launchTemplateName"`
		Version int64  `xml:"versionNumber"`
		Code    string `xml:"responseError>code,omitempty"`
		Message string `xml:"responseError>message,omitempty"`
	}
	out := struct {
		OK  []item `xml:"successfullyDeletedLaunchTemplateVersionSet>item"`
		Bad []item `xml:"unsuccessfullyDeletedLaunchTemplateVersionSet>item"`
	}{}
	for _, w := range q.EC2Strings("LaunchTemplateVersion") {
		n, _ := strconv.ParseInt(w, 10, 64)
		it := item{ID: lt.id, Name: lt.name, Version: n}
		switch {
		case lt.versions[n] == nil:
			it.Code, it.Message = "launchTemplateVersionDoesNotExist", "The specified launch template version does not exist."
			out.Bad = append(out.Bad, it)
		case n == lt.defaultVer:
			it.Code, it.Message = "launchTemplateVersionIsDefault", "Cannot delete the default version of a launch template."
			out.Bad = append(out.Bad, it)
		default:
			delete(lt.versions, n)
			out.OK = append(out.OK, it)
		}
	}
	return out, nil
}

type xInstance struct {
	InstanceID   string `xml:"instanceId"`
	ImageID      string `xml:"imageId"`
	InstanceType string `xml:"instanceType"`
	PrivateIP    string `xml:"privateIpAddress"`
	LaunchTime   string `xml:"launchTime"`
	StateCode    int    `xml:"instanceState>code"`
	StateName    string `xml:"instanceState>name"`
	Zone         string `xml:"placement>availabilityZone"`
}

func (a *AutoScaling) describeInstances(q *Query) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := q.EC2Strings("InstanceId")
	if len(ids) == 0 {
		for id := range a.instances {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	}
	type reservation struct {
		ID        string      `xml:"reservationId"`
		Owner     string      `xml:"ownerId"`
		Instances []xInstance `xml:"instancesSet>item"`
	}
	out := struct {
		XMLName      xml.Name      `xml:"x"`
		Reservations []reservation `xml:"reservationSet>item"`
	}{}
	var missing []string
	for _, id := range ids {
		in := a.instances[id]
		if in == nil {
			missing = append(missing, id)
			continue
		}
		code, name := 16, "running"
		switch in.state {
		case "Pending":
			code, name = 0, "pending"
		case "Terminating":
			code, name = 32, "shutting-down"
		case "Terminated":
			code, name = 48, "terminated"
		}
		out.Reservations = append(out.Reservations, reservation{ID: "r-" + randomID(9)[:17], Owner: a.s.opts.Account,
			Instances: []xInstance{{InstanceID: in.id, ImageID: in.image, InstanceType: in.instanceType, PrivateIP: "127.0.0.1",
				LaunchTime: isoTime(in.launched), StateCode: code, StateName: name, Zone: in.zone}}})
	}
	if len(missing) > 0 {
		return nil, Errorf("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	return out, nil
}

// String is for messages.
func (d LaunchTemplateData) String() string {
	return fmt.Sprintf("image %s, type %s", d.ImageID, d.InstanceType)
}
