package client

import (
	"context"
	"net/http"

	"github.com/cutover/cutover/internal/api"
)

// Upgrade asks the daemon to replace itself with binary ("" for its own
// executable path) and returns the new daemon's pid. A new binary that did
// not take over is an *Error with code api.CodeUpgradeFailed whose message
// says why; the running daemon keeps serving.
func (c *Client) Upgrade(ctx context.Context, binary string) (int, error) {
	var out api.UpgradeResponse
	if err := c.call(ctx, http.MethodPost, "/v1/upgrade", api.UpgradeRequest{Binary: binary}, &out); err != nil {
		return 0, err
	}
	return out.PID, nil
}
