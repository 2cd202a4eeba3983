package awsfake_test

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"

	"github.com/cutover/cutover/internal/awsfake"
)

// The Auto Scaling and EC2 fakes through the pinned SDK: a group scaled
// out with SetDesiredCapacity launches real processes that go Pending,
// then InService, registered in the group's target group where the fake
// ALB's health checks judge them; validation and launch failures come
// back as AWS words them.
func TestAutoScalingLaunchesRealInstances(t *testing.T) {
	fake := awsfake.NewTest(t, awsfake.Options{HealthInterval: 100 * time.Millisecond})
	as := fake.AutoScaling()
	as.SetOptions(awsfake.AutoScalingOptions{PendingDelay: 200 * time.Millisecond})
	// The "AMI" is the process runtime's test app, an HTTP server on $PORT.
	app := t.TempDir() + "/app"
	if out, err := exec.Command("go", "build", "-o", app, "../runtime/process/testdata/app").CombinedOutput(); err != nil {
		t.Fatalf("building the test app: %v\n%s", err, out)
	}
	as.RegisterImage("ami-web", awsfake.Image{Command: []string{app}})
	as.CreateLaunchTemplate("web", awsfake.LaunchTemplateData{ImageID: "ami-web", InstanceType: "t3.micro"})
	tg := fake.ELB().CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web", HealthCheck: awsfake.HealthCheck{Path: "/healthz"}, DeregistrationDelay: -1})
	lb := fake.ELB().CreateLoadBalancer("web")
	if _, err := fake.ELB().CreateListener(lb.ARN, 80, awsfake.Weight{TargetGroupARN: tg.ARN, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if err := as.CreateGroup(awsfake.GroupSpec{Name: "g", LaunchTemplate: "web", Max: 2, TargetGroups: []string{tg.ARN}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	asc := autoscaling.NewFromConfig(fake.Config())
	if _, err := asc.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(3)}); !isCode(err, "ValidationError") {
		t.Fatalf("desired above max: %v", err)
	}
	if _, err := asc.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var id string
	sawPending := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := asc.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
		if err != nil {
			t.Fatal(err)
		}
		g := out.AutoScalingGroups[0]
		if aws.ToInt32(g.DesiredCapacity) != 1 || g.LaunchTemplate == nil || aws.ToString(g.LaunchTemplate.LaunchTemplateName) != "web" {
			t.Fatalf("group: %+v", g)
		}
		if len(g.Instances) == 1 {
			in := g.Instances[0]
			id = aws.ToString(in.InstanceId)
			sawPending = sawPending || in.LifecycleState == "Pending"
			if in.LifecycleState == "InService" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no instance InService: %+v", g.Instances)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawPending {
		t.Fatal("the instance was never Pending")
	}
	ins, err := ec2.NewFromConfig(fake.Config()).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(ins.Reservations) != 1 || aws.ToString(ins.Reservations[0].Instances[0].PrivateIpAddress) != "127.0.0.1" {
		t.Fatalf("describe instances: %v %+v", err, ins)
	}
	elbc := elb.NewFromConfig(fake.Config())
	for {
		th, err := elbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg.ARN)})
		if err != nil {
			t.Fatal(err)
		}
		if len(th.TargetHealthDescriptions) == 1 && th.TargetHealthDescriptions[0].TargetHealth.State == "healthy" {
			if got := aws.ToString(th.TargetHealthDescriptions[0].Target.Id); got != id {
				t.Fatalf("target %s, want the instance %s", got, id)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance never got healthy in its target group: %+v", th.TargetHealthDescriptions)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A launch template version with an image nobody registered fails to
	// launch, in AWS's words.
	e := ec2.NewFromConfig(fake.Config())
	v, err := e.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("web"), SourceVersion: aws.String("$Default"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-gone")}})
	if err != nil {
		t.Fatal(err)
	}
	num := *v.LaunchTemplateVersion.VersionNumber
	if d := v.LaunchTemplateVersion.LaunchTemplateData; aws.ToString(d.ImageId) != "ami-gone" || d.InstanceType != "t3.micro" {
		t.Fatalf("the new version is not the default with the image: %+v", d)
	}
	if _, err := asc.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(2),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web"), Version: aws.String(strconv.FormatInt(num, 10))}}); err != nil {
		t.Fatal(err)
	}
	for {
		acts, err := asc.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g")})
		if err != nil {
			t.Fatal(err)
		}
		if len(acts.Activities) > 0 && acts.Activities[0].StatusCode == "Failed" {
			if msg := aws.ToString(acts.Activities[0].StatusMessage); !strings.Contains(msg, "The image id '[ami-gone]' does not exist") {
				t.Fatalf("failed launch says %q", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed launch: %+v", acts.Activities)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.DeleteLaunchTemplateVersions(ctx, &ec2.DeleteLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web"), Versions: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	if vs := as.TemplateVersions("web"); len(vs) != 2 {
		t.Fatalf("the default version was deleted: %v", vs)
	}
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
