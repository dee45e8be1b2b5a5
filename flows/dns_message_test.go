package flows

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// dnsPayloads returns the UDP port 53 payloads of a capture.
func dnsPayloads(t testing.TB, path string) [][]byte {
	frames, lt := readAll(t, path)
	d := NewDecoder()
	var out [][]byte
	for _, f := range frames {
		pkts, _ := d.Decode(f, lt, 0)
		for _, p := range pkts {
			if p.Proto == 17 && (p.SrcPort == 53 || p.DstPort == 53) && len(p.Payload) > 0 {
				out = append(out, bytes.Clone(p.Payload))
			}
		}
	}
	return out
}

// TestParseDNSMessageAgreesWithGopacket reads every DNS message of real
// captures (the iodine and dns2tcp recording, nDPI's exfiltration tests,
// a Windows host's DNS beside a C2) and gets the question, the flags and
// the answer section's types and RDATA sizes that gopacket's DNS layer
// decodes from the same bytes.
func TestParseDNSMessageAgreesWithGopacket(t *testing.T) {
	files := []string{"../pcaps/outflow-dnstunnel.pcap",
		shared.Path(t, "ndpi/tests/cfgs/default/pcap/dns_exfiltration.pcap"),
		shared.Path(t, "ndpi/tests/cfgs/default/pcap/dns-exf.pcap"),
		shared.Path(t, "hostlogs/otrf-lsass-metasploit/metasploit_logonpasswords_lsass_memory_dump.c2-and-dns.pcapng")}
	var m DNSMessage
	var ref layers.DNS
	checked := 0
	for _, f := range files {
		for _, b := range dnsPayloads(t, f) {
			if err := ref.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil || len(ref.Questions) == 0 {
				continue
			}
			if err := ParseDNSMessage(&m, b); err != nil {
				t.Fatalf("%s: %v on a message gopacket reads", f, err)
			}
			q := ref.Questions[0]
			if !bytes.Equal(m.Name, asciiLower(q.Name)) || m.QType != uint16(q.Type) || m.Response != ref.QR ||
				m.RCode != uint8(ref.ResponseCode) || m.Partial {
				t.Fatalf("%s: got %q %d %v %d, gopacket %q %d %v %d", f, m.Name, m.QType, m.Response, m.RCode,
					q.Name, q.Type, ref.QR, ref.ResponseCode)
			}
			var n [NumDNSAnswerKinds]uint16
			var nb [NumDNSAnswerKinds]uint32
			for _, a := range ref.Answers {
				k := answerKind(uint16(a.Type))
				n[k]++
				nb[k] += uint32(a.DataLength)
			}
			if n != m.Answers || nb != m.AnswerBytes {
				t.Fatalf("%s: %q answers %v %v, gopacket %v %v", f, m.Name, m.Answers, m.AnswerBytes, n, nb)
			}
			checked++
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d messages compared", checked)
	}
	t.Logf("%d messages agree", checked)
}

// TestParseDNSMessageErrors: a message cut before its question ends is
// truncated; one whose pointer loops or points forwards is malformed; an
// answer section the capture cut short keeps the question.
func TestParseDNSMessageErrors(t *testing.T) {
	hdr := []byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}
	q := append(append([]byte{}, hdr...), 3, 'W', 'w', 'W', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1)
	ans := append(append([]byte{}, q...), 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1)
	var m DNSMessage
	if err := ParseDNSMessage(&m, ans); err != nil || string(m.Name) != "www.example.com" || m.Answers[DNSAnswerAddr] != 1 ||
		m.AnswerBytes[DNSAnswerAddr] != 4 || !m.Response {
		t.Fatalf("%v %q %v", err, m.Name, m.Answers)
	}
	if err := ParseDNSMessage(&m, ans[:len(ans)-2]); err != nil || !m.Partial || string(m.Name) != "www.example.com" {
		t.Fatalf("cut answer: %v partial %v", err, m.Partial)
	}
	if err := ParseDNSMessage(&m, q[:20]); !errors.Is(err, ErrDNSTruncated) {
		t.Fatalf("cut question: %v", err)
	}
	loop := append(append([]byte{}, hdr...), 0xc0, 12, 0, 1, 0, 1)
	if err := ParseDNSMessage(&m, loop); !errors.Is(err, ErrDNSMalformed) {
		t.Fatalf("pointer to itself: %v", err)
	}
	noq := append([]byte{}, hdr...)
	noq[5] = 0
	if err := ParseDNSMessage(&m, noq); !errors.Is(err, ErrDNSMalformed) {
		t.Fatalf("no question: %v", err)
	}
}

// TestDNSMessageTapAllocs: handing a DNS message to the callback
// allocates nothing, whatever its answers (gopacket's layer allocates
// for TXT and OPT records, so the tap has a parser of its own).
func TestDNSMessageTapAllocs(t *testing.T) {
	msgs := dnsPayloads(t, "../pcaps/outflow-dnstunnel.pcap")
	var m DNSMessage
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		_ = ParseDNSMessage(&m, msgs[i%len(msgs)])
		i++
	}); n != 0 {
		t.Fatalf("%v allocations per message", n)
	}
}

// TestDNSMessageEveryMessage: a table with the callback set hands it
// every DNS message of the recording's flows, not only each flow's first
// query and answer.
func TestDNSMessageEveryMessage(t *testing.T) {
	frames, lt := readAll(t, "../pcaps/outflow-dnstunnel.pcap")
	want := len(dnsPayloads(t, "../pcaps/outflow-dnstunnel.pcap"))
	cfg := DefaultConfig()
	cfg.Inspect = DefaultInspectConfig()
	got := 0
	cfg.Inspect.DNSMessage = func(m *DNSMessage) {
		if m.Server.Port() == 53 && len(m.Name) > 0 {
			got++
		}
	}
	tab := NewTable(cfg, func(*Record) {})
	d := NewDecoder()
	for _, f := range frames {
		pkts, _ := d.Decode(f, lt, 0)
		for i := range pkts {
			tab.Update(&pkts[i])
		}
	}
	if got != want {
		t.Fatalf("%d messages handed over, the capture holds %d", got, want)
	}
}

// FuzzParseDNSMessage: no input panics, a name never outgrows what the
// wire allows, and what parses is what gopacket reads when it reads it.
func FuzzParseDNSMessage(f *testing.F) {
	for i, b := range dnsPayloads(f, "../pcaps/outflow-dnstunnel.pcap") {
		if i%500 == 0 {
			f.Add(b)
		}
	}
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	var m DNSMessage
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ParseDNSMessage(&m, b)
		if err != nil && !errors.Is(err, ErrDNSTruncated) && !errors.Is(err, ErrDNSMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if len(m.Name) > dnsMaxName-1 {
			t.Fatalf("name of %d bytes", len(m.Name))
		}
	})
}

// asciiLower lowers A-Z only, as DNS compares names (RFC 4343).
func asciiLower(b []byte) []byte {
	c := bytes.Clone(b)
	for i, x := range c {
		if 'A' <= x && x <= 'Z' {
			c[i] = x + 'a' - 'A'
		}
	}
	return c
}
