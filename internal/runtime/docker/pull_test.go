package docker

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/testsupport"
)

func TestPullProgressAuthAndNotFound(t *testing.T) {
	reg := testsupport.StartRegistry(t, "deployer", "hunter2")
	if err := reg.PushApp("web", "v1"); err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	var (
		mu       sync.Mutex
		progress []PullProgress
	)
	d, _, logs := newDriver(t, func(o *Options) {
		o.Instances = 1
		o.Image = reg.Addr + "/web:${VERSION}"
		o.Pull = PullAlways
		o.Progress = func(p PullProgress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }
	})
	ctx := context.Background()

	var errText strings.Builder // every error the driver returned, checked for the password
	_, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		errText.WriteString(err.Error())
	}
	for _, want := range []string{"host " + engine.Host, "registry " + reg.Addr, "authentication failed", filepath.Join(cfgDir, "config.json")} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pull without credentials: error lacks %q: %v", want, err)
		}
	}

	auth := base64.StdEncoding.EncodeToString([]byte("deployer:hunter2"))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg.Addr+`":{"auth":"`+auth+`"}}}`), 0o600)
	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatalf("pull with the credentials of config.json: %v", err)
	}
	if got := get(t, "http://"+ins[0].Addr+"/"); got != "v1 blue web-blue-1" {
		t.Errorf("pulled image answers %q", got)
	}
	mu.Lock()
	got := append([]PullProgress(nil), progress...)
	mu.Unlock()
	if len(got) < 2 {
		t.Fatalf("progress reports %+v, want several", got)
	}
	last := got[len(got)-1]
	if !last.Done || last.Layers != 1 || last.LayersDone != 1 || last.Total < 1<<20 || last.Bytes != last.Total || last.Host != engine.Host {
		t.Errorf("last progress report %+v, want the one layer done with all its bytes", last)
	}
	t.Logf("%d progress reports, last %+v", len(got), last)

	// A credential helper (credsStore) instead of auths.
	helpers := t.TempDir()
	os.WriteFile(filepath.Join(helpers, "docker-credential-cutovertest"), []byte(
		"#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"deployer\",\"Secret\":\"hunter2\"}'\n"), 0o755)
	t.Setenv("PATH", helpers+string(filepath.ListSeparator)+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credsStore":"cutovertest"}`), 0o600)
	if _, err := d.Start(ctx, route.Green, runtime.Release{Version: "v1"}); err != nil {
		t.Errorf("pull with a credential helper: %v", err)
	}
	d.Stop(ctx, route.Green)

	_, err = d.Start(ctx, route.Green, runtime.Release{Version: "v404"})
	if err != nil {
		errText.WriteString(err.Error())
	}
	if err == nil || !strings.Contains(err.Error(), "image not found") || !strings.Contains(err.Error(), "registry "+reg.Addr) {
		t.Errorf("pull of a missing tag: %v", err)
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Error("the registry password reached the driver's log")
	}
	if strings.Contains(errText.String(), "hunter2") {
		t.Error("the registry password reached an error")
	}
}
