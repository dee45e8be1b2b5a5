package conformance

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// tshark runs Debian's tshark, the independent dissector these tests compare
// with, and returns its tab-separated field rows.
func tshark(t *testing.T, args ...string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		shared.Missing(t, "tshark (Debian package tshark)", err)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows
}

// TestDemoTLSMatchesTshark: for every TLS connection of the recording, JA3,
// JA3S, their strings and the SNI equal what tshark dissects.
func TestDemoTLSMatchesTshark(t *testing.T) {
	recs, _ := replay(t, options{files: []string{demo}, table: inspectConfig(), workers: 1, final: true})
	byPort := map[string]Flow{}
	for _, r := range recs {
		byPort[decimal(r.OrigP)] = r
	}
	hellos := tshark(t, "-r", demo, "-Y", "tls.handshake.type==1", "-T", "fields",
		"-e", "tcp.srcport", "-e", "tls.handshake.ja3", "-e", "tls.handshake.ja3_full", "-e", "tls.handshake.extensions_server_name")
	servers := tshark(t, "-r", demo, "-Y", "tls.handshake.type==2", "-T", "fields",
		"-e", "tcp.dstport", "-e", "tls.handshake.ja3s", "-e", "tls.handshake.ja3s_full")
	if len(hellos) < 2 || len(servers) != len(hellos) {
		t.Fatalf("tshark found %d ClientHellos and %d ServerHellos", len(hellos), len(servers))
	}
	for _, h := range hellos {
		tl := byPort[h[0]].TLS
		if tl == nil {
			t.Errorf("port %s: no tls on the record", h[0])
			continue
		}
		if tl.JA3 != h[1] || tl.JA3String != h[2] || tl.SNI != h[3] {
			t.Errorf("port %s: ja3 %v %v sni %v; tshark %v %v %v", h[0], tl.JA3, tl.JA3String, tl.SNI, h[1], h[2], h[3])
		}
		if !tl.Established {
			t.Errorf("port %s: not established", h[0])
		}
	}
	for _, s := range servers {
		tl := byPort[s[0]].TLS
		if tl == nil || tl.JA3S != s[1] || tl.JA3SString != s[2] {
			t.Errorf("port %s: tls %v; tshark ja3s %v %v", s[0], tl, s[1], s[2])
		}
	}
}

// TestDemoPayloadClasses: the uploads curl made are classified by what they
// were (pcaps/record.sh made them: gzip output, a text file, random bytes),
// the openssl enc stream has no handshake and reads as encrypted, and the
// request body sizes equal curl's own size_upload.
func TestDemoPayloadClasses(t *testing.T) {
	recs, _ := replay(t, options{files: []string{demo}, table: inspectConfig(), workers: 1, final: true})
	byPort := map[string]*Flow{}
	for i, r := range recs {
		byPort[decimal(r.OrigP)] = &recs[i]
	}
	rep := filepath.Join("..", "pcaps", "reported")
	for file, class := range map[string]string{
		"curl-upload-gzip.json":   "compressed",
		"curl-upload-text.json":   "text",
		"curl-upload-random.json": "encrypted",
	} {
		var w map[string]any
		raw, err := os.ReadFile(filepath.Join(rep, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		r := byPort[strconv.Itoa(int(w["local_port"].(float64)))]
		if r == nil {
			t.Fatalf("%s: no record for port %v", file, w["local_port"])
		}
		pc := r.PayloadClass
		if pc["orig"] != class {
			t.Errorf("%s: orig payload_class %v, want %s (entropy %v)", file, pc["orig"], class, r.Entropy)
		}
		h := r.HTTP
		if r.AppProto != "http" || h == nil || float64(h.RequestBodyBytes) != num(w["size_upload"]) || h.Method != w["method"] {
			t.Errorf("%s: app_proto %v http %+v; curl uploaded %v with %v", file, r.AppProto, h, w["size_upload"], w["method"])
		}
	}
	var raw *Flow
	for i, r := range recs {
		if decimal(r.RespP) == "9443" {
			raw = &recs[i]
		}
	}
	if raw == nil {
		t.Fatal("no record of the openssl enc stream on port 9443")
	}
	pc := raw.PayloadClass
	if raw.TLS != nil || raw.AppProto != "unknown" || pc["orig"] != "encrypted" {
		t.Errorf("openssl enc stream: app_proto %v tls %+v class %v", raw.AppProto, raw.TLS, pc)
	}
	// socat dialled the address, but the client had resolved it by name
	// (record.sh's NAME) just before: the DNS answer names the flow.
	if raw.ServerName != "files.example-storage.test" {
		t.Errorf("openssl enc stream: server_name %v, want the name the client resolved", raw.ServerName)
	}
	// The entropy of the first 4096 bytes, computed here from tshark's copy
	// of the same payload.
	rows := tshark(t, "-r", demo, "-Y", "tcp.dstport==9443 && tcp.len>0", "-T", "fields", "-e", "tcp.seq", "-e", "tcp.payload")
	var stream []byte
	for _, row := range rows {
		seq, _ := strconv.Atoi(row[0])
		b, err := hex.DecodeString(row[1])
		if err != nil {
			t.Fatal(err)
		}
		if seq-1 == len(stream) { // tshark's relative sequence numbers start at 1
			stream = append(stream, b...)
		}
	}
	if len(stream) < 4096 {
		t.Fatalf("tshark gave %d in-order bytes", len(stream))
	}
	var counts [256]float64
	for _, c := range stream[:4096] {
		counts[c]++
	}
	want := 0.0
	for _, c := range counts {
		if c > 0 {
			p := c / 4096
			want -= p * math.Log2(p)
		}
	}
	ent := raw.Entropy["orig"]
	if got := ent.Bits; math.Abs(got-want) > 1e-4 || ent.N != 4096 {
		t.Errorf("entropy %v over %v bytes, computed from tshark's bytes %.4f over 4096", got, ent.N, want)
	}
}
