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
	if !rep.OK() {
		t.Fatalf("%d of %d requests failed, %d stale responses after a full swap", rep.Failed, rep.Requests, rep.Stale)
	}
}
