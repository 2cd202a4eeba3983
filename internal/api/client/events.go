package client

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/cutover/cutover/internal/deploy"
)

// Events subscribes to the daemon's live deployment events of a service
// (of every service when service is ""). The subscription is open when
// Events returns, so no event after that is missed. The channel is closed
// when ctx is done or the stream ends (the daemon stopped); callers that
// must see the end of a deployment should then fall back to polling Status.
func (c *Client) Events(ctx context.Context, service string) (<-chan deploy.Event, error) {
	path := "/v1/events"
	if service != "" {
		path += "?service=" + url.QueryEscape(service)
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan deploy.Event, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		readEvents(ctx, resp, ch)
	}()
	return ch, nil
}

// readEvents parses server-sent events: "data:" lines accumulate until a
// blank line ends the event; comments (":") and other fields are ignored.
func readEvents(ctx context.Context, resp *http.Response, ch chan<- deploy.Event) {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var ev deploy.Event
			err := json.Unmarshal([]byte(data.String()), &ev)
			data.Reset()
			if err != nil {
				continue // not an event of ours; skip it rather than end the stream
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}
