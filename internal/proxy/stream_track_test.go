package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Responses that may outlive a drain are tracked so the drain deadline can
// cut them: any without a length, and event streams however their media
// type is spelled (types are case-insensitive and take parameters).
func TestModifyResponseTracksStreams(t *testing.T) {
	cases := []struct {
		name   string
		ct     string
		length int64
		want   bool
	}{
		{"no length", "application/json", -1, true},
		{"event stream", "text/event-stream", 100, true},
		{"event stream, other case and a parameter", "Text/Event-Stream; charset=utf-8", 100, true},
		{"plain body with a length", "text/html", 100, false},
	}
	for _, c := range cases {
		be := &backend{streams: map[io.Closer]struct{}{}}
		res := &http.Response{StatusCode: 200, ContentLength: c.length, Header: http.Header{"Content-Type": {c.ct}},
			Body: io.NopCloser(strings.NewReader(""))}
		if err := be.modifyResponse(res); err != nil {
			t.Fatal(err)
		}
		if got := len(be.streams) == 1; got != c.want {
			t.Errorf("%s: tracked = %v, want %v", c.name, got, c.want)
		}
	}
}
