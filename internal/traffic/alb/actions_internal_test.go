package alb

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// TestWeightChangeKeepsAuthenticateActions: on an HTTPS listener (or rule)
// whose actions authenticate before they forward, a weight change
// replaces only the forward action: the authenticate action, its order
// and the forward's own order and stickiness stay, so that cutover never
// turns a listener's authentication off. (The fake ALB has no HTTPS
// listeners, so this is checked on the actions themselves.)
func TestWeightChangeKeepsAuthenticateActions(t *testing.T) {
	tgs := [2]string{"arn:blue", "arn:green"}
	want := map[string]int64{"arn:blue": 900, "arn:green": 100}
	auth := types.Action{Type: types.ActionTypeEnumAuthenticateOidc, Order: aws.Int32(1),
		AuthenticateOidcConfig: &types.AuthenticateOidcActionConfig{Issuer: aws.String("https://idp.example.com"), ClientId: aws.String("web")}}
	cur := []types.Action{auth, {Type: types.ActionTypeEnumForward, Order: aws.Int32(2), ForwardConfig: &types.ForwardActionConfig{
		TargetGroups:                []types.TargetGroupTuple{{TargetGroupArn: aws.String("arn:blue"), Weight: aws.Int32(999)}},
		TargetGroupStickinessConfig: &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(60)}}}}
	got := withForward(cur, tgs, want)
	if len(got) != 2 || got[0].Type != types.ActionTypeEnumAuthenticateOidc || got[0].AuthenticateOidcConfig == nil ||
		aws.ToString(got[0].AuthenticateOidcConfig.Issuer) != "https://idp.example.com" {
		t.Fatalf("the authenticate action was not kept: %+v", got)
	}
	f := got[1]
	if f.Type != types.ActionTypeEnumForward || aws.ToInt32(f.Order) != 2 || f.ForwardConfig == nil ||
		f.ForwardConfig.TargetGroupStickinessConfig == nil || !aws.ToBool(f.ForwardConfig.TargetGroupStickinessConfig.Enabled) {
		t.Fatalf("forward action %+v, want order 2 with the stickiness kept", f)
	}
	if w := Weights(f); w["arn:blue"] != 900 || w["arn:green"] != 100 {
		t.Errorf("weights %v, want 900/100", w)
	}
	if aws.ToInt32(cur[1].ForwardConfig.TargetGroups[0].Weight) != 999 {
		t.Error("the actions read were changed in place")
	}

	// A listener that answers a fixed response gets the forward in its
	// place; authentication before it stays.
	fixed := []types.Action{auth, {Type: types.ActionTypeEnumFixedResponse, Order: aws.Int32(5),
		FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("503")}}}
	got = withForward(fixed, tgs, want)
	if len(got) != 2 || got[0].Type != types.ActionTypeEnumAuthenticateOidc || got[1].Type != types.ActionTypeEnumForward ||
		aws.ToInt32(got[1].Order) != 5 || got[1].FixedResponseConfig != nil {
		t.Fatalf("fixed response replaced as %+v", got)
	}
	// No action at all: one forward.
	if got := withForward(nil, tgs, want); len(got) != 1 || got[0].Type != types.ActionTypeEnumForward {
		t.Fatalf("from no action: %+v", got)
	}
}
