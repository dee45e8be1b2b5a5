package destination

import (
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/sensor/encode"
	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/outflow-sensor/outflow/sensor/sink/syslog"
)

func TestIsReceiver(t *testing.T) {
	for target, want := range map[string]bool{
		"-": false, "flows.json": false, "/var/log/outflow/a.json": false, "./x://y": false,
		"syslog+tcp://127.0.0.1:6514": true, "https://h/p": true, "kafka://b:9092/t": true,
	} {
		if IsReceiver(target) != want {
			t.Errorf("IsReceiver(%q) = %v", target, !want)
		}
	}
}

// TestCheck: each receiver's URL is checked by its transport's parser,
// and Outflow's webhook options are taken out of the query.
func TestCheck(t *testing.T) {
	for _, ok := range []string{"syslog+udp://127.0.0.1:514", "syslog+tls://siem:6514?ca=/x.pem",
		"https://h.example/in?token_file=/t&gzip=1&apikey=k", "kafka://a:9092,b:9092/flows?compression=zstd"} {
		if _, err := Check(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"ftp://x/y":                       `unknown receiver "ftp"`,
		"syslog+tcp://127.0.0.1":          "port",
		"https://h/p?gzip=maybe&key=s3cr": "gzip",
		"kafka://b:9092/":                 "topic",
	} {
		_, err := Check(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", bad, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr") {
			t.Errorf("%s: the error shows the query: %v", bad, err)
		}
	}
	c, err := webhookConfig("https://h.example/in?token_file=/t&apikey=k&gzip=1")
	if err != nil || c.TokenFile != "/t" || !c.Gzip || c.URL != "https://h.example/in?apikey=k" {
		t.Errorf("webhook options: %+v, %v", c, err)
	}
}

func TestSpoolName(t *testing.T) {
	a := SpoolName("syslog+tcp://127.0.0.1:6514")
	b := SpoolName("syslog+tcp://127.0.0.1:6514?facility=local3")
	if a == b || !strings.HasPrefix(a, "syslog+tcp_127.0.0.1_6514-") || strings.ContainsAny(a, "/:?") {
		t.Errorf("%q %q", a, b)
	}
}

// TestAlertSeverity: an alert's syslog severity follows its own, in both
// the formats alerts are written in.
func TestAlertSeverity(t *testing.T) {
	for sev, want := range map[string]syslog.Severity{"critical": syslog.Critical, "high": syslog.Error,
		"medium": syslog.Warning, "low": syslog.Notice, "informational": syslog.Info} {
		a := &detect.Alert{TS: time.Unix(1, 0), ID: "x", Analytic: "AN1512", Technique: "T1567", Severity: sev, Title: "t"}
		for _, f := range []encode.Format{encode.JSON, encode.ECS} {
			line := f.AppendAlert(nil, a)
			if got := alertSeverity(sink.Record{Value: line[:len(line)-1]}); got != want {
				t.Errorf("%s in %s: %v, want %v", sev, f, got, want)
			}
		}
	}
}
