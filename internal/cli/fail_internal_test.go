package cli

import "testing"

func TestSaysItsContext(t *testing.T) {
	cases := []struct {
		full, msg string
		want      bool
	}{
		{"pause web: pause web: no deployment in progress", "pause web: no deployment in progress", true},
		{"rollback web: missing or wrong bearer token", "missing or wrong bearer token", false},
		{"no deployment", "no deployment", false},
	}
	for _, c := range cases {
		if got := saysItsContext(c.full, c.msg); got != c.want {
			t.Errorf("saysItsContext(%q, %q) = %v, want %v", c.full, c.msg, got, c.want)
		}
	}
}
