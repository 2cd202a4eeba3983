package process

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/preflight"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

func field(t *testing.T, d runtime.Description, name string) runtime.Field {
	t.Helper()
	for _, f := range d.Fields {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("%s description has no field %s: %+v", d.Color, name, d.Fields)
	return runtime.Field{}
}

// What a running colour is described as comes from its process (argv,
// environment, directory, executable), and compares equal to what the
// other colour would run under the same configuration; a changed
// variable and a colour-named bucket are what the drift check finds, and
// no secret value appears anywhere.
func TestDescribeRunningAndWouldRun(t *testing.T) {
	dir := t.TempDir()
	const password = "pw-never-shown-8841"
	pwFile := filepath.Join(dir, "db-password")
	writeFile(t, pwFile, password+"\n")
	env := map[string]string{"FEATURE_X": "on", "UPLOADS_BUCKET": "app-uploads-${COLOR}", "RELEASE_SHA": "abc"}
	svc := testService(1, env)
	svc.Secrets = map[string]Secret{"DB_PASSWORD": {File: pwFile}}
	svc.Dir = dir
	h := newHarness(t, svc, "", nil)
	ins, err := h.d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	blue, err := h.d.Describe(context.Background(), route.Blue, nil)
	if err != nil {
		t.Fatal(err)
	}
	if blue.Version != "v1" || blue.Color != route.Blue {
		t.Fatalf("blue description = %s %s", blue.Color, blue.Version)
	}
	// Read from the process itself.
	sum := digestFile(appPath)
	if f := field(t, blue, "binary.digest"); f.Value != sum || !strings.HasPrefix(sum, "sha256:") {
		t.Errorf("binary.digest = %q, want %q", f.Value, sum)
	}
	if f := field(t, blue, "dir"); f.Value != dir {
		t.Errorf("dir = %q, want %q", f.Value, dir)
	}
	if f := field(t, blue, "env.PORT"); !f.Expected || f.Value != strings.TrimPrefix(ins[0].Addr, "127.0.0.1:") {
		t.Errorf("env.PORT = %+v", f)
	}
	if f := field(t, blue, "env.DB_PASSWORD"); !f.Secret || f.Value != Hash(password) {
		t.Errorf("env.DB_PASSWORD = %+v, want the hash", f)
	}
	// Nothing changed: what green would run for v2 differs by design only.
	same, err := h.d.Describe(context.Background(), route.Green, &runtime.Release{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if f := field(t, same, "command"); f.Value != field(t, blue, "command").Value {
		t.Errorf("command: running %s, would run %s", field(t, blue, "command").Value, f.Value)
	}
	rep := preflight.Compare(blue, same, []string{"RELEASE_SHA"})
	var rules []string
	for _, f := range rep.Findings {
		rules = append(rules, f.Rule+" "+strings.SplitN(f.Message, ":", 2)[0])
	}
	slices.Sort(rules)
	want := []string{"colour-name env.UPLOADS_BUCKET of blue is \"app-uploads-blue\", which names the colour blue",
		"colour-name env.UPLOADS_BUCKET of green is \"app-uploads-green\", which names the colour green",
		"differs env.UPLOADS_BUCKET"}
	for i := range want {
		want[i] = strings.SplitN(want[i], ":", 2)[0]
	}
	if !slices.Equal(rules, want) {
		t.Fatalf("same config: findings %v, want %v\n%+v", rules, want, rep.Differences)
	}

	// The configuration changes under the running pool: a variable differs
	// now, and a release-only one is ignored.
	changed := h.opts
	changed.Env = map[string]string{"FEATURE_X": "off", "UPLOADS_BUCKET": "app-uploads", "RELEASE_SHA": "def"}
	green, err := NewDescriber(changed).Describe(context.Background(), route.Green, &runtime.Release{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	// NewDescriber reads the running colour from the record file too.
	blueAgain, err := NewDescriber(changed).Describe(context.Background(), route.Blue, nil)
	if err != nil || field(t, blueAgain, "env.FEATURE_X").Value != "on" {
		t.Fatalf("the offline describer reads blue as %+v, %v", blueAgain, err)
	}
	rep = preflight.Compare(blueAgain, green, []string{"RELEASE_SHA"})
	rules = nil
	for _, f := range rep.Findings {
		rules = append(rules, f.Rule+" "+strings.SplitN(f.Message, ":", 2)[0])
	}
	slices.Sort(rules)
	want = []string{"colour-name env.UPLOADS_BUCKET of blue is \"app-uploads-blue\", which names the colour blue", "differs env.FEATURE_X", "differs env.UPLOADS_BUCKET"}
	want[0] = strings.SplitN(want[0], ":", 2)[0]
	if !slices.Equal(rules, want) {
		t.Fatalf("changed config: findings %v, want %v", rules, want)
	}
	ignored := false
	for _, d := range rep.Differences {
		if d.Name == "env.RELEASE_SHA" {
			ignored = d.Ignored
		}
	}
	if !ignored {
		t.Errorf("env.RELEASE_SHA is not reported as ignored: %+v", rep.Differences)
	}
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), password) || strings.Contains(rep.Text(), password) {
		t.Fatalf("the drift report shows the secret")
	}
	// A colour that runs nothing is described as empty.
	if d, err := NewDescriber(changed).Describe(context.Background(), route.Green, nil); err != nil || d.Version != "" {
		t.Fatalf("green runs nothing, described as %+v, %v", d, err)
	}
}
