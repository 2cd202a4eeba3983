package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type state struct {
	Phase  string  `json:"phase"`
	Weight float64 `json:"weight"`
	N      int     `json:"n"`
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "cutover.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestStateRoundTrip(t *testing.T) {
	s, path := openTemp(t)
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
	var got state
	if found, err := s.GetState("web", &got); found || err != nil {
		t.Fatalf("GetState of an unsaved service = %v, %v; want false, nil", found, err)
	}
	want := state{Phase: "shifting", Weight: 12.5, N: 1}
	if err := s.PutState("web", want); err != nil {
		t.Fatal(err)
	}
	if err := s.PutState("api", state{Phase: "idle"}); err != nil {
		t.Fatal(err)
	}
	if found, err := s.GetState("web", &got); !found || err != nil || got != want {
		t.Fatalf("GetState = %v, %v, %+v; want true, nil, %+v", found, err, got, want)
	}
	var names []string
	if err := s.States(func(name string, raw []byte) error { names = append(names, name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{"api", "web"}) {
		t.Errorf("States walked %v", names)
	}
	// A state that does not decode is an error, never "not found".
	var wrong struct{ Phase int }
	found, err := s.GetState("web", &wrong)
	if !found || err == nil || !strings.Contains(err.Error(), "web") {
		t.Errorf("GetState into the wrong type = %v, %v; want found and an error naming the service", found, err)
	}
}

func TestDeploymentsNewestFirst(t *testing.T) {
	s, _ := openTemp(t)
	type rec struct{ ID, Outcome string }
	// Ids deliberately do not sort by time: order is the order of first save.
	for _, r := range []rec{{"c", "running"}, {"a", "promoted"}, {"b", "running"}} {
		if err := s.PutDeployment("web", r.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutDeployment("web", "c", rec{"c", "rolled_back"}); err != nil { // update in place
		t.Fatal(err)
	}
	if err := s.PutDeployment("api", "z", rec{"z", "running"}); err != nil {
		t.Fatal(err)
	}
	list := func(service string, limit int) []rec {
		var out []rec
		err := s.Deployments(service, limit, func(raw []byte) error {
			var r rec
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name    string
		service string
		limit   int
		want    []rec
	}{
		{"all", "web", 0, []rec{{"b", "running"}, {"a", "promoted"}, {"c", "rolled_back"}}},
		{"limit", "web", 2, []rec{{"b", "running"}, {"a", "promoted"}}},
		{"negative limit is all", "web", -1, []rec{{"b", "running"}, {"a", "promoted"}, {"c", "rolled_back"}}},
		{"other service", "api", 0, []rec{{"z", "running"}}},
		{"unknown service", "nope", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.service, tt.limit); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Deployments("web", 0, func([]byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("callback error: got %v after %d calls; want it returned after 1", err, calls)
	}
	if err := s.PutDeployment("web", "", rec{}); err == nil {
		t.Error("PutDeployment with an empty id succeeded")
	}
}

func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutState("web", state{Phase: "paused", N: 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDeployment("web", "d1", state{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	var got state
	if found, err := s.GetState("web", &got); !found || err != nil || got.N != 7 {
		t.Fatalf("after reopen GetState = %v, %v, %+v", found, err, got)
	}
	if err := s.PutDeployment("web", "d2", state{N: 2}); err != nil {
		t.Fatal(err)
	}
	var ns []int
	s.Deployments("web", 0, func(raw []byte) error {
		var st state
		json.Unmarshal(raw, &st)
		ns = append(ns, st.N)
		return nil
	})
	if !reflect.DeepEqual(ns, []int{2, 1}) {
		t.Errorf("deployments after reopen = %v, want [2 1] (sequence continues)", ns)
	}
}

func TestOpenInUseFailsFast(t *testing.T) {
	s, path := openTemp(t)
	start := time.Now()
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Open took %v", d)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("message should name the file and the holder's pid: %s", msg)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := open(path, Options{}, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	s2.Close()
}

func TestUnreadableFilesAreLoud(t *testing.T) {
	writeBolt := func(fn func(tx *bolt.Tx) error) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(fn); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}
	}
	setSchema := func(v string) func(t *testing.T, path string) {
		return writeBolt(func(tx *bolt.Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte(bucketMeta))
			return b.Put([]byte(keySchema), []byte(v))
		})
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"garbage", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			os.WriteFile(path, b, 0o600)
		}, "invalid database"},
		{"short garbage", func(t *testing.T, path string) { os.WriteFile(path, []byte("not a database\n"), 0o600) }, ""},
		{"text over a real store", func(t *testing.T, path string) {
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.PutState("web", state{N: 1})
			s.Close()
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt(make([]byte, 8192), 0) // both meta pages zeroed
			f.Close()
		}, ""},
		{"foreign bbolt file", writeBolt(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("users"))
			return err
		}), `not a cutover store: holds bucket "users"`},
		{"newer schema", setSchema("2"), "written by a newer cutover (schema 2; this build reads up to 1)"},
		{"bad schema", setSchema("one"), `schema version "one" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cutover.db")
			tt.setup(t, path)
			before, _ := os.ReadFile(path)
			s, err := open(path, Options{}, 50*time.Millisecond)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on an unreadable file")
			}
			if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrUnreadable naming %s and saying %q", err, path, tt.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("Open changed the unreadable file")
			}
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	s, _ := openTemp(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				svc := fmt.Sprintf("svc-%d", g)
				if err := s.PutState(svc, state{N: i}); err != nil {
					t.Error(err)
				}
				if err := s.PutDeployment(svc, strconv.Itoa(i), state{N: i}); err != nil {
					t.Error(err)
				}
				var st state
				if _, err := s.GetState(svc, &st); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		var st state
		if found, err := s.GetState(fmt.Sprintf("svc-%d", g), &st); !found || err != nil || st.N != 19 {
			t.Errorf("svc-%d: %v %v %+v", g, found, err, st)
		}
	}
}

// crashChildEnv makes the test binary a child that writes states in a loop.
const crashChildEnv = "CUTOVER_STORE_CRASH_CHILD"

// TestCrashChild is not a test on its own: TestKillNineKeepsAcknowledgedState
// runs it in a child process, which it then kills.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only runs as the child of TestKillNineKeepsAcknowledgedState")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		if err := s.PutState("web", state{Phase: "shifting", N: i}); err != nil {
			fmt.Println("put:", err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "ack %d\n", i) // only after PutState returned
		out.Flush()
	}
}

func TestKillNineKeepsAcknowledgedState(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "cutover.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	last := 0
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack "))
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", sc.Text())
		}
		last = n
		if n >= 100 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	for sc.Scan() { // acknowledgements written before the kill still count
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack ")); err == nil {
			last = n
		}
	}
	cmd.Wait()
	if last < 100 {
		t.Fatalf("child acknowledged only %d writes", last)
	}

	s, err := open(path, Options{}, 2*time.Second)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	var got state
	found, err := s.GetState("web", &got)
	if !found || err != nil {
		t.Fatalf("GetState after kill -9 = %v, %v", found, err)
	}
	// The child may have committed one more write it had no time to acknowledge.
	if got.N != last && got.N != last+1 {
		t.Fatalf("after kill -9 the state is write %d; the last acknowledged was %d", got.N, last)
	}
}

// A 0-byte file is a store that was lost, not a new one: Open refuses it,
// leaves it as it is and names the way out; AcceptEmpty lays out a new
// store over it, which Created reports.
func TestEmptyFileIsRefusedUnlessAccepted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := open(path, Options{}, 50*time.Millisecond)
	if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--accept-empty-store") {
		t.Fatalf("Open of a 0-byte file = %v, want ErrEmpty naming the file and --accept-empty-store", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the refused file changed: %v, %v", fi, err)
	}
	s, err := open(path, Options{AcceptEmpty: true}, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("Open with AcceptEmpty: %v", err)
	}
	if !s.Created() {
		t.Error("Created() = false for a store laid out over an empty file")
	}
	s.Close()
	s, err = open(path, Options{}, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("reopening the store laid out over the empty file: %v", err)
	}
	if s.Created() {
		t.Error("Created() = true for a store that already had its layout")
	}
	s.Close()
}

// Deployment reads one record by id, the version last saved under it, and
// reports a missing id or service as not found.
func TestDeploymentByID(t *testing.T) {
	s, _ := openTemp(t)
	for i, id := range []string{"d1", "d2", "d3"} {
		if err := s.PutDeployment("web", id, state{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutDeployment("web", "d2", state{N: 20}); err != nil {
		t.Fatal(err)
	}
	raw, found, err := s.Deployment("web", "d2")
	if err != nil || !found {
		t.Fatalf("Deployment(web, d2) = found %v, %v", found, err)
	}
	var got state
	if err := json.Unmarshal(raw, &got); err != nil || got.N != 20 {
		t.Errorf("Deployment(web, d2) = %s (%v), want the record saved last (N 20)", raw, err)
	}
	for _, c := range [][2]string{{"web", "d9"}, {"api", "d1"}} {
		if _, found, err := s.Deployment(c[0], c[1]); found || err != nil {
			t.Errorf("Deployment(%s, %s) = found %v, %v; want not found", c[0], c[1], found, err)
		}
	}
}
