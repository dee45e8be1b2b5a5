package syslog

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/sensor/sink"
)

// Facility is a syslog facility, RFC 5424 table 1.
type Facility int

// The facilities, by the names rsyslog and syslog.conf(5) give them.
const (
	Kern Facility = iota
	User
	Mail
	Daemon
	Auth
	Syslog
	LPR
	News
	UUCP
	Cron
	AuthPriv
	FTP
	NTP
	Security
	Console
	Clock
	Local0
	Local1
	Local2
	Local3
	Local4
	Local5
	Local6
	Local7
)

var facilityNames = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
	"cron", "authpriv", "ftp", "ntp", "security", "console", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// String is the facility's name.
func (f Facility) String() string {
	if f < Kern || f > Local7 {
		return strconv.Itoa(int(f))
	}
	return facilityNames[f]
}

// ParseFacility returns the facility of a name (kern … local7, as
// String gives them) or of its number, 0-23.
func ParseFacility(s string) (Facility, error) {
	for i, n := range facilityNames {
		if strings.EqualFold(s, n) {
			return Facility(i), nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= int(Kern) && n <= int(Local7) {
		return Facility(n), nil
	}
	return 0, fmt.Errorf("facility %q: not kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, clock or local0-local7", s)
}

// Severity is a syslog severity, RFC 5424 table 2.
type Severity int

// The severities, most severe first.
const (
	Emergency Severity = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Info
	Debug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String is the severity's name.
func (s Severity) String() string {
	if s < Emergency || s > Debug {
		return strconv.Itoa(int(s))
	}
	return severityNames[s]
}

// ParseSeverity returns the severity of a name (emerg … debug, as String
// gives them) or of its number, 0-7.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= int(Emergency) && n <= int(Debug) {
		return Severity(n), nil
	}
	return 0, fmt.Errorf("severity %q: not emerg, alert, crit, err, warning, notice, info or debug", s)
}

// MaxDatagram is the largest message one UDP datagram carries: an IPv4
// datagram is at most 65535 bytes, less 20 of IP header and 8 of UDP
// header. IPv6 could carry 20 bytes more; one limit for both keeps a
// record's fate independent of the address family.
const MaxDatagram = 65535 - 20 - 8

// Config says where a Transport sends and what its messages say.
type Config struct {
	// Network is "udp" (RFC 5426: one message per datagram), "tcp" (RFC
	// 6587 octet counting) or "tls" (RFC 5425: the same framing in TLS).
	Network string
	// Addr is the receiver, HOST:PORT.
	Addr string
	// Facility is the facility's name (default local0: the local
	// facilities are the ones sites route on, local0.* @@siem, and
	// daemon is where the host's own daemons write, which a stream of
	// flow records would drown in a relay's daemon.log).
	Facility string
	// Severity gives a record's severity (default: info for every one).
	Severity func(sink.Record) Severity
	// Hostname is HOSTNAME (default os.Hostname, "-" when it fails).
	Hostname string
	// AppName is APP-NAME (default "outflow").
	AppName string
	// MsgID is MSGID, which says what the records are: "flow" (default)
	// or "alert", so a receiver can route them without reading the JSON.
	MsgID string
	// CAFile, CertFile and KeyFile are PEM files for "tls": the CA that
	// signs the receiver's certificate (default: the system's roots) and
	// our client certificate, for receivers that ask for one. New reads
	// them.
	CAFile, CertFile, KeyFile string
	// ServerName is the name the receiver's certificate must carry
	// (default: Addr's host).
	ServerName string
	// TLS is the base TLS configuration, cloned; the files above are
	// added to it. Nil is Go's defaults with TLS 1.2 at least.
	TLS *tls.Config
	// MaxMessage is the longest message sent, header included: a record
	// that makes a longer one is refused with a *sink.Rejected, since
	// cutting it would corrupt its JSON. For udp it defaults to, and
	// cannot exceed, MaxDatagram; for tcp and tls the default is no
	// limit: octet counting carries any length, and the receiver's own
	// limit (rsyslog's maxMessageSize, 8 KiB by default, past which it
	// cuts) is worth copying here.
	MaxMessage int
	// DialTimeout bounds a connection's set-up, TLS handshake included
	// (default 10 s); WriteTimeout bounds one write (default 30 s). A
	// Send's context bounds both as well.
	DialTimeout  time.Duration
	WriteTimeout time.Duration
}

// ParseURL returns the Config of a syslog URL:
//
//	syslog+udp://HOST:PORT
//	syslog+tcp://HOST:PORT
//	syslog+tls://HOST:PORT?ca=/etc/outflow/ca.pem
//
// with query options facility, severity (of every record), hostname, app,
// msgid, max (MaxMessage, bytes) and, for tls, ca, cert, key and
// servername. It reads no file; New does.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("syslog URL %q: cannot parse it", s)
	}
	var cfg Config
	switch u.Scheme {
	case "syslog+udp", "syslog+tcp", "syslog+tls":
		cfg.Network = strings.TrimPrefix(u.Scheme, "syslog+")
	default:
		return Config{}, fmt.Errorf("syslog URL %q: scheme %q: want syslog+udp, syslog+tcp or syslog+tls", s, u.Scheme)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("syslog URL %q: a user name has no meaning here", s)
	}
	if u.Opaque != "" || u.Host == "" {
		return Config{}, fmt.Errorf("syslog URL %q: give the receiver as %s://HOST:PORT", s, u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, fmt.Errorf("syslog URL %q: path %q: a syslog URL has none", s, u.Path)
	}
	if u.Fragment != "" {
		return Config{}, fmt.Errorf("syslog URL %q: fragment %q: a syslog URL has none", s, u.Fragment)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return Config{}, fmt.Errorf("syslog URL %q: give a host (%s://HOST:PORT)", s, u.Scheme)
	}
	if !validHost(host) {
		return Config{}, fmt.Errorf("syslog URL %q: host %q: not an address or a host name", s, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Config{}, fmt.Errorf("syslog URL %q: port %q: give one, 1-65535 (%s://HOST:PORT)", s, port, u.Scheme)
	}
	cfg.Addr = net.JoinHostPort(host, port)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("syslog URL %q: query %q: cannot parse it", s, u.RawQuery)
	}
	for key, vals := range q {
		if len(vals) != 1 {
			return Config{}, fmt.Errorf("syslog URL %q: option %s: give it once", s, key)
		}
		if err := cfg.setOption(key, vals[0]); err != nil {
			return Config{}, fmt.Errorf("syslog URL %q: option %s: %w", s, key, err)
		}
	}
	return cfg, nil
}

// validHost says whether h is an IP address or could be a DNS name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// setOption sets one of ParseURL's query options.
func (c *Config) setOption(key, val string) error {
	tlsOnly := func(dst *string) error {
		if c.Network != "tls" {
			return fmt.Errorf("only syslog+tls takes it")
		}
		if val == "" {
			return fmt.Errorf("give a value")
		}
		*dst = val
		return nil
	}
	switch key {
	case "ca":
		return tlsOnly(&c.CAFile)
	case "cert":
		return tlsOnly(&c.CertFile)
	case "key":
		return tlsOnly(&c.KeyFile)
	case "servername":
		return tlsOnly(&c.ServerName)
	case "facility":
		if _, err := ParseFacility(val); err != nil {
			return err
		}
		c.Facility = val
	case "severity":
		sev, err := ParseSeverity(val)
		if err != nil {
			return err
		}
		c.Severity = func(sink.Record) Severity { return sev }
	case "hostname":
		c.Hostname = val
	case "app":
		c.AppName = val
	case "msgid":
		c.MsgID = val
	case "max":
		n, err := strconv.Atoi(val)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q: want a positive number of bytes", val)
		}
		c.MaxMessage = n
	default:
		return fmt.Errorf("unknown; known are facility, severity, hostname, app, msgid, max, ca, cert, key and servername")
	}
	return nil
}
