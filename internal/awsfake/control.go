package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ControlPrefix is the path under which the server takes test knobs over
// plain HTTP (for a fake run as its own process): no AWS client ever calls
// it.
//
//	POST /_awsfake/throttle?service=elasticloadbalancing&op=ModifyListener&n=3
//	POST /_awsfake/unavailable?service=route53&op=GetChange&n=1
//	POST /_awsfake/delay?service=monitoring&op=GetMetricData&d=2s
//	POST /_awsfake/clear
//	POST /_awsfake/forward?arn=LISTENER_OR_RULE_ARN&weights=TG_ARN=90,TG_ARN=10
//	POST /_awsfake/alarm?name=web-5xx&state=ALARM&reason=...
//	POST /_awsfake/metric-delay?d=60s
//	POST /_awsfake/change-delay?d=5s
//	GET  /_awsfake/counts?target_group=TG_ARN
//	GET  /_awsfake/health?target_group=TG_ARN
//	GET  /_awsfake/calls?service=...&op=...
const ControlPrefix = "/_awsfake/"

func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := func() int {
		v, err := strconv.Atoi(q.Get("n"))
		if err != nil {
			return 1
		}
		return v
	}
	dur := func() (time.Duration, error) { return time.ParseDuration(q.Get("d")) }
	var out any = map[string]string{"ok": "true"}
	var err error
	switch strings.TrimPrefix(r.URL.Path, ControlPrefix) {
	case "throttle":
		s.Throttle(q.Get("service"), q.Get("op"), n())
	case "unavailable":
		s.Unavailable(q.Get("service"), q.Get("op"), n())
	case "delay":
		var d time.Duration
		if d, err = dur(); err == nil {
			s.Delay(q.Get("service"), q.Get("op"), d)
		}
	case "clear":
		s.ClearFaults()
	case "forward":
		var ws []Weight
		for _, part := range strings.Split(q.Get("weights"), ",") {
			arn, wt, ok := strings.Cut(part, "=")
			if !ok {
				err = fmt.Errorf("weights: %q is not ARN=WEIGHT", part)
				break
			}
			v, perr := strconv.Atoi(wt)
			if perr != nil {
				err = fmt.Errorf("weights: %q: %v", part, perr)
				break
			}
			ws = append(ws, Weight{arn, v})
		}
		if err == nil {
			err = s.elb.SetForward(q.Get("arn"), ws...)
		}
	case "alarm":
		err = s.cw.SetAlarm(q.Get("name"), q.Get("state"), q.Get("reason"))
	case "metric-delay":
		var d time.Duration
		if d, err = dur(); err == nil {
			s.cw.SetMetricDelay(d)
		}
	case "change-delay":
		var d time.Duration
		if d, err = dur(); err == nil {
			s.r53.SetChangeSyncDelay(d)
		}
	case "counts":
		out = s.elb.Counts(q.Get("target_group"), time.Time{})
	case "health":
		out, err = s.elb.Health(q.Get("target_group"))
	case "calls":
		out = map[string]int{"calls": s.Calls(q.Get("service"), q.Get("op"))}
	default:
		http.Error(w, "unknown control "+r.URL.Path, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(out)
}
