package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/cli"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// scriptDownUp makes b's down stop its pools, and its up start them, for
// took, as the daemon reports it in status; an up with fail set leaves
// the service down with a failed up in history.
func scriptDownUp(b *apitest.Backend, took time.Duration, fail string) {
	b.OnDownUp = func(op, service string) {
		st, _ := b.Status(service)
		st.DownSince = t0
		if op == "down" {
			st.Stopping = true
		} else {
			st.Down, st.Starting = true, true
		}
		b.SetStatus(st)
		go func() {
			time.Sleep(took)
			st.Stopping, st.Starting = false, false
			if op == "up" && fail == "" {
				st.Down, st.DownSince = false, time.Time{}
			}
			if op == "up" && fail != "" {
				b.SetHistory(service, []deploy.Deployment{{ID: "up-1", Service: service, Version: "v1", Color: route.Blue,
					Strategy: "up", StartedAt: t0, EndedAt: t0, Outcome: deploy.OutcomeFailed, Reason: fail}})
			}
			b.SetStatus(st)
		}()
	}
}

// down returns once the daemon has stopped the pools, and up once the
// live pool serves: a script's next command can rely on either.
func TestDownAndUpWaitForTheDaemon(t *testing.T) {
	const took = 600 * time.Millisecond
	b := apitest.New("web")
	scriptDownUp(b, took, "")
	url := daemon(t, b, api.Options{Token: "tok"})

	start := time.Now()
	r := run(t, url, "tok", "down", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "web: down;") || !strings.Contains(r.stdout, "`cutover up web` starts blue v1 again") {
		t.Fatalf("down: %+v", r)
	}
	if waited := time.Since(start); waited < took {
		t.Errorf("down returned after %s, before the pools were stopped (%s)", waited, took)
	}
	r = run(t, url, "", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "web      down ") || !strings.Contains(r.stdout, "web down since 2026-03-04 10:00:00") {
		t.Errorf("status table of a service that is down:\n%s", r.stdout)
	}
	r = run(t, url, "", "status", "web", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st["down"] != true {
		t.Errorf(`status --json lacks "down": true: %v %s`, err, r.stdout)
	}

	start = time.Now()
	r = run(t, url, "tok", "up", "web", "--json")
	if r.code != 0 || time.Since(start) < took {
		t.Fatalf("up: %+v after %s", r, time.Since(start))
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st["down"] != false {
		t.Errorf("up --json: %v %s", err, r.stdout)
	}
	if calls := strings.Join(b.Calls(), " "); !strings.Contains(calls, "[down web]") || !strings.Contains(calls, "[up web]") {
		t.Errorf("daemon calls %s", calls)
	}
}

// An up that does not start the live pool exits 1 with the daemon's reason.
func TestUpFailureExitsWithTheReason(t *testing.T) {
	b := apitest.New("web")
	scriptDownUp(b, 200*time.Millisecond, "start blue v1: health gate for blue: 0 of 2 instances healthy")
	url := daemon(t, b, api.Options{})
	r := run(t, url, "", "up", "web")
	if r.code != 1 || !strings.Contains(r.stderr, "cutover: up web: start blue v1: health gate") || !strings.Contains(r.stderr, "stays down") {
		t.Fatalf("failed up: %+v", r)
	}
}

// The daemon's refusal (409) reaches the user as it is worded.
func TestDownRefusalShown(t *testing.T) {
	b := apitest.New("web")
	b.SetError("deploy", refusal(api.ErrConflict, "deploy web v2: service is down since 2026-03-04T10:00:00Z; `cutover up web` brings it back first"))
	url := daemon(t, b, api.Options{})
	r := run(t, url, "", "deploy", "web", "v2")
	if r.code != 1 || !strings.Contains(r.stderr, "`cutover up web` brings it back first") {
		t.Fatalf("deploy while down: %+v", r)
	}
}

// serve passes --stop-instances-on-exit on.
func TestServeStopInstancesOnExit(t *testing.T) {
	var got cli.ServeOptions
	cmds := cli.Commands{Serve: func(ctx context.Context, o cli.ServeOptions, stdout, stderr io.Writer) int { got = o; return 0 }}
	if r := runWith(t, "", "", cmds, "serve"); r.code != 0 || got.StopInstancesOnExit {
		t.Errorf("serve: %d, stop instances on exit %v by default", r.code, got.StopInstancesOnExit)
	}
	if r := runWith(t, "", "", cmds, "serve", "--stop-instances-on-exit"); r.code != 0 || !got.StopInstancesOnExit {
		t.Errorf("serve --stop-instances-on-exit: %d, %+v", r.code, got)
	}
}

// conflictErr is an error the API classifies by kind and words as msg.
type conflictErr struct {
	kind error
	msg  string
}

func (e conflictErr) Error() string { return e.msg }
func (e conflictErr) Unwrap() error { return e.kind }

func refusal(kind error, msg string) error { return conflictErr{kind, msg} }
