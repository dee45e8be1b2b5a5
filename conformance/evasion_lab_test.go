package conformance

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/detect"
)

// TestEvasionLab replays the evasion lab (pcaps/record-evasion.sh, issue
// 15: scp, sftp and rsync over ssh, lftp, stunnel4, encrypted archives
// from 7z, gpg, age, openssl and zip, cipher streams behind a gzip or
// zstd magic, one-way UDP, and near misses) with the host events on-host
// attribution recorded at the same time, and gets exactly the alerts
// pcaps/evasion-expected.tsv lists, written before the recording. The
// flows' payload bytes are what the programs themselves reported.
func TestEvasionLab(t *testing.T) {
	cfg, err := detect.LoadConfig("../pcaps/evasion-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := options{files: []string{"../pcaps/outflow-evasion.pcap"}, hostEvents: []string{"../pcaps/outflow-evasion.events.jsonl"},
		table: inspectConfig(), detect: cfg}
	alerts, st := replayAlerts(t, o)
	if st.HostEvents == nil || st.HostEvents.Index.Joined == 0 {
		t.Fatalf("no flow joined to the recorded host events: %+v", st.HostEvents)
	}
	matchExpected(t, alerts, "../pcaps/evasion-expected.tsv")
	o.final = true
	fl, _ := replay(t, o)
	checkEvasionBytes(t, fl)
}

// checkEvasionBytes compares each flow's payload bytes with what the
// programs reported (pcaps/reported/evasion-*): socat's own count and the
// receiver's file for the raw streams, the size lftp and vsftpd gave for
// the FTP upload, tshark's payload of each ssh session (ssh's own counts
// as a floor), and, for the transfer
// whose segments a qdisc reordered (tshark saw segments below an earlier
// sequence number), nothing missed.
func checkEvasionBytes(t *testing.T, fl []Flow) {
	t.Helper()
	byPort := map[uint64][]Flow{}
	for _, f := range fl {
		if f.OrigH == "10.77.0.2" && f.RespH == "198.51.100.10" {
			byPort[f.RespP] = append(byPort[f.RespP], f)
		}
	}
	one := func(port uint64) *Flow {
		if len(byPort[port]) != 1 {
			t.Errorf("port %d: %d flows, want 1", port, len(byPort[port]))
			return nil
		}
		return &byPort[port][0]
	}
	payload := func(f *Flow) (orig, resp, missed uint64) {
		if f.OrigBytes != nil {
			orig = *f.OrigBytes
		}
		if f.RespBytes != nil {
			resp = *f.RespBytes
		}
		if f.MissedBytes != nil {
			missed = *f.MissedBytes
		}
		return
	}

	// Raw streams: socat's sum of its "transferred" lines, the
	// receiver's, and the received file's size must agree with the flow.
	b, err := os.ReadFile("../pcaps/reported/evasion-socat.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct {
			Port     uint64 `json:"port"`
			Sent     uint64 `json:"socat_sent"`
			Received uint64 `json:"receiver_transferred"`
			File     uint64 `json:"receiver_file_bytes"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("evasion-socat.jsonl: %v", err)
		}
		if r.Sent == 0 || r.Sent != r.Received || r.Sent != r.File {
			t.Errorf("port %d: socat sent %d, the receiver read %d and wrote %d", r.Port, r.Sent, r.Received, r.File)
		}
		f := one(r.Port)
		if f == nil {
			continue
		}
		orig, resp, missed := payload(f)
		if orig != r.Sent || resp != 0 || missed != 0 {
			t.Errorf("port %d: payload %d out, %d in, %d missed; socat sent %d", r.Port, orig, resp, missed, r.Sent)
		}
	}
	reorder, err := os.ReadFile("../pcaps/reported/evasion-reorder.txt")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`earlier sequence number\t(\d+)`).FindSubmatch(reorder); m == nil || string(m[1]) == "0" {
		t.Errorf("evasion-reorder.txt: no segment below an earlier sequence number: the recording was not reordered")
	}

	// lftp: the passive data connection carried the file; lftp and
	// vsftpd's transfer log say how big.
	lftp, _ := os.ReadFile("../pcaps/reported/evasion-lftp.txt")
	xfer, _ := os.ReadFile("../pcaps/reported/evasion-vsftpd-xferlog.txt")
	m := regexp.MustCompile(`(\d+) bytes transferred`).FindSubmatch(lftp)
	if m == nil {
		t.Fatalf("evasion-lftp.txt: no byte count")
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	if f := strings.Fields(string(xfer)); len(f) < 8 || f[7] != string(m[1]) {
		t.Errorf("vsftpd logged %q, lftp reported %d bytes", strings.TrimSpace(string(xfer)), n)
	}
	if f := one(30021); f != nil {
		if orig, _, missed := payload(f); orig != n || missed != 0 {
			t.Errorf("FTP data connection: %d bytes, %d missed; lftp put %d", orig, missed, n)
		}
	}

	// ssh sessions: ssh -v counts the bytes its packet layer sent and
	// received; the version line each side sends first comes on top.
	// sshd logged each session's client port, in the order the script ran
	// them.
	sshd, err := os.ReadFile("../pcaps/reported/evasion-sshd.txt")
	if err != nil {
		t.Fatal(err)
	}
	var clientPorts []uint64
	for _, m := range regexp.MustCompile(`Accepted publickey for \S+ from 10\.77\.0\.2 port (\d+)`).FindAllSubmatch(sshd, -1) {
		p, _ := strconv.ParseUint(string(m[1]), 10, 64)
		clientPorts = append(clientPorts, p)
	}
	tsharkSSH := map[string]uint64{}
	tb, err := os.ReadFile("../pcaps/reported/evasion-tshark-ssh-payload.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(tb)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 3 {
			n, _ := strconv.ParseUint(f[2], 10, 64)
			tsharkSSH[f[0]+"\t"+f[1]] = n
		}
	}
	for i, name := range []string{"scp", "sftp", "rsync", "git", "shell"} {
		b, err := os.ReadFile("../pcaps/reported/evasion-ssh-" + name + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		host := regexp.MustCompile(`Connecting to (\S+) `).FindStringSubmatch(s)
		local := regexp.MustCompile(`Local version string (.+)`).FindStringSubmatch(s)
		remote := regexp.MustCompile(`remote software version (.+)`).FindStringSubmatch(s)
		tr := regexp.MustCompile(`Transferred: sent (\d+), received (\d+) bytes`).FindStringSubmatch(s)
		if host == nil || local == nil || remote == nil || tr == nil {
			t.Errorf("evasion-ssh-%s.txt: incomplete", name)
			continue
		}
		sent, _ := strconv.ParseUint(tr[1], 10, 64)
		recv, _ := strconv.ParseUint(tr[2], 10, 64)
		sent += uint64(len(local[1]) + 2) // "SSH-2.0-..." CR LF
		recv += uint64(len("SSH-2.0-"+remote[1]) + 2)
		var f *Flow
		for j := range byPort[22] {
			if i < len(clientPorts) && byPort[22][j].OrigP == clientPorts[i] {
				f = &byPort[22][j]
			}
		}
		if f == nil {
			t.Errorf("ssh (%s to %s): no flow from the client port sshd logged (%v)", name, host[1], clientPorts)
			continue
		}
		// tshark's payload of the session (its highest next sequence
		// number each way, recorded beside the capture) must be the flow's
		// exactly. ssh's own counters are a floor: they count each packet
		// without its 16-byte Poly1305 tag (ssh_packet_get_bytes), so the
		// flow carries more, by about the tag per packet.
		orig, resp, missed := payload(f)
		port := strconv.FormatUint(f.OrigP, 10)
		if w := tsharkSSH[port+"\t22"]; orig != w || resp != tsharkSSH["22\t"+port] || missed != 0 {
			t.Errorf("ssh (%s): payload %d out, %d in, %d missed; tshark: %d and %d", name, orig, resp, missed, w, tsharkSSH["22\t"+port])
		}
		if orig < sent || resp < recv || orig-sent > orig/2 || resp-recv > resp/2 {
			t.Errorf("ssh (%s): payload %d out, %d in; ssh reported %d and %d with the version lines", name, orig, resp, sent, recv)
		}
	}
}
