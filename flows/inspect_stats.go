package flows

import (
	"fmt"

	"github.com/outflow-sensor/outflow/tls"
	"github.com/outflow-sensor/outflow/tls/quic"
)

// InspectStats counts what inspection did and what it could not do.
type InspectStats struct {
	Flows        uint64 // flows that got an inspection slot
	Skipped      uint64 // flows refused a slot because the pool was full
	ClientHellos uint64
	ServerHellos uint64
	// TLSErrors counts hellos that failed to parse, by tls.Reason.
	TLSErrors [tls.NumReasons]uint64
	// Gaps counts directions whose inspection stopped at a hole in the
	// stream that was not filled within StreamBytes.
	Gaps       uint64
	QUIC       uint64 // flows recognised as QUIC
	QUICHellos uint64 // ClientHellos read out of Initial packets
	// QUICErrors counts flows whose Initials could not be opened, by
	// quic.Reason.
	QUICErrors [quic.NumReasons]uint64
	DNS        uint64
	DNSError   uint64
	// Abandoned counts flows whose handshake inspection was given up, by
	// AbandonReason.
	Abandoned [NumAbandonReasons]uint64
	// HeldBytes is what the inspectors hold for reassembly now, and
	// HeldPeak the most each held (summed over tables).
	HeldBytes, HeldPeak int64
}

// Add adds another table's counts.
func (s *InspectStats) Add(o *InspectStats) {
	s.Flows += o.Flows
	s.Skipped += o.Skipped
	s.ClientHellos += o.ClientHellos
	s.ServerHellos += o.ServerHellos
	for i := range o.TLSErrors {
		s.TLSErrors[i] += o.TLSErrors[i]
	}
	s.Gaps += o.Gaps
	s.QUIC += o.QUIC
	s.QUICHellos += o.QUICHellos
	for i := range o.QUICErrors {
		s.QUICErrors[i] += o.QUICErrors[i]
	}
	s.DNS += o.DNS
	s.DNSError += o.DNSError
	for i := range o.Abandoned {
		s.Abandoned[i] += o.Abandoned[i]
	}
	s.HeldBytes += o.HeldBytes
	s.HeldPeak += o.HeldPeak
}

// AbandonedTotal is how many flows had their inspection abandoned,
// for any reason.
func (s *InspectStats) AbandonedTotal() uint64 {
	var n uint64
	for _, v := range s.Abandoned {
		n += v
	}
	return n
}

// ErrorCounts names every non-zero error count, as reason=count: TLS
// hellos by tls.Reason, QUIC Initials (quic_ and quic.Reason), DNS
// messages, stream gaps.
func (s *InspectStats) ErrorCounts() []string {
	var out []string
	for r := 1; r < len(s.TLSErrors); r++ {
		if n := s.TLSErrors[r]; n > 0 {
			out = append(out, fmt.Sprintf("%s=%d", tls.Reason(r), n))
		}
	}
	for r := 1; r < len(s.QUICErrors); r++ {
		if n := s.QUICErrors[r]; n > 0 {
			out = append(out, fmt.Sprintf("quic_%s=%d", quic.Reason(r), n))
		}
	}
	if s.DNSError > 0 {
		out = append(out, fmt.Sprintf("dns=%d", s.DNSError))
	}
	if s.Gaps > 0 {
		out = append(out, fmt.Sprintf("stream_gaps=%d", s.Gaps))
	}
	return out
}
