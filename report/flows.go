package report

import (
	"container/heap"
	"net/netip"
)

// recentFlows is how many of the last flows are held whatever their size:
// an alert comes after its flow has passed the collector (the analytics
// run behind the record stages, a few thousand records at most), and
// finds it here to keep it.
const recentFlows = 8192

// maxAlertFlows bounds the flows one alert can keep.
const maxAlertFlows = 64

// point is one flow as the scatter chart draws it.
type point struct {
	cid     string // Community ID
	out, in uint64
	host    netip.Addr
	remote  netip.AddrPort
	proc    string
	name    string // the remote end's name, when known
}

// flowKeep holds the flows the scatter chart draws: the max largest by
// bytes (out and in), and every flow an alert names. Memory is bounded by
// max, recentFlows and the alerts kept.
type flowKeep struct {
	max      int
	largest  pointHeap
	recent   []*point // a ring of the last flows, to find an alert's flows in
	next     int
	pinned   map[string]*point // flows named by an alert, by Community ID
	alerting map[string]bool   // Community IDs named by alerts
	maxPins  int
	seen     uint64 // flows offered
	lost     uint64 // flows an alert named that were no longer held
}

func (k *flowKeep) init(max, alerts int) {
	k.max = max
	k.recent = make([]*point, 0, min(recentFlows, 1024))
	k.pinned = make(map[string]*point)
	k.alerting = make(map[string]bool)
	k.maxPins = alerts * maxAlertFlows
}

func (k *flowKeep) add(p point) {
	k.seen++
	pp := &p
	if p.cid != "" && k.alerting[p.cid] {
		// An alert on an interim record came before the final one.
		k.pinned[p.cid] = pp
	}
	if len(k.recent) < recentFlows {
		k.recent = append(k.recent, pp)
	} else {
		k.recent[k.next] = pp
		k.next = (k.next + 1) % recentFlows
	}
	switch {
	case len(k.largest) < k.max:
		heap.Push(&k.largest, pp)
	case p.out+p.in > k.largest[0].size():
		k.largest[0] = pp
		heap.Fix(&k.largest, 0)
	}
}

// alert keeps the flows an alert names, from those still held.
func (k *flowKeep) alert(cids []string) {
	for i, cid := range cids {
		if i == maxAlertFlows || len(k.alerting) >= k.maxPins {
			return
		}
		if cid == "" || k.alerting[cid] {
			continue
		}
		k.alerting[cid] = true
		if p := k.find(cid); p != nil {
			k.pinned[cid] = p
		} else {
			k.lost++
		}
	}
}

// find looks for a held flow by Community ID. Alerts are rare: a scan
// costs less than an index kept for every flow.
func (k *flowKeep) find(cid string) *point {
	for _, p := range k.recent {
		if p.cid == cid {
			return p
		}
	}
	for _, p := range k.largest {
		if p.cid == cid {
			return p
		}
	}
	return nil
}

// kept returns the flows to draw, each once, and whether an alert named
// each.
func (k *flowKeep) kept() (ps []*point, alerting []bool) {
	seen := make(map[*point]bool, len(k.largest)+len(k.pinned))
	for _, set := range [][]*point{k.largest, pinnedList(k.pinned)} {
		for _, p := range set {
			if !seen[p] {
				seen[p] = true
				ps = append(ps, p)
				alerting = append(alerting, p.cid != "" && k.alerting[p.cid])
			}
		}
	}
	return ps, alerting
}

func pinnedList(m map[string]*point) []*point {
	ps := make([]*point, 0, len(m))
	for _, p := range m {
		ps = append(ps, p)
	}
	return ps
}

func (p *point) size() uint64 { return p.out + p.in }

// pointHeap is a min-heap by size: its root is the smallest flow kept.
type pointHeap []*point

func (h pointHeap) Len() int           { return len(h) }
func (h pointHeap) Less(i, j int) bool { return h[i].size() < h[j].size() }
func (h pointHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pointHeap) Push(x any)        { *h = append(*h, x.(*point)) }
func (h *pointHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}
