package collect

import "fmt"

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
