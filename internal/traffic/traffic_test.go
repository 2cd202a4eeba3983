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
