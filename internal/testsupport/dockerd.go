package testsupport

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// Dockerd is a Docker Engine a test started for itself, from Debian's
// docker.io package: its own --data-root, --exec-root, pid file and unix
// socket under a temporary directory, and its own containerd. It runs
// without iptables (published ports are served by docker-proxy) and with
// the vfs storage driver (which works on any file system, overlay ones
// included). With Bridge, it gets a bridge of its own (so that several
// engines can run at once, each test binary its own); without, it has no
// bridge and containers use host networking.
type Dockerd struct {
	// Host is the engine's address for a Docker client: unix://<socket>.
	Host string
	// TCPHost, with DockerdOptions.TCP, is its tcp://127.0.0.1:PORT
	// address (plain HTTP, loopback only).
	TCPHost string
	// PID is dockerd's process id.
	PID    int
	dir    string
	bridge string
	cmd    *exec.Cmd
	done   chan struct{}
	once   sync.Once
}

// DockerdOptions configure LaunchDockerd.
type DockerdOptions struct {
	// Bridge gives the engine a bridge network of its own, so that
	// containers can publish ports on 127.0.0.1.
	Bridge bool
	// TCP makes the engine listen on a free port of 127.0.0.1 too.
	TCP bool
	// TLSCA, TLSCert and TLSKey (PEM files), with TCP, make that
	// listener TLS-only, verifying clients against TLSCA (--tlsverify).
	TLSCA, TLSCert, TLSKey string
}

// StartDockerd starts an engine for the test and stops it when the test
// ends, or fails the test saying why: a test that needs Docker never
// skips (.ci/run installs docker.io).
func StartDockerd(t testing.TB, o DockerdOptions) *Dockerd {
	t.Helper()
	d, err := LaunchDockerd(o)
	if err != nil {
		t.Fatalf("dockerd is needed by this test: %v", err)
	}
	t.Cleanup(d.Stop)
	return d
}

// LaunchDockerd starts an engine and returns once it answers; the caller
// stops it with Stop (for engines shared by a test binary's TestMain).
func LaunchDockerd(o DockerdOptions) (*Dockerd, error) {
	bin, err := lookSbin("dockerd")
	if err != nil {
		return nil, fmt.Errorf("%w (install Debian's docker.io package; .ci/run does)", err)
	}
	// A unix socket's path must be short: the temporary directory is
	// directly under /tmp.
	dir, err := os.MkdirTemp("/tmp", "cutover-dockerd-")
	if err != nil {
		return nil, err
	}
	d := &Dockerd{dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock"), done: make(chan struct{})}
	args := []string{
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", d.Host,
		"--iptables=false", "--ip6tables=false", "--storage-driver=vfs", "--log-level=warn",
		"--containerd-namespace", "cutover-" + filepath.Base(dir), "--containerd-plugins-namespace", "cutover-p-" + filepath.Base(dir),
	}
	if o.TCP {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		d.TCPHost = "tcp://" + l.Addr().String()
		l.Close()
		args = append(args, "-H", d.TCPHost)
		if o.TLSCA != "" {
			args = append(args, "--tlsverify", "--tlscacert", o.TLSCA, "--tlscert", o.TLSCert, "--tlskey", o.TLSKey)
		}
	}
	if o.Bridge {
		name, err := makeBridge()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		d.bridge = name
		args = append(args, "--bridge", name)
	} else {
		args = append(args, "--bridge=none")
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		d.cleanup()
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// dockerd finds runc, docker-proxy and containerd on its PATH, which
	// Debian puts in /usr/sbin and /usr/bin.
	d.cmd.Env = append(os.Environ(), "PATH="+sbinPath())
	// Pdeathsig: a test binary that dies without its cleanups (a panic,
	// the -timeout's, a SIGKILL) must not leave a dockerd and its
	// containers running. The signal follows the thread that started the
	// child, so the start runs on a thread locked for it; an unlocked
	// thread lives on.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	err = d.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		d.cleanup()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	d.PID = d.cmd.Process.Pid
	go func() { d.cmd.Wait(); close(d.done) }()
	if err := d.waitReady(60 * time.Second); err != nil {
		log := d.Log()
		d.Stop()
		return nil, fmt.Errorf("dockerd did not answer: %w\ndockerd's log:\n%s", err, log)
	}
	return d, nil
}

// Log is the end of dockerd's log.
func (d *Dockerd) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

func (d *Dockerd) socket() string { return strings.TrimPrefix(d.Host, "unix://") }

func (d *Dockerd) waitReady(timeout time.Duration) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket())
	}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("dockerd exited: %v", d.cmd.ProcessState)
		default:
		}
		r, err := hc.Get("http://docker/_ping")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("/_ping: %s", r.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s: %v", timeout, last)
}

// Stop stops the engine (SIGTERM by PID, which stops its containers;
// SIGKILL after 30s) and removes its directory and bridge. It is safe to
// call more than once.
func (d *Dockerd) Stop() {
	d.once.Do(func() {
		if d.cmd != nil && d.cmd.Process != nil {
			syscall.Kill(d.PID, syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(30 * time.Second):
				syscall.Kill(-d.PID, syscall.SIGKILL)
				<-d.done
			}
		}
		d.cleanup()
	})
}

func (d *Dockerd) cleanup() {
	if d.bridge != "" {
		if ip, err := lookSbin("ip"); err == nil {
			exec.Command(ip, "link", "del", d.bridge).Run()
		}
	}
	unmountUnder(d.dir)
	os.RemoveAll(d.dir)
}

// unmountUnder detaches what dockerd left mounted under dir (the network
// namespace it bind-mounts in its exec root), so that dir can be removed.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	// Deepest first.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// makeBridge creates a bridge with a /24 of 172.30.0.0/16 that no
// interface uses yet. Containers on it are reached only through ports
// published on 127.0.0.1; no test sends traffic to its addresses.
func makeBridge() (string, error) {
	ip, err := lookSbin("ip")
	if err != nil {
		return "", fmt.Errorf("a bridge needs the ip command (iproute2): %w", err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "cut" + hex.EncodeToString(b)
	used, _ := exec.Command(ip, "-4", "-o", "addr").Output()
	var cidr string
	for i := 0; i < 256; i++ {
		n := (int(b[0]) + i) % 256
		if !bytes.Contains(used, []byte(" 172.30."+strconv.Itoa(n)+".")) {
			cidr = "172.30." + strconv.Itoa(n) + ".1/24"
			break
		}
	}
	if cidr == "" {
		return "", errors.New("no free /24 in 172.30.0.0/16 for a bridge")
	}
	for _, args := range [][]string{
		{"link", "add", "name", name, "type", "bridge"},
		{"addr", "add", cidr, "dev", name},
		{"link", "set", name, "up"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			exec.Command(ip, "link", "del", name).Run()
			return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return name, nil
}

var appBuild struct {
	once sync.Once
	bin  []byte
	err  error
}

// dockerApp builds the static test application (dockerapp) once per
// process and returns the executable's bytes (the file is not kept).
func dockerApp() ([]byte, error) {
	appBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-dockerapp-")
		if err != nil {
			appBuild.err = err
			return
		}
		defer os.RemoveAll(dir)
		_, file, _, _ := runtime.Caller(0)
		out := filepath.Join(dir, "app")
		cmd := exec.Command("go", "build", "-o", out, "./dockerapp")
		cmd.Dir = filepath.Dir(file)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			appBuild.err = fmt.Errorf("build the docker test app: %v: %s", err, b)
			return
		}
		appBuild.bin, appBuild.err = os.ReadFile(out)
	})
	return appBuild.bin, appBuild.err
}

// BuildImage builds an image tagged tag on the engine at host, FROM
// scratch with the static test application (see package dockerapp) as
// its entry point, plus the Dockerfile lines extra (ENV, HEALTHCHECK,
// LABEL). It goes through the Engine API (ImageBuild with a tar context).
func BuildImage(ctx context.Context, host, tag, extra string) error {
	bin, err := dockerApp()
	if err != nil {
		return err
	}
	dockerfile := "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n" + extra + "\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"app", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("build image %s: %w", tag, err)
		}
		if m.Error != "" {
			return fmt.Errorf("build image %s: %s", tag, m.Error)
		}
	}
}

// sbinPath is PATH with the system directories Debian installs daemons
// and network tools in.
func sbinPath() string {
	p := os.Getenv("PATH")
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if !slices.Contains(filepath.SplitList(p), dir) {
			p += string(filepath.ListSeparator) + dir
		}
	}
	return strings.TrimPrefix(p, string(filepath.ListSeparator))
}

// lookSbin finds a program on sbinPath.
func lookSbin(name string) (string, error) {
	for _, dir := range filepath.SplitList(sbinPath()) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on %s", name, sbinPath())
}

// kill ends a dockerd that is no child of this process (a test's check of
// orphans), with its process group.
func (d *Dockerd) kill() { syscall.Kill(-d.PID, syscall.SIGKILL) }
