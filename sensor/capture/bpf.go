//go:build linux

package capture

import (
	"fmt"
	"strings"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// filterSnaplen is the capture length the filter is compiled for. It is
// tcpdump's default (MAXIMUM_SNAPLEN), so a program equals what `tcpdump
// -ddd` prints and its accepting returns keep the whole frame.
const filterSnaplen = 262144

// CompileFilter turns a tcpdump expression into classic BPF for Ethernet
// frames, optimised, as tcpdump compiles it. libpcap's pcap_compile does the
// work, on a dead handle, in this process: the binary links libpcap anyway
// (github.com/dreadl0ck/ja3 imports gopacket/pcap), so no tcpdump is needed
// at run time. An empty expression gives no program.
func CompileFilter(expr string) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	insns, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, filterSnaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("the filter %q is not valid: %s", expr, pcapReason(err))
	}
	if len(insns) == 0 {
		return nil, fmt.Errorf("the filter %q compiled to an empty program", expr)
	}
	prog := make([]bpf.RawInstruction, len(insns))
	for i, in := range insns {
		prog[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, nil
}

// pcapReason is libpcap's message for a failed compile, without the
// "can't parse filter expression: " prefix some versions put before it.
func pcapReason(err error) string {
	msg := strings.TrimSpace(err.Error())
	if _, rest, ok := strings.Cut(msg, "can't parse filter expression: "); ok {
		msg = rest
	}
	if msg == "" {
		msg = "libpcap gave no reason"
	}
	return msg
}
