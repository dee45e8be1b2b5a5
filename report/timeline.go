package report

import (
	"sort"
	"time"
)

// maxBuckets bounds the timeline's stored buckets; past it, they are
// merged two by two into buckets twice as wide.
const maxBuckets = 4096

// maxBars is how many bars the timeline chart draws at most.
const maxBars = 120

// timeline counts flows started and alerts raised by capture time, in
// buckets of width ns that widen as the capture's span grows.
type timeline struct {
	width  int64
	counts map[int64]*[2]uint64 // bucket index → flows, alerts
}

func (t *timeline) init() {
	t.width = int64(10 * time.Millisecond)
	t.counts = make(map[int64]*[2]uint64)
}

func (t *timeline) add(ts int64, alert bool) {
	if ts <= 0 {
		return // no time: a record with no packets' clock
	}
	k := floorDiv(ts, t.width)
	c := t.counts[k]
	if c == nil {
		for len(t.counts) >= maxBuckets {
			t.widen()
			k = floorDiv(ts, t.width)
		}
		if c = t.counts[k]; c == nil {
			c = new([2]uint64)
			t.counts[k] = c
		}
	}
	if alert {
		c[1]++
	} else {
		c[0]++
	}
}

// widen doubles the buckets' width.
func (t *timeline) widen() {
	t.width *= 2
	m := make(map[int64]*[2]uint64, len(t.counts)/2+1)
	for k, c := range t.counts {
		nk := floorDiv(k, 2)
		if d := m[nk]; d != nil {
			d[0] += c[0]
			d[1] += c[1]
		} else {
			m[nk] = c
		}
	}
	t.counts = m
}

// niceWidths are the widths a chart's bars take, smallest first.
var niceWidths = []time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour,
}

// Timeline is the timeline chart's data: one bar per Width from Start.
type Timeline struct {
	Start  time.Time     `json:"-"`
	Width  time.Duration `json:"-"`
	Labels []string      `json:"labels"`
	Flows  []uint64      `json:"flows"`
	Alerts []uint64      `json:"alerts"`
	// AlertsOutside are alerts dated outside the flows' time (the day's
	// top senders are dated at the day's end), not drawn.
	AlertsOutside uint64 `json:"-"`
}

// bars lays the counts out over the flows' time (the alerts' when there
// are no flows) as at most maxBars bars of a width from niceWidths (or a
// wider multiple of the stored width), empty ones too.
func (t *timeline) bars() Timeline {
	keys := make([]int64, 0, len(t.counts))
	for k := range t.counts {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return Timeline{}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	first, last := keys[0], keys[len(keys)-1]
	fi, li := -1, -1 // the first and last buckets with flows
	for i, k := range keys {
		if t.counts[k][0] > 0 {
			if fi < 0 {
				fi = i
			}
			li = i
		}
	}
	if fi >= 0 {
		first, last = keys[fi], keys[li]
	}
	lo, hi := first*t.width, (last+1)*t.width
	w := int64(0)
	for _, n := range niceWidths {
		if int64(n)%t.width == 0 && (hi-lo)/int64(n) < maxBars {
			w = int64(n)
			break
		}
	}
	if w == 0 {
		w = t.width
		for (hi-lo)/w >= maxBars {
			w *= 2
		}
	}
	b0 := floorDiv(lo, w)
	n := floorDiv(hi-1, w) - b0 + 1
	tl := Timeline{Start: time.Unix(0, b0*w).UTC(), Width: time.Duration(w),
		Labels: make([]string, n), Flows: make([]uint64, n), Alerts: make([]uint64, n)}
	for _, k := range keys {
		c := t.counts[k]
		if k < first || k > last {
			tl.AlertsOutside += c[1]
			continue
		}
		i := floorDiv(k*t.width, w) - b0
		tl.Flows[i] += c[0]
		tl.Alerts[i] += c[1]
	}
	layout := timeLayout(time.Duration(w), time.Duration(hi-lo))
	for i := range tl.Labels {
		tl.Labels[i] = time.Unix(0, (b0+int64(i))*w).UTC().Format(layout)
	}
	return tl
}

// timeLayout is how a bar's start is written: the date only when the
// span crosses days, fractions of a second only when bars are that short.
func timeLayout(width, span time.Duration) string {
	l := "15:04:05"
	switch {
	case width < 100*time.Millisecond:
		l = "15:04:05.00"
	case width < time.Second:
		l = "15:04:05.0"
	case width >= time.Minute:
		l = "15:04"
	}
	if span >= 24*time.Hour {
		l = "2006-01-02 " + l
	}
	return l
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
