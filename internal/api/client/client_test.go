package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

func start(t *testing.T, b api.Backend, opts api.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(b, opts).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String() // without scheme: New adds it
}

func TestRoundTrips(t *testing.T) {
	b := apitest.New("web", "api")
	b.SetHistory("web", []deploy.Deployment{{ID: "d2", Version: "v2", Outcome: deploy.OutcomePromoted}, {ID: "d1", Version: "v1"}})
	c := client.New(start(t, b, api.Options{Token: "tok"}), "tok", nil)
	ctx := context.Background()

	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := c.Services(ctx)
	if err != nil || len(all) != 2 || all[0].Service != "api" || all[1].Live.Version != "v1" {
		t.Fatalf("Services = %+v, %v", all, err)
	}
	st, err := c.Status(ctx, "web")
	if err != nil || st.Service != "web" || st.Weights["blue"] != 100 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	d, err := c.Deploy(ctx, "web", "v3", "all-at-once")
	if err != nil || d.ID != "d1" || d.Version != "v3" || d.Outcome != deploy.OutcomeRunning {
		t.Fatalf("Deploy = %+v, %v", d, err)
	}
	hist, err := c.History(ctx, "web", 1)
	if err != nil || len(hist) != 1 || hist[0].ID != "d2" {
		t.Fatalf("History = %+v, %v", hist, err)
	}
	one, err := c.Deployment(ctx, "web", "d1")
	if err != nil || one.Version != "v1" {
		t.Fatalf("Deployment = %+v, %v", one, err)
	}
	for name, f := range map[string]func(context.Context, string) (deploy.Status, error){
		"promote": c.Promote, "pause": c.Pause, "resume": c.Resume, "abort": c.Abort, "rollback": c.Rollback,
		"down": c.Down, "up": c.Up,
	} {
		if st, err := f(ctx, "web"); err != nil || st.Service != "web" {
			t.Errorf("%s = %+v, %v", name, st, err)
		}
	}
	if err := c.Register(ctx, "web", "v2", "10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	if err := c.Deregister(ctx, "web", "v2", "10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	if err := c.Metrics(ctx, &m); err != nil || !strings.Contains(m.String(), "cutover_up 1") {
		t.Fatalf("Metrics = %q, %v", m.String(), err)
	}
	want := []string{"[deploy web v3 all-at-once user]", "[promote web]", "[pause web]", "[resume web]",
		"[abort web]", "[rollback web]", "[down web]", "[up web]", "[register web v2 10.0.0.1:80]", "[deregister web v2 10.0.0.1:80]", "[reload ]"}
	got := b.Calls()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("backend did not see %s: %v", w, got)
		}
	}
}

func TestErrors(t *testing.T) {
	b := apitest.New("web")
	base := start(t, b, api.Options{Token: "tok"})
	ctx := context.Background()

	var e *client.Error
	_, err := client.New(base, "tok", nil).Status(ctx, "nope")
	if !errors.As(err, &e) || e.Status != 404 || e.Code != api.CodeUnknownService || !strings.Contains(e.Message, "nope") {
		t.Fatalf("unknown service: %#v", err)
	}
	_, err = client.New(base, "wrong", nil).Promote(ctx, "web")
	if !errors.As(err, &e) || e.Status != 401 || e.Code != api.CodeUnauthorized {
		t.Fatalf("wrong token: %#v", err)
	}
	b.SetError("deploy", fmt.Errorf("deploy web v2: %w: a deployment is running", api.ErrConflict))
	_, err = client.New(base, "tok", nil).Deploy(ctx, "web", "v2", "")
	if !errors.As(err, &e) || e.Status != 409 || e.Code != api.CodeConflict || e.Error() != "deploy web v2: conflict: a deployment is running" {
		t.Fatalf("conflict: %#v", err)
	}

	// Something that is not the API (a proxy's error page).
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer plain.Close()
	_, err = client.New(plain.URL, "", nil).Status(ctx, "web")
	if !errors.As(err, &e) || e.Status != 502 || e.Message != "bad gateway" {
		t.Fatalf("plain error: %#v", err)
	}

	// Nobody listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	var u *client.UnreachableError
	_, err = client.New("http://"+dead, "", nil).Status(ctx, "web")
	if !errors.As(err, &u) || u.URL != "http://"+dead || !strings.Contains(err.Error(), dead) {
		t.Fatalf("unreachable: %#v", err)
	}

	// A cancelled context is not "unreachable".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = client.New(base, "", nil).Status(cctx, "web")
	if errors.As(err, &u) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %#v", err)
	}
}

func TestEvents(t *testing.T) {
	b := apitest.New("web", "api")
	c := client.New(start(t, b, api.Options{Heartbeat: 20 * time.Millisecond}), "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := c.Events(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	v := &deploy.Verdict{Result: deploy.ResultFail, Reason: "green error rate 5%"}
	b.Emit(deploy.Event{Service: "api", Type: "started"})
	b.Emit(deploy.Event{Service: "web", Deployment: "d1", Type: "verdict", Verdict: v})
	b.Emit(deploy.Event{Service: "web", Deployment: "d1", Type: "rolled_back", Weight: 0})
	var got []deploy.Event
	for ev := range ch {
		got = append(got, ev)
		if len(got) == 2 {
			break
		}
	}
	if len(got) != 2 || got[0].Type != "verdict" || got[0].Verdict == nil || got[0].Verdict.Reason != v.Reason || got[1].Type != "rolled_back" {
		t.Fatalf("events = %+v", got)
	}
	cancel()
	for range ch { // closes after cancel
	}
	var e *client.Error
	if _, err := c.Events(context.Background(), "nope"); !errors.As(err, &e) || e.Code != api.CodeUnknownService {
		t.Fatalf("events of an unknown service: %v", err)
	}
}

func TestLogsFollowUntilCancel(t *testing.T) {
	b := apitest.New("web")
	b.SetLogs("web", "hello\n")
	c := client.New(start(t, b, api.Options{}), "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	var buf syncBuffer
	done := make(chan error, 1)
	blue := route.Blue
	go func() { done <- c.Logs(ctx, "web", &blue, true, &buf) }()
	if err := b.FeedLog(ctx, "more\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for buf.String() != "[blue] hello\nmore\n" {
		if time.Now().After(deadline) {
			t.Fatalf("logs so far %q", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Logs after cancel: %v", err)
	}
	if err := c.Logs(context.Background(), "nope", nil, false, &buf); err == nil {
		t.Fatal("logs of an unknown service: no error")
	}
}

// syncBuffer is shared with other packages' tests.
type syncBuffer = testsupport.Buffer
