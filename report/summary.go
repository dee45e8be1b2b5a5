package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
)

// WriteSummary writes a short table for a terminal: the top senders by
// host and process, most bytes out first, and the alerts, most severe
// first (at most top of each). alerts says whether the analytics ran: when
// they did not, the alerts are not listed. Strings from the network are
// written with their control characters escaped, so none reaches the
// terminal as a command.
func (r *Report) WriteSummary(w io.Writer, top int, alerts bool) error {
	type sender struct {
		host string
		ProcessView
	}
	var senders []sender
	for _, h := range r.Hosts {
		for _, p := range h.Processes {
			senders = append(senders, sender{h.Host, p})
		}
	}
	slices.SortStableFunc(senders, func(a, b sender) int { return cmp.Compare(b.Out, a.Out) })
	fmt.Fprintln(w, "Top senders, by bytes out:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tPROCESS\tFLOWS\tOUT\tIN\tALERTS")
	for i, s := range senders {
		if i == top {
			fmt.Fprintf(tw, "  (%d more)\t\t\t\t\t\n", len(senders)-top)
			break
		}
		proc := s.Process
		if proc == "" {
			proc = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%d\n", s.host, terminalSafe(proc, 32), s.Flows,
			formatBytes(s.Out), formatBytes(s.In), len(s.Alerts))
	}
	if err := tw.Flush(); err != nil || !alerts {
		return err
	}
	if len(r.Alerts) == 0 {
		_, err := fmt.Fprintln(w, "No alerts.")
		return err
	}
	fmt.Fprintln(w, "Alerts, most severe first:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SEVERITY\tANALYTIC\tPROCESS\tHOST\tDESTINATION\tTITLE")
	for i, a := range r.Alerts {
		if i == top {
			fmt.Fprintf(tw, "  (%d more)\t\t\t\t\t\n", len(r.Alerts)-top)
			break
		}
		host, dest, proc := "-", "-", "-"
		if a.Host != nil {
			host = a.Host.IP
		}
		if d := a.Destination; d != nil {
			dest = cmp.Or(d.Name, d.IP)
			if d.Port != 0 {
				dest = fmt.Sprintf("%s:%d", dest, d.Port)
			}
		}
		if a.ProcessName != "" {
			proc = a.ProcessName
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", terminalSafe(a.Severity, 10), terminalSafe(a.Analytic, 24),
			terminalSafe(proc, 24), terminalSafe(host, 40), terminalSafe(dest, 40), terminalSafe(a.Title, 72))
	}
	return tw.Flush()
}

// terminalSafe cuts s to n runes and escapes what a terminal would act on
// (escape sequences, tabs that would break the table's columns).
func terminalSafe(s string, n int) string {
	var b strings.Builder
	for _, r := range clip(s, n) {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		} else if r < 0x100 {
			fmt.Fprintf(&b, "\\x%02x", r)
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}
