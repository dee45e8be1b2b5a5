package sensor

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/internal/testserver"
)

// TestFlowListenerAllow: a flow listener with allow= takes exports only
// from the senders it names (issue 16: anyone who reaches the port could
// forge flows). socat sends OpenBSD pflow's real IPFIX template and data
// datagrams (flowbeat's test data) from 127.0.0.1, outside the list, then
// from 127.0.0.2, inside it: the first are dropped unread and counted,
// the second decoded.
func TestFlowListenerAllow(t *testing.T) {
	socat := testserver.Need(t, "socat")
	tpl := shared.Path(t, "netflow/flowbeat/testdata/dat/ipfix_test_openbsd_pflow_tpl.dat")
	data := shared.Path(t, "netflow/flowbeat/testdata/dat/ipfix_test_openbsd_pflow_data.dat")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received atomic.Uint64
	ready := make(chan int, 1)
	cfg := CollectConfig{Listen: []string{"netflow://127.0.0.1:0?allow=127.0.0.2"}, Received: &received,
		Ready: func(a []net.Addr) { ready <- a[0].(*net.UDPAddr).Port }}
	done := make(chan ExportStats, 1)
	go func() {
		st, err := Collect(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	port := <-ready
	send := func(from string, want uint64) {
		for _, f := range []string{tpl, data} {
			out, err := exec.Command(socat, "-u", "FILE:"+f, fmt.Sprintf("UDP4-SENDTO:127.0.0.1:%d,bind=%s", port, from)).CombinedOutput()
			if err != nil {
				t.Fatalf("socat from %s: %v: %s", from, err, out)
			}
		}
		for deadline := time.Now().Add(10 * time.Second); received.Load() < want; {
			if time.Now().After(deadline) {
				t.Fatalf("the listener read %d datagrams, want %d", received.Load(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	send("127.0.0.1", 2)
	send("127.0.0.2", 4)
	// What the readers took is decoded before Collect returns.
	cancel()
	st := <-done
	// 26: flowbeat's decoding of these two datagrams (its golden file).
	if st.NotAllowed != 2 || st.Datagrams != 2 || st.Records != 26 {
		t.Fatalf("not allowed %d (want 2), decoded %d datagrams (want 2) and %d records (want 26)", st.NotAllowed, st.Datagrams, st.Records)
	}
	t.Logf("from 127.0.0.1: 2 datagrams dropped; from 127.0.0.2: %d records", st.Records)
}

// TestFlowListenerURL: the listener URL's options are checked with a
// sentence naming what is wrong.
func TestFlowListenerURL(t *testing.T) {
	for _, ok := range []string{"netflow://:2055", "sflow://127.0.0.1:6343?allow=10.0.0.0/8,192.0.2.7", "netflow://:2055?buffer=64MiB&allow=10.0.0.0/8"} {
		if err := CheckFlowListener(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"netflow://:2055?allow=10.0.0.0/33", "netflow://:2055?deny=1.2.3.4", "netflow://host", "ipfix://:4739",
		"netflow://:2055?buffer=1", "netflow://:2055?buffer=2GiB", "netflow://:2055?buffer=lots", "netflow://:2055?buffer=1MiB&buffer=2MiB"} {
		if err := CheckFlowListener(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
