package conformance

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var quicRecording = filepath.Join("..", "pcaps", "outflow-quic.pcap")

// ja4FromTshark builds FoxIO's JA4 (QUIC variant) from tshark's dissection
// of a ClientHello: its own reading of the fields, not ours.
func ja4FromTshark(t *testing.T, ciphers, exts, sigs, sigLens, alpn, sni, versions string) string {
	t.Helper()
	grease := func(s string) bool {
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 16)
		return err == nil && v&0x0f0f == 0x0a0a && v>>8 == v&0xff
	}
	split := func(s string) []string {
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f != "" && !grease(f) {
				out = append(out, f)
			}
		}
		return out
	}
	hex4 := func(s string) string {
		if strings.HasPrefix(s, "0x") {
			return strings.ToLower(strings.TrimPrefix(s, "0x"))
		}
		v, _ := strconv.Atoi(s)
		return fmt.Sprintf("%04x", v)
	}
	cs, es := split(ciphers), split(exts)
	version := "00"
	for _, v := range split(versions) {
		if v == "0x0304" {
			version = "13"
		}
	}
	d := "i"
	if sni != "" {
		d = "d"
	}
	a := "00"
	if alpn != "" {
		first := strings.Split(alpn, ",")[0]
		a = first[:1] + first[len(first)-1:]
	}
	var sortedC []string
	for _, c := range cs {
		sortedC = append(sortedC, hex4(c))
	}
	sort.Strings(sortedC)
	var sortedE []string
	for _, e := range es {
		if h := hex4(e); h != "0000" && h != "0010" {
			sortedE = append(sortedE, h)
		}
	}
	sort.Strings(sortedE)
	// tshark lists signature_algorithms and signature_algorithms_cert in
	// one field; the first length is the former's.
	sigList := split(sigs)
	if l := strings.Split(sigLens, ","); len(l) > 0 {
		if n, err := strconv.Atoi(l[0]); err == nil && n/2 <= len(sigList) {
			sigList = sigList[:n/2]
		}
	}
	var sg []string
	for _, s := range sigList {
		sg = append(sg, hex4(s))
	}
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])[:12]
	}
	c := strings.Join(sortedE, ",")
	if len(sg) > 0 {
		c += "_" + strings.Join(sg, ",")
	}
	return fmt.Sprintf("q%s%s%02d%02d%s_%s_%s", version, d, min(len(cs), 99), min(len(es), 99), a, h(strings.Join(sortedC, ",")), h(c))
}

// TestQUICRecording: pcaps/outflow-quic.pcap holds HTTP/3 from quic-go over
// QUIC v1 and v2 (pcaps/record-quic.sh). Each connection reads as QUIC with
// the SNI, ALPN and version the client and server reported and, for v1
// (tshark 4.0 does not decrypt v2 Initials), the SNI, ALPN and JA4 that
// tshark's dissection of the ClientHello gives; its UDP payload bytes per
// direction equal tshark's sums, and its post-handshake payload reads
// encrypted.
func TestQUICRecording(t *testing.T) {
	if _, err := os.Stat(quicRecording); err != nil {
		t.Fatalf("the recording is part of the repository: %v", err)
	}
	recs, _ := replay(t, options{files: []string{quicRecording}, table: inspectConfig(), workers: 1, final: true})
	byPort := map[string]*Flow{}
	for i, r := range recs {
		if r.Proto == "udp" && decimal(r.RespP) == "443" {
			byPort[decimal(r.OrigP)] = &recs[i]
		}
	}
	// What the programs said, by client port and version.
	f, err := os.Open(filepath.Join("..", "pcaps", "reported", "quic-server.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type seen struct{ sni, alpn string }
	server := map[string]seen{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		port := fmt.Sprint(m["remote"])
		port = port[strings.LastIndexByte(port, ':')+1:]
		server[port] = seen{fmt.Sprint(m["sni"]), fmt.Sprint(m["alpn"])}
	}
	if len(server) != 2 || len(byPort) != 2 {
		t.Fatalf("%d connections reported by the server, %d QUIC flows replayed", len(server), len(byPort))
	}
	versions := map[string]bool{}
	for port, s := range server {
		r := byPort[port]
		if r == nil {
			t.Errorf("no flow from client port %s", port)
			continue
		}
		q := r.QUIC
		if r.AppProto != "quic" || q == nil {
			t.Errorf("%s: app_proto %v quic %+v", port, r.AppProto, r.QUIC)
			continue
		}
		if q.SNI != s.sni || r.ServerName != s.sni || fmt.Sprint(q.ALPN) != "["+s.alpn+"]" {
			t.Errorf("%s: sni %v alpn %v server_name %v; the server saw %+v", port, q.SNI, q.ALPN, r.ServerName, s)
		}
		versions[q.Version] = true
		pc := r.PayloadClass
		if pc["orig"] != "encrypted" || pc["resp"] != "encrypted" {
			t.Errorf("%s: payload_class %v", port, r.PayloadClass)
		}
	}
	if !versions["1"] || !versions["2"] {
		t.Errorf("versions %v, the clients used v1 and v2", versions)
	}

	hellos := tshark(t, "-r", quicRecording, "-Y", "quic.long.packet_type==0 && tls.handshake.type==1", "-T", "fields",
		"-e", "udp.srcport", "-e", "tls.handshake.ciphersuite", "-e", "tls.handshake.extension.type",
		"-e", "tls.handshake.sig_hash_alg", "-e", "tls.handshake.sig_hash_alg_len", "-e", "tls.handshake.extensions_alpn_str",
		"-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.extensions.supported_version")
	if len(hellos) == 0 {
		t.Fatal("tshark found no QUIC ClientHello")
	}
	for _, h := range hellos {
		for len(h) < 8 {
			h = append(h, "")
		}
		var q *QUIC
		if r := byPort[h[0]]; r != nil {
			q = r.QUIC
		}
		if q == nil {
			t.Errorf("port %s: no quic key", h[0])
			continue
		}
		want := ja4FromTshark(t, h[1], h[2], h[3], h[4], h[5], h[6], h[7])
		if q.JA4 != want || q.SNI != h[6] || fmt.Sprint(q.ALPN) != "["+strings.ReplaceAll(h[5], ",", " ")+"]" {
			t.Errorf("port %s: ja4 %v sni %v alpn %v; tshark: %s %s %s", h[0], q.JA4, q.SNI, q.ALPN, want, h[6], h[5])
		}
	}
	// Bytes per direction: tshark's UDP lengths less the header.
	sums := map[string]uint64{}
	for _, row := range tshark(t, "-r", quicRecording, "-Y", "udp.port==443", "-T", "fields",
		"-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.length") {
		n, _ := strconv.ParseUint(row[2], 10, 64)
		sums[row[0]+">"+row[1]] += n - 8
	}
	for port, r := range byPort {
		if o, rs := value(r.OrigBytes), value(r.RespBytes); o != sums[port+">443"] || rs != sums["443>"+port] {
			t.Errorf("%s: orig_bytes %d resp_bytes %d; tshark %d, %d", port, o, rs, sums[port+">443"], sums["443>"+port])
		}
	}
	t.Logf("%d QUIC connections (v1 and v2) agree with quic-go's reports and tshark", len(byPort))
}
