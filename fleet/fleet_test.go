package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The tests run sensors as the sensor package will: one detect.Engine
// with the detection lab's config (pcaps/detect-lab.yaml) and one Fleet
// each, all on one kfake cluster started by the test, on loopback. What
// they assert comes from the flows the test feeds, never from a sensor's
// own output.

// labConfig is the detection lab's config.
func labConfig(t *testing.T) *detect.Config {
	t.Helper()
	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testLogger keeps the fleet's few log lines out of the test output.
var testLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// sensor is one engine, its alerts and its fleet client.
type sensor struct {
	id  string
	eng *detect.Engine
	fl  *Fleet

	mu     sync.Mutex
	alerts []*detect.Alert
}

func (s *sensor) alert(a *detect.Alert) {
	s.mu.Lock()
	s.alerts = append(s.alerts, a)
	s.mu.Unlock()
}

// count is the alerts of analytics about the destination name (all
// destinations when name is empty).
func (s *sensor) count(name string, analytics ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.alerts {
		for _, an := range analytics {
			if a.Analytic == an && (name == "" || a.Destination != nil && a.Destination.Name == name) {
				n++
			}
		}
	}
	return n
}

func (s *sensor) rare(name string) int { return s.count(name, "rare_host", "rare_host_global") }

// fleetOf is a test's fleet: its cluster and its running sensors.
type fleetOf struct {
	t       *testing.T
	cfg     *detect.Config
	cluster *kfake.Cluster
	brokers []string

	mu   sync.Mutex
	live []*sensor
}

func newFleet(t *testing.T) *fleetOf {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(loopback))
	if err != nil {
		t.Fatal(err)
	}
	w := &fleetOf{t: t, cfg: labConfig(t), cluster: c, brokers: c.ListenAddrs()}
	t.Cleanup(func() {
		for _, s := range w.live {
			s.fl.Stop()
		}
		w.cluster.Close()
	})
	return w
}

// loopback listens on 127.0.0.1 only, never on every interface.
func loopback(network, address string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	return net.Listen(network, net.JoinHostPort("127.0.0.1", port))
}

// quick are franz-go options for a test: metadata, retries and fetches
// on a loopback time scale.
var quick = []kgo.Opt{
	kgo.MetadataMinAge(50 * time.Millisecond),
	kgo.MetadataMaxAge(time.Second),
	kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	kgo.FetchMaxWait(200 * time.Millisecond),
}

// start runs a sensor with a fresh state (st nil) or the given one, and
// returns once its fleet client has caught up.
func (w *fleetOf) start(id string, st *detect.State) *sensor {
	w.t.Helper()
	if st == nil {
		st = detect.NewState(32 << 20)
	}
	s := &sensor{id: id}
	s.eng = detect.New(w.cfg, st, nil, s.alert)
	fl, err := New(Config{Brokers: w.brokers, SensorID: id, PublishEvery: time.Hour, RetryEvery: 100 * time.Millisecond,
		Logger: testLogger, Opts: quick}, s.eng)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := fl.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	s.fl = fl
	w.mu.Lock()
	w.live = append(w.live, s)
	w.mu.Unlock()
	return s
}

func (w *fleetOf) stop(s *sensor) {
	s.fl.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.live {
		if x == s {
			w.live = append(w.live[:i], w.live[i+1:]...)
		}
	}
}

// settle waits until every running sensor has read everything every
// sensor published: the backlogs are empty, and each consumer has read up
// to where the topics end then.
func (w *fleetOf) settle() {
	w.t.Helper()
	w.mu.Lock()
	live := append([]*sensor(nil), w.live...)
	w.mu.Unlock()
	waitFor(w.t, "every sensor publishes its backlog", func() bool {
		for _, s := range live {
			st := s.fl.Stats()
			if st.Dropped != 0 || st.Bad != 0 {
				w.t.Fatalf("%s dropped or refused observations: %+v", s.id, st)
			}
			if st.Backlog != 0 {
				return false
			}
		}
		return true
	})
	goal, err := live[0].fl.offsets(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	waitFor(w.t, "every sensor reads what the fleet published", func() bool {
		for _, s := range live {
			if !s.fl.readTo(goal) {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond until it holds, failing the test after a generous
// bound: the wait is for Kafka round trips, not a measure of speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var day0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// at is minutes into day d of the test.
func at(d, minute int) time.Time {
	return day0.Add(time.Duration(d)*24*time.Hour + time.Duration(minute)*time.Minute)
}

// flow is a finished TLS flow from an internal host to a named server,
// sent by curl when curl is true.
func flow(t time.Time, src, dst, name string, out uint64, curl bool) *detect.Flow {
	f := &detect.Flow{Start: t, End: t.Add(2 * time.Second), CommunityID: detect.CIDOf([]byte(src + ">" + dst + t.String())),
		Proto: 6, Orig: netip.AddrPortFrom(netip.MustParseAddr(src), 50000), Resp: netip.AddrPortFrom(netip.MustParseAddr(dst), 443),
		OrigBytes: out, RespBytes: 4000, OrigPkts: 10, RespPkts: 10, Final: true, Observed: true, App: "tls", Handshake: true,
		HTTPBody: -1, ServerName: name}
	if curl {
		f.OrigProc = &process.Attribution{Process: process.Process{Host: "ws-" + src, PID: 4242, Image: "/usr/bin/curl",
			Command: "curl https://" + name, Start: t.Add(-time.Minute)}, Match: "5tuple", Feed: "test"}
	}
	return f
}

// reach: host src connects to name with curl on sensor s.
func reach(s *sensor, t time.Time, src, name string) {
	s.eng.Flow(flow(t, src, "203.0.113.50", name, 600, true))
}

// train: a day of everyday traffic on each sensor, so the baselines have
// their days of data before the test's flows.
func train(ss ...*sensor) {
	for i, s := range ss {
		for d := 0; d < 2; d++ {
			s.eng.Flow(flow(at(d, i), "10.0."+strconv.Itoa(i+1)+".10", "198.51.100.80", "popular.example", 800, false))
		}
	}
}

// TestFleetRarity: three sensors, each seeing a different internal host
// reach one new destination, share its prevalence: the first two still
// alert (one host, then two; RarePrevalence is 2), the third does not,
// and afterwards a fourth host reaching it is rare on no sensor, while a
// lone engine seeing that fourth host alone would alert. A destination
// one host reached on one sensor is still rare, there and elsewhere. A
// sensor restarted with no state catches up from the topics before its
// Start returns, its own observations included.
func TestFleetRarity(t *testing.T) {
	w := newFleet(t)
	s := []*sensor{w.start("s1", nil), w.start("s2", nil), w.start("s3", nil)}
	train(s...)
	w.settle()
	for i := range s {
		reach(s[i], at(2, 60+i), fmt.Sprintf("10.0.%d.5", i+1), "new.example")
		w.settle()
	}
	if got := []int{s[0].rare("new.example"), s[1].rare("new.example"), s[2].rare("new.example")}; fmt.Sprint(got) != "[1 1 0]" {
		t.Fatalf("rare-host alerts for new.example per sensor %v, want [1 1 0]", got)
	}
	for i := range s {
		reach(s[i], at(2, 120), "10.0.9.9", "new.example")
		if s[i].rare("new.example") != []int{1, 1, 0}[i] {
			t.Errorf("%s: a fourth host reaching new.example is rare", s[i].id)
		}
	}
	// The same fourth host on a lone engine, trained alike: rare.
	lone := &sensor{id: "lone"}
	lone.eng = detect.New(w.cfg, detect.NewState(32<<20), nil, lone.alert)
	train(lone)
	reach(lone, at(2, 120), "10.0.9.9", "new.example")
	if lone.rare("new.example") != 1 {
		t.Fatal("the lone engine does not find new.example rare: the test proves nothing")
	}

	// One host on one sensor: rare there, and still rare for a second
	// host on another sensor (prevalence 2).
	reach(s[1], at(2, 180), "10.0.2.7", "lonely.example")
	w.settle()
	reach(s[0], at(2, 181), "10.0.1.8", "lonely.example")
	if s[1].rare("lonely.example") != 1 || s[0].rare("lonely.example") != 1 {
		t.Errorf("lonely.example: %d and %d alerts, want 1 and 1", s[1].rare("lonely.example"), s[0].rare("lonely.example"))
	}
	w.settle()

	// s2 restarts with no state, from topics compacted meanwhile: once
	// Start returns it knows new.example's four hosts (its own 10.0.2.5
	// among them) and lonely.example's two.
	w.stop(s[1])
	w.cluster.Compact()
	r := w.start("s2", nil)
	st := r.fl.Stats()
	if !st.CaughtUp || st.Restored == 0 || st.Merged == 0 {
		t.Fatalf("after Start: %+v", st)
	}
	if n, m := r.eng.Prevalence("new.example"), r.eng.Prevalence("lonely.example"); n != 4 || m != 2 {
		t.Fatalf("restarted s2 knows %d hosts of new.example (want 4) and %d of lonely.example (want 2)", n, m)
	}
	reach(r, at(2, 240), "10.0.2.30", "new.example")
	reach(r, at(2, 241), "10.0.2.31", "lonely.example")
	if n := r.rare(""); n != 0 {
		t.Errorf("restarted s2 found %d destinations the fleet knows rare", n)
	}
	w.settle()
	if n := s[0].eng.Prevalence("new.example"); n != 5 {
		t.Errorf("s1 knows %d hosts of new.example after s2's restart, want 5", n)
	}
	if st := r.fl.Stats(); st.Bad != 0 || st.Dropped != 0 {
		t.Errorf("%+v", st)
	}
}

// upload: host src sends n bytes to the lab's file-sharing service on
// sensor s.
func upload(s *sensor, t time.Time, src string, n uint64) {
	s.eng.Flow(flow(t, src, "203.0.113.80", "files.example-storage.test", n, false))
}

// TestFleetTopUploaders: the day's top file-sharing hosts are ranked
// over the three sensors' totals, a host seen on two links counts both, a
// total republished (as by a restart) counts once, and each sensor
// reports the hosts it saw: together the reports are the organisation's
// ranking, each host once per sensor that saw it. A host's large upload
// seen on one sensor makes its next one on another no first.
func TestFleetTopUploaders(t *testing.T) {
	w := newFleet(t)
	s := []*sensor{w.start("s1", nil), w.start("s2", nil), w.start("s3", nil)}
	train(s...)
	const mib = 1 << 20
	upload(s[0], at(2, 10), "10.77.0.11", 5*mib)
	upload(s[0], at(2, 11), "10.0.3.3", 2*mib)
	upload(s[1], at(2, 12), "10.77.0.12", 9*mib)
	upload(s[2], at(2, 13), "10.77.0.13", 3*mib)
	w.settle()
	// 10.77.0.11 made its first large upload (the lab's threshold is
	// 2 MiB) on s1; on s2's link it is not its first.
	upload(s[1], at(2, 20), "10.77.0.11", 5*mib/2)
	if n, m := s[0].count("", "first_large_upload"), s[1].count("", "first_large_upload"); n != 2 || m != 1 {
		t.Errorf("first large uploads: s1 %d (want 2: 10.77.0.11, 10.0.3.3), s2 %d (want 1: 10.77.0.12)", n, m)
	}
	for _, x := range s {
		x.eng.PublishCounters()
	}
	w.settle()
	// s1 restarts its fleet client and republishes an older, lower total.
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	old := detect.Observation{Kind: detect.ObsUpload, Host: "10.77.0.11", PeerGroup: "lab-clients", Day: int64(at(2, 0).Unix() / 86400), Bytes: 1 * mib}
	for _, b := range [][]byte{Append(nil, "s1", &old), Append(nil, "s2", &old)} {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "outflow.uploads", Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	w.settle()
	for _, x := range s {
		x.eng.Close() // the day ends: its top hosts are reported
	}

	// The organisation's ranking, from the bytes fed above.
	want := []struct {
		host  string
		bytes uint64
		seen  []int // the sensors that saw it
	}{{"10.77.0.12", 9 * mib, []int{1}}, {"10.77.0.11", 15 * mib / 2, []int{0, 1}}, {"10.77.0.13", 3 * mib, []int{2}}, {"10.0.3.3", 2 * mib, []int{0}}}
	for i, x := range s {
		var got []string
		for _, a := range x.alerts {
			if a.Analytic == "top_file_sharing_org" {
				got = append(got, fmt.Sprintf("%s #%d %d of %d", a.Host.IP, a.Evidence.Measured["rank"], a.Evidence.Measured["out_bytes"], a.Evidence.Measured["hosts"]))
			}
		}
		var exp []string
		for r, h := range want {
			for _, j := range h.seen {
				if j == i {
					exp = append(exp, fmt.Sprintf("%s #%d %d of %d", h.host, r+1, h.bytes, len(want)))
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("%s reports %v, want %v", x.id, got, exp)
		}
	}
	// The lab's peer group, lab-clients (10.77.0.0/24): s3's one host is
	// third of three.
	var peer []string
	for _, a := range s[2].alerts {
		if a.Analytic == "top_file_sharing_peer" {
			peer = append(peer, fmt.Sprintf("%s %s #%d of %d", a.Host.PeerGroup, a.Host.IP, a.Evidence.Measured["rank"], a.Evidence.Measured["hosts"]))
		}
	}
	if fmt.Sprint(peer) != "[lab-clients 10.77.0.13 #3 of 3]" {
		t.Errorf("s3's peer group report %v", peer)
	}
}

// TestFleetKafkaDown: with the cluster gone each engine goes on alone
// (a new destination is rare on each, since none can tell the others);
// when a cluster is back on the same port, the backlog is published and
// merged, and a fourth host is rare nowhere.
func TestFleetKafkaDown(t *testing.T) {
	w := newFleet(t)
	s := []*sensor{w.start("s1", nil), w.start("s2", nil), w.start("s3", nil)}
	train(s...)
	w.settle()
	_, port, _ := net.SplitHostPort(w.brokers[0])
	w.cluster.Close()
	for i, x := range s {
		reach(x, at(2, 60+i), fmt.Sprintf("10.0.%d.40", i+1), "outage.example")
		if x.rare("outage.example") != 1 {
			t.Fatalf("%s did not alert alone while Kafka was down", x.id)
		}
	}
	waitFor(t, "every sensor notices Kafka is gone", func() bool {
		for _, x := range s {
			if !x.fl.Stats().Down {
				return false
			}
		}
		return true
	})
	p, _ := strconv.Atoi(port)
	var c *kfake.Cluster
	waitFor(t, "a new cluster listens on port "+port, func() bool {
		var err error
		c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p), kfake.ListenFn(loopback))
		return err == nil
	})
	w.cluster = c
	waitFor(t, "the backlog reaches every sensor", func() bool {
		for _, x := range s {
			if x.eng.Prevalence("outage.example") != 3 {
				return false
			}
		}
		return true
	})
	for i, x := range s {
		reach(x, at(2, 120), "10.0.9.9", "outage.example")
		if x.rare("outage.example") != 1 {
			t.Errorf("%s: a fourth host is rare after Kafka came back", x.id)
		}
		if st := x.fl.Stats(); st.Dropped != 0 || st.Produced == 0 {
			t.Errorf("s%d after the outage: %+v", i+1, st)
		}
	}
}

// TestFleetStartsWithoutKafka: a sensor whose Kafka is not there yet
// waits no longer than CatchUp, works alone, and once Kafka is up
// publishes what it learnt, which a sensor starting then catches up on.
func TestFleetStartsWithoutKafka(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &fleetOf{t: t, cfg: labConfig(t), brokers: []string{addr}}
	s1 := &sensor{id: "s1"}
	s1.eng = detect.New(w.cfg, detect.NewState(32<<20), nil, s1.alert)
	fl, err := New(Config{Brokers: w.brokers, SensorID: "s1", CatchUp: 100 * time.Millisecond, RetryEvery: 50 * time.Millisecond,
		Logger: testLogger, Opts: quick}, s1.eng)
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s1.fl = fl
	t.Cleanup(fl.Stop)
	if st := fl.Stats(); st.CaughtUp {
		t.Fatalf("caught up with no Kafka: %+v", st)
	}
	train(s1)
	reach(s1, at(2, 60), "10.0.1.5", "early.example")
	if s1.rare("early.example") != 1 {
		t.Fatal("the sensor did not work alone")
	}
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	waitFor(t, "a cluster listens on port "+port, func() bool {
		w.cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p), kfake.ListenFn(loopback))
		return err == nil
	})
	t.Cleanup(w.cluster.Close)
	waitFor(t, "s1 catches up and publishes what it learnt alone", func() bool {
		st := fl.Stats()
		return st.CaughtUp && st.Backlog == 0 && st.Produced > 0
	})
	s2 := w.start("s2", nil)
	if n := s2.eng.Prevalence("early.example"); n != 1 {
		t.Errorf("s2 knows %d hosts of early.example, want 1", n)
	}
	if st := fl.Stats(); st.Dropped != 0 || st.Bad != 0 {
		t.Errorf("%+v", st)
	}
}
