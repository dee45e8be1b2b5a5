package sensor

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
			recs := replayWith(t, files, inspectConfig(), 0)
			got := map[string]map[string]any{}
			for _, r := range recs {
				got[flowKey(r["proto"].(string), r["orig_h"].(string), jsonNum(r, "orig_p"), r["resp_h"].(string), jsonNum(r, "resp_p"))] = r
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
					checkSSLRow(t, k, row, r, proto == "udp")
				}
			}
		})
	}
	t.Logf("%d ssl.log rows checked", rows)
}

func checkSSLRow(t *testing.T, k string, row zeekRow, r map[string]any, quic bool) {
	t.Helper()
	if quic {
		q, _ := r["quic"].(map[string]any)
		sni := "-"
		if q != nil && q["sni"] != nil {
			sni = q["sni"].(string)
		}
		if sni != row["server_name"] {
			t.Errorf("%s: quic sni %v, Zeek has %s", k, sni, row["server_name"])
		}
		return
	}
	tl, _ := r["tls"].(map[string]any)
	if tl == nil {
		t.Errorf("%s: no tls on the record (app_proto %v); Zeek: %v", k, r["app_proto"], row)
		return
	}
	str := func(key string) string {
		if v, ok := tl[key].(string); ok && v != "" {
			return v
		}
		return "-"
	}
	if v := str("version"); v != row["version"] {
		t.Errorf("%s: version %s, Zeek has %s", k, v, row["version"])
	}
	if v := str("sni"); v != row["server_name"] {
		t.Errorf("%s: sni %s, Zeek has %s", k, v, row["server_name"])
	}
	est := "F"
	if tl["established"] == true {
		est = "T"
	}
	if est != row["established"] {
		t.Errorf("%s: established %s, Zeek has %s (history %s)", k, est, row["established"], row["ssl_history"])
	}
}
