package asg

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2t "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cutover/cutover/internal/route"
)

// templateVersion returns the launch template version that runs version
// in the colour: made from the template's default (image_id, parameter)
// or the version itself (template_version).
func (d *Driver) templateVersion(ctx context.Context, c route.Color, version string) (string, error) {
	if d.opts.VersionFrom == FromTemplateVersion {
		if n, err := strconv.ParseInt(version, 10, 64); err != nil || n < 1 {
			return "", fmt.Errorf("version_from template_version takes a launch template version number as VERSION, not %q", version)
		}
		if _, _, err := d.versionData(ctx, version); err != nil {
			return "", err
		}
		return version, nil
	}
	base, num, err := d.versionData(ctx, "$Default")
	if err != nil {
		return "", err
	}
	data := &ec2t.RequestLaunchTemplateData{}
	switch d.opts.VersionFrom {
	case FromImageID:
		if !strings.HasPrefix(version, "ami-") {
			return "", fmt.Errorf("version_from image_id takes an AMI id as VERSION (ami-...), not %q", version)
		}
		data.ImageId = aws.String(version)
	case FromParameter:
		ud, err := base64.StdEncoding.DecodeString(aws.ToString(base.UserData))
		if err != nil {
			return "", fmt.Errorf("user data of launch template %s version %d is not base64: %w", d.opts.LaunchTemplate, num, err)
		}
		if !strings.Contains(string(ud), "${VERSION}") {
			return "", fmt.Errorf("version_from parameter: the user data of launch template %s version %d has no ${VERSION} to replace", d.opts.LaunchTemplate, num)
		}
		data.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(ud), "${VERSION}", version))))
	default:
		return "", fmt.Errorf("unknown version_from %q", d.opts.VersionFrom)
	}
	out, err := d.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateName: aws.String(d.opts.LaunchTemplate),
		SourceVersion:      aws.String(strconv.FormatInt(num, 10)),
		VersionDescription: aws.String(fmt.Sprintf("cutover %s %s %s", d.opts.Service, c, version)),
		ClientToken:        aws.String(d.clientToken(c, version, num)),
		LaunchTemplateData: data,
	})
	if err != nil {
		return "", fmt.Errorf("create launch template version of %s from version %d: %w", d.opts.LaunchTemplate, num, err)
	}
	if out.LaunchTemplateVersion == nil || out.LaunchTemplateVersion.VersionNumber == nil {
		return "", errors.New("create launch template version: the answer has no version number")
	}
	return strconv.FormatInt(*out.LaunchTemplateVersion.VersionNumber, 10), nil
}

// clientToken makes CreateLaunchTemplateVersion idempotent for one
// release of one colour from one default version, so that a Start run
// again after a crash finds the version it made.
func (d *Driver) clientToken(c route.Color, version string, source int64) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d", d.opts.Service, d.opts.LaunchTemplate, c, version, source)))
	return "cutover-" + hex.EncodeToString(h[:20])
}

// versionData reads one launch template version ("$Default", "$Latest"
// or a number).
func (d *Driver) versionData(ctx context.Context, v string) (*ec2t.ResponseLaunchTemplateData, int64, error) {
	out, err := d.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(d.opts.LaunchTemplate), Versions: []string{v},
	})
	if err != nil {
		return nil, 0, fmt.Errorf("describe launch template %s version %s: %w", d.opts.LaunchTemplate, v, err)
	}
	if len(out.LaunchTemplateVersions) == 0 {
		return nil, 0, fmt.Errorf("launch template %s has no version %s", d.opts.LaunchTemplate, v)
	}
	lv := out.LaunchTemplateVersions[0]
	data := lv.LaunchTemplateData
	if data == nil {
		data = &ec2t.ResponseLaunchTemplateData{}
	}
	return data, aws.ToInt64(lv.VersionNumber), nil
}
