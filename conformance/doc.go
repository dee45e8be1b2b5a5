// Package conformance holds the whole-pipeline suites: they drive the
// sensor through its exported API (sensor.Replay, sensor.Collect) on
// third-party captures and exports, read the JSON lines it writes back as
// typed records, and compare them with what Zeek, Suricata, Arkime, nDPI,
// FoxIO, nfdump, pmacct, tshark and the programs that made the traffic
// reported. The package has no code of its own outside its tests; the
// inputs are found through internal/shared (../shared/testdata) and
// ../pcaps.
package conformance
