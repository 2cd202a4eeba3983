package testsupport

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a PostgreSQL server a test started for itself: its own
// cluster in a temporary directory, listening on a free loopback port,
// with trust authentication for its superuser "postgres". It is stopped
// (immediate shutdown) when the test ends.
type Postgres struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	dir  string
	bin  string
	run  func(name string, args ...string) *exec.Cmd
}

// StartPostgres initialises and starts a cluster, or fails the test
// saying why: a test that needs PostgreSQL never skips. The server binaries
// are found on PATH or in Debian's /usr/lib/postgresql/VERSION/bin (.ci/run
// installs the postgresql package). PostgreSQL refuses to run as root, so
// as root the cluster belongs to, and runs as, the "postgres" user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatalf("PostgreSQL is needed by this test: %v (install Debian's postgresql package; .ci/run does)", err)
	}
	dir, err := os.MkdirTemp("", "cutover-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{dir: dir, bin: bin, run: exec.Command}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		if err := p.runAsPostgres(); err != nil {
			t.Fatalf("PostgreSQL as root: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Port = freePort(t)
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=200", p.Port, dir)
	logFile := filepath.Join(dir, "server.log")
	if out, err := p.run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", logFile, "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		if out, err := p.run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return p
}

// URL returns a connection URL for database db as the superuser.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// CreateDatabase creates database name.
func (p *Postgres) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	p.SQL(t, "postgres", "CREATE DATABASE "+name)
}

// SQL runs statements with psql against database db and returns the
// unaligned, tuples-only output.
func (p *Postgres) SQL(t testing.TB, db, statements string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(p.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-d", p.URL(db), "-c", statements).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", statements, err, out)
	}
	return strings.TrimSpace(string(out))
}

// runAsPostgres makes p run the server binaries as the postgres user and
// gives it the cluster directory.
func (p *Postgres) runAsPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(p.dir, uid, gid); err != nil {
		return err
	}
	p.run = func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = p.dir
		cmd.Env = append(os.Environ(), "HOME="+p.dir)
		return cmd
	}
	return nil
}

// postgresBin finds the directory of initdb and pg_ctl: on PATH, else the
// newest Debian /usr/lib/postgresql/VERSION/bin.
func postgresBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if dir := filepath.Dir(p); fileExists(filepath.Join(dir, "initdb")) && fileExists(filepath.Join(dir, "psql")) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) && fileExists(filepath.Join(d, "psql")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != 0 {
			return port
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no free port")
	return 0
}
