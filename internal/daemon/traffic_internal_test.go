package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// TestReloadRefusesAWSAnalysisChanges: the CloudWatch source reads
// strategy.analysis.cloudwatch and alarms once, at start, so with an AWS
// traffic driver a reload that changes them needs a restart; with the
// embedded router they are unused and reload freely.
func TestReloadRefusesAWSAnalysisChanges(t *testing.T) {
	svc := func(alb bool, period time.Duration, alarms ...string) config.Service {
		s := config.Service{Name: "web"}
		if alb {
			s.Traffic.ALB = &config.ALB{ListenerARN: "arn"}
		}
		s.Strategy.Analysis.CloudWatch = config.CloudWatchMetrics{Period: period, Delay: time.Minute}
		s.Strategy.Analysis.Alarms = alarms
		return s
	}
	if got := differingFields(svc(true, time.Minute, "a"), svc(true, time.Second, "a", "b")); !slices.Equal(got, []string{"strategy.analysis.alarms", "strategy.analysis.cloudwatch"}) {
		t.Errorf("alb: differing %v, want the alarms and cloudwatch keys", got)
	}
	if got := differingFields(svc(true, time.Minute, "a"), svc(true, time.Minute, "a")); len(got) != 0 {
		t.Errorf("alb, same keys: differing %v", got)
	}
	if got := differingFields(svc(false, time.Minute), svc(false, time.Second, "a")); len(got) != 0 {
		t.Errorf("embedded router: differing %v, want none", got)
	}
}
