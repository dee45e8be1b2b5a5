package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// formatBytes writes a byte count as a person reads it: 1.5 MiB.
func formatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	v, unit := float64(n), 0
	for v >= 1024 && unit < 6 {
		v /= 1024
		unit++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + "BKMGTPE"[unit:unit+1] + "iB"
}

// formatCount writes a count with thousands separated: 1,590,172.
func formatCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatFloat writes a number as short as it is exact to three places.
func formatFloat(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// facts writes an evidence map as named values, by name. Thresholds keep
// their config keys' names, which the docs and outflow.yaml use; the
// measured values and the baseline are written in words.
func facts(m map[string]any, thresholds bool) []Fact {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fs := make([]Fact, 0, len(keys))
	for _, k := range keys {
		name := k
		isBytes := strings.HasSuffix(k, "VolumeThreshold") || strings.HasSuffix(k, "UploadThreshold") ||
			strings.HasSuffix(k, "TransferThreshold")
		if !thresholds {
			name = strings.ReplaceAll(k, "_", " ")
			isBytes = k == "bytes" || strings.HasSuffix(k, "_bytes")
		}
		fs = append(fs, Fact{Name: name, Value: factValue(m[k], isBytes, 0)})
	}
	return fs
}

// factValue writes one evidence value: bytes with their unit, yes and
// no, times in UTC, maps as name value pairs.
func factValue(v any, isBytes bool, depth int) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		if isBytes && x >= 0 && x < 1<<63 && x == math.Trunc(x) {
			n := uint64(x)
			if n < 1024 {
				return formatCount(n) + " bytes"
			}
			return formatBytes(n) + " (" + formatCount(n) + " bytes)"
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			if x < 0 {
				return "-" + formatCount(uint64(-x))
			}
			return formatCount(uint64(x))
		}
		return formatFloat(x)
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
		}
		return x
	case []any:
		if depth > 3 {
			return "…"
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = factValue(e, isBytes, depth+1)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if depth > 3 {
			return "…"
		}
		var parts []string
		for _, f := range facts(x, false) {
			parts = append(parts, f.Name+" "+f.Value)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// missingWords says in words what an alert's "missing" entry means.
func missingWords(m string) string {
	switch m {
	case "process":
		return "which process made the flow: no host event or /proc entry matched it"
	case "payload":
		return "the payload: the flow came from a router's export, so entropy and handshakes are unknown"
	case "crypto module load":
		return "a crypto library loaded by the process: no module-load event named one"
	}
	return m
}
