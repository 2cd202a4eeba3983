package daemon

import (
	"testing"
	"time"
)

// TestCountsLagCoversCloudWatchsPublication: the quiet period of an AWS
// router is waited on top of the time a request takes to reach the
// counts (its period's end, CloudWatch's delay, one poll), and not at all
// when no target group is watched (Route53 without target_groups).
func TestCountsLagCoversCloudWatchsPublication(t *testing.T) {
	tgs := [2]string{"arn:blue", "arn:green"}
	for _, tc := range []struct {
		period, delay time.Duration
		tgs           [2]string
		want          time.Duration
	}{
		{time.Minute, time.Minute, tgs, 2*time.Minute + time.Second},
		{time.Second, 1500 * time.Millisecond, tgs, 3500 * time.Millisecond},
		{time.Minute, time.Minute, [2]string{}, 0},
	} {
		if got := countsLag(tc.period, tc.delay, tc.tgs); got != tc.want {
			t.Errorf("countsLag(%s, %s, %v) = %s, want %s", tc.period, tc.delay, tc.tgs, got, tc.want)
		}
	}
}
