package daemon

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesOperatorSettings(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	if tuneGC(env(map[string]string{"GOGC": "50"})) || tuneGC(env(map[string]string{"GOMEMLIMIT": "1GiB"})) {
		t.Fatal("tuneGC overrode an operator's GOGC or GOMEMLIMIT")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	if !tuneGC(env(nil)) {
		t.Fatal("tuneGC did nothing without operator settings")
	}
	if got := debug.SetGCPercent(400); got != 400 {
		t.Errorf("GOGC = %d after tuneGC, want 400", got)
	}
	if got, want := debug.SetMemoryLimit(-1), memoryLimit(os.ReadFile); got != want {
		t.Errorf("memory limit = %d after tuneGC, want %d", got, want)
	}
}

func TestMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	const gib = int64(1) << 30
	meminfo := "MemTotal:       25165824 kB\nMemFree:  100 kB\n" // 24 GiB
	cases := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine memory", map[string]string{"/proc/meminfo": meminfo}, 12 * gib},
		{"cgroup without a limit", map[string]string{"/sys/fs/cgroup/memory.max": "max\n", "/proc/meminfo": meminfo}, 12 * gib},
		{"cgroup limit below the machine", map[string]string{"/sys/fs/cgroup/memory.max": "4294967296\n", "/proc/meminfo": meminfo}, 2 * gib},
		{"small container: the floor", map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n", "/proc/meminfo": meminfo}, minMemoryLimit},
		{"nothing readable: the floor", nil, minMemoryLimit},
	}
	for _, c := range cases {
		if got := memoryLimit(files(c.files)); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
