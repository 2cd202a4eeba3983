package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDockerRuntime(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "web.env"), []byte("A=1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pw"), []byte("x\n"), 0o600)
	yaml := `services:
  web:
    listen: 127.0.0.1:8080
    runtime:
      docker:
        image: registry.example.com/web:${VERSION}
        hosts: [unix:///var/run/docker.sock, ssh://deploy@10.0.1.5, tcp://10.0.1.6:2376]
        port: 8080
        env: {APP_ENV: production}
        env_file: ./web.env
        secrets: {DB_PASSWORD: {file: pw}}
        inherit_env: [TZ]
        network: ""
        pull: always
        resources: {memory: 512m, cpus: 1.5}
        stop_timeout: 3s
        labels: {team: web}
`
	c, err := Parse(filepath.Join(dir, "cutover.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	dk := c.Services["web"].Runtime.Docker
	if dk == nil {
		t.Fatal("runtime.docker not decoded")
	}
	assertEq(t, dk.Image, "registry.example.com/web:${VERSION}")
	assertEq(t, len(dk.Hosts), 3)
	assertEq(t, dk.Port, 8080)
	assertEq(t, dk.Env["APP_ENV"], "production")
	assertEq(t, dk.EnvFile, filepath.Join(dir, "web.env"))
	assertEq(t, dk.Secrets["DB_PASSWORD"].File, filepath.Join(dir, "pw"))
	assertEq(t, dk.Pull, "always")
	assertEq(t, dk.Resources.Memory, int64(512<<20))
	assertEq(t, dk.Resources.CPUs, 1.5)
	assertEq(t, dk.StopTimeout, 3*time.Second)
	assertEq(t, dk.StartTimeout, 2*time.Minute)
	assertEq(t, dk.Labels["team"], "web")
}

func TestDockerRuntimeProblems(t *testing.T) {
	yaml := `services:
  web:
    listen: 127.0.0.1:8080
    runtime:
      docker:
        image: ""
        hosts: [http://x]
        port: 0
        pull: sometimes
        resources: {memory: lots}
        labels: {cutover.color: red}
        colour: blue
`
	_, err := Parse("cutover.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad docker runtime accepted")
	}
	for _, want := range []string{
		"cutover.yaml:10: services.web.runtime.docker.resources.memory: must be a size",
		"cutover.yaml:12: services.web.runtime.docker.colour: unknown key",
		"services.web.runtime.docker.image: required",
		"cutover.yaml:7: services.web.runtime.docker.hosts[0]:",
		"services.web.runtime.docker.port: must be the container port",
		"cutover.yaml:9: services.web.runtime.docker.pull: must be always, missing or never",
		"services.web.runtime.docker.labels.cutover.color: labels under cutover.",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"512m": 512 << 20, "1g": 1 << 30, "64k": 64 << 10, "1000": 1000, "1.5g": 3 << 29, "256MiB": 256 << 20} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseMemory("-1m"); err == nil {
		t.Error("negative memory accepted")
	}
}

func TestDockerHostWithPasswordIsRefusedUnshown(t *testing.T) {
	yaml := `services:
  web:
    listen: 127.0.0.1:8080
    runtime:
      docker:
        image: app:${VERSION}
        port: 8080
        hosts: ["tcp://ops:hunter2-7f1c@10.0.1.6:2376", "ssh://deploy:hunter2-7f1c@10.0.1.5", "tcp://ops:hunter2-7f1c@[bad"]
`
	_, err := Parse("cutover.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("docker hosts holding a password accepted")
	}
	for _, want := range []string{
		"cutover.yaml:8: services.web.runtime.docker.hosts[0]: holds a password",
		"cutover.yaml:8: services.web.runtime.docker.hosts[1]: holds a password",
		"cutover.yaml:8: services.web.runtime.docker.hosts[2]: is not a URL",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password:\n%v", err)
	}
}
