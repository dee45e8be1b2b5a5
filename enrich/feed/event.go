// Package feed reads host-event logs (Sysmon, Windows Security auditing,
// auditd, AUOMS, Azure VM Insights) in the wrappers real collectors write
// them in, and turns every record into one Event type. Parsers are lenient:
// a broken record is counted with its reason and offset and skipped.
package feed

import (
	"net/netip"
	"strings"
	"time"
)

// Kind is what a host event reports.
type Kind uint8

// Kinds of host events.
const (
	KindOther        Kind = iota
	KindProcessStart      // Sysmon 1, Security 4688, auditd/AUOMS execve
	KindProcessEnd        // Sysmon 5, Security 4689
	KindConnect           // Sysmon 3, Security 5156, auditd connect/accept, VMConnection
	KindBind              // Security 5158
	KindModuleLoad        // Sysmon 7
	KindFileCreate        // Sysmon 11
	KindDNSQuery          // Sysmon 22
	KindSaaSFile          // a cloud-storage API call on a file: M365 FileUploaded, FileSyncUploadedFull, ...
	KindServiceLog        // a line of an appliance's own log (ESXi hostd, vpxa, vmkernel)
)

var kindNames = [...]string{"other", "process_start", "process_end", "connect", "bind", "module_load", "file_create", "dns_query", "saas_file", "service_log"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "other"
}

// Feeds, as the Event's Feed names them.
const (
	FeedSysmon       = "sysmon"
	FeedSecurity     = "security"
	FeedAuditd       = "auditd"
	FeedAUOMS        = "auoms"
	FeedVMConnection = "vmconnection"
	FeedM365         = "m365"
	FeedESXi         = "esxi"
)

// Event is one host event, normalised. Time is the event's own clock (Sysmon
// UtcTime, the record's creation time otherwise), which may disagree with the
// sensor's by milliseconds or days; the join learns the difference.
type Event struct {
	Kind Kind
	Time time.Time
	Host string // the reporting computer, lower case, without its domain
	// HostAddr is the reporting host's address when the wrapper gives it
	// (Log Analytics Syslog rows carry HostIP).
	HostAddr netip.Addr
	Feed     string
	EventID  int

	PID        int64 // -1 when the record does not say
	PPID       int64
	GUID       string // Sysmon ProcessGuid
	ParentGUID string
	Image      string
	Command    string
	User       string
	ParentImg  string
	ParentCmd  string

	// Network events: Src is the initiator, as Sysmon and the filtering
	// platform report; Initiated says whether the reporting process is it.
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Initiated        bool
	HasSrcPort       bool // auditd connect and VMConnection give only the remote end

	// Target is what a module load, file write, DNS query or SaaS file
	// operation names (the file's URL), or an appliance log's message.
	Target  string
	Results string // DNS answers as the feed lists them
	// SaaS operations: the API operation (FileUploaded, ...), the client
	// address it came from (in Src), and the file's size when given.
	Action string
	Bytes  int64
}

// Local returns the reporting host's end of a network event.
func (e *Event) Local() (netip.Addr, uint16) {
	if e.Initiated {
		return e.Src, e.SrcPort
	}
	return e.Dst, e.DstPort
}

// Remote returns the other end.
func (e *Event) Remote() (netip.Addr, uint16) {
	if e.Initiated {
		return e.Dst, e.DstPort
	}
	return e.Src, e.SrcPort
}

// ShortHost lowers a computer name and drops its domain, so that
// "WORKSTATION6.theshire.local" and "WORKSTATION6" name one host.
func ShortHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if i := strings.IndexByte(h, '.'); i > 0 {
		if _, err := netip.ParseAddr(h); err != nil {
			h = h[:i]
		}
	}
	return h
}

// ImageName is the file name of an image path, Windows or POSIX, lower case.
func ImageName(image string) string {
	if i := strings.LastIndexAny(image, `\/`); i >= 0 {
		image = image[i+1:]
	}
	return strings.ToLower(image)
}
