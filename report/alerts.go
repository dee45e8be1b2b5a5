package report

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/outflow-sensor/outflow/detect"
)

// maxAlertLine bounds a partial alert line held between writes; a longer
// one is not an alert of ours, and is dropped and counted.
const maxAlertLine = 1 << 20

// Alerts returns a writer of alerts as JSON lines (Outflow's alert
// format), for sensor.Detection.Alerts: the report shows the very alerts
// the alert outputs got. Lines that are not alerts are counted, not
// kept. Every Alerts writer adds to the same report.
func (c *Collector) Alerts() io.Writer { return &alertWriter{c: c} }

// alertWriter splits what it is given into lines and decodes each.
type alertWriter struct {
	c       *Collector
	partial []byte // a line not yet ended
}

func (w *alertWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(w.partial)+len(p) > maxAlertLine {
				w.partial = w.partial[:0]
				w.c.alertErrors++
				return n, nil
			}
			w.partial = append(w.partial, p...)
			return n, nil
		}
		line := p[:i]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		p = p[i+1:]
		w.c.decodeAlert(line)
	}
	return n, nil
}

// decodeAlert keeps one alert line (the collector's lock held).
func (c *Collector) decodeAlert(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	a := new(detect.Alert)
	if err := json.Unmarshal(line, a); err != nil || a.Analytic == "" {
		c.alertErrors++
		return
	}
	c.addAlert(a)
}
