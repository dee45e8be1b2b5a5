package sensor

import (
	"io"
	"net/netip"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/sensor/encode"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// Output is records of one format and the sinks that take them. Records
// are encoded once per output, at the edge, whatever the number of sinks.
type Output struct {
	Format encode.Format
	Sinks  []sink.Sink
}

// outputsOf adds a plain writer of JSON lines (a test, a pipe) to the
// outputs, behind the mutex a writer needs.
func outputsOf(w io.Writer, outs []Output) ([]Output, *lineWriter) {
	if w == nil {
		return outs, nil
	}
	lw := &lineWriter{w: w}
	return append([]Output{{Format: encode.JSON, Sinks: []sink.Sink{writerSink{lw}}}}, outs...), lw
}

// writerSink is a lineWriter as a sink: started, stopped and counted by
// whoever owns the writer.
type writerSink struct{ lw *lineWriter }

func (w writerSink) Name() string             { return "writer" }
func (w writerSink) Start() error             { return nil }
func (w writerSink) WriteBatch(b *sink.Batch) { w.lw.write(b.Data) }
func (w writerSink) Reopen() error            { return nil }
func (w writerSink) Stop() error              { return nil }
func (w writerSink) Stats() sink.Stats        { return sink.Stats{Name: "writer"} }

// encoder is one output as a stage fills it: the batch it encodes into.
type encoder struct {
	Output
	b sink.Batch
}

func encoders(outs []Output) []encoder {
	es := make([]encoder, len(outs))
	for i, o := range outs {
		es[i] = encoder{Output: o, b: sink.Batch{Data: make([]byte, 0, 1<<16)}}
	}
	return es
}

// flow encodes one record into every output's batch.
func (e *encoder) flow(f *record.Flow) {
	e.b.Data = e.Format.AppendFlow(e.b.Data, f)
	e.b.End(f.HomeHost())
}

// alert encodes one alert into the batch.
func (e *encoder) alert(a *detect.Alert) {
	e.b.Data = e.Format.AppendAlert(e.b.Data, a)
	var key netip.Addr
	if a.Host != nil {
		key, _ = netip.ParseAddr(a.Host.IP)
	}
	e.b.End(key)
}

// flush hands the batch to every sink and empties it.
func (e *encoder) flush() {
	if e.b.Len() == 0 {
		return
	}
	for _, s := range e.Sinks {
		s.WriteBatch(&e.b)
	}
	e.b.Reset()
}
