package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A client that sends malformed chunked bodies with a cookie that pins it
// to the candidate cannot roll a healthy release back: its requests are
// its own errors (400, counted 4xx), the candidate is not ejected, and the
// analysed canary is promoted.
func TestMalformedRequestsCannotRollBackACanary(t *testing.T) {
	e := newEnv(t, "{weight: 10, pause: 4s}")
	// Both versions answer in 100 ms, so that the analysis's relative
	// latency rule (fail above 2x live's p99) compares figures well above
	// the noise of a loaded machine under -race. With the demo app's
	// ~5 ms, that rule's threshold was ~10 ms, which the candidate's fresh
	// upstream connections (one more after each malformed request, whose
	// connection the router closes) and a scheduling stall of a few tens
	// of milliseconds crossed, and the healthy canary was rolled back for
	// latency. The errors and ejections this test is about are unchanged.
	faults := `{"v1": {"latency": "100ms"}, "v2": {"latency": "100ms"}}`
	if err := os.WriteFile(filepath.Join(e.dir, "faults.json"), []byte(faults), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(6) // ~55 requests/s at 100 ms each
	e.mustCLI(0, "deploy", "web", "v2")
	e.waitFor("v2 at 10%", 30*time.Second, func(s status) bool {
		return s.Phase == "shifting" && s.Weights["green"] == 10
	})
	cookie := candidateCookie(t, e.public, "v2")

	bad := []string{"zz\r\n", "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n", "5\nhello\n0\n\n", "3\r\nabcXX0\r\n\r\n"}
	for i := range 40 {
		status := sendRaw(t, e.public, "POST / HTTP/1.1\r\nHost: x\r\nCookie: "+cookie+
			"\r\nTransfer-Encoding: chunked\r\n\r\n"+bad[i%len(bad)])
		if status != 400 {
			t.Fatalf("malformed chunked body %d got %d, want 400 (the client's error)", i, status)
		}
	}
	st := e.waitFor("v2 promoted", 60*time.Second, func(s status) bool { return s.Phase == "idle" })
	tr.halt()
	var hist []struct{ Version, Outcome, Reason string }
	if err := json.Unmarshal([]byte(e.mustCLI(0, "history", "web", "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	if hist[0].Version != "v2" || hist[0].Outcome != "promoted" || st.Live == nil || st.Live.Version != "v2" {
		t.Fatalf("a healthy release under malformed client requests: history[0] %+v, status %+v; want v2 promoted", hist[0], st)
	}
	if f := tr.failed.Load(); f != 0 {
		t.Errorf("%d ordinary requests failed (last: %v)", f, tr.lastErr.Load())
	}
	metrics := get(t, "http://"+e.api+"/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, `cutover_upstream_failures_total{color="green",service="web"}`) && !strings.HasSuffix(line, " 0") {
			t.Errorf("the client's errors were counted as the instance's: %s", line)
		}
	}
}

// candidateCookie asks the public router until a response comes from
// version and returns the sticky cookie that pinned it there.
func candidateCookie(t *testing.T, addr, version string) string {
	t.Helper()
	for range 2000 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Version") != version {
			continue
		}
		for _, c := range resp.Cookies() {
			if strings.HasPrefix(c.Name, "cutover_") {
				return c.Name + "=" + c.Value
			}
		}
	}
	t.Fatalf("no response from %s carried a sticky cookie", version)
	return ""
}

// sendRaw writes one raw request on a new connection and returns the
// response's status code.
func sendRaw(t *testing.T, addr, request string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to a raw request: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return fmt.Sprint(string(b))
}
