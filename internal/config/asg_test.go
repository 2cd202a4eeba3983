package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

func TestASGRuntime(t *testing.T) {
	good := `services:
  web:
    listen: 127.0.0.1:8080
    runtime:
      asg:
        region: us-east-1
        groups: {blue: production-blue-asg, green: production-green-asg}
        launch_template: {name: web}
        version_from: image_id
        capacity: match_live
        when_retired: delete_group
        start_timeout: 90s
`
	c, err := config.Parse("F", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Services["web"].Runtime.ASG
	if a == nil || a.Groups.Blue != "production-blue-asg" || a.Groups.Green != "production-green-asg" || a.LaunchTemplate.Name != "web" ||
		a.Capacity != 0 || a.WhenRetired != "delete_group" || a.StartTimeout != 90*time.Second || a.VersionFrom != "image_id" {
		t.Fatalf("decoded %+v", a)
	}
	c, err = config.Parse("F", []byte(strings.Replace(good, "capacity: match_live", "capacity: 3", 1)))
	if err != nil || c.Services["web"].Runtime.ASG.Capacity != 3 {
		t.Fatalf("capacity 3: %v", err)
	}

	bad := `services:
  web:
    listen: 127.0.0.1:8080
    runtime:
      asg:
        groups: {blue: same, green: same}
        version_from: ami
        capacity: lots
        when_retired: terminate
`
	_, err = config.Parse("F", []byte(bad))
	if err == nil {
		t.Fatal("a bad asg runtime was accepted")
	}
	for _, want := range []string{
		`F:8: services.web.runtime.asg.capacity: must be match_live or a number of instances (1 or more), got "lots"`,
		"services.web.runtime.asg.groups: blue and green are the same group same",
		"services.web.runtime.asg.launch_template.name: required",
		`services.web.runtime.asg.version_from: must be image_id, parameter or template_version (got "ami")`,
		`services.web.runtime.asg.when_retired: must be scale_to_zero or delete_group (got "terminate")`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not say %q:\n%v", want, err)
		}
	}
}
