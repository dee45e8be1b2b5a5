package detect

import (
	"time"
)

// The fleet seam. A security team runs one sensor per link, while the
// learning analytics ask organisation-wide questions: how many internal
// hosts reached this destination (rare_host), which hosts sent the most
// to file-sharing services today (top_file_sharing_*), has this host made
// a large upload before (first_large_upload). The engine answers them
// from its own state; with an Observer it also reports each change of
// that state other sensors need, as an Observation, and Merge folds
// the other sensors' Observations into the same state. The transport
// (Kafka, package fleet) lives outside detect.
//
// Without an Observer and without Merge nothing here runs: a lone sensor
// pays one nil check at each of the few places the state changes.
//
// Merged observations only change what local flows are compared with:
// Merge never emits an alert, and the daily top-hosts report ranks the
// whole fleet's hosts but reports only those this sensor saw itself, so
// each host is reported by the sensor on its link, not once per sensor.

// ObservationKind says what an Observation reports.
type ObservationKind uint8

// The kinds of observations; their numbers are on the wire (docs/fleet.md).
const (
	// ObsPrevalence: an internal host (HostHash) reached a destination
	// (Dest) at Time, a destination first seen at First. Sent when the
	// host is added to the destination's prevalence or, later, on the
	// first flow of each new day, so other sensors keep it within their
	// training period.
	ObsPrevalence ObservationKind = 1
	// ObsUpload: the bytes internal Host (of PeerGroup) sent to
	// file-sharing services on Day, as far as the origin sensor saw:
	// cumulative, so a later one replaces an earlier one.
	ObsUpload ObservationKind = 2
	// ObsFirstUpload: Host made an upload of FirstUploadThreshold or more
	// that ended at Time; its next one within UploadHistory is no first.
	ObsFirstUpload ObservationKind = 3
)

// Observation is one piece of what an engine learnt that the rest of the
// fleet needs. Which fields mean something depends on Kind.
type Observation struct {
	Kind ObservationKind
	// Sensor names the sensor that made it; the engine leaves it empty
	// on the observations it emits (they are its own) and ignores it in
	// Merge except to tell the sensors' upload counters apart.
	Sensor string
	// Dest is a destination as prevalence keys it: the server name in
	// lower case, else the address (ObsPrevalence).
	Dest string
	// HostHash names the internal host in prevalence: FNV-1a of its
	// address, so prevalence carries no internal address (ObsPrevalence).
	HostHash uint64
	// Host is the internal host's address (ObsUpload, ObsFirstUpload).
	Host string
	// PeerGroup is Host's peer group at the origin sensor (ObsUpload).
	PeerGroup string
	// Day is days since 1970-01-01 UTC (ObsUpload).
	Day int64
	// Bytes is the day's running total (ObsUpload).
	Bytes uint64
	// First is when the origin first saw Dest (ObsPrevalence).
	First time.Time
	// Time is when the host reached Dest (ObsPrevalence) or when the
	// upload ended (ObsFirstUpload).
	Time time.Time
}

// Observer receives the engine's observations. Observe is called under
// the engine's lock, from the goroutine feeding flows: it must return at
// once (queue or drop, never wait) and must not call the engine. The
// Observation is the engine's and valid only during the call.
type Observer interface {
	Observe(o *Observation)
}

// fleetState is what the engine keeps for the fleet: the observer, the
// hosts whose upload total changed since the last PublishCounters, and
// the other sensors' upload totals, kept apart from the local ones so
// what this sensor publishes is only what it saw.
type fleetState struct {
	obs     Observer
	o       Observation // the one handed to obs, reused
	dirty   map[string]struct{}
	remote  map[uploadKey]uploadVal
	newest  int64               // the latest day of remote totals
	localAt map[string]struct{} // the reported day's hosts this sensor saw
}

type uploadKey struct {
	sensor, host string
	day          int64
}

type uploadVal struct {
	group string
	bytes uint64
}

// maxRemoteUploads bounds the other sensors' upload totals held: a day's
// hosts of every sensor (the local bound, maxTopHosts, is per sensor).
const maxRemoteUploads = 1 << 18

func (e *Engine) fleetState() *fleetState {
	if e.fleet == nil {
		e.fleet = &fleetState{dirty: map[string]struct{}{}, remote: map[uploadKey]uploadVal{}}
	}
	return e.fleet
}

// SetObserver sends the engine's observations to o from now on; nil stops
// them. A restarted engine republishes what it learns from then on, not
// its whole state: the fleet's topics hold the rest (package fleet).
func (e *Engine) SetObserver(o Observer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if o == nil && e.fleet == nil {
		return
	}
	e.fleetState().obs = o
}

// observe hands e.fleet.o to the observer, if there is one.
func (e *Engine) observe() {
	if e.fleet.obs != nil {
		e.fleet.obs.Observe(&e.fleet.o)
	}
}

// observePrevalence reports that host h reached dest at t.
func (e *Engine) observePrevalence(dest []byte, h uint64, first, t time.Time) {
	if e.fleet.obs == nil {
		return
	}
	e.fleet.o = Observation{Kind: ObsPrevalence, Dest: string(dest), HostHash: h, First: first, Time: t}
	e.observe()
}

// observeFirstUpload reports a host's large upload that ended at t.
func (e *Engine) observeFirstUpload(host string, t time.Time) {
	e.fleet.o = Observation{Kind: ObsFirstUpload, Host: host, Time: t}
	e.observe()
}

// uploaded notes that host's upload total of the day changed, for the
// next PublishCounters.
func (e *Engine) uploaded(host string) {
	if e.fleet.obs != nil && len(e.fleet.dirty) < maxTopHosts {
		e.fleet.dirty[host] = struct{}{}
	}
}

// PublishCounters sends the observer the day's upload totals that
// changed since its last call. Totals change with nearly every upload
// flow, so they are published in batches, like a Kafka Streams table's
// cache flushed at each commit interval; the end of a day publishes the
// day's last totals itself.
func (e *Engine) PublishCounters() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fleet != nil {
		e.publishCounters()
	}
}

func (e *Engine) publishCounters() {
	f := e.fleet
	if f.obs == nil {
		clear(f.dirty)
		return
	}
	for h := range f.dirty {
		if n, ok := e.top.bytes[h]; ok {
			f.o = Observation{Kind: ObsUpload, Host: h, PeerGroup: e.top.names[h], Day: e.top.day, Bytes: n}
			e.observe()
		}
	}
	clear(f.dirty)
}

// fleetEndDay runs as the day t ends, before its top hosts are reported:
// it publishes this sensor's last totals of the day, then adds the other
// sensors' totals to the day's, so the ranking is the organisation's.
// The report then names only the hosts this sensor saw (reportable).
func (e *Engine) fleetEndDay(t time.Time) {
	f := e.fleet
	e.publishCounters()
	d := dayOf(t)
	clear(f.localAt)
	c := &e.cfg.WebFileSharing
	if c.Enabled && c.TopN > 0 {
		if f.localAt == nil {
			f.localAt = map[string]struct{}{}
		}
		if e.top.day == d {
			for h := range e.top.bytes {
				f.localAt[h] = struct{}{}
			}
		}
		for k, v := range f.remote {
			if k.day == d {
				e.top.add(d, k.host, e.groupOf(k.host, v.group), v.bytes)
			}
		}
	}
	for k := range f.remote {
		if k.day <= d {
			delete(f.remote, k)
		}
	}
}

// remoteOnly reports whether the day's top host h was seen only by other
// sensors: they report it, this one only counts it in the ranking.
func (f *fleetState) remoteOnly(h string) bool {
	if f == nil {
		return false
	}
	_, ok := f.localAt[h]
	return !ok
}
