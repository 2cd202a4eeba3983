package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// instanceEnv returns the environment of every instance recorded for colour.
func (e *env) instanceEnv(color string) []map[string]string {
	e.t.Helper()
	b, err := os.ReadFile(e.recordFile())
	if err != nil {
		e.t.Fatal(err)
	}
	var rec struct {
		Pools []struct {
			Color     string
			Instances []struct{ PID int }
		}
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]string
	for _, p := range rec.Pools {
		if p.Color != color {
			continue
		}
		for _, in := range p.Instances {
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", in.PID))
			if err != nil {
				e.t.Fatalf("instance %d: %v", in.PID, err)
			}
			env := map[string]string{}
			for _, kv := range strings.Split(string(raw), "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
			out = append(out, env)
		}
	}
	if len(out) == 0 {
		e.t.Fatalf("no %s instance recorded", color)
	}
	return out
}

// A release carries its own environment: each deploy's --env and
// --env-file reach that release's instances and no other's, history keeps
// only hashes of the values, and a rollback serves the previous release
// with the environment it was deployed with, also in instances that
// replace a crashed one.
func TestPerReleaseEnvironment(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait", "--env", "MSG=one", "--env", "TOKEN=t-one-secret")
	envFile := filepath.Join(e.dir, "v2.env")
	os.WriteFile(envFile, []byte("MSG=from-file\nEXTRA=yes\n"), 0o600)
	e.mustCLI(0, "deploy", "web", "v2", "--wait", "--env-file", envFile, "--env", "MSG=two", "--env", "TOKEN=t-two-secret")
	for _, env := range e.instanceEnv("green") {
		if env["MSG"] != "two" || env["EXTRA"] != "yes" || env["TOKEN"] != "t-two-secret" {
			t.Errorf("v2 instance env MSG=%q EXTRA=%q, want two (--env over the file) and yes", env["MSG"], env["EXTRA"])
		}
	}
	for _, env := range e.instanceEnv("blue") {
		if env["MSG"] != "one" || env["EXTRA"] != "" {
			t.Errorf("v1 instance env MSG=%q EXTRA=%q, want v1's own", env["MSG"], env["EXTRA"])
		}
	}
	hist := e.mustCLI(0, "history", "web", "--json")
	var recs []struct {
		Version string
		Env     map[string]string
	}
	if err := json.Unmarshal([]byte(hist), &recs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hist, "t-two-secret") || strings.Contains(hist, "t-one-secret") ||
		recs[0].Version != "v2" || !strings.HasPrefix(recs[0].Env["TOKEN"], "sha256:") || len(recs[0].Env) != 3 {
		t.Errorf("history must name v2's variables with hashes of their values only: %+v", recs[0])
	}
	if st := e.mustCLI(0, "status", "web", "--json"); strings.Contains(st, "secret") {
		t.Errorf("status shows a value: %s", st)
	}

	e.mustCLI(0, "rollback", "web")
	e.waitFor("v1 live again", 20*time.Second, func(s status) bool {
		return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v1"
	})
	blue := e.instanceEnv("blue")
	if blue[0]["MSG"] != "one" {
		t.Fatalf("after the rollback the live instances have MSG=%q, want v1's one", blue[0]["MSG"])
	}
	// A crashed instance of the rolled-back-to release is replaced with its env.
	b, _ := os.ReadFile(e.recordFile())
	before := pidsIn(b)
	for _, pid := range before[:1] {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(e.recordFile())
		if now := pidsIn(b); len(now) == len(before) && !samePIDs(now, before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed instance was not replaced")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, env := range e.instanceEnv("blue") {
		if env["MSG"] != "one" {
			t.Errorf("a replacement of v1 has MSG=%q, want v1's one", env["MSG"])
		}
	}
}
