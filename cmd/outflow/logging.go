package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

// logLines turns the sensor's problem lines (one per bad file, record or
// datagram, naming source and offset) into warnings of the process's
// logger, so they share its levels and format.
type logLines struct{ log *slog.Logger }

func (l logLines) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		msg := strings.TrimPrefix(string(line), "outflow: ")
		l.log.Log(context.Background(), slog.LevelWarn, msg)
	}
	return len(p), nil
}
