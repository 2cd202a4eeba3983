package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// progress shows a followed deployment. Calls come from one goroutine.
type progress interface {
	start(d deploy.Deployment)
	event(ev deploy.Event)
	status(st deploy.Status)
	// notice shows what happened to the connection to the daemon (the
	// event stream dropped, came back).
	notice(now time.Time, msg string)
	// heartbeat shows where the deployment stands if nothing was shown
	// for a while; offline is how long the daemon has not answered.
	heartbeat(now time.Time, offline time.Duration)
	// nextHeartbeat is when heartbeat should next be called; zero for a
	// display that needs none.
	nextHeartbeat() time.Time
	// done shows the final record; stop abandons the display.
	done(d deploy.Deployment)
	stop()
}

// defaultHeartbeat is the longest deploy --wait stays silent in a log or a
// pipe: a CI job that prints nothing for minutes looks hung, and some
// kill it.
const defaultHeartbeat = 5 * time.Second

// heartbeatEvery is the heartbeat interval of line output.
func (a *app) heartbeatEvery() time.Duration {
	if a.heartbeat > 0 {
		return a.heartbeat
	}
	return defaultHeartbeat
}

// newProgress picks the display: NDJSON with --json, a live display
// redrawn in place on a terminal, plain lines otherwise. pollOnly says no
// event stream is available, so status changes are printed as lines.
func (a *app) newProgress(asJSON bool, d deploy.Deployment, pollOnly bool) progress {
	switch {
	case asJSON:
		return &jsonProgress{enc: json.NewEncoder(a.stdout), stderr: a.stderr}
	case a.terminalWidth() > 0:
		return &ttyProgress{w: a.stdout, loc: a.loc, width: a.terminalWidth, now: time.Now}
	}
	return &lineProgress{w: a.stdout, loc: a.loc, statusLines: pollOnly, every: a.heartbeatEvery(), now: time.Now}
}

// terminalWidth returns the width of stdout when it is a terminal that can
// take cursor movements, else 0.
func (a *app) terminalWidth() int {
	f, ok := a.stdout.(*os.File)
	if !ok || a.getenv("TERM") == "dumb" || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 {
		return 80
	}
	return w
}

// jsonProgress prints every event as one JSON line and the final
// deployment as the last line; notices go to stderr, so that stdout stays
// one JSON object a line.
type jsonProgress struct {
	enc    *json.Encoder
	stderr io.Writer
}

func (p *jsonProgress) start(deploy.Deployment)  {}
func (p *jsonProgress) event(ev deploy.Event)    { _ = p.enc.Encode(ev) }
func (p *jsonProgress) status(deploy.Status)     {}
func (p *jsonProgress) done(d deploy.Deployment) { _ = p.enc.Encode(d) }
func (p *jsonProgress) stop()                    {}
func (p *jsonProgress) notice(_ time.Time, msg string) {
	fmt.Fprintf(p.stderr, "cutover: %s\n", msg)
}
func (p *jsonProgress) heartbeat(time.Time, time.Duration) {}
func (p *jsonProgress) nextHeartbeat() time.Time           { return time.Time{} }

// lineProgress prints one line per event (and per status change when
// there is no event stream), for logs and CI, and a heartbeat line
// whenever it has printed nothing for every.
type lineProgress struct {
	w           io.Writer
	loc         *time.Location
	statusLines bool
	last        string
	verdicts    verdictFilter
	every       time.Duration
	now         func() time.Time

	printed time.Time      // when the last line was printed
	st      *deploy.Status // the latest status
	verdict *deploy.Verdict
}

// println prints one line and notes when.
func (p *lineProgress) println(line string) {
	fmt.Fprintln(p.w, line)
	p.printed = p.now()
}

func (p *lineProgress) start(d deploy.Deployment) {
	p.println(fmt.Sprintf("%s: deploying %s to %s (deployment %s)", d.Service, d.Version, d.Color, d.ID))
}

func (p *lineProgress) event(ev deploy.Event) {
	if ev.Verdict != nil {
		v := *ev.Verdict
		p.verdict = &v
	}
	if p.verdicts.show(ev) {
		p.println(eventLine(ev, p.loc))
	}
}

func (p *lineProgress) notice(now time.Time, msg string) {
	p.println(fmt.Sprintf("%s  %-11s %s", now.In(p.loc).Format("15:04:05"), "connection", msg))
}

func (p *lineProgress) nextHeartbeat() time.Time { return p.printed.Add(p.every) }

func (p *lineProgress) heartbeat(now time.Time, offline time.Duration) {
	if now.Before(p.nextHeartbeat()) {
		return
	}
	p.println(fmt.Sprintf("%s  %-11s %s", now.In(p.loc).Format("15:04:05"), "progress", heartbeatLine(p.st, p.verdict, now, offline)))
}

// verdictFilter keeps the analysis from flooding a log: the controller
// publishes a verdict every analysis interval, but a person (or a CI log)
// needs one only when the result changes; decisions, steps and every other
// event always show. --json output keeps every verdict for machines.
type verdictFilter struct{ last deploy.Result }

func (f *verdictFilter) show(ev deploy.Event) bool {
	if ev.Type != "verdict" || ev.Verdict == nil {
		if ev.Type == deploy.EventStep || ev.Type == deploy.EventResumed {
			f.last = "" // a new step's evidence starts afresh: show its first verdict
		}
		return true
	}
	if ev.Verdict.Result == f.last {
		return false
	}
	f.last = ev.Verdict.Result
	return true
}

func (p *lineProgress) status(st deploy.Status) {
	p.st = &st
	if st.Analysis != nil {
		v := *st.Analysis
		p.verdict = &v
	}
	if !p.statusLines {
		return
	}
	line := statusLine(st)
	if line != p.last {
		p.last = line
		p.println(fmt.Sprintf("%s  %s", p.now().In(p.loc).Format("15:04:05"), line))
	}
}

func (p *lineProgress) done(d deploy.Deployment) { p.println(outcomeLine(d)) }
func (p *lineProgress) stop()                    {}

// eventLine formats an event as "15:04:05  type  message [verdict]".
func eventLine(ev deploy.Event, loc *time.Location) string {
	msg := ev.Message
	// An event's weight is the candidate's share; once promoted or rolled
	// back that is 0, which reads as if nothing were served, so only steps
	// show it.
	if ev.Type == deploy.EventStep {
		msg = joinNonEmpty(" ", fmt.Sprintf("weight %s%%", percent(ev.Weight)), msg)
	}
	if v := ev.Verdict; v != nil && !strings.Contains(msg, v.Reason) {
		msg = joinNonEmpty(" ", msg, fmt.Sprintf("[%s: %s]", v.Result, v.Reason))
	}
	if ev.Actor != "" && ev.Actor != "controller" {
		msg += " (by " + ev.Actor + ")"
	}
	return fmt.Sprintf("%s  %-11s %s", ev.Time.In(loc).Format("15:04:05"), ev.Type, oneLine(msg))
}

// statusLine is the part of a status that progress lines report.
func statusLine(st deploy.Status) string {
	s := "phase " + string(st.Phase)
	if d := st.Deployment; d != nil && d.Step > 0 {
		s += fmt.Sprintf(", step %d/%d", d.Step, d.Steps)
	}
	return s + ", weights " + weights(st.Weights)
}

func outcomeLine(d deploy.Deployment) string {
	s := fmt.Sprintf("%s %s: %s", d.Service, d.Version, strings.ReplaceAll(string(d.Outcome), "_", " "))
	if dur := duration(d); dur != "-" && dur != "running" {
		s += " after " + dur
	}
	if d.Reason != "" {
		s += ": " + oneLine(d.Reason)
	}
	return s
}

// ttyProgress keeps a block of lines at the bottom of the terminal that is
// redrawn in place from the latest status; events scroll above it.
type ttyProgress struct {
	w     io.Writer
	loc   *time.Location
	width func() int
	now   func() time.Time

	d        deploy.Deployment
	st       *deploy.Status
	drawn    int // lines of the block currently on screen
	latest   string
	verdicts verdictFilter
}

func (p *ttyProgress) start(d deploy.Deployment) {
	p.d = d
	p.redraw(nil)
}

func (p *ttyProgress) event(ev deploy.Event) {
	if ev.Verdict != nil {
		p.latest = fmt.Sprintf("%s: %s", ev.Verdict.Result, ev.Verdict.Reason)
	}
	if !p.verdicts.show(ev) {
		p.redraw(nil) // the block shows the forming verdict
		return
	}
	p.redraw([]string{eventLine(ev, p.loc)})
}

func (p *ttyProgress) status(st deploy.Status) {
	p.st = &st
	p.redraw(nil)
}

func (p *ttyProgress) done(d deploy.Deployment) {
	p.clear()
	fmt.Fprintln(p.w, outcomeLine(d))
}

func (p *ttyProgress) stop() { p.clear() }

func (p *ttyProgress) notice(now time.Time, msg string) {
	p.redraw([]string{fmt.Sprintf("%s  %-11s %s", now.In(p.loc).Format("15:04:05"), "connection", msg)})
}

// The live display is redrawn with every status: it needs no heartbeat.
func (p *ttyProgress) heartbeat(time.Time, time.Duration) {}
func (p *ttyProgress) nextHeartbeat() time.Time           { return time.Time{} }

func (p *ttyProgress) clear() {
	if p.drawn > 0 {
		// Up to the block's first line, then erase to the end of the screen.
		fmt.Fprintf(p.w, "\x1b[%dF\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *ttyProgress) redraw(scroll []string) {
	p.clear()
	width := p.width()
	for _, l := range scroll {
		fmt.Fprintln(p.w, l)
	}
	lines := p.block()
	for _, l := range lines {
		fmt.Fprintln(p.w, fit(l, width))
	}
	p.drawn = len(lines)
}

// block renders the live display: headline, one row per colour with its
// weight and figures, and the verdict as it forms.
func (p *ttyProgress) block() []string {
	head := fmt.Sprintf("%s %s -> %s", p.d.Service, p.d.Version, p.d.Color)
	st := p.st
	if st == nil {
		return []string{head + "  starting"}
	}
	head += "  " + string(st.Phase)
	if d := st.Deployment; d != nil {
		if d.Step > 0 {
			head += fmt.Sprintf("  step %d/%d", d.Step, d.Steps)
		}
		switch {
		case st.Phase == deploy.PhasePaused:
			head += fmt.Sprintf("  paused: `cutover resume %s`", st.Service)
		case d.Manual:
			head += fmt.Sprintf("  waiting for `cutover promote %s`", st.Service)
		case !d.StepUntil.IsZero():
			if left := d.StepUntil.Sub(p.now()).Round(time.Second); left > 0 {
				head += fmt.Sprintf("  next in %s", left)
			}
		}
	}
	lines := []string{head, fmt.Sprintf("  %-6s %-12s %7s %9s %8s %8s", "COLOUR", "VERSION", "WEIGHT", "REQ/S", "ERRORS", "P99")}
	for _, c := range route.Colors {
		lines = append(lines, colourRow(*st, c))
	}
	verdict := p.latest
	if v := st.Analysis; v != nil {
		verdict = fmt.Sprintf("%s: %s", v.Result, v.Reason)
	}
	if verdict != "" {
		lines = append(lines, "  verdict "+oneLine(verdict))
	}
	return lines
}

func colourRow(st deploy.Status, c route.Color) string {
	version := "-"
	for _, ref := range []*deploy.PoolRef{st.Live, st.Candidate} {
		if ref != nil && ref.Color == c {
			version = ref.Version
		}
	}
	rps, errs, p99 := "-", "-", "-"
	if v := st.Analysis; v != nil {
		for _, f := range []deploy.Figures{v.Candidate, v.Baseline} {
			if f.Color == c && (f.Requests > 0 || f.RPS > 0) {
				rps = fmt.Sprintf("%.1f", f.RPS)
				errs = fmt.Sprintf("%.2f%%", f.ErrorRate*100)
				p99 = f.P99.Round(time.Millisecond / 10).String()
			}
		}
	}
	return fmt.Sprintf("  %-6s %-12s %6s%% %9s %8s %8s", c, version, percent(st.Weights[c.String()]), rps, errs, p99)
}

// fit cuts a line to the terminal width so that a wrapped line cannot
// break the redraw's line count.
func fit(s string, width int) string {
	r := []rune(s)
	if width > 1 && len(r) >= width {
		return string(r[:width-2]) + "…"
	}
	return s
}
