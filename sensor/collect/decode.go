package collect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"time"
)

// Config bounds the decoder's state.
type Config struct {
	MaxExporters int
	// MaxTemplates bounds the templates one exporter may define.
	MaxTemplates int
	// HoldSets and HoldBytes bound, per exporter, the data sets kept while
	// their template is awaited.
	HoldSets  int
	HoldBytes int64
	// TemplateBytes bounds the bytes one exporter's templates take;
	// TotalBytes, every exporter's templates and held sets together.
	TemplateBytes, TotalBytes int64
	// ExporterIdle is how long an exporter may send nothing before it is
	// forgotten with its templates (Expire).
	ExporterIdle time.Duration
	// SamplingRate, when not 0, overrides what exporters announce.
	SamplingRate uint32
}

// DefaultConfig returns room for 4096 exporters of 1024 templates each and
// 64 held sets per exporter, within these byte budgets:
//
//   - 1 MiB of templates per exporter: 1024 templates of 74 fields, where
//     real exporters define a handful to a few dozen (softflowd 2 to 4,
//     routers tens) of 10 to 80 fields, about 1 KiB each;
//   - 4 MiB held per exporter: its 64 held sets even when each is a
//     whole 64 KiB datagram, so only the total cuts a real exporter's hold;
//   - 64 MiB in all: 4096 exporters of a dozen realistic templates fit,
//     while a flood from spoofed sources costs at most that;
//   - an exporter silent for an hour is forgotten: it is gone or was
//     restarted, and sends its templates again when it comes back.
func DefaultConfig() Config {
	return Config{MaxExporters: 4096, MaxTemplates: 1024, HoldSets: 64, HoldBytes: 4 << 20,
		TemplateBytes: 1 << 20, TotalBytes: 64 << 20, ExporterIdle: time.Hour}
}

// Decoder decodes datagrams from any number of exporters. Not safe for
// concurrent use.
type Decoder struct {
	cfg       Config
	exporters map[netip.Addr]*exporter
	Stats     map[netip.Addr]*ExporterStats
	// Errors counts every exporter's errors by reason, those of exporters
	// forgotten since included.
	Errors [NumReasons]uint64
	// Evicted counts exporters forgotten to make room for a new one;
	// Expired, those forgotten after ExporterIdle of silence.
	Evicted, Expired uint64
	budget           budget
	samples          []RawSample
	clock            uint64 // datagrams seen, for the exporters' last-seen marks
}

type exporter struct {
	templates *templateStore
	sampling  map[uint32]uint32 // observation domain -> rate from options data
	selectors map[selectorKey]uint32
	held      []heldSet
	heldBytes int64 // as accounted: heldSize
	stats     *ExporterStats
	seen      uint64 // the decoder's clock at this exporter's latest datagram
	// since is when Expire first found seen at seenAtMark.
	since      time.Time
	seenAtMark uint64
}

// NewDecoder returns a Decoder with no exporter state yet.
func NewDecoder(cfg Config) *Decoder {
	d := DefaultConfig()
	if cfg.MaxExporters <= 0 {
		cfg.MaxExporters = d.MaxExporters
	}
	if cfg.MaxTemplates <= 0 {
		cfg.MaxTemplates = d.MaxTemplates
	}
	if cfg.HoldSets <= 0 {
		cfg.HoldSets = d.HoldSets
	}
	if cfg.HoldBytes <= 0 {
		cfg.HoldBytes = d.HoldBytes
	}
	if cfg.TemplateBytes <= 0 {
		cfg.TemplateBytes = d.TemplateBytes
	}
	if cfg.TotalBytes <= 0 {
		cfg.TotalBytes = d.TotalBytes
	}
	if cfg.ExporterIdle <= 0 {
		cfg.ExporterIdle = d.ExporterIdle
	}
	return &Decoder{cfg: cfg, exporters: map[netip.Addr]*exporter{}, Stats: map[netip.Addr]*ExporterStats{},
		budget: budget{templateMax: cfg.TemplateBytes, heldMax: cfg.HoldBytes, totalMax: cfg.TotalBytes}}
}

func (d *Decoder) exporter(addr netip.Addr) *exporter {
	if e := d.exporters[addr]; e != nil {
		return e
	}
	if len(d.exporters) >= d.cfg.MaxExporters {
		d.evict()
	}
	e := &exporter{
		templates: newTemplateStore(d.cfg.MaxTemplates, &d.budget),
		sampling:  map[uint32]uint32{},
		selectors: map[selectorKey]uint32{},
		stats:     &ExporterStats{},
	}
	d.exporters[addr] = e
	d.Stats[addr] = e.stats
	return e
}

// evict forgets one exporter to make room: a source that never gave a
// record (one datagram of garbage from each of thousands of spoofed
// addresses) before one that did, and the one heard from longest ago
// first. A table full of such sources used to refuse every real exporter
// that came after them; an evicted real exporter loses its templates and
// learns them again from its next template set.
func (d *Decoder) evict() {
	var victim netip.Addr
	var best *exporter
	for a, e := range d.exporters {
		if best == nil || (e.stats.Records == 0) != (best.stats.Records == 0) && e.stats.Records == 0 ||
			(e.stats.Records == 0) == (best.stats.Records == 0) && e.seen < best.seen {
			victim, best = a, e
		}
	}
	if best != nil {
		d.forget(victim, best)
		d.Evicted++
	}
}

// Decode decodes one datagram from exporter and appends its flow records to
// out. Bad input is counted and reported as *Error; the records decoded
// before it are still returned.
func (d *Decoder) Decode(from netip.Addr, datagram []byte, out []Record) (recs []Record, err error) {
	from = from.Unmap()
	e := d.exporter(from)
	d.clock++
	e.seen = d.clock
	e.stats.Datagrams++
	n := len(out)
	defer func() {
		// goflow2 has panicked on hostile input before; a datagram must
		// not take the collector down.
		if p := recover(); p != nil {
			d.count(e, ReasonPanic)
			recs, err = out[:n], &Error{Exporter: from, Reason: ReasonPanic, Err: fmt.Errorf("%v", p), Stack: debug.Stack()}
		}
		e.stats.Records += uint64(len(recs) - n)
	}()
	if len(datagram) < 4 {
		return out, d.fail(e, from, ReasonTruncated, errors.New("datagram shorter than a header"))
	}
	switch v := binary.BigEndian.Uint16(datagram); {
	case v == 5:
		return d.decodeV5(e, from, datagram, out)
	case v == 9 || v == 10:
		return d.decodeTemplated(e, from, v, datagram, out)
	case binary.BigEndian.Uint32(datagram) == 5:
		return d.decodeSFlow(e, from, datagram, out)
	}
	return out, d.fail(e, from, ReasonGarbage, fmt.Errorf("version %d", binary.BigEndian.Uint16(datagram)))
}

func (d *Decoder) fail(e *exporter, from netip.Addr, r Reason, err error) error {
	d.count(e, r)
	return &Error{Exporter: from, Reason: r, Err: err}
}

// count counts one error of e's without making an Error of it.
func (d *Decoder) count(e *exporter, r Reason) {
	e.stats.Errors[r]++
	d.Errors[r]++
}
