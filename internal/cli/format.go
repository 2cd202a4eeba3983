package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

const timeLayout = "2006-01-02 15:04:05"

// writeStatusTable prints one row per service, then the latest analysis
// verdict of every service that has one and what the daemon's start found
// wrong with its instances (notices).
func writeStatusTable(w io.Writer, sts []deploy.Status, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tPHASE\tLIVE\tCANDIDATE\tWEIGHTS\tPREVIOUS\tDEPLOYMENT")
	for _, st := range sts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Service, phaseCell(st), poolName(st.Live),
			poolName(st.Candidate), weights(st.Weights), previous(st.Previous, loc), deploymentRef(st.Deployment))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range sts {
		if v := st.Analysis; v != nil {
			if _, err := fmt.Fprintf(w, "%s analysis: %s: %s\n", st.Service, v.Result, v.Reason); err != nil {
				return err
			}
		}
		if st.Down && !st.Starting {
			if _, err := fmt.Fprintf(w, "%s down since %s: nothing runs, the public listener serves the fallback page; `cutover up %s` starts %s again\n",
				st.Service, st.DownSince.In(loc).Format(timeLayout), st.Service, poolName(st.Live)); err != nil {
				return err
			}
		}
		for _, n := range st.Notices {
			if _, err := fmt.Fprintf(w, "%s notice: %s\n", st.Service, n); err != nil {
				return err
			}
		}
		if err := writeTraffic(w, st, loc); err != nil {
			return err
		}
	}
	return nil
}

// writeHistoryTable prints one row per deployment, newest first as given,
// then what their hooks printed.
func writeHistoryTable(w io.Writer, ds []deploy.Deployment, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tFROM\tSTRATEGY\tSTARTED\tDURATION\tOUTCOME\tREASON")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Version, dash(d.FromVersion), dash(d.Strategy),
			d.StartedAt.In(loc).Format(timeLayout), duration(d), d.Outcome, dash(oneLine(d.Reason)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeHookOutputs(w, ds, loc)
}

// hookOutputLines is how many of a hook run's last output lines the
// history table shows; --json holds all that the daemon kept.
const hookOutputLines = 10

// writeHookOutputs prints, after the history table, each hook run of the
// deployments that left output: its time, deployment and message, then
// the output's last lines, each after "  | ".
func writeHookOutputs(w io.Writer, ds []deploy.Deployment, loc *time.Location) error {
	header := false
	for _, d := range ds {
		for _, ev := range d.Events {
			out := strings.TrimRight(ev.Output, "\n")
			if ev.Type != deploy.EventHook || out == "" {
				continue
			}
			if !header {
				header = true
				if _, err := fmt.Fprintln(w, "\nHOOK OUTPUT"); err != nil {
					return err
				}
			}
			lines := strings.Split(out, "\n")
			fmt.Fprintf(w, "%s  %s  %s\n", ev.Time.In(loc).Format(timeLayout), d.ID, oneLine(ev.Message))
			if n := len(lines) - hookOutputLines; n > 0 {
				fmt.Fprintf(w, "  | (%d earlier lines: cutover history %s --json)\n", n, d.Service)
				lines = lines[n:]
			}
			for _, l := range lines {
				if _, err := fmt.Fprintf(w, "  | %s\n", printable(l)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// phaseCell is the PHASE column: the phase, or what a service that is
// down is doing.
func phaseCell(st deploy.Status) string {
	switch {
	case st.Starting:
		return "down (starting)"
	case st.Stopping:
		return "down (stopping)"
	case st.Down:
		return "down"
	}
	return string(st.Phase)
}

// summary is a one-line description of a status, for action commands.
func summary(st deploy.Status) string {
	if st.Service == "" {
		return "status unavailable"
	}
	s := fmt.Sprintf("phase %s, live %s", phaseCell(st), poolName(st.Live))
	if st.Candidate != nil {
		s += ", candidate " + poolName(st.Candidate)
	}
	return s + ", weights " + weights(st.Weights)
}

func poolName(p *deploy.PoolRef) string {
	if p == nil {
		return "-"
	}
	return p.Color.String() + " " + p.Version
}

func previous(p *deploy.PreviousRef, loc *time.Location) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s until %s", p.Color, p.Version, p.Until.In(loc).Format("2006-01-02 15:04"))
}

func deploymentRef(d *deploy.DeploymentRef) string {
	if d == nil {
		return "-"
	}
	s := d.ID + " " + d.Version
	if d.Steps > 0 && d.Step > 0 {
		s += fmt.Sprintf(" step %d/%d", d.Step, d.Steps)
	}
	if d.Manual {
		s += " (manual gate)"
	}
	return s
}

// weights formats "blue 90 / green 10" in colour order.
func weights(ws map[string]float64) string {
	if len(ws) == 0 {
		return "-"
	}
	return fmt.Sprintf("blue %s / green %s", percent(ws["blue"]), percent(ws["green"]))
}

func percent(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func duration(d deploy.Deployment) string {
	if d.EndedAt.IsZero() || d.StartedAt.IsZero() {
		if d.Outcome == deploy.OutcomeRunning {
			return "running"
		}
		return "-"
	}
	return d.EndedAt.Sub(d.StartedAt).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable drops the control characters of a hook's output line but
// tabs, so that what a hook printed cannot move the terminal's cursor or
// change its colours.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\t' && (r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
			return -1
		}
		return r
	}, s)
}

// oneLine keeps a table row on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
