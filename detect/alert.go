package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
)

// Severities, lowest first.
const (
	Low      = "low"
	Medium   = "medium"
	High     = "high"
	Critical = "critical"
)

// raise returns s one step higher, at most Critical.
func raise(s string) string {
	switch s {
	case Low:
		return Medium
	case Medium:
		return High
	}
	return Critical
}

// Alert is one detection, written as one JSON object per line.
type Alert struct {
	TS          time.Time     `json:"ts"`
	ID          string        `json:"id"`
	Analytic    string        `json:"analytic"`
	Technique   string        `json:"technique"`
	Severity    string        `json:"severity"`
	Confidence  string        `json:"confidence"`
	Title       string        `json:"title"`
	Host        *AlertHost    `json:"host"`
	Process     *AlertProcess `json:"process"`
	Destination *Destination  `json:"destination,omitempty"`
	Evidence    Evidence      `json:"evidence"`
	Missing     []string      `json:"missing,omitempty"`
	DedupKey    string        `json:"dedup_key"`
}

// AlertHost is the internal end.
type AlertHost struct {
	IP        string `json:"ip,omitempty"`
	Name      string `json:"name,omitempty"`
	PeerGroup string `json:"peer_group,omitempty"`
	User      string `json:"user,omitempty"` // SaaS alerts name an account
}

// AlertProcess is the program at the internal end, as attributed.
type AlertProcess struct {
	PID         int64  `json:"pid,omitempty"`
	GUID        string `json:"guid,omitempty"`
	Image       string `json:"image"`
	Name        string `json:"name"`
	CommandLine string `json:"command_line,omitempty"`
	User        string `json:"user,omitempty"`
	ParentImage string `json:"parent_image,omitempty"`
	Feed        string `json:"feed,omitempty"`
	// Conflict lists the other processes whose host events claimed the
	// same flow; the alert's confidence is one step lower for it.
	Conflict []AlertProcessRef `json:"conflict,omitempty"`
}

// AlertProcessRef is another process that claimed the flow.
type AlertProcessRef struct {
	Host  string `json:"host,omitempty"`
	PID   int64  `json:"pid,omitempty"`
	GUID  string `json:"guid,omitempty"`
	Image string `json:"image"`
	Name  string `json:"name"`
	Feed  string `json:"feed,omitempty"`
}

// Destination is the remote end.
type Destination struct {
	IP      string `json:"ip,omitempty"`
	Port    uint16 `json:"port,omitempty"`
	Name    string `json:"name,omitempty"`
	Service string `json:"service,omitempty"` // the list entry or category it matched
}

// Evidence is what fired the alert: the flows, the measured values beside
// the thresholds they passed, and the baseline they were compared with.
type Evidence struct {
	CommunityIDs []string       `json:"community_ids,omitempty"`
	Measured     map[string]any `json:"measured"`
	Thresholds   map[string]any `json:"thresholds"`
	Baseline     map[string]any `json:"baseline,omitempty"`
	Events       []string       `json:"events,omitempty"` // host events that took part
}

func alertProcess(a *process.Attribution) *AlertProcess {
	if a == nil {
		return nil
	}
	p := &AlertProcess{PID: a.PID, GUID: a.GUID, Image: a.Image, Name: baseName(a.Image), CommandLine: a.Command,
		User: a.User, ParentImage: a.ParentImage, Feed: a.Feed}
	for _, r := range a.Conflict {
		p.Conflict = append(p.Conflict, AlertProcessRef{Host: r.Host, PID: r.PID, GUID: r.GUID, Image: r.Image,
			Name: baseName(r.Image), Feed: r.Feed})
	}
	return p
}

// lower returns a confidence one step lower, at least Low.
func lower(c string) string {
	switch c {
	case Critical:
		return High
	case High:
		return Medium
	}
	return Low
}

// finish fills in the id from the dedup key and the time, so the same
// detection in two replays has the same id, and lowers the confidence of
// an alert whose process is contested.
func (a *Alert) finish() {
	// A process two host events claimed is less sure, whatever the
	// analytic made of it.
	if a.Process != nil && len(a.Process.Conflict) > 0 {
		a.Confidence = lower(a.Confidence)
	}
	h := sha256.Sum256([]byte(a.DedupKey + "|" + a.TS.UTC().Format(time.RFC3339Nano)))
	a.ID = hex.EncodeToString(h[:8])
}

// AppendJSON appends the alert as one JSON line.
func (a *Alert) AppendJSON(dst []byte) []byte {
	b, _ := json.Marshal(a)
	dst = append(dst, b...)
	return append(dst, '\n')
}
