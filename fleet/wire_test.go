package fleet

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// samples are one observation of each kind.
var samples = []detect.Observation{
	{Kind: detect.ObsPrevalence, Sensor: "s1", Dest: "new.example", HostHash: 0x0123456789abcdef, First: t0.Add(-time.Hour), Time: t0},
	{Kind: detect.ObsUpload, Sensor: "s2", Host: "10.77.0.11", PeerGroup: "lab-clients", Day: 20516, Bytes: 5 << 20},
	{Kind: detect.ObsUpload, Sensor: "s2", Host: "fd00::1", Day: 20516, Bytes: 1},
	{Kind: detect.ObsFirstUpload, Sensor: "sensor-3.example", Host: "10.0.3.3", Time: t0},
}

func TestWireRoundTrip(t *testing.T) {
	for _, o := range samples {
		b := Append(nil, o.Sensor, &o)
		var got detect.Observation
		if err := Decode(b, &got); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Errorf("got %+v, want %+v", got, o)
		}
		// Fields a later version 1 adds at the end are skipped.
		if err := Decode(append(b, 1, 2, 3), &got); err != nil || !reflect.DeepEqual(got, o) {
			t.Errorf("with trailing bytes: %v %+v", err, got)
		}
		// Every cut is refused as truncated, never read as something else.
		for n := 0; n < len(b); n++ {
			if err := Decode(b[:n], &got); !errors.Is(err, ErrTruncated) {
				t.Errorf("%+v cut to %d bytes: %v", o, n, err)
			}
		}
	}
}

// TestWireBytes pins the layout docs/fleet.md gives, byte for byte.
func TestWireBytes(t *testing.T) {
	o := detect.Observation{Kind: detect.ObsFirstUpload, Host: "10.0.3.3", Time: time.Unix(0, 1)}
	want := []byte{1, 3, 2, 's', '1', 8, '1', '0', '.', '0', '.', '3', '.', '3', 2}
	if got := Append(nil, "s1", &o); !reflect.DeepEqual(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
	if k := string(AppendKey(nil, "s1", &o)); k != "f|s1|10.0.3.3" {
		t.Errorf("key %q", k)
	}
}

func TestWireRefuses(t *testing.T) {
	good := Append(nil, "s1", &samples[1])
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"version 2", append([]byte{2}, good[1:]...), ErrVersion},
		{"kind 9", append([]byte{1, 9}, good[2:]...), ErrMalformed},
		{"empty sensor", []byte{1, 2, 0}, ErrMalformed},
		{"host not an address", Append(nil, "s1", &detect.Observation{Kind: detect.ObsUpload, Host: "ws1", Day: 1}), ErrMalformed},
		{"host not canonical", Append(nil, "s1", &detect.Observation{Kind: detect.ObsUpload, Host: "fd00:0::1", Day: 1}), ErrMalformed},
		{"host mapped", Append(nil, "s1", &detect.Observation{Kind: detect.ObsUpload, Host: "::ffff:10.0.0.1", Day: 1}), ErrMalformed},
		{"day 0", Append(nil, "s1", &detect.Observation{Kind: detect.ObsUpload, Host: "10.0.0.1"}), ErrMalformed},
		{"no time", Append(nil, "s1", &detect.Observation{Kind: detect.ObsFirstUpload, Host: "10.0.0.1"}), ErrMalformed},
		{"control character", Append(nil, "s\n1", &samples[0]), ErrMalformed},
		{"huge length", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrMalformed},
		{"overlong varint", []byte{1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrMalformed},
	} {
		var o detect.Observation
		err := Decode(c.b, &o)
		var de *DecodeError
		if !errors.Is(err, c.err) || !errors.As(err, &de) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

// FuzzDecode: any bytes give an observation or a *DecodeError, never a
// panic; what decodes encodes back to the same observation.
func FuzzDecode(f *testing.F) {
	for _, o := range samples {
		b := Append(nil, o.Sensor, &o)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var o detect.Observation
		err := Decode(b, &o)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(b) {
				t.Fatalf("error %v is not a DecodeError within the message", err)
			}
			return
		}
		var again detect.Observation
		if err := Decode(Append(nil, o.Sensor, &o), &again); err != nil || !reflect.DeepEqual(again, o) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", o, again, err)
		}
	})
}

// BenchmarkDecode: reading one prevalence observation, the most common.
func BenchmarkDecode(b *testing.B) {
	m := Append(nil, samples[0].Sensor, &samples[0])
	var o detect.Observation
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := Decode(m, &o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend: writing one, key and value, into reused buffers.
func BenchmarkAppend(b *testing.B) {
	var k, v []byte
	b.SetBytes(int64(len(Append(nil, samples[0].Sensor, &samples[0]))))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k = AppendKey(k[:0], "s1", &samples[0])
		v = Append(v[:0], "s1", &samples[0])
	}
}

func TestConfigRefused(t *testing.T) {
	eng := detect.New(detect.Compiled(), detect.NewState(32<<20), nil, func(*detect.Alert) {})
	for _, c := range []Config{
		{},
		{Brokers: []string{"kafka:9092"}, SensorID: "a|b"},
		{Brokers: []string{"kafka:9092"}, Topic: "outflow fleet"},
		{Brokers: []string{"kafka:9092/x"}},
		{Brokers: []string{"kafka:9092"}, Backlog: -1},
	} {
		if _, err := New(c, eng); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	f, err := New(Config{Brokers: []string{"kafka:9092"}}, eng)
	if err != nil || f.SensorID() == "" || f.Topics()[0] != "outflow.prevalence" {
		t.Fatalf("defaults: %v %+v", err, f)
	}
	f.Stop() // never started: nothing to stop
}
