package kafka

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one Kafka destination: where, how to authenticate, how to
// produce. ParseURL fills it from a kafka:// URL; New checks it again, so
// one built by hand is held to the same rules.
type Config struct {
	// URL is the destination as the user wrote it, which Name returns. It
	// never holds a secret (the password is only ever read from a file);
	// empty means built from the fields, and Name renders them.
	URL string
	// Brokers are the seed brokers, HOST:PORT (ParseURL adds the Kafka
	// port 9092 to a host given without one).
	Brokers []string
	// Topic is the topic produced to.
	Topic string

	// TLS dials the brokers with TLS (1.2 or later), checking their
	// certificates against CAFile, or the system's roots without one.
	TLS bool
	// CAFile is a PEM file of the CA certificates the brokers' own are
	// checked against, for a private CA.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that ask for one (ssl.client.auth=required); both or none.
	CertFile, KeyFile string

	// SASL is the mechanism: "", "plain", "scram-sha-256" or
	// "scram-sha-512". It needs User and PasswordFile.
	SASL string
	// User is the SASL user name.
	User string
	// PasswordFile holds the SASL password (one line; a final newline is
	// not part of it). A password is never taken from the URL itself,
	// where it would end up in logs, ps output and shell history.
	PasswordFile string

	// Compression is the codec of produced batches: "none", "gzip",
	// "snappy", "lz4" or "zstd"; empty means DefaultCompression.
	Compression string
	// Acks is "all" (the default: every in-sync replica has the record,
	// which the idempotent producer requires) or "leader" (only the
	// partition's leader; this turns idempotence off, so a retry inside
	// the client may write a record twice).
	Acks string
	// ClientID names the producer in the brokers' logs and quotas; empty
	// means DefaultClientID.
	ClientID string

	// Timeout bounds one Send whose context has no earlier deadline;
	// zero means DefaultTimeout.
	Timeout time.Duration
}

// Defaults of the options a URL may leave out.
const (
	// DefaultCompression is snappy, franz-go's own default. On the
	// sensor's 500-byte JSON records (BenchmarkSend) it cost the least CPU
	// of the codecs that compress, about a third less per record than
	// lz4, and left 37% of the bytes (lz4 35%, gzip 25%, zstd 23% at twice
	// the CPU); every broker reads it. Where bytes cost more than CPU, a
	// thin link to a remote cluster, compression=zstd is the choice.
	DefaultCompression = "snappy"
	// DefaultClientID is the client.id a producer gives brokers.
	DefaultClientID = "outflow"
	// DefaultTimeout bounds a Send whose context has no deadline.
	DefaultTimeout = 30 * time.Second
	// DefaultPort is Kafka's port, for a broker given without one.
	DefaultPort = "9092"
)

var (
	compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	mechanisms   = []string{"plain", "scram-sha-256", "scram-sha-512"}
)

// ParseURL reads a destination of the form
//
//	kafka://BROKER[,BROKER...]/TOPIC[?OPTION=VALUE&...]
//
// whose options are tls=1, ca=, cert=, key=, sasl=, user=,
// password_file=, compression=, acks= and client_id= (see Config). A
// broker is HOST, HOST:PORT or [IPv6]:PORT. An unknown or repeated option
// is refused, so a typo cannot quietly leave TLS or SASL off.
func ParseURL(s string) (Config, error) {
	c := Config{URL: s}
	rest, ok := strings.CutPrefix(s, "kafka://")
	if !ok {
		return Config{}, fmt.Errorf("%q: a Kafka destination starts with kafka://", s)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, topic, ok := strings.Cut(rest, "/")
	if !ok || topic == "" {
		return Config{}, fmt.Errorf("%q: no topic; want kafka://BROKER[,BROKER...]/TOPIC", s)
	}
	for _, h := range strings.Split(hosts, ",") {
		b, err := broker(h)
		if err != nil {
			return Config{}, fmt.Errorf("%q: %w", s, err)
		}
		c.Brokers = append(c.Brokers, b)
	}
	t, err := url.PathUnescape(topic)
	if err != nil {
		return Config{}, fmt.Errorf("%q: topic %q is badly escaped", s, topic)
	}
	c.Topic = t
	if err := c.options(query); err != nil {
		return Config{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := c.check(); err != nil {
		return Config{}, fmt.Errorf("%q: %w", s, err)
	}
	return c, nil
}

// broker checks one broker address and gives it a port if it has none.
func broker(h string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("an empty broker in the list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: a name, an IPv4 address or a bracketed IPv6 one.
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), DefaultPort
		if strings.Contains(host, ":") && !strings.HasPrefix(h, "[") {
			return "", fmt.Errorf("broker %q: write an IPv6 address in brackets, [ADDR]:PORT", h)
		}
	}
	if host == "" || strings.ContainsAny(host, "/?#@[] ") {
		return "", fmt.Errorf("broker %q: not a host name or address", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("broker %q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

// options reads the URL's query into c.
func (c *Config) options(query string) error {
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("options %q are badly escaped", query)
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return fmt.Errorf("option %s is given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "tls":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("option tls=%q: want 1 or 0", v)
			}
			c.TLS = on
		case "ca":
			c.CAFile = v
		case "cert":
			c.CertFile = v
		case "key":
			c.KeyFile = v
		case "sasl":
			c.SASL = v
		case "user":
			c.User = v
		case "password_file":
			c.PasswordFile = v
		case "compression":
			c.Compression = v
		case "acks":
			c.Acks = v
		case "client_id":
			c.ClientID = v
		case "insecure_skip_verify":
			// Not checking the broker's certificate sends the SASL
			// password and every record to whoever answers on the way;
			// a private CA is what ca= is for.
			return fmt.Errorf("option insecure_skip_verify is not offered: it would hand the password and the records to anyone on the path; give the brokers' CA with ca=/path/ca.pem")
		case "password":
			return fmt.Errorf("option password is not offered: a password in a URL ends up in logs and process lists; put it in a file and give password_file=")
		default:
			return fmt.Errorf("unknown option %q (want tls, ca, cert, key, sasl, user, password_file, compression, acks or client_id)", k)
		}
	}
	// A CA or client certificate only makes sense over TLS: asking for
	// one turns TLS on, unless tls=0 says otherwise, which is a mistake.
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		if v, ok := q["tls"]; ok && !c.TLS {
			return fmt.Errorf("option tls=%s contradicts ca=, cert= or key=, which are for TLS", v[0])
		}
		c.TLS = true
	}
	return nil
}

// check says what in c is wrong or missing, in the words of the URL.
func (c *Config) check() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("no broker; want kafka://BROKER[,BROKER...]/TOPIC")
	}
	if err := checkTopic(c.Topic); err != nil {
		return err
	}
	if (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") && !c.TLS {
		return fmt.Errorf("ca=, cert= and key= need tls=1")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("a client certificate needs both cert= and key=")
	}
	switch {
	case c.SASL == "" && (c.User != "" || c.PasswordFile != ""):
		return fmt.Errorf("user= and password_file= need sasl=plain, scram-sha-256 or scram-sha-512")
	case c.SASL != "" && !slices.Contains(mechanisms, c.SASL):
		return fmt.Errorf("option sasl=%q: want plain, scram-sha-256 or scram-sha-512", c.SASL)
	case c.SASL != "" && c.User == "":
		return fmt.Errorf("sasl=%s needs user=", c.SASL)
	case c.SASL != "" && c.PasswordFile == "":
		return fmt.Errorf("sasl=%s needs password_file= (a file holding the password)", c.SASL)
	}
	if c.Compression != "" && !slices.Contains(compressions, c.Compression) {
		return fmt.Errorf("option compression=%q: want none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	switch c.Acks {
	case "", "all", "leader":
	case "0", "none":
		// With no acknowledgement Send could not say what was delivered.
		return fmt.Errorf("option acks=%s is not offered: Send must know what the brokers took; want all or leader", c.Acks)
	default:
		return fmt.Errorf("option acks=%q: want all or leader", c.Acks)
	}
	if c.ClientID != "" && !validName(c.ClientID, 255) {
		return fmt.Errorf("option client_id=%q: want at most 255 letters, digits, '.', '_' or '-'", c.ClientID)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v is negative", c.Timeout)
	}
	return nil
}

// checkTopic applies Kafka's rules for topic names, so a bad one is
// refused at start-up rather than by every produce.
func checkTopic(t string) error {
	if t == "." || t == ".." || !validName(t, 249) {
		return fmt.Errorf("topic %q: Kafka takes at most 249 letters, digits, '.', '_' or '-' (and not . or ..)", t)
	}
	return nil
}

func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// String is the destination as a kafka:// URL with the options in force,
// which ParseURL reads back to the same Config (less URL). It holds no
// secret.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("kafka://")
	b.WriteString(strings.Join(c.Brokers, ","))
	b.WriteString("/")
	b.WriteString(url.PathEscape(c.Topic))
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if c.TLS {
		q.Set("tls", "1")
	}
	set("ca", c.CAFile)
	set("cert", c.CertFile)
	set("key", c.KeyFile)
	set("sasl", c.SASL)
	set("user", c.User)
	set("password_file", c.PasswordFile)
	set("compression", c.Compression)
	set("acks", c.Acks)
	set("client_id", c.ClientID)
	if len(q) > 0 {
		b.WriteString("?")
		b.WriteString(q.Encode())
	}
	return b.String()
}
