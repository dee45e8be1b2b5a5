package encode

import (
	"encoding/json"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/outflow-sensor/outflow/flows"
)

// jwDepth bounds the nesting of objects the encoders write (event.*,
// process.parent.*, outflow.entropy.orig.*: three).
const jwDepth = 6

// jw writes one JSON object of nested objects in one pass over a record.
// An object is begun by name but written only with its first member, so
// one that has nothing to say leaves no "{}" behind, and no member needs
// to know whether it is the first.
type jw struct {
	b     []byte
	depth int // objects begun
	open  int // of those, written (open <= depth)
	names [jwDepth + 1]string
	some  [jwDepth + 1]bool // the written object at a level has a member
}

func (w *jw) begin(name string) {
	w.depth++
	w.names[w.depth] = name
}

func (w *jw) end() {
	if w.open == w.depth {
		w.b = append(w.b, '}')
		w.open--
	}
	w.depth--
}

// key writes the objects begun but not yet written, then `"k":`.
func (w *jw) key(k string) {
	for w.open < w.depth {
		w.member(w.names[w.open+1])
		w.b = append(w.b, '{')
		w.open++
		w.some[w.open] = false
	}
	w.member(k)
}

func (w *jw) member(k string) {
	b := w.b // one load and store of the slice, not one per append
	if w.some[w.open] {
		b = append(b, ',')
	}
	w.some[w.open] = true
	b = append(b, '"')
	b = append(b, k...)
	w.b = append(b, '"', ':')
}

func (w *jw) raw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
}

// lit writes a string the encoder chose (a constant, a name from a
// table), which needs no escaping.
func (w *jw) lit(k, v string) {
	w.key(k)
	b := append(w.b, '"')
	b = append(b, v...)
	w.b = append(b, '"')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = flows.AppendJSONString(w.b, v)
}

// optStr writes a string that is not empty; ECS leaves out what is not
// known.
func (w *jw) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jw) strs(k string, v []string) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = flows.AppendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// strs1 writes a one-string array, for the fields ECS normalises to
// arrays.
func (w *jw) strs1(k, v string) {
	w.key(k)
	w.b = append(w.b, '[')
	w.b = flows.AppendJSONString(w.b, v)
	w.b = append(w.b, ']')
}

func (w *jw) u64(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jw) i64(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// keywordUint writes a number as a string, for ECS keyword fields that
// hold numbers (VLAN ids).
func (w *jw) keywordUint(k string, v uint64) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '"')
}

// float writes v unless it is NaN or infinite, which JSON cannot hold.
func (w *jw) float(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	w.key(k)
	w.b = appendFloat(w.b, v)
}

func (w *jw) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

// ip writes an address without its IPv6 zone: ECS's ip type has none, and
// a zone is any text (netip parses "fe80::1%a\"b" from a host event), so
// written as it is it could end the JSON string. FuzzStrings found it.
func (w *jw) ip(a netip.Addr) {
	w.b = append(w.b, '"')
	w.b = a.WithZone("").AppendTo(w.b)
	w.b = append(w.b, '"')
}

func (w *jw) timestamp(ns int64) {
	w.b = append(w.b, '"')
	w.b = appendTimestamp(w.b, ns)
	w.b = append(w.b, '"')
}

// time writes t as RFC 3339 in UTC; outside the years Unix nanoseconds
// hold (1678 to 2261), through the time package.
func (w *jw) time(t time.Time) {
	if y := t.Year(); y > 1678 && y < 2261 {
		w.timestamp(t.UnixNano())
		return
	}
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// appendFloat writes a finite float as JSON does: plain decimals for
// ordinary magnitudes, an exponent for the rest.
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(dst, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

// appendAny writes a value of an alert's evidence. The analytics put
// numbers, strings, booleans and times there; the common kinds are
// written here, the rest as encoding/json would, and a value it cannot
// write is null. Map keys are sorted, as encoding/json sorts them.
func appendAny(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return flows.AppendJSONString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...)
		}
		return appendFloat(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case []string:
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = flows.AppendJSONString(dst, s)
		}
		return append(dst, ']')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAny(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = flows.AppendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendAny(dst, x[k])
		}
		return append(dst, '}')
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}
