package flows

// ICMPPorts maps an ICMP type and code to Zeek's connection ports: the type,
// and for request/reply pairs the counterpart type (so both directions share
// one flow), else the code; oneWay marks the latter.
func ICMPPorts(proto, typ, code uint8) (sport, dport uint16, oneWay bool) {
	if c, ok := icmpCounterpart(proto, typ); ok {
		return uint16(typ), uint16(c), false
	}
	return uint16(typ), uint16(code), true
}

func icmpCounterpart(proto, typ uint8) (uint8, bool) {
	pairs := icmp6Pairs[:]
	if proto == 1 {
		pairs = icmp4Pairs[:]
	}
	for _, pr := range pairs {
		switch typ {
		case pr[0]:
			return pr[1], true
		case pr[1]:
			return pr[0], true
		}
	}
	return 0, false
}

// Request/reply type pairs (Zeek's ICMP counterparts, which Community ID uses too).
var (
	icmp4Pairs = [...][2]uint8{{8, 0}, {13, 14}, {15, 16}, {10, 9}, {17, 18}}
	icmp6Pairs = [...][2]uint8{{128, 129}, {133, 134}, {135, 136}, {130, 131}, {139, 140}, {144, 145}}
)
