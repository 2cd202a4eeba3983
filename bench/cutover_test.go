package bench

import (
	"context"
	"testing"
)

func init() {
	subjects = append(subjects, proxySubject{"cutover", func(ctx context.Context, tb testing.TB, blue, green string) string {
		c, err := StartCutover(ctx, blue, green, 10, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return c.Addr
	}})
}

func TestSwitchesLoseNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs flat-out load for about two seconds")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blue, err := StartBackend(ctx, "blue")
	if err != nil {
		t.Fatal(err)
	}
	green, err := StartBackend(ctx, "green")
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartCutover(ctx, blue, green, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunSwitchTest(ctx, SwitchOptions{Addr: c.Addr, Splitter: c.Router, Conns: 16, Flips: 200})
	if err != nil {
		t.Fatal(err)
	}
	rep.Print(t.Logf)
	// Timing is printed, never asserted: this machine is shared and noisy.
	if rep.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Failed, rep.Requests, rep.Errors)
	}
	if rep.Stale != 0 {
		t.Errorf("%d old-colour responses on the load connections after a full swap", rep.Stale)
	}
	if rep.ProbeStale != 0 {
		t.Errorf("%d old-colour answers on the idle probe connection after a full swap", rep.ProbeStale)
	}
	if rep.FullFlips == 0 || len(rep.ProbeNew) != rep.FullFlips || rep.ProbeMissed != 0 {
		t.Errorf("probe answered %d of %d full flips (%d missed)", len(rep.ProbeNew), rep.FullFlips, rep.ProbeMissed)
	}
	if !rep.OK() {
		t.Errorf("report not OK")
	}
}
