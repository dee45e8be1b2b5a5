package sensor

import (
	"fmt"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/bugreport"
)

// problemBug is the log limiter's kind for failures some input reached:
// whoever found one can repeat it, so these lines are limited like bad
// input's.
const problemBug = "bug"

// bug reports a panic that an input reached in the sensor's code or a
// library's. The caller has recovered, counted it and skipped the input;
// here it is logged and the input kept as a bug report (Logging.BugReports),
// or, with no directory, its first bytes go in the log line.
func (sh *core) bug(source string, v any, stack, input []byte, frame *frameInfo) {
	sh.bugCount.Add(1)
	r := bugreport.Report{Source: source, What: fmt.Sprint(v), Stack: stack, Input: input}
	if frame != nil {
		r.Frame, r.LinkType, r.Time = true, uint16(frame.lt), frame.ts
	}
	path, err := sh.bugs.Save(r)
	args := []any{"source", source, problemKey, problemBug}
	switch {
	case path != "":
		args = append(args, "report", path)
	case err != nil:
		args = append(args, "report_error", err.Error())
	case len(input) > 0:
		args = append(args, "input", fmt.Sprintf("%q", input[:min(len(input), 128)]))
	}
	sh.log.Error(fmt.Sprintf("a bug: %v; the input was skipped and the sensor goes on", v), args...)
}

// mendTable checks a worker's table after a panic inside it: a bug that
// broke its bookkeeping would make a later flow's end loop forever, so such
// a table is emptied, its flows dropped without records and counted
// (TableStats.Discarded), and the worker goes on with a whole one.
func (sh *core) mendTable(t *flows.Table) {
	if err := t.Check(); err != nil {
		n := t.Reset()
		sh.log.Error("the flow table was broken by that bug: its flows were dropped without records", "flows", n, "fault", err.Error(), problemKey, problemBug)
	}
}

// bugFunc is core.bug, for the stages that report bugs without the core.
type bugFunc func(source string, v any, stack, input []byte, frame *frameInfo)

// frameInfo is what a frame's bug report needs besides its bytes.
type frameInfo struct {
	lt flows.LinkType
	ts time.Time
}
