package traffic

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// TestLedgerSurvivesReopenAndRefusesDrift: what was written is checked
// after a "restart" (reopen), a write in progress is accepted either way,
// and anything else is drift.
func TestLedgerSurvivesReopenAndRefusesDrift(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic-web.json")
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	anything := map[string]int64{"tg-blue": 3, "tg-green": 4}
	if err := l.Check("listener", anything); err != nil {
		t.Fatalf("an empty ledger refuses: %v", err)
	}
	first := map[string]int64{"tg-blue": 999, "tg-green": 0}
	if err := l.Begin(first, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(true); err != nil {
		t.Fatal(err)
	}
	next := map[string]int64{"tg-blue": 900, "tg-green": 100}
	if err := l.Begin(next, time.Now()); err != nil { // then a crash: no Commit
		t.Fatal(err)
	}
	l, err = OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []map[string]int64{first, next} {
		if err := l.Check("listener", ok); err != nil {
			t.Errorf("%v refused after reopen: %v", ok, err)
		}
	}
	err = l.Check("ALB listener L", map[string]int64{"tg-blue": 700, "tg-green": 300})
	var drift *DriftError
	if !errors.As(err, &drift) || !strings.Contains(err.Error(), "changed outside cutover") || !strings.Contains(err.Error(), "tg-blue: 700") {
		t.Fatalf("drift not refused clearly: %v", err)
	}
	if err := l.Commit(false); err != nil {
		t.Fatal(err)
	}
	if err := l.Check("listener", next); err == nil {
		t.Errorf("a write recorded as not made is still accepted")
	}
}

func TestLedgerUnreadableIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic-web.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := OpenLedger(path); err == nil {
		t.Fatal("a corrupt ledger opened as empty")
	}
}

func TestPlanALBNamesEveryCallInOrder(t *testing.T) {
	lines := Plan(PlanInput{ALB: &ALBPlan{ListenerARN: "L", TestListenerARN: "T", TargetGroups: [2]string{"arn:x:targetgroup/b/1", "arn:x:targetgroup/g/2"}},
		Live: route.Blue, Steps: []float64{10, 50}, Alarms: []string{"web-5xx"}})
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"ModifyListener ListenerArn=T DefaultActions=[forward arn:x:targetgroup/g/2]",
		"weight 900, arn:x:targetgroup/g/2 weight 100] (10% on green)",
		"weight 500, arn:x:targetgroup/g/2 weight 500] (50% on green)",
		"weight 0, arn:x:targetgroup/g/2 weight 999] (100% on green)",
		"DescribeAlarms AlarmNames=web-5xx",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "(10% on green)") > strings.Index(text, "(50% on green)") {
		t.Errorf("steps out of order:\n%s", text)
	}
}

func TestPlanRoute53NamesEveryCallInOrder(t *testing.T) {
	lines := Plan(PlanInput{Route53: &Route53Plan{ZoneID: "Z1", Record: "api.example.com.", Type: "A", PreviewRecord: "preview.example.com.",
		TTLSeconds: 60, Targets: [2]string{"blue-alb.", "green-alb."}, TargetGroups: [2]string{"arn:x:targetgroup/b/1", "arn:x:targetgroup/g/2"}},
		Live: route.Green, Steps: []float64{10, 50}, Alarms: []string{"web-5xx"}})
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"UPSERT preview.example.com. A -> blue-alb. (preview on the candidate blue)",
		// 255 is Route53's largest weight: 10% of it rounds to 26.
		"SetIdentifier=green Weight=229 -> green-alb., UPSERT api.example.com. A SetIdentifier=blue Weight=26 -> blue-alb.] (10% on blue)",
		"SetIdentifier=green Weight=128 -> green-alb., UPSERT api.example.com. A SetIdentifier=blue Weight=127 -> blue-alb.] (50% on blue)",
		"SetIdentifier=green Weight=0 -> green-alb., UPSERT api.example.com. A SetIdentifier=blue Weight=255 -> blue-alb.] (100% on blue)",
		"until INSYNC; then wait the TTL 60s",
		"monitoring:GetMetricData of targetgroup/g/2 and targetgroup/b/1",
		"DescribeAlarms AlarmNames=web-5xx",
		"(wait the TTL 60s since green's weight reached 0)",
		"RequestCount of targetgroup/g/2 until it has been 0 for quiet_period",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "(10% on blue)") > strings.Index(text, "(50% on blue)") ||
		strings.Index(text, "(preview on the candidate") > strings.Index(text, "(10% on blue)") {
		t.Errorf("calls out of order:\n%s", text)
	}
	// The last step reads no metrics: nothing is left to judge.
	last := text[strings.Index(text, "(100% on blue)"):]
	if strings.Contains(last, "GetMetricData of") || strings.Contains(last, "DescribeAlarms") {
		t.Errorf("the 100%% step is judged:\n%s", last)
	}
}
