package runtime

import (
	"testing"
	"time"
)

func TestExitsCountOnlyTheWindow(t *testing.T) {
	var e Exits
	t0 := time.Unix(1000, 0)
	for i, want := range []int{1, 2, 3} {
		if n := e.Add(t0.Add(time.Duration(i)*time.Second), 10*time.Second); n != want {
			t.Fatalf("exit %d: %d in the window, want %d", i, n, want)
		}
	}
	// At 11 s the exits at 0 s and 1 s have left the window (at 1 s it is
	// exactly 10 s old, and the window is open at its far end).
	if n := e.Add(t0.Add(11*time.Second), 10*time.Second); n != 2 {
		t.Fatalf("after the window moved: %d, want 2", n)
	}
	if n := e.Add(t0.Add(time.Hour), 10*time.Second); n != 1 {
		t.Fatalf("an hour later: %d, want 1", n)
	}
}
