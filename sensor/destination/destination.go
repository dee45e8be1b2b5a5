// Package destination turns what a user wrote for an output (a path, -
// for stdout, or a receiver's URL) into a sink: a file sink for paths, a
// Delivery in front of the receiver's transport for URLs. Alerts to a
// receiver get a spool on disk, so none is lost while it is down.
package destination

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/outflow-sensor/outflow/sensor/sink/kafka"
	"github.com/outflow-sensor/outflow/sensor/sink/spool"
	"github.com/outflow-sensor/outflow/sensor/sink/syslog"
	"github.com/outflow-sensor/outflow/sensor/sink/webhook"
	"github.com/valyala/fastjson"
)

// Config is one output as configured.
type Config struct {
	// Target is a file, "-" (stdout), or a receiver's URL.
	Target string
	// Alerts: the records are alerts, which a receiver's sink keeps in a
	// spool under SpoolDir until delivered; flows wait in memory and are
	// dropped, counted, past MaxQueue.
	Alerts        bool
	SpoolDir      string
	SpoolMaxBytes int64
	MaxQueue      int
	// Header starts each new file (a format's header, Zeek's TSV).
	Header func() []byte
	// Files: rotation (see sink.Config).
	RotateSize int64
	RotateAge  time.Duration
	Keep       int
	// Stdout is where "-" writes; FlushInterval is how long a line may
	// wait in a file sink's buffer.
	Stdout        io.Writer
	FlushInterval time.Duration
	Log           *slog.Logger
}

// IsReceiver reports whether a target is a receiver's URL rather than a
// path.
func IsReceiver(target string) bool {
	i := strings.Index(target, "://")
	return i > 0 && !strings.ContainsAny(target[:i], "/\\.")
}

// New returns the inert sink for an output. A receiver's URL is checked
// here, and its spool opened (alerts), so a mistake is reported at start.
func New(cfg Config) (sink.Sink, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if !IsReceiver(cfg.Target) {
		return sink.New(sink.Config{Path: cfg.Target, Stdout: cfg.Stdout, FlushInterval: cfg.FlushInterval, Log: cfg.Log,
			RotateSize: cfg.RotateSize, RotateAge: cfg.RotateAge, Keep: cfg.Keep, Header: cfg.Header}), nil
	}
	tr, err := transport(cfg.Target, cfg.Alerts, cfg.Log)
	if err != nil {
		return nil, err
	}
	dc := sink.DeliveryConfig{Transport: tr, MaxQueue: cfg.MaxQueue, Log: cfg.Log}
	if cfg.Alerts {
		// One receiver may take flows and alerts: their sinks are two,
		// counted apart.
		dc.Name = tr.Name() + " (alerts)"
		if cfg.SpoolDir == "" {
			tr.Close()
			return nil, fmt.Errorf("%s: alerts to a receiver wait on disk while it is down: give a spool directory", tr.Name())
		}
		dir := filepath.Join(cfg.SpoolDir, SpoolName(cfg.Target))
		sp, err := spool.Open(dir, spool.Config{MaxBytes: cfg.SpoolMaxBytes})
		if err != nil {
			tr.Close()
			return nil, err
		}
		for _, d := range sp.TakeDamage() {
			cfg.Log.Warn(d.String(), "output", tr.Name())
		}
		dc.Spool = sp
	}
	return sink.NewDelivery(dc), nil
}

// Check parses a receiver's URL without connecting, for config checks.
func Check(target string) (scheme string, err error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", target)
	}
	if err := checkURL(target); err != nil {
		return "", err
	}
	return u.Scheme, nil
}

// SpoolName is the subdirectory of the spool directory that holds one
// receiver's alerts: readable, and unique per URL (a hash of the whole
// URL, secrets and options included, ends it).
func SpoolName(target string) string {
	u, err := url.Parse(target)
	readable := "receiver"
	if err == nil {
		readable = u.Scheme + "_" + u.Host + u.Path
	}
	readable = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '+':
			return r
		}
		return '_'
	}, readable)
	if len(readable) > 80 {
		readable = readable[:80]
	}
	h := sha256.Sum256([]byte(target))
	return readable + "-" + hex.EncodeToString(h[:4])
}

// transport builds the transport a receiver's URL names. Alerts go to
// syslog with the MSGID "alert" unless the URL says otherwise.
func transport(target string, alerts bool, log *slog.Logger) (sink.Transport, error) {
	switch scheme(target) {
	case "kafka":
		c, err := kafka.ParseURL(target)
		if err != nil {
			return nil, err
		}
		return kafka.New(c)
	case "syslog+udp", "syslog+tcp", "syslog+tls":
		c, err := syslog.ParseURL(target)
		if err != nil {
			return nil, err
		}
		if alerts {
			if c.MsgID == "" {
				c.MsgID = "alert"
			}
			if c.Severity == nil {
				c.Severity = alertSeverity
			}
		}
		return syslog.New(c)
	case "http", "https":
		c, err := webhookConfig(target)
		if err != nil {
			return nil, err
		}
		c.Log = log
		return webhook.New(c)
	}
	return nil, unknownScheme(target)
}

// checkURL parses a receiver's URL as transport would, reading no file.
func checkURL(target string) error {
	var err error
	switch scheme(target) {
	case "kafka":
		_, err = kafka.ParseURL(target)
	case "syslog+udp", "syslog+tcp", "syslog+tls":
		_, err = syslog.ParseURL(target)
	case "http", "https":
		_, err = webhookConfig(target)
	default:
		err = unknownScheme(target)
	}
	return err
}

func scheme(target string) string {
	if i := strings.Index(target, "://"); i > 0 {
		return strings.ToLower(target[:i])
	}
	return ""
}

func unknownScheme(target string) error {
	return fmt.Errorf("%q: unknown receiver %q: want syslog+udp://, syslog+tcp://, syslog+tls://, https:// (or http://) or kafka://",
		redacted(target), scheme(target))
}

// redacted is a URL without its query, which may hold a key.
func redacted(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i] + "?…"
	}
	return target
}

// webhookConfig is the webhook Config of a URL and its options. The query
// options token_file, user, password_file, ca, cert, key and gzip are
// Outflow's and taken out; the rest of the query goes to the receiver as
// given (some take an API key there).
func webhookConfig(target string) (webhook.Config, error) {
	u, err := url.Parse(target)
	if err != nil {
		return webhook.Config{}, fmt.Errorf("webhook URL %q: cannot parse it", redacted(target))
	}
	q := u.Query()
	opt := func(k string) (string, error) {
		v := q[k]
		if len(v) > 1 {
			return "", fmt.Errorf("webhook URL %q: option %s: give it once", redacted(target), k)
		}
		q.Del(k)
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	var c webhook.Config
	var gz string
	for _, o := range []struct {
		key string
		dst *string
	}{{"token_file", &c.TokenFile}, {"user", &c.User}, {"password_file", &c.PasswordFile},
		{"ca", &c.CAFile}, {"cert", &c.CertFile}, {"key", &c.KeyFile}, {"gzip", &gz}} {
		if *o.dst, err = opt(o.key); err != nil {
			return webhook.Config{}, err
		}
	}
	switch gz {
	case "", "0", "false":
	case "1", "true":
		c.Gzip = true
	default:
		return webhook.Config{}, fmt.Errorf("webhook URL %q: option gzip: want 1 or 0, not %q", redacted(target), gz)
	}
	if len(q) < len(u.Query()) {
		u.RawQuery = q.Encode()
	}
	if c, err = withURL(c, u.String()); err != nil {
		return webhook.Config{}, err
	}
	return c, nil
}

// withURL checks the receiver's URL as the webhook package does.
func withURL(c webhook.Config, u string) (webhook.Config, error) {
	p, err := webhook.ParseURL(u)
	if err != nil {
		return webhook.Config{}, err
	}
	c.URL = p.URL
	return c, nil
}

// alertSeverity is the syslog severity of an alert record, from its own
// severity, so a SIEM's syslog rules can route on it: the "severity" word
// of Outflow's JSON, or outflow.severity of ECS. Anything else is notice.
func alertSeverity(r sink.Record) syslog.Severity {
	v, err := fastjson.ParseBytes(r.Value)
	if err != nil {
		return syslog.Notice
	}
	word := string(v.GetStringBytes("severity"))
	if word == "" {
		word = string(v.GetStringBytes("outflow", "severity")) // ECS keeps the word there
	}
	switch word {
	case "critical":
		return syslog.Critical
	case "high":
		return syslog.Error
	case "medium":
		return syslog.Warning
	case "informational":
		return syslog.Info
	}
	return syslog.Notice
}
