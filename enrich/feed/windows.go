package feed

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// winRecord is a Windows event reduced to what every wrapper carries: the
// provider, event id, computer, a fallback time, and the EventData fields
// by their Sysmon or Security names.
type winRecord struct {
	provider string
	eventID  int
	computer string
	created  time.Time
	// lookup returns an EventData field by name, "" when absent. Fields
	// are looked up where the wrapper holds them, not copied to a map: a
	// record has dozens and the join reads a handful.
	lookup func(name string) string
}

func (w *winRecord) get(k string) string {
	v := strings.TrimSpace(w.lookup(k))
	if v == "-" {
		return ""
	}
	return v
}

// pairs is EventData read from XML: <Data Name="k">v</Data>.
type pairs []struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

func (p pairs) lookup(k string) string {
	for i := range p {
		if p[i].Name == k {
			return p[i].Value
		}
	}
	return ""
}

// toEvent normalises a Sysmon or Security-auditing record. ok is false for
// event ids no analytic reads.
func (w *winRecord) toEvent() (Event, bool) {
	e := Event{Host: ShortHost(w.computer), EventID: w.eventID, PID: -1, PPID: -1, Time: w.created}
	switch {
	case strings.Contains(w.provider, "Sysmon"):
		e.Feed = FeedSysmon
		if t, ok := parseSysmonTime(w.get("UtcTime")); ok {
			e.Time = t
		}
		e.GUID = w.get("ProcessGuid")
		e.PID = parseInt(w.get("ProcessId"))
		e.Image = w.get("Image")
		e.User = w.get("User")
		switch w.eventID {
		case 1:
			e.Kind = KindProcessStart
			e.Command = w.get("CommandLine")
			e.ParentGUID = w.get("ParentProcessGuid")
			e.PPID = parseInt(w.get("ParentProcessId"))
			e.ParentImg = w.get("ParentImage")
			e.ParentCmd = w.get("ParentCommandLine")
		case 3:
			e.Kind = KindConnect
			e.Proto = protoNumber(w.get("Protocol"))
			e.Initiated = strings.EqualFold(w.get("Initiated"), "true")
			e.Src = parseAddr(w.get("SourceIp"))
			e.Dst = parseAddr(w.get("DestinationIp"))
			e.SrcPort = uint16(parseInt(w.get("SourcePort")))
			e.DstPort = uint16(parseInt(w.get("DestinationPort")))
			e.HasSrcPort = true
		case 5:
			e.Kind = KindProcessEnd
		case 7:
			e.Kind = KindModuleLoad
			e.Target = w.get("ImageLoaded")
		case 11:
			e.Kind = KindFileCreate
			e.Target = w.get("TargetFilename")
		case 22:
			e.Kind = KindDNSQuery
			e.Target = w.get("QueryName")
			e.Results = w.get("QueryResults")
		default:
			return e, false
		}
	case strings.Contains(w.provider, "Security-Auditing") || w.provider == "Security":
		e.Feed = FeedSecurity
		switch w.eventID {
		case 4688:
			e.Kind = KindProcessStart
			e.PID = parseInt(w.get("NewProcessId"))
			e.Image = w.get("NewProcessName")
			e.Command = w.get("CommandLine")
			e.PPID = parseInt(w.get("ProcessId"))
			e.ParentImg = w.get("ParentProcessName")
			if u := w.get("SubjectUserName"); u != "" {
				e.User = u
				if d := w.get("SubjectDomainName"); d != "" {
					e.User = d + `\` + u
				}
			}
		case 4689:
			e.Kind = KindProcessEnd
			e.PID = parseInt(w.get("ProcessId"))
			e.Image = w.get("ProcessName")
		case 5156, 5158:
			e.Kind = KindConnect
			if w.eventID == 5158 {
				e.Kind = KindBind
			}
			e.PID = parseInt(w.get("ProcessID"))
			if e.PID < 0 {
				e.PID = parseInt(w.get("ProcessId"))
			}
			e.Image = w.get("Application")
			e.Proto = protoNumber(w.get("Protocol"))
			e.Src = parseAddr(w.get("SourceAddress"))
			e.SrcPort = uint16(parseInt(w.get("SourcePort")))
			e.Dst = parseAddr(w.get("DestAddress"))
			e.DstPort = uint16(parseInt(w.get("DestPort")))
			e.HasSrcPort = true
			// %%14593 is Outbound, %%14592 Inbound. Like Sysmon, the
			// filtering platform names the initiator the source.
			e.Initiated = w.get("Direction") != "%%14592" && !strings.EqualFold(w.get("Direction"), "Inbound")
		default:
			return e, false
		}
	default:
		return e, false
	}
	return e, true
}

// parseSysmonTime reads "2022-05-11 18:10:20.395" (Sysmon's UtcTime) and the
// RFC 3339 forms wrappers rewrite it to.
func parseSysmonTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	// The last: the M365 audit log's CreationTime, UTC without a zone.
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05.9999999Z", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func parseTime(s string) time.Time {
	t, _ := parseSysmonTime(s)
	return t
}

// parseInt reads decimal or 0x-prefixed hexadecimal (4688's process ids);
// -1 when absent or unreadable.
func parseInt(s string) int64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return -1
	}
	base := 10
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s, base = s[2:], 16
	}
	v, err := strconv.ParseInt(s, base, 64)
	if err != nil {
		return -1
	}
	return v
}

func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func protoNumber(s string) uint8 {
	switch strings.ToLower(s) {
	case "tcp", "6":
		return 6
	case "udp", "17":
		return 17
	case "icmp", "1":
		return 1
	case "icmpv6", "58":
		return 58
	}
	if v := parseInt(s); v > 0 && v < 256 {
		return uint8(v)
	}
	return 0
}
