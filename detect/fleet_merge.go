package detect

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Merge folds another sensor's observation into the state, as if this
// sensor had seen it: the host joins the destination's prevalence, the
// host's large upload silences its next "first" one, the host's upload
// total counts in the day's ranking. It never alerts by itself; it only
// changes what the next local flows are compared with.
//
// Merging is idempotent and order-blind, so a topic read twice, or a
// sensor that republishes after a restart, changes nothing: prevalence
// keeps each host's latest time, an upload mark its latest deadline, and
// upload totals the largest per (sensor, host, day), summed across
// sensors when the day is reported. Observations older than the training
// period (by the engine's clock, the traffic's) are ignored.
func (e *Engine) Merge(o *Observation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.merge(o, false)
}

// Restore folds one of this sensor's own past observations, read back
// from the fleet's topics at start, into the state: what a sensor that
// lost its state file had published is learnt again. It is Merge, except
// that an upload total becomes this sensor's own (kept at the larger of
// the two), so what it publishes next goes on from there.
func (e *Engine) Restore(o *Observation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.merge(o, true)
}

func (e *Engine) merge(o *Observation, own bool) {
	switch o.Kind {
	case ObsPrevalence:
		e.mergePrevalence(o)
	case ObsFirstUpload:
		e.mergeFirstUpload(o)
	case ObsUpload:
		if own {
			e.restoreUpload(o)
		} else {
			e.mergeUpload(o)
		}
	}
}

// maxDestKey bounds a merged destination's length: a DNS name is at most
// 253 bytes, an address far less.
const maxDestKey = 255

// tooOld reports whether something seen at t is past the training period
// by the engine's clock (nothing is, before the first flow).
func (e *Engine) tooOld(t time.Time, keep time.Duration) bool {
	return !e.now.IsZero() && t.Add(keep).Before(e.now)
}

// mergePrevalence adds the host to the destination's prevalence value
// (the layout prevalence writes: first-seen, then host hash and last-seen
// per host), or moves its last-seen time on.
func (e *Engine) mergePrevalence(o *Observation) {
	train := e.cfg.Baseline.TrainingPeriod.D()
	if o.Dest == "" || len(o.Dest) > maxDestKey || o.Time.IsZero() || e.tooOld(o.Time, train) {
		return
	}
	last := o.Time.UnixNano()
	first := last
	if !o.First.IsZero() && o.First.UnixNano() < first {
		first = o.First.UnixNano()
	}
	e.kb = append(append(e.kb[:0], "pv|"...), o.Dest...)
	key := e.kb
	hosts := e.hostsBuf[:0]
	defer func() { e.hostsBuf = hosts[:0] }()
	deadline, b, ok := e.st.raw(key)
	changed := true
	if ok && len(b) >= 8 && (len(b)-8)%16 == 0 && (e.now.IsZero() || deadline >= e.now.UnixNano()) {
		changed = false
		if f := int64(binary.LittleEndian.Uint64(b)); f <= first {
			first = f
		} else {
			changed = true
		}
		for b = b[8:]; len(b) >= 16; b = b[16:] {
			hosts = append(hosts, prevSeen{binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:]))})
		}
	} else {
		deadline = 0
	}
	found := false
	for i := range hosts {
		if hosts[i].h == o.HostHash {
			found = true
			if last > hosts[i].last {
				hosts[i].last, changed = last, true
			}
		}
	}
	if !found {
		if len(hosts) >= maxPrevalence {
			return // common already
		}
		hosts, changed = append(hosts, prevSeen{o.HostHash, last}), true
	}
	if !changed {
		return
	}
	r := e.rec()
	r.b = binary.LittleEndian.AppendUint64(r.b, uint64(first))
	for _, s := range hosts {
		r.b = binary.LittleEndian.AppendUint64(r.b, s.h)
		r.b = binary.LittleEndian.AppendUint64(r.b, uint64(s.last))
	}
	until := o.Time.Add(train)
	if deadline > until.UnixNano() {
		until = time.Unix(0, deadline)
	}
	e.st.setKey(key, until, r.b)
}

// mergeFirstUpload keeps the host's upload-history mark until the later
// of its deadline and the observed upload's.
func (e *Engine) mergeFirstUpload(o *Observation) {
	hist := e.cfg.WebFileSharing.UploadHistory.D()
	if o.Host == "" || len(o.Host) > maxDestKey || o.Time.IsZero() || e.tooOld(o.Time, hist) {
		return
	}
	e.kb = append(append(e.kb[:0], "wfs|hist|"...), o.Host...)
	until := o.Time.Add(hist)
	if deadline, _, ok := e.st.raw(e.kb); ok && deadline >= until.UnixNano() {
		return
	}
	e.st.setKey(e.kb, until, nil)
}

// mergeUpload keeps another sensor's upload total of a host and day, the
// largest seen, until the day is reported.
func (e *Engine) mergeUpload(o *Observation) {
	if o.Host == "" || len(o.Host) > maxDestKey || o.Sensor == "" {
		return
	}
	f := e.fleetState()
	if o.Day < f.newest-1 || !e.now.IsZero() && o.Day < dayOf(e.now) {
		return // its day was reported already
	}
	k := uploadKey{o.Sensor, o.Host, o.Day}
	cur, ok := f.remote[k]
	if !ok && len(f.remote) >= maxRemoteUploads {
		return
	}
	if ok && cur.bytes >= o.Bytes {
		return
	}
	f.remote[k] = uploadVal{o.PeerGroup, o.Bytes}
	if o.Day > f.newest {
		f.newest = o.Day
		for k := range f.remote {
			if k.day < f.newest-1 {
				delete(f.remote, k)
			}
		}
	}
}

// restoreUpload takes back this sensor's own upload total of a host and
// day, unless the state holds a larger one or a later day.
func (e *Engine) restoreUpload(o *Observation) {
	if o.Host == "" || len(o.Host) > maxDestKey || o.Day < e.top.day || !e.now.IsZero() && o.Day < dayOf(e.now) {
		return
	}
	if o.Day > e.top.day {
		e.top.day, e.top.bytes, e.top.names = o.Day, map[string]uint64{}, map[string]string{}
	}
	cur, ok := e.top.bytes[o.Host]
	if !ok && len(e.top.bytes) >= maxTopHosts || cur >= o.Bytes {
		return
	}
	e.top.bytes[o.Host], e.top.names[o.Host] = o.Bytes, e.groupOf(o.Host, o.PeerGroup)
}

// groupOf is the peer group of a host that another sensor reported: this
// sensor's own peer groups decide, so a report's groups are its own; a
// host that is not an address keeps the group it came with.
func (e *Engine) groupOf(host, reported string) string {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return reported
	}
	return e.cfg.PeerGroup(a)
}

// Prevalence is how many internal hosts reached dest (a server name in
// lower case, or an address) within the training period, by the
// engine's clock, as far as this sensor knows: its own and the merged.
func (e *Engine) Prevalence(dest string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kb = append(append(e.kb[:0], "pv|"...), dest...)
	deadline, b, ok := e.st.raw(e.kb)
	if !ok || len(b) < 8 || (len(b)-8)%16 != 0 || !e.now.IsZero() && deadline < e.now.UnixNano() {
		return 0
	}
	cut := int64(-1 << 63)
	if !e.now.IsZero() {
		cut = e.now.Add(-e.cfg.Baseline.TrainingPeriod.D()).UnixNano()
	}
	n := 0
	for b = b[8:]; len(b) >= 16; b = b[16:] {
		if int64(binary.LittleEndian.Uint64(b[8:])) >= cut {
			n++
		}
	}
	return n
}

// raw returns the value under key and its deadline, expired or not; the
// value is valid until the state's next read.
func (s *State) raw(key []byte) (deadline int64, val []byte, ok bool) {
	v := s.c.Get(s.buf[:0], key)
	s.buf = v
	if len(v) < 8 {
		return 0, nil, false
	}
	return int64(binary.LittleEndian.Uint64(v)), v[8:], true
}
