// Package health checks instances: one-off probes, and a watcher that turns
// a stream of probes into healthy/unhealthy transitions with thresholds.
// It imports nothing of cutover's; results reach the caller through
// callbacks, so the router and the runtime can both use it.
package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Probe sends one GET to url and reports nil when the instance answered with
// a 2xx or 3xx status. The caller bounds it with ctx (the check timeout).
// The body is read (up to 4 KiB) and discarded so the connection can be reused.
func Probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health probe %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "cutover-health/1")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health probe %s: %w", url, err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("health probe %s: status %d", url, resp.StatusCode)
	}
	return nil
}
