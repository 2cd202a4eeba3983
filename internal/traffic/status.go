package traffic

import (
	"math"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// Reading is what an AWS driver last read from its engine, for Status.
type Reading struct {
	Engine         string
	ReadAt         time.Time
	Pending, Drift string
	// Raw is each colour's weight in the engine's own units; Total is the
	// sum of every weight the engine holds (other records included), the
	// base of the percentages.
	Raw   [2]int64
	Total int64
}

// Extras are the figures both AWS drivers add to their status.
type Extras struct {
	Ledger          *Ledger
	Alarms          func() []string
	LoadBalancer5xx func() (uint64, bool)
}

// Status is the deploy.TrafficStatus of a reading: percentages of Total
// to one decimal, the time of the last write, the alarms in ALARM and the
// load balancer's 5xx count when the driver reads them.
func Status(rd Reading, x Extras) *deploy.TrafficStatus {
	st := &deploy.TrafficStatus{Engine: rd.Engine, ReadAt: rd.ReadAt, Pending: rd.Pending, Drift: rd.Drift,
		Weights: map[string]float64{}, Raw: map[string]int64{}}
	for _, c := range route.Colors {
		v := rd.Raw[c]
		st.Raw[c.String()] = v
		if rd.Total > 0 {
			st.Weights[c.String()] = math.Round(float64(v)*1000/float64(rd.Total)) / 10
		}
	}
	if last := x.Ledger.Last(); last != nil {
		st.Written = last.At
	}
	if x.Alarms != nil {
		st.Alarms = x.Alarms()
	}
	if x.LoadBalancer5xx != nil {
		if n, ok := x.LoadBalancer5xx(); ok {
			st.LoadBalancer5xx = &n
		}
	}
	return st
}
