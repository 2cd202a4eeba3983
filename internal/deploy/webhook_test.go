package deploy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// post is one request a webhook receiver got.
type post struct {
	path   string
	header http.Header
	body   WebhookBody
	raw    []byte
}

// receiver is a real HTTP server on 127.0.0.1:0 that webhooks post to:
// /ok/... answers 200, /fail 500, /slow too late, /moved a redirect.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	posts []post
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		p := post{path: req.URL.Path, header: req.Header.Clone(), raw: raw}
		if err := json.Unmarshal(raw, &p.body); err != nil {
			t.Errorf("webhook body is not JSON: %v: %q", err, raw)
		}
		r.mu.Lock()
		r.posts = append(r.posts, p)
		r.mu.Unlock()
		switch {
		case strings.HasPrefix(req.URL.Path, "/ok/"):
			io.WriteString(w, "ok: migrated")
		case req.URL.Path == "/fail":
			http.Error(w, "database is locked", http.StatusInternalServerError)
		case req.URL.Path == "/slow":
			select {
			case <-req.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case req.URL.Path == "/moved":
			http.Redirect(w, req, "/ok/elsewhere", http.StatusFound)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.posts...)
}

// A webhook gets the deployment's record as the API returns it, with the
// hook kind, and passes on a 2xx; its answer is the hook's output. The
// token in its path reaches neither history nor the log.
func TestWebhookHooksGetTheDeployment(t *testing.T) {
	rcv := newReceiver(t)
	svc := testService()
	svc.Policy.KeepPrevious, svc.Policy.QuietPeriod = 300*time.Millisecond, 100*time.Millisecond
	hook := []Hook{{URL: rcv.URL + "/ok/s3cr3t-token?sig=s3cr3t-sig"}}
	svc.Hooks.PreProvision, svc.Hooks.PostRetire = hook, hook
	h := newHarness(t, svc, newFakeStore())
	logs := h.logTo()
	h.start()
	h.deploy("v1", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)
	d2 := h.deploy("v2", StrategyAllAtOnce)
	waitFor(t, "blue v1 retired", func() bool { return settled(h) })

	posts := rcv.received()
	if len(posts) != 3 {
		t.Fatalf("%d webhook posts, want pre_provision v1, pre_provision v2, post_retire v2", len(posts))
	}
	rec := h.record(d2.ID)
	pre, retire := posts[1], posts[2]
	if pre.body.Hook != "pre_provision" || pre.header.Get("X-Cutover-Hook") != "pre_provision" || pre.header.Get("X-Cutover-Deployment") != d2.ID ||
		pre.header.Get("Content-Type") != "application/json" || pre.body.Retired != nil {
		t.Errorf("pre_provision post: hook %q, headers %v, retired %v", pre.body.Hook, pre.header, pre.body.Retired)
	}
	// The body is the record as it stood when the hook ran: the history
	// record's start, field for field.
	sent := pre.body.Deployment
	if sent.ID != d2.ID || sent.Version != "v2" || sent.FromVersion != "v1" || sent.Color != route.Green || sent.Outcome != OutcomeRunning ||
		len(sent.Events) == 0 || !reflect.DeepEqual(sent.Events, rec.Events[:len(sent.Events)]) {
		t.Errorf("pre_provision body %+v\nis not the start of the record %+v", sent, rec)
	}
	if retire.body.Hook != "post_retire" || retire.body.ID != d2.ID || retire.body.Outcome != OutcomePromoted ||
		retire.body.Retired == nil || *retire.body.Retired != (PoolRef{Color: route.Blue, Version: "v1"}) {
		t.Errorf("post_retire body: hook %q id %s outcome %s retired %+v", retire.body.Hook, retire.body.ID, retire.body.Outcome, retire.body.Retired)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(retire.raw, &fields); err != nil || fields["service"] == nil || fields["events"] == nil || fields["hook"] == nil {
		t.Errorf("post_retire body is not the record's JSON with the hook kind: %s", retire.raw)
	}
	rec = h.record(d2.ID) // with the post_retire events appended
	for _, kind := range []string{"pre_provision", "post_retire"} {
		evs := hookEvents(rec, kind+" hook 1 of 1 (POST http://127.0.0.1:")
		if len(evs) != 1 || evs[0].Output != "HTTP 200 OK\nok: migrated" {
			t.Errorf("%s events %+v, want one with the answer as output", kind, evs)
		}
	}
	all, _ := json.Marshal(rec)
	if strings.Contains(string(all), "s3cr3t") || strings.Contains(logs.String(), "s3cr3t") {
		t.Error("the webhook's token reached history or the log")
	}
}

// A webhook fails on any answer but a 2xx and on no answer in time, with
// the status and the body's start in the error; it follows no redirect.
func TestWebhookFailures(t *testing.T) {
	rcv := newReceiver(t)
	for _, tc := range []struct {
		path, err, output string
	}{
		{"/fail", "answered 500 Internal Server Error: database is locked", "HTTP 500 Internal Server Error\ndatabase is locked"},
		{"/slow", "no answer within 200ms", ""},
		{"/moved", "answered 302 Found (a webhook's redirect is not followed)", "HTTP 302 Found"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			start := time.Now()
			out, err := postWebhook(context.Background(), rcv.URL+tc.path, []byte(`{}`), "pre_traffic", "d1", 200*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), tc.err) || out != tc.output {
				t.Fatalf("err %v, output %q; want %q, %q", err, out, tc.err, tc.output)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	if n := len(rcv.received()); n != 3 {
		t.Errorf("%d posts, want 3: a redirect is not followed", n)
	}
}

// A failing webhook fails the deployment like a failing command, with the
// answer in history.
func TestFailingWebhookFailsTheDeployment(t *testing.T) {
	rcv := newReceiver(t)
	svc := testService()
	svc.Hooks.PreTraffic = []Hook{{Command: "true"}, {URL: rcv.URL + "/fail", Timeout: time.Second}}
	h := newHarness(t, svc, newFakeStore())
	h.start()
	d := h.deploy("v1", StrategyAllAtOnce)
	waitReal(t, h, PhaseIdle)
	rec := h.record(d.ID)
	evs := hookEvents(rec, "pre_traffic hook 2 of 2")
	if rec.Outcome != OutcomeFailed || !strings.Contains(rec.Reason, "answered 500 Internal Server Error: database is locked") ||
		len(evs) != 1 || evs[0].Output != "HTTP 500 Internal Server Error\ndatabase is locked" {
		t.Fatalf("v1: %s %q, events %+v", rec.Outcome, rec.Reason, evs)
	}
	if _, ok := h.rt.pools()[route.Blue]; ok {
		t.Error("the candidate still runs")
	}
}
