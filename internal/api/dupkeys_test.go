package api

import "testing"

// TestDuplicateKeyPaths checks that a key given twice is found at any depth
// and named with its path, and that equal keys in different objects are not
// duplicates.
func TestDuplicateKeyPaths(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"version":"v2","version":"v3"}`, `duplicate key "version" at version`},
		{`{"strategy":{"steps":[{"weight":1,"weight":2}]}}`, `duplicate key "weight" at strategy.steps[0].weight`},
		{`{"strategy":{"steps":[{"weight":1},{"weight":2,"pause":"1s","pause":"2s"}]}}`, `duplicate key "pause" at strategy.steps[1].pause`},
		{`{"a":[1,{"b":1},{"b":2,"c":{"d":1,"D":2}}]}`, `duplicate key "D" at a[2].c.D (the same field as "d")`},
		{`{"a":[[{"k":1}],[{"k":1,"k":2}]]}`, `duplicate key "k" at a[1][0].k`},
		{`{"K":1,"\u212a":2}`, `duplicate key "` + "\u212a" + `" at ` + "\u212a" + ` (the same field as "K")`},
		{`{"a":{"x":1},"b":{"x":1},"x":{"a":{}}}`, ``},
		{`[{"x":1},{"x":2}]`, ``},
		{`{"a":"x","b":["a","a"],"c":{"a":{"a":null}}}`, ``},
		{`"version"`, ``},
		{`{}`, ``},
	}
	for _, tt := range tests {
		err := duplicateKeys([]byte(tt.body))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.body, got, tt.want)
		}
	}
}
