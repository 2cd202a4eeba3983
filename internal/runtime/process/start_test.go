package process

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

func TestStartGatesAndSubstitutes(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			h := newHarness(t, testService(n, map[string]string{"APP_ENV": "test-${COLOR}"}), "", nil)
			ctx := context.Background()
			ins, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v7"})
			if err != nil {
				t.Fatal(err)
			}
			if len(ins) != n {
				t.Fatalf("Start returned %d instances, want %d", len(ins), n)
			}
			ev, ok := h.rec.Last(route.Green)
			if !ok || len(ev.Instances) != n || ev.Version != "v7" {
				t.Fatalf("listener saw %+v, want %d healthy v7 instances", ev, n)
			}
			ports := map[string]bool{}
			for i, in := range ins {
				wantID := fmt.Sprintf("web-green-%d", i+1)
				if in.ID != wantID || in.Color != route.Green || in.Version != "v7" || in.Service != "web" {
					t.Errorf("instance %d = %+v", i, in)
				}
				if ports[in.Addr] {
					t.Errorf("address %s handed out twice", in.Addr)
				}
				ports[in.Addr] = true
				info := getInfo(t, in.Addr)
				if info.PID != in.PID {
					t.Errorf("%s answered from pid %d, driver says %d", in.Addr, info.PID, in.PID)
				}
				port := strings.TrimPrefix(in.Addr, "127.0.0.1:")
				wantArgs := []string{"--listen", in.Addr, "--version", "v7", "--id=web/green/" + wantID}
				if !slices.Equal(info.Args, wantArgs) {
					t.Errorf("argv = %q, want %q", info.Args, wantArgs)
				}
				wantEnv := map[string]string{"PORT": port, "VERSION": "v7", "COLOR": "green", "SERVICE": "web",
					"INSTANCE": wantID, "APP_ENV": "test-green"}
				for k, v := range wantEnv {
					if info.Env[k] != v {
						t.Errorf("env %s = %q, want %q", k, info.Env[k], v)
					}
				}
				// Output goes straight to the log file, not through the daemon.
				fd1, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", in.PID))
				if want := h.d.logPath(route.Green, i+1); err != nil || fd1 != want {
					t.Errorf("instance stdout is %q (%v), want the log file %s", fd1, err, want)
				}
			}
			if got := h.d.Instances(route.Green); len(got) != n {
				t.Errorf("Instances(green) = %d, want %d", len(got), n)
			}
			if got := h.d.Instances(route.Blue); len(got) != 0 {
				t.Errorf("Instances(blue) = %v, want none", got)
			}
			// Starting the same version again adopts the pool as it is.
			again, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v7"})
			if err != nil || !slices.Equal(pids(again), pids(ins)) {
				t.Errorf("second Start of v7 = %v, %v; want the same pids %v", pids(again), err, pids(ins))
			}
			if err := h.d.Stop(ctx, route.Green); err != nil {
				t.Fatal(err)
			}
			for _, in := range ins {
				if alive(in.PID) {
					t.Errorf("pid %d alive after Stop", in.PID)
				}
			}
			if ev, _ := h.rec.Last(route.Green); len(ev.Instances) != 0 {
				t.Errorf("listener after Stop: %+v, want an empty pool", ev)
			}
		})
	}
}

func TestStartOtherVersionReplacesPool(t *testing.T) {
	h := newHarness(t, testService(1, nil), "", nil)
	ctx := context.Background()
	v1, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if alive(v1[0].PID) {
		t.Errorf("v1 pid %d still alive after starting v2 in its colour", v1[0].PID)
	}
	if info := getInfo(t, v2[0].Addr); info.Env["VERSION"] != "v2" {
		t.Errorf("blue serves %q, want v2", info.Env["VERSION"])
	}
}

var pidInError = regexp.MustCompile(`\(pid (\d+),`)

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(h *harness)
		tune    func(*Options)
		wantErr []string
		notErr  []string
	}{
		{
			name:    "command does not exist",
			mutate:  func(h *harness) { h.d.opts.Command = []string{"/nonexistent/app", "x"} },
			wantErr: []string{"/nonexistent/app", "no such file"},
		},
		{
			name:    "command not in PATH",
			mutate:  func(h *harness) { h.d.opts.Command = []string{"cutover-no-such-program"} },
			wantErr: []string{"cutover-no-such-program", "not found"},
		},
		{
			name:    "dir does not exist",
			mutate:  func(h *harness) { h.d.opts.Dir = "/nonexistent/dir" },
			wantErr: []string{"/nonexistent/dir"},
		},
		{
			name: "never healthy",
			mutate: func(h *harness) {
				h.d.opts.Env = map[string]string{"APP_NEVER_HEALTHY": "1"}
				h.d.opts.StartTimeout = 700 * time.Millisecond
			},
			wantErr: []string{"not healthy in time", "status 503", "start timeout", "app starting pid=", "a line on stderr"},
		},
		{
			name: "exits during start, every time",
			mutate: func(h *harness) {
				h.d.opts.Env = map[string]string{"APP_EXIT_AFTER": "1", "APP_NEVER_HEALTHY": "1"}
			},
			wantErr: []string{"instance web-green-1 exited 6 times before it was healthy, the last time with exit code 3",
				"app exiting on purpose", "web-green-2: not started"},
		},
		{
			name:   "killed by a signal during start",
			mutate: func(h *harness) { h.d.opts.Env = map[string]string{"APP_KILL_SELF": "KILL"} },
			wantErr: []string{"instance web-green-1 exited 6 times before it was healthy, the last time killed by signal SIGKILL",
				"app: killing itself with KILL"},
		},
		{
			name: "start timeout passes while an exited instance waits for its restart",
			mutate: func(h *harness) {
				h.d.opts.Env = map[string]string{"APP_EXIT_AFTER": "1", "APP_NEVER_HEALTHY": "1"}
				h.d.opts.StartTimeout = 500 * time.Millisecond
			},
			tune:    func(o *Options) { o.RestartBackoff = time.Second },
			wantErr: []string{"instance web-green-1 exited before it was healthy, with exit code 3; not restarted again: start timeout 500ms passed"},
		},
		{
			name:    "env_file missing",
			mutate:  func(h *harness) { h.d.opts.EnvFile = "/nonexistent/web.env" },
			wantErr: []string{"instance web-green-1 could not be launched: env_file: open /nonexistent/web.env: no such file"},
		},
		{
			name: "env_file malformed",
			mutate: func(h *harness) {
				h.d.opts.EnvFile = filepath.Join(t.TempDir(), "web.env")
				writeFile(t, h.d.opts.EnvFile, "A=1\nhunter2\n")
			},
			wantErr: []string{"could not be launched: env_file: ", "web.env:2: expected KEY=VALUE"},
			notErr:  []string{"hunter2"},
		},
		{
			name: "secret file missing",
			mutate: func(h *harness) {
				h.d.opts.Secrets = map[string]Secret{"DB_PASSWORD": {File: "/nonexistent/db-password"}}
			},
			wantErr: []string{"instance web-green-1 could not be launched: secret DB_PASSWORD: open /nonexistent/db-password: no such file"},
		},
		{
			name: "secret variable missing from the daemon",
			mutate: func(h *harness) {
				h.d.opts.Secrets = map[string]Secret{"API_KEY": {Env: "CUTOVER_TEST_NO_SUCH_VAR"}}
			},
			wantErr: []string{"secret API_KEY: the daemon's environment has no CUTOVER_TEST_NO_SUCH_VAR"},
		},
		{
			name: "ports exhausted",
			tune: func(o *Options) {
				lo := twoFreePorts(t)
				o.Ports = runtime.NewPortRange(lo, lo+1) // blue takes both
			},
			wantErr: []string{"no free port"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService(2, nil)
			h := newHarness(t, svc, "", tc.tune)
			ctx := context.Background()
			blue, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
			if err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				tc.mutate(h)
			}
			ins, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v2"})
			if err == nil {
				t.Fatalf("Start succeeded with %v", ins)
			}
			msg := err.Error()
			t.Logf("Start: %s", msg)
			for _, want := range append([]string{"service web", "green", "v2"}, tc.wantErr...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			for _, not := range append([]string{"did not become healthy"}, tc.notErr...) {
				if strings.Contains(msg, not) {
					t.Errorf("error holds %q:\n%s", not, msg)
				}
			}
			for _, m := range pidInError.FindAllStringSubmatch(msg, -1) {
				pid, _ := strconv.Atoi(m[1])
				if alive(pid) {
					t.Errorf("failed instance pid %d still alive", pid)
				}
			}
			if got := h.d.Instances(route.Green); len(got) != 0 {
				t.Errorf("green has instances after failed start: %v", got)
			}
			rec, err := h.d.readRecords()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rec.Pools {
				if p.Color == route.Green {
					t.Errorf("failed green pool still recorded: %+v", p)
				}
			}
			for _, in := range blue {
				if info := getInfo(t, in.Addr); info.PID != in.PID {
					t.Errorf("blue %s disturbed: pid %d, want %d", in.ID, info.PID, in.PID)
				}
			}
		})
	}
}

// twoFreePorts returns a port p such that p and p+1 are free now.
func twoFreePorts(t *testing.T) int {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
