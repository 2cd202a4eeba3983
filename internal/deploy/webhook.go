package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WebhookBody is what a webhook hook receives, as JSON in a POST: the
// deployment's history record as the API returns it, with the hook kind
// ("pre_provision", "pre_traffic", "post_traffic", "post_promote",
// "post_retire", "on_rollback") and, for post_retire, the pool that was
// retired. The request also carries the headers X-Cutover-Hook (the kind)
// and X-Cutover-Deployment (the record's id).
type WebhookBody struct {
	Hook string `json:"hook"`
	Deployment
	// Retired is the pool whose retirement a post_retire hook follows.
	Retired *PoolRef `json:"retired,omitempty"`
}

// webhookClient posts webhooks. It follows no redirect: a POST that is
// redirected would be replayed as a GET, or to wherever the answer
// points, so a 3xx fails the hook instead.
var webhookClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// postWebhook POSTs body to rawURL within timeout. A 2xx answer passes;
// any other status, or no answer in time, fails. The output is the
// answer's status line and the first bytes of its body (at most
// HookOutputLimit in all); a failure's error repeats the status and the
// body's first bytes. Neither names more of the URL than its scheme and
// host.
func postWebhook(ctx context.Context, rawURL string, body []byte, kind, deployment string, timeout time.Duration) (string, error) {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return "", errors.New("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cutover")
	req.Header.Set("X-Cutover-Hook", kind)
	req.Header.Set("X-Cutover-Deployment", deployment)
	resp, err := webhookClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // it repeats the whole URL
		}
		if hctx.Err() == context.DeadlineExceeded {
			return "", fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		return "", err
	}
	defer resp.Body.Close()
	status := "HTTP " + resp.Status
	start, rerr := io.ReadAll(io.LimitReader(resp.Body, HookOutputLimit-int64(len(status))-1))
	out := strings.TrimRight(status+"\n"+string(start), "\n")
	if rerr != nil && hctx.Err() == context.DeadlineExceeded {
		return out, fmt.Errorf("answered %s but sent no whole body within %s", resp.Status, timeout)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := "answered " + resp.Status
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (a webhook's redirect is not followed)"
		}
		if b := strings.TrimSpace(string(start)); b != "" {
			if len(b) > errTailLimit {
				b = b[:errTailLimit] + "…"
			}
			msg += ": " + b
		}
		return out, errors.New(msg)
	}
	return out, nil
}

// redactURL keeps a URL's scheme and host: what messages may show of a
// webhook whose path or query may hold a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// webhookBody builds the body of the job's webhooks from the deployment's
// record: the run's, from the state the job started from, or, for a job
// that follows a finished run (post_retire), the one in the store.
func (c *Controller) webhookBody(kind string, j Job, st State) func() ([]byte, error) {
	return func() ([]byte, error) {
		b := WebhookBody{Hook: kind, Retired: j.Retired}
		switch {
		case st.Run != nil && st.Run.Record.ID == j.Deployment:
			b.Deployment = st.Run.Record
		case j.Deployment != "":
			d, found, err := c.opts.Store.Deployment(c.cfg().Name, j.Deployment)
			if err != nil {
				return nil, fmt.Errorf("read deployment %s for the webhook: %w", j.Deployment, err)
			}
			if found {
				b.Deployment = d
			}
		}
		if b.ID == "" {
			b.Deployment = Deployment{ID: j.Deployment, Service: c.cfg().Name, Version: j.Version, Color: j.Color}
		}
		if b.Events == nil {
			b.Events = []Event{}
		}
		return json.Marshal(b)
	}
}
