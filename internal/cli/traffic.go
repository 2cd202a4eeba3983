package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// writeTraffic prints what the AWS side of a service's traffic actually
// holds (ALB listener weights, Route53 record weights), as the daemon's
// driver last read it, and any refusal or pending write.
func writeTraffic(w io.Writer, st deploy.Status, loc *time.Location) error {
	t := st.Traffic
	if t == nil {
		return nil
	}
	read := "not read yet"
	if !t.ReadAt.IsZero() {
		read = "read " + t.ReadAt.In(loc).Format(timeLayout)
	}
	line := fmt.Sprintf("%s %s: weights blue %s%% green %s%% (raw blue %d green %d; %s)",
		st.Service, t.Engine, percent(t.Weights["blue"]), percent(t.Weights["green"]), t.Raw["blue"], t.Raw["green"], read)
	if !t.Written.IsZero() {
		line += "; cutover last wrote them " + t.Written.In(loc).Format(timeLayout)
	}
	lines := []string{line}
	if t.Drift != "" {
		lines = append(lines, fmt.Sprintf("%s %s drift: %s", st.Service, t.Engine, t.Drift))
	} else if t.Pending != "" {
		lines = append(lines, fmt.Sprintf("%s %s pending: %s", st.Service, t.Engine, t.Pending))
	}
	if t.LoadBalancer5xx != nil {
		lines = append(lines, fmt.Sprintf("%s %s: load balancer 5xx since the daemon started: %d (HTTPCode_ELB_5XX_Count; AWS does not say which colour)", st.Service, t.Engine, *t.LoadBalancer5xx))
	}
	for _, a := range t.Alarms {
		lines = append(lines, fmt.Sprintf("%s alarm in ALARM: %s", st.Service, a))
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}
