package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test runs this test binary again as a child that appends and
// acknowledges through a spool, SIGKILLs it at random moments, and checks
// what the spool holds after each kill against what the child said it
// had done. The child says so through a pipe (its file descriptor 3):
//
//	a LO HI   about to append entries LO..HI
//	A HI      Append returned for them
//	f         Append failed (full): nothing appended
//	k N       about to acknowledge up to entry N
//	K N       Ack returned
//	E TEXT    the child found something wrong, and exits
//
// so every entry reported appended and not acknowledged must be in the
// spool after the kill, nothing acknowledged may be, and what is there
// must be a run of consecutive entries in order.
const (
	envCrashDir  = "OUTFLOW_SPOOL_CRASH_DIR"
	envCrashNext = "OUTFLOW_SPOOL_CRASH_NEXT"
	envCrashSeed = "OUTFLOW_SPOOL_CRASH_SEED"
	envKills     = "OUTFLOW_SPOOL_KILLS"
)

// Small segments and a small limit so a few hundred entries roll
// segments, delete them, and fill the spool.
var crashConfig = Config{SegmentBytes: 4 << 10, MaxBytes: 512 << 10}

// crashEntrySize is mostly under 1500 bytes; one entry in 40 is large
// enough to be written in several system calls, which a kill can
// separate, tearing the tail.
func crashEntrySize(i int) int {
	if i%40 == 39 {
		return 100<<10 + (i*7919)%(200<<10)
	}
	return 8 + (i*7919)%1500
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(envCrashDir) != "" {
		return // the child, run for TestCrashChild
	}
	kills := 50
	if testing.Short() {
		kills = 10
	}
	if v := os.Getenv(envKills); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q is not a positive number", envKills, v)
		}
		kills = n
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("children seeded from %d (kill moments are not reproducible)", seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 7))
	next, floor := 0, -1
	var torn uint64
	for round := 0; round < kills; round++ {
		st := runAndKill(t, dir, next, floor, rng)
		next, floor = checkAfterKill(t, dir, round, st, &torn)
	}
	t.Logf("%d kills; %d entries appended, %d acknowledged; %d torn tail bytes cut at reopens", kills, next, floor+1, torn)
}

// crashState is what the child said before it was killed.
type crashState struct {
	ackLo, ackFlight int // last acknowledgement reported done; one in flight (-2: none)
	appLo, appFlight int // last append reported done; the end of one in flight (-2: none)
}

// runAndKill starts a child that appends from entry next on, with entries
// up to floor acknowledged, and kills it.
func runAndKill(t *testing.T, dir string, next, floor int, rng *rand.Rand) crashState {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envCrashDir+"="+dir, envCrashNext+"="+strconv.Itoa(next), envCrashSeed+"="+strconv.FormatUint(rng.Uint64(), 10))
	cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	st := crashState{ackLo: floor, ackFlight: -2, appLo: next - 1, appFlight: -2}
	opened := make(chan struct{})
	done := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		var once sync.Once
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			num := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
			switch f[0] {
			case "o":
				once.Do(func() { close(opened) })
			case "a":
				st.appFlight = num(2)
			case "A":
				st.appLo, st.appFlight = num(1), -2
			case "f":
				st.appFlight = -2
			case "k":
				st.ackFlight = num(1)
			case "K":
				st.ackLo, st.ackFlight = num(1), -2
			case "E":
				done <- sc.Text()
				return
			}
		}
		done <- ""
	}()
	// Most kills come while the child works; some while it starts, which
	// may be in the middle of Open's recovery.
	if rng.IntN(8) > 0 {
		select {
		case <-opened:
		case <-time.After(30 * time.Second):
			t.Fatal("the child did not open the spool")
		}
	}
	time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
	cmd.Process.Signal(syscall.SIGKILL)
	werr := cmd.Wait()
	if msg := <-done; msg != "" {
		t.Fatalf("child: %s\n%s", msg, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by itself (%v):\n%s", werr, stderr.String())
	}
	return st
}

// checkAfterKill opens the spool as a restart would and checks it against
// what the child reported; it returns the number the next child starts at
// and the last entry acknowledged.
func checkAfterKill(t *testing.T, dir string, round int, st crashState, torn *uint64) (int, int) {
	t.Helper()
	s := mustOpen(t, dir, crashConfig)
	defer s.Close()
	*torn += s.Stats().TruncatedBytes
	counted := s.Len()
	got, err := s.Peek(1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	nums := make([]int, len(got))
	for i, b := range got {
		if nums[i] = entryNumber(b); nums[i] < 0 || len(b) != crashEntrySize(nums[i]) {
			t.Fatalf("round %d: entry %d of the spool is not one the child wrote", round, i)
		}
		if i > 0 && nums[i] != nums[i-1]+1 {
			t.Fatalf("round %d: entry %d follows %d", round, nums[i], nums[i-1])
		}
	}
	if counted != len(nums) {
		t.Fatalf("round %d: Len %d, %d entries read", round, counted, len(nums))
	}
	if stats := s.Stats(); stats.CorruptEntries != 0 || stats.DamagedBytes != 0 {
		t.Fatalf("round %d: a kill left damage that is not a torn tail: %v", round, s.TakeDamage())
	}
	floorOK := func(f int) bool { return f == st.ackLo || (st.ackFlight != -2 && f == st.ackFlight) }
	appHi := max(st.appLo, st.appFlight)
	if len(nums) == 0 {
		if st.appLo > max(st.ackLo, st.ackFlight) {
			t.Fatalf("round %d: the spool is empty, but entries up to %d were appended and only up to %d acknowledged (%+v)", round, st.appLo, st.ackLo, st)
		}
		next := max(appHi, st.ackLo, st.ackFlight) + 1
		return next, next - 1
	}
	first, last := nums[0], nums[len(nums)-1]
	if !floorOK(first - 1) {
		t.Fatalf("round %d: the spool starts at entry %d, but acknowledgements reached %d (and %d in flight)", round, first, st.ackLo, st.ackFlight)
	}
	if last < st.appLo || last > appHi {
		t.Fatalf("round %d: the spool ends at entry %d, but appends reached %d (and %d in flight)", round, last, st.appLo, st.appFlight)
	}
	return last + 1, first - 1
}

// TestCrashChild is the child of TestCrashRecovery; alone it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		return
	}
	report := os.NewFile(3, "report")
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		report.Write(fmt.Appendf(nil, format+"\n", args...))
	}
	fail := func(format string, args ...any) {
		say("E "+format, args...)
		os.Exit(1)
	}
	next, _ := strconv.Atoi(os.Getenv(envCrashNext))
	seed, _ := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	s, err := Open(dir, crashConfig)
	if err != nil {
		fail("%v", err)
	}
	say("o")
	// Should the parent die, do not run for ever.
	time.AfterFunc(30*time.Second, func() { os.Exit(2) })

	go func() {
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := next; ; {
			k := rng.IntN(6) + 1
			batch := make([][]byte, k)
			for j := range batch {
				batch[j] = entry(i+j, crashEntrySize(i+j))
			}
			say("a %d %d", i, i+k-1)
			err := s.Append(batch...)
			if errors.Is(err, ErrFull) {
				say("f")
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				fail("append: %v", err)
			}
			say("A %d", i+k-1)
			i += k
		}
	}()

	rng := rand.New(rand.NewPCG(seed, 2))
	want := -1 // the entry the next Peek starts with; unknown at first
	for {
		got, err := s.Peek(rng.IntN(20)+1, rng.IntN(8000))
		if err != nil {
			fail("peek: %v", err)
		}
		if len(got) == 0 {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		for j, b := range got {
			n := entryNumber(b)
			if n < 0 || (want >= 0 && n != want+j) || (want < 0 && j > 0 && n != entryNumber(got[0])+j) {
				fail("peek: entry %d of %d is number %d, want %d", j, len(got), n, want+j)
			}
		}
		k := rng.IntN(len(got) + 1)
		if k == 0 {
			want = entryNumber(got[0])
			continue
		}
		upTo := entryNumber(got[k-1])
		say("k %d", upTo)
		if err := s.Ack(k); err != nil {
			fail("ack: %v", err)
		}
		say("K %d", upTo)
		want = upTo + 1
	}
}
