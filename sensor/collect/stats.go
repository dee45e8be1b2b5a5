package collect

import "fmt"

// ExporterStats counts one exporter's datagrams, records and failures.
type ExporterStats struct {
	Datagrams uint64
	Records   uint64
	Held      uint64 // data sets held for a template, later decoded or dropped
	Errors    [NumReasons]uint64
}

// ErrorCounts names every non-zero error count of an exporter, as
// reason=count.
func (s *ExporterStats) ErrorCounts() []string {
	var out []string
	for r := 1; r < len(s.Errors); r++ {
		if s.Errors[r] > 0 {
			out = append(out, fmt.Sprintf("%s=%d", Reason(r), s.Errors[r]))
		}
	}
	return out
}
