package asg_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/asg"
)

// TestTargetHealthWithoutTargetDoesNotPanic: an ELB answer whose target
// health description lacks its Target (a field the SDK leaves nil) is
// not a reason to panic the daemon's poller or Start: the instance is
// simply not counted healthy, and Start fails with the group's story.
// The answers come from the fake ALB through a proxy that strips the
// <Target> element of DescribeTargetHealth's members.
func TestTargetHealthWithoutTargetDoesNotPanic(t *testing.T) {
	w := newWorld(t)
	up, err := url.Parse(w.fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	strip := regexp.MustCompile(`(?s)<Target>.*?</Target>`)
	var stripped atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, up.String()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		req.Host = r.Host // the SDK signed for the proxy's host
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(body), "Action=DescribeTargetHealth") {
			if n := len(strip.FindAll(out, -1)); n > 0 {
				stripped.Add(int64(n))
				out = strip.ReplaceAll(out, nil)
			}
		}
		for k, v := range resp.Header {
			if k != "Content-Length" {
				rw.Header()[k] = v
			}
		}
		rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
		rw.WriteHeader(resp.StatusCode)
		rw.Write(out)
	}))
	t.Cleanup(proxy.Close)
	d := w.driver(t, &pools{}, func(o *asg.Options) {
		o.AWS.BaseEndpoint = aws.String(proxy.URL)
		o.StartTimeout = 3 * time.Second
		o.Capacity = 1
	})
	_, err = d.Start(context.Background(), route.Blue, runtime.Release{Version: "ami-v1"})
	if err == nil || !strings.Contains(err.Error(), "0 of 1 instances healthy") {
		t.Fatalf("Start with target health lacking targets: err %v, want 0 of 1 healthy", err)
	}
	if stripped.Load() == 0 {
		t.Fatal("the proxy never stripped a Target: the test did not test anything")
	}
}
