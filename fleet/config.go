package fleet

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Config is how a sensor joins its fleet. Only Brokers is required.
type Config struct {
	// Brokers are the seed brokers, HOST:PORT.
	Brokers []string
	// Topic is the prefix of the fleet's topics: TOPICprevalence,
	// TOPICuploads and TOPICfirst-uploads. Empty means DefaultTopic.
	Topic string
	// SensorID names this sensor in what it publishes, and tells its
	// own messages from the others'. It must be unique in the fleet: two
	// sensors with one ID ignore each other. Empty means the host name.
	SensorID string

	// TLS, when set, dials the brokers with it (the sensor builds it from
	// its CA, certificate and key files).
	TLS *tls.Config
	// SASL, when set, authenticates with it (plain or SCRAM, built by the
	// sensor from its user and password file).
	SASL sasl.Mechanism

	// CatchUp bounds how long Start waits for the topics to be read up to
	// where they ended when it began, so a sensor that starts serves with
	// what the fleet learnt. Zero means DefaultCatchUp; negative, no
	// wait (the catch-up still runs).
	CatchUp time.Duration
	// Backlog bounds the observations held for Kafka while it is slow or
	// unreachable; past it new ones are dropped and counted. Zero means
	// DefaultBacklog.
	Backlog int
	// PublishEvery is how often the running upload totals are published.
	// Zero means DefaultPublishEvery.
	PublishEvery time.Duration
	// RetryEvery is the pause between tries to reach Kafka at start.
	// Zero means DefaultRetryEvery.
	RetryEvery time.Duration
	// StopTimeout bounds how long Stop waits for the backlog to be
	// delivered. Zero means DefaultStopTimeout.
	StopTimeout time.Duration

	// NoCreateTopics leaves the topics to the Kafka operators; by default
	// missing ones are created (compacted, with Retention), at start and
	// whenever Kafka is reachable again.
	NoCreateTopics bool
	// Partitions and ReplicationFactor are those of created topics; zero
	// means 3 partitions and the brokers' default replication.
	Partitions        int32
	ReplicationFactor int16
	// Retention is how long created topics keep a record the sensors
	// have not superseded: at least the analytics' TrainingPeriod and
	// UploadHistory (30 days each by default). Zero means
	// DefaultRetention.
	Retention time.Duration

	// Logger receives the few lines worth a person's attention (Kafka
	// lost and back, the first bad message); nil means slog.Default().
	Logger *slog.Logger
	// Opts are more franz-go options, applied last (tests use them for
	// quicker metadata refreshes).
	Opts []kgo.Opt
}

// Defaults of what Config leaves at zero.
const (
	DefaultTopic        = "outflow."
	DefaultCatchUp      = 30 * time.Second
	DefaultBacklog      = 100000
	DefaultPublishEvery = 10 * time.Second
	DefaultRetryEvery   = 5 * time.Second
	DefaultStopTimeout  = 5 * time.Second
	DefaultRetention    = 31 * 24 * time.Hour
	defaultPartitions   = 3
)

// withDefaults fills in what c leaves at zero and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if len(c.Brokers) == 0 {
		return c, fmt.Errorf("fleet: Brokers is empty; name at least one Kafka broker, HOST:PORT")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" || strings.ContainsAny(b, " /?#@") {
			return c, fmt.Errorf("fleet: broker %q is not HOST:PORT", b)
		}
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	for _, r := range c.Topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return c, fmt.Errorf("fleet: Topic %q: Kafka topic names hold only letters, digits, '.', '_' and '-'", c.Topic)
		}
	}
	if len(c.Topic)+len("first-uploads") > 249 {
		return c, fmt.Errorf("fleet: Topic %q is too long for a Kafka topic name", c.Topic)
	}
	if c.SensorID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return c, fmt.Errorf("fleet: SensorID is empty and the host name cannot be read; set SensorID")
		}
		c.SensorID = h
	}
	if len(c.SensorID) > maxSensorID || strings.ContainsAny(c.SensorID, "|") || strings.IndexFunc(c.SensorID, isControl) >= 0 {
		return c, fmt.Errorf("fleet: SensorID %q: at most %d bytes, no '|' and no control characters", c.SensorID, maxSensorID)
	}
	if c.CatchUp == 0 {
		c.CatchUp = DefaultCatchUp
	}
	if c.Backlog < 0 {
		return c, fmt.Errorf("fleet: Backlog %d must not be negative", c.Backlog)
	}
	if c.Backlog == 0 {
		c.Backlog = DefaultBacklog
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"PublishEvery", &c.PublishEvery, DefaultPublishEvery}, {"RetryEvery", &c.RetryEvery, DefaultRetryEvery},
		{"StopTimeout", &c.StopTimeout, DefaultStopTimeout}, {"Retention", &c.Retention, DefaultRetention}} {
		if *d.v < 0 {
			return c, fmt.Errorf("fleet: %s %v must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Partitions < 0 {
		return c, fmt.Errorf("fleet: Partitions %d must not be negative", c.Partitions)
	}
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.ReplicationFactor <= 0 {
		c.ReplicationFactor = -1 // the brokers' default.replication.factor
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
