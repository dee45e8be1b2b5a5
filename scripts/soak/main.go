//go:build linux

// Command soak is issue 16's soak: it starts one `outflow run` with every
// kind of listener and a watched directory, sends the floods at
// it together for a while (-duration, 10 minutes by default) with real
// traffic alongside, and checks that the sensor kept its memory budget and
// lost no real record. It prints the peak resident memory (VmHWM, read
// from /proc) and the sensor's counts, and exits 1 when memory passed the
// budget, a real record went missing, or the sensor did not exit 0 on
// SIGTERM. Run it through scripts/soak.sh, from the module's root.
//
// The real traffic, in rounds (-round, 15 s):
//   - the detection lab's capture (pcaps/outflow-detect.pcap) dropped into
//     the watched directory, and its host events posted to the HTTP
//     listener: every round's flow records must reach the flows file, and
//     every round's flow ends must join their process;
//   - a real exporter's IPFIX (Cisco's, from flowbeat's test data in
//     ../shared/testdata) sent to the flow listener: every record flowbeat
//     decodes from it must be decoded, every round.
//
// The floods (floods.go) are the table, rows 1, 5 to 8, 10 to 12
// and 14 to 17, each in its own goroutine for the whole run.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.outflow, "outflow", "", "the outflow binary to soak (scripts/soak.sh builds it)")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the floods run")
	flag.DurationVar(&o.round, "round", 15*time.Second, "how often a round of real traffic is sent")
	flag.Int64Var(&o.budgetMiB, "budget", 0, "the resident-memory budget in MiB (0: computed from the config's budgets)")
	flag.StringVar(&o.shared, "shared", "../shared/testdata", "the shared third-party test data")
	flag.StringVar(&o.dir, "dir", "", "the working directory (default: a new temporary one, removed at the end)")
	flag.Parse()
	if o.outflow == "" {
		fmt.Fprintln(os.Stderr, "soak: -outflow is required (run scripts/soak.sh)")
		os.Exit(2)
	}
	keep := o.dir != ""
	if !keep {
		d, err := os.MkdirTemp("", "outflow-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(2)
		}
		o.dir = d
	}
	o.dir, _ = filepath.Abs(o.dir)
	s, err := newSoak(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	ok := s.run(stop)
	if !keep && ok {
		os.RemoveAll(o.dir)
	} else {
		fmt.Printf("soak: the run's files are in %s\n", o.dir)
	}
	if !ok {
		os.Exit(1)
	}
}
