package conformance

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// zeekSSLDeviations are ssl.log rows Outflow reports differently on purpose.
var zeekSSLDeviations = map[string]string{
	"tcp 192.168.57.103:60108 -> 192.168.57.101:2811": "GridFTP's control channel carries its TLS handshake base64-encoded inside " +
		"RFC 2228 ADAT commands; Zeek's GridFTP script decodes them for its SSL analyzer, Outflow reads TLS records off the wire only",
}

// TestZeekSSLLogConformance: for every ssl.log row of the shared Zeek
// baselines, the flow record of the same connection has the handshake Zeek
// saw: the negotiated version, the SNI and whether the session was
// established, STARTTLS cases included. QUIC rows are checked for the SNI
// only: Zeek logs established=F for QUIC by design.
func TestZeekSSLLogConformance(t *testing.T) {
	rows := 0
	for _, c := range zeekCases(t) {
		if len(c.sslLogs) == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			var files []string
			for _, in := range c.inputs {
				files = append(files, shared.Path(t, in))
			}
			recs, _ := replay(t, options{files: files, table: inspectConfig(), workers: 1, final: true})
			got := map[string]*Flow{}
			for i, r := range recs {
				got[recordFlowKey(r)] = &recs[i]
			}
			for _, logPath := range c.sslLogs {
				for _, row := range readZeekLog(t, shared.Path(t, logPath)) {
					rows++
					proto := "tcp"
					if strings.Contains(logPath, "quic") {
						proto = "udp"
					}
					k := flowKey(proto, row["id.orig_h"], row["id.orig_p"], row["id.resp_h"], row["id.resp_p"])
					if why, ok := zeekSSLDeviations[k]; ok {
						t.Logf("%s: known deviation: %s", k, why)
						continue
					}
					r := got[k]
					if r == nil {
						t.Errorf("%s: %s: no flow record", filepath.Base(logPath), k)
						continue
					}
					checkSSLRow(t, k, row, *r, proto == "udp")
				}
			}
		})
	}
	t.Logf("%d ssl.log rows checked", rows)
}

func checkSSLRow(t *testing.T, k string, row zeekRow, r Flow, quic bool) {
	t.Helper()
	if quic {
		q := r.QUIC
		sni := "-"
		if q != nil && q.SNI != "" {
			sni = q.SNI
		}
		if sni != row["server_name"] {
			t.Errorf("%s: quic sni %v, Zeek has %s", k, sni, row["server_name"])
		}
		return
	}
	tl := r.TLS
	if tl == nil {
		t.Errorf("%s: no tls on the record (app_proto %v); Zeek: %v", k, r.AppProto, row)
		return
	}
	str := func(v string) string {
		if v != "" {
			return v
		}
		return "-"
	}
	if v := str(tl.Version); v != row["version"] {
		t.Errorf("%s: version %s, Zeek has %s", k, v, row["version"])
	}
	if v := str(tl.SNI); v != row["server_name"] {
		t.Errorf("%s: sni %s, Zeek has %s", k, v, row["server_name"])
	}
	est := "F"
	if tl.Established {
		est = "T"
	}
	if est != row["established"] {
		t.Errorf("%s: established %s, Zeek has %s (history %s)", k, est, row["established"], row["ssl_history"])
	}
}
