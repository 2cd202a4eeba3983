package api

import (
	"context"
	"net/http"
	"time"
)

// CodeUpgradeFailed answers an upgrade whose new daemon did not take over;
// the message says why, and the running daemon keeps serving.
const CodeUpgradeFailed = "upgrade_failed"

// Upgrader is implemented by a Backend that can replace its daemon with a
// new binary (POST /v1/upgrade); a Backend without it answers 501.
type Upgrader interface {
	// Upgrade starts binary ("" for the daemon's own executable), hands
	// it the sockets, store and controllers, and returns its pid once it
	// serves; this daemon then drains and exits. On error this daemon
	// keeps serving.
	Upgrade(ctx context.Context, binary string) (pid int, err error)
}

// UpgradeRequest is the body of POST /v1/upgrade.
type UpgradeRequest struct {
	// Binary is an absolute path; "" is the running daemon's executable.
	Binary string `json:"binary,omitempty"`
}

// UpgradeResponse answers a successful POST /v1/upgrade.
type UpgradeResponse struct {
	Status string `json:"status"` // "upgraded"
	PID    int    `json:"pid"`    // the new daemon's
}

// upgradeWriteTimeout covers an upgrade: the new daemon may take up to a
// minute to validate and another to adopt the instances.
const upgradeWriteTimeout = 3 * time.Minute

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) error {
	up, ok := s.b.(Upgrader)
	if !ok {
		return errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon cannot upgrade itself")
	}
	var req UpgradeRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(upgradeWriteTimeout))
	pid, err := up.Upgrade(r.Context(), req.Binary)
	if err != nil {
		return errorf(http.StatusInternalServerError, CodeUpgradeFailed, err.Error())
	}
	writeJSON(w, http.StatusOK, UpgradeResponse{Status: "upgraded", PID: pid})
	return nil
}
