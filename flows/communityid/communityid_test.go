package communityid

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// The spec's reference data, copied unmodified into the shared test data
// (see its MANIFEST.md for provenance).
const dataDir = "community-id/"

type config struct {
	seed    uint16
	hexForm bool
}

func (c config) String() string {
	form := "base64"
	if c.hexForm {
		form = "hex"
	}
	return "seed=" + strconv.Itoa(int(c.seed)) + "," + form
}

func addrBytes(t testing.TB, s string) []byte {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

// public runs the exported API, which maps raw ICMP type/code itself.
func (c config) public(h *Hasher, src, dst []byte, proto uint8, sport, dport uint16) string {
	if c.hexForm {
		return string(h.AppendHex(nil, src, dst, proto, sport, dport))
	}
	return string(h.Append(nil, src, dst, proto, sport, dport))
}

// TestBaselineJSON checks every row of the spec's three JSON baselines.
//
// Their ICMP ports are already port equivalents, not raw type/code, and the
// one-way flag that decides whether a tuple may be flipped is not recorded.
// It is recoverable, though: the type is the first port in both forms, and
// a type is two-way exactly when it has a counterpart. So each row is
// checked twice:
//   - through appendMapped, the layer below the ICMP mapping, fed the row's
//     mapped ports and the one-way flag recovered from the type;
//   - through the public API, fed the same mapped ports. This is sound
//     because the mapping is idempotent: a two-way type maps to
//     (type, counterpart) whatever the second port is, and a one-way type
//     keeps (type, code).
func TestBaselineJSON(t *testing.T) {
	files := []struct {
		name string
		cfg  config
	}{
		{"baseline_deflt.json", config{0, false}},
		{"baseline_seed1.json", config{1, false}},
		{"baseline_nob64.json", config{0, true}},
	}
	total := 0
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			raw, err := os.ReadFile(shared.Path(t, dataDir+f.name))
			if err != nil {
				t.Fatal(err)
			}
			var rows []struct {
				Proto       int    `json:"proto"`
				Saddr       string `json:"saddr"`
				Daddr       string `json:"daddr"`
				Sport       *int   `json:"sport"`
				Dport       *int   `json:"dport"`
				CommunityID string `json:"communityid"`
			}
			if err := json.Unmarshal(raw, &rows); err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				t.Fatalf("%s: no rows", f.name)
			}
			h := New(f.cfg.seed)
			icmpSeen := 0
			for i, r := range rows {
				if r.Proto < 0 || r.Proto > 255 || (r.Sport == nil) != (r.Dport == nil) {
					t.Fatalf("row %d: malformed %+v", i, r)
				}
				proto := uint8(r.Proto)
				var sport, dport uint16
				if r.Sport != nil {
					if !hasPorts(proto) {
						t.Fatalf("row %d: ports for port-less protocol %d", i, proto)
					}
					sport, dport = uint16(*r.Sport), uint16(*r.Dport)
				} else if hasPorts(proto) {
					t.Fatalf("row %d: no ports for protocol %d", i, proto)
				}
				oneWay := false
				if proto == protoICMP || proto == protoICMPv6 {
					icmpSeen++
					c, twoWay := counterpart(proto, sport)
					if twoWay && dport != c {
						t.Fatalf("row %d: type %d with second port %d, want the mapped counterpart %d: not the mapped form the MANIFEST describes", i, sport, dport, c)
					}
					oneWay = !twoWay
				}
				src, dst := addrBytes(t, r.Saddr), addrBytes(t, r.Daddr)
				desc := strconv.Itoa(r.Proto) + " " + r.Saddr + " " + strconv.Itoa(int(sport)) + " -> " + r.Daddr + " " + strconv.Itoa(int(dport))

				if got := string(h.appendMapped(nil, src, dst, proto, sport, dport, oneWay, f.cfg.hexForm)); got != r.CommunityID {
					t.Errorf("row %d (%s) %v mapped: got %s, want %s", i, desc, f.cfg, got, r.CommunityID)
				}
				if got := f.cfg.public(h, src, dst, proto, sport, dport); got != r.CommunityID {
					t.Errorf("row %d (%s) %v public: got %s, want %s", i, desc, f.cfg, got, r.CommunityID)
				}
			}
			if icmpSeen == 0 {
				t.Errorf("%s: no ICMP rows; the mapped-port path went untested", f.name)
			}
			total += len(rows)
			t.Logf("%s: %d rows (%d ICMP/ICMPv6), %v", f.name, len(rows), icmpSeen, f.cfg)
		})
	}
	t.Logf("JSON baselines: %d rows checked", total)
}

// tableRow is one line of a table in baseline-README.md, with ICMP ports as
// raw type and code.
type tableRow struct {
	line         int
	proto        uint8
	saddr, daddr string
	ports        bool
	sport, dport uint16
	want         string
}

type table struct {
	cfg  config
	rows []tableRow
}

// cidHeader reads the hashing configuration out of a table's result column
// header, e.g. "Community ID (seed=1, w/ base64)".
var cidHeader = regexp.MustCompile(`^Community ID \((?:(defaults)|seed=(\d+), (w/o?) base64)\)$`)

// parseTables extracts the README's ASCII tables, looking columns up by
// header name rather than position.
func parseTables(t *testing.T, path string) []table {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var tables []table
	var cur *table
	var col map[string]int
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if !strings.HasPrefix(line, "+") {
				cur = nil // anything but a table line ends the table
			}
			continue
		}
		parts := strings.Split(strings.Trim(line, "|"), "|")
		cells := make([]string, len(parts))
		for i, p := range parts {
			cells[i] = strings.TrimSpace(p)
		}
		if cells[0] == "Proto name" {
			col = map[string]int{}
			var cfg config
			found := false
			for i, c := range cells {
				if m := cidHeader.FindStringSubmatch(c); m != nil {
					found = true
					col["cid"] = i
					if m[1] == "" {
						s, err := strconv.ParseUint(m[2], 10, 16)
						if err != nil {
							t.Fatalf("line %d: seed %q: %v", ln, m[2], err)
						}
						cfg = config{seed: uint16(s), hexForm: m[3] == "w/o"}
					}
					continue
				}
				col[c] = i
			}
			for _, k := range []string{"Proto number", "Src address", "Dst address", "Src port", "Dst port"} {
				if _, ok := col[k]; !ok {
					t.Fatalf("line %d: table header lacks %q", ln, k)
				}
			}
			if !found {
				t.Fatalf("line %d: no recognisable Community ID column in %q", ln, line)
			}
			tables = append(tables, table{cfg: cfg})
			cur = &tables[len(tables)-1]
			continue
		}
		if cur == nil {
			t.Fatalf("line %d: table row outside a table", ln)
		}
		if len(cells) != len(col) {
			t.Fatalf("line %d: %d cells, header has %d", ln, len(cells), len(col))
		}
		p, err := strconv.ParseUint(cells[col["Proto number"]], 10, 8)
		if err != nil {
			t.Fatalf("line %d: protocol: %v", ln, err)
		}
		r := tableRow{line: ln, proto: uint8(p), saddr: cells[col["Src address"]], daddr: cells[col["Dst address"]], want: cells[col["cid"]]}
		sp, dp := cells[col["Src port"]], cells[col["Dst port"]]
		if sp != "-" || dp != "-" {
			s, err1 := strconv.ParseUint(sp, 10, 16)
			d, err2 := strconv.ParseUint(dp, 10, 16)
			if err1 != nil || err2 != nil {
				t.Fatalf("line %d: ports %q %q", ln, sp, dp)
			}
			r.ports, r.sport, r.dport = true, uint16(s), uint16(d)
		}
		cur.rows = append(cur.rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tables
}

// TestBaselineTables checks every row of the README's three tables through
// the public API; their ICMP rows are raw type/code, so they are what covers
// the mapping on the spec's own data.
func TestBaselineTables(t *testing.T) {
	tables := parseTables(t, shared.Path(t, dataDir+"baseline-README.md"))
	want := map[config]bool{{0, false}: true, {1, false}: true, {0, true}: true}
	total := 0
	for _, tb := range tables {
		if !want[tb.cfg] {
			t.Errorf("unexpected or repeated table %v", tb.cfg)
		}
		delete(want, tb.cfg)
		if len(tb.rows) == 0 {
			t.Errorf("table %v has no rows", tb.cfg)
		}
		h := New(tb.cfg.seed)
		for _, r := range tb.rows {
			src, dst := addrBytes(t, r.saddr), addrBytes(t, r.daddr)
			if got := tb.cfg.public(h, src, dst, r.proto, r.sport, r.dport); got != r.want {
				t.Errorf("README line %d %v: proto %d %s %d -> %s %d: got %s, want %s",
					r.line, tb.cfg, r.proto, r.saddr, r.sport, r.daddr, r.dport, got, r.want)
			}
			if !r.ports && hasPorts(r.proto) {
				t.Errorf("README line %d: protocol %d without ports", r.line, r.proto)
			}
			if !r.ports {
				// Ports of port-less protocols must not leak into the hash.
				if got := tb.cfg.public(h, src, dst, r.proto, 1234, 80); got != r.want {
					t.Errorf("README line %d %v: ports changed a port-less ID: got %s, want %s", r.line, tb.cfg, got, r.want)
				}
			}
		}
		total += len(tb.rows)
		t.Logf("README table %v: %d rows", tb.cfg, len(tb.rows))
	}
	for cfg := range want {
		t.Errorf("README table %v not found", cfg)
	}
	t.Logf("README tables: %d rows checked", total)
}

// extra covers what neither baseline exercises: one-way ICMP sent from the
// larger address (must not be flipped), every counterpart pair, equal
// addresses, port-less protocols given ports, and extreme values. Expected
// values were computed with the reference implementation, pycommunityid
// (corelight/pycommunityid@5748e0c4808de6910abcf67b426cf8284af2da74),
// CommunityID(seed).calc(FlowTuple(proto, saddr, daddr, sport, dport)), with
// sport/dport None where -1.
var extra = []struct {
	proto        uint8
	saddr, daddr string
	sport, dport int
	seed         uint16
	b64, hex     string
	what         string
}{
	{1, "5.6.7.8", "1.2.3.4", 11, 0, 0, "1:1Vae9INpTJ+fZaSmjhtK/hyOPac=", "1:d5569ef483694c9f9f65a4a68e1b4afe1c8e3da7", "ICMP time exceeded from the larger address: one-way, must not be flipped"},
	{1, "1.2.3.4", "5.6.7.8", 11, 0, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:7ff6224b25aa733ad381f5026650549ef1d170f9", "same, forward direction"},
	{1, "5.6.7.8", "1.2.3.4", 3, 3, 0, "1:LpbcOkCI0tVP+aO3QtYxJ5CoMcY=", "1:2e96dc3a4088d2d54ff9a3b742d6312790a831c6", "ICMP port unreachable from the larger address"},
	{1, "5.6.7.8", "1.2.3.4", 8, 5, 0, "1:1vNr+cVw7bzZ+tGsh2H7voBwaaY=", "1:d6f36bf9c570edbcd9fad1ac8761fbbe807069a6", "ICMP echo with nonzero code: code ignored for two-way types"},
	{1, "1.2.3.4", "5.6.7.8", 0, 0, 0, "1:1vNr+cVw7bzZ+tGsh2H7voBwaaY=", "1:d6f36bf9c570edbcd9fad1ac8761fbbe807069a6", "echo reply"},
	{1, "5.6.7.8", "1.2.3.4", 13, 0, 0, "1:sXXw1GK+eziw+q7TRMrHOjMwMbA=", "1:b175f0d462be7b38b0faaed344cac73a333031b0", "timestamp request"},
	{1, "1.2.3.4", "5.6.7.8", 14, 0, 0, "1:sXXw1GK+eziw+q7TRMrHOjMwMbA=", "1:b175f0d462be7b38b0faaed344cac73a333031b0", "timestamp reply"},
	{1, "5.6.7.8", "1.2.3.4", 15, 0, 0, "1:lm6fTnsGIEXxiZLMuHJvf0xYnuI=", "1:966e9f4e7b062045f18992ccb8726f7f4c589ee2", "info request"},
	{1, "1.2.3.4", "5.6.7.8", 16, 0, 0, "1:lm6fTnsGIEXxiZLMuHJvf0xYnuI=", "1:966e9f4e7b062045f18992ccb8726f7f4c589ee2", "info reply"},
	{1, "5.6.7.8", "1.2.3.4", 10, 0, 0, "1:yLAin9rynIL6zIPn4R2pNALOG5A=", "1:c8b0229fdaf29c82facc83e7e11da93402ce1b90", "router solicitation"},
	{1, "1.2.3.4", "5.6.7.8", 9, 0, 0, "1:yLAin9rynIL6zIPn4R2pNALOG5A=", "1:c8b0229fdaf29c82facc83e7e11da93402ce1b90", "router advertisement"},
	{1, "5.6.7.8", "1.2.3.4", 17, 0, 0, "1:f7UMmgzGEcYdD7pIRRrU/cEkyAA=", "1:7fb50c9a0cc611c61d0fba48451ad4fdc124c800", "mask request"},
	{1, "1.2.3.4", "5.6.7.8", 18, 0, 0, "1:f7UMmgzGEcYdD7pIRRrU/cEkyAA=", "1:7fb50c9a0cc611c61d0fba48451ad4fdc124c800", "mask reply"},
	{1, "10.0.0.1", "10.0.0.1", 0, 0, 0, "1:Q2R99S5FzFXN21OqJRTsA4EVBTo=", "1:43647df52e45cc55cddb53aa2514ec038115053a", "echo reply to self: equal addresses, ports decide"},
	{1, "10.0.0.1", "10.0.0.1", 8, 0, 0, "1:Q2R99S5FzFXN21OqJRTsA4EVBTo=", "1:43647df52e45cc55cddb53aa2514ec038115053a", "echo request to self"},
	{58, "fe80::2", "fe80::1", 146, 0, 0, "1:UMYEnWXXJ9+nbyoj10xPzYoUBio=", "1:50c6049d65d727dfa76f2a23d74c4fcd8a14062a", "ICMPv6 type 146 from the larger address: one-way"},
	{58, "fe80::2", "fe80::1", 1, 4, 0, "1:KP7k20289QLlEmMHLKdRgaeGmfo=", "1:28fee4db4dbcf502e51263072ca75181a78699fa", "ICMPv6 port unreachable from the larger address"},
	{58, "fe80::2", "fe80::1", 130, 0, 0, "1:71CIB4bZAXtzNgwgtcM+4TS71z8=", "1:ef50880786d9017b73360c20b5c33ee134bbd73f", "MLD query"},
	{58, "fe80::1", "fe80::2", 131, 0, 0, "1:71CIB4bZAXtzNgwgtcM+4TS71z8=", "1:ef50880786d9017b73360c20b5c33ee134bbd73f", "MLD report"},
	{58, "fe80::2", "fe80::1", 139, 0, 0, "1:LKvUqbovyorzH3vEr5qb4x1R1yg=", "1:2cabd4a9ba2fca8af31f7bc4af9a9be31d51d728", "node information query"},
	{58, "fe80::1", "fe80::2", 140, 0, 0, "1:LKvUqbovyorzH3vEr5qb4x1R1yg=", "1:2cabd4a9ba2fca8af31f7bc4af9a9be31d51d728", "node information reply"},
	{58, "fe80::2", "fe80::1", 144, 0, 0, "1:VjrfcngPBA7JHuabgy0Ih8qXY0I=", "1:563adf72780f040ec91ee69b832d0887ca976342", "HAAD request"},
	{58, "fe80::1", "fe80::2", 145, 0, 0, "1:VjrfcngPBA7JHuabgy0Ih8qXY0I=", "1:563adf72780f040ec91ee69b832d0887ca976342", "HAAD reply"},
	{58, "fe80::2", "fe80::1", 8, 0, 0, "1:hPMyVe8Vidjj4pcbBjoZkyY+QfM=", "1:84f33255ef1589d8e3e2971b063a1993263e41f3", "ICMPv4 echo type number under ICMPv6: one-way"},
	{6, "10.0.0.1", "10.0.0.1", 80, 1234, 0, "1:WaobEo3Uyp/JjlL9QX3lvrl1Oag=", "1:59aa1b128dd4ca9fc98e52fd417de5beb97539a8", "TCP equal addresses, larger port first"},
	{6, "10.0.0.1", "10.0.0.1", 1234, 80, 0, "1:WaobEo3Uyp/JjlL9QX3lvrl1Oag=", "1:59aa1b128dd4ca9fc98e52fd417de5beb97539a8", "TCP equal addresses, smaller port first"},
	{17, "::1", "::1", 53, 53, 0, "1:LNGG/8woUQacsibR50KIPgf10rA=", "1:2cd186ffcc2851069cb226d1e742883e07f5d2b0", "UDP fully equal endpoints"},
	{6, "127.0.0.1", "10.0.0.1", 80, 1234, 0, "1:F/BCgQTUT/FXrTnSBgdsKwJ26iE=", "1:17f0428104d44ff157ad39d206076c2b0276ea21", "spec README example"},
	{6, "10.0.0.1", "127.0.0.1", 1234, 80, 0, "1:F/BCgQTUT/FXrTnSBgdsKwJ26iE=", "1:17f0428104d44ff157ad39d206076c2b0276ea21", "spec README example, reversed"},
	{6, "255.255.255.255", "0.0.0.0", 65535, 0, 65535, "1:+v7t64dUxDvJMpv6RFz4Klvi2DU=", "1:fafeedeb8754c43bc9329bfa445cf82a5be2d835", "extremes, seed 0xffff"},
	{47, "5.6.7.8", "1.2.3.4", -1, -1, 0, "1:+mluqz76jObh6dJLwnhX08n5St4=", "1:fa696eab3efa8ce6e1e9d24bc27857d3c9f94ade", "GRE: port-less"},
	{47, "2001:db8::2", "2001:db8::1", -1, -1, 7, "1:nZMwYWk0p4m9S5bxJ7Bu6HT6xeM=", "1:9d9330616934a789bd4b96f127b06ee874fac5e3", "GRE over IPv6, seed 7"},
	{50, "10.0.0.2", "10.0.0.1", -1, -1, 0, "1:dX+1pd7Z9Y9hJE/IuQlfvK7bxuA=", "1:757fb5a5ded9f58f61244fc8b9095fbcaedbc6e0", "ESP"},
}

func TestReferenceEdgeCases(t *testing.T) {
	for _, c := range extra {
		h := New(c.seed)
		src, dst := addrBytes(t, c.saddr), addrBytes(t, c.daddr)
		sport, dport := uint16(c.sport), uint16(c.dport)
		if c.sport < 0 {
			sport, dport = 4321, 443 // must be ignored
		}
		if got := string(h.Append(nil, src, dst, c.proto, sport, dport)); got != c.b64 {
			t.Errorf("%s: Append got %s, want %s", c.what, got, c.b64)
		}
		if got := string(h.AppendHex(nil, src, dst, c.proto, sport, dport)); got != c.hex {
			t.Errorf("%s: AppendHex got %s, want %s", c.what, got, c.hex)
		}
	}
	t.Logf("edge cases: %d tuples, base64 and hex", len(extra))
}

func TestUnsupportedAddressesYieldNothing(t *testing.T) {
	h := New(0)
	v4, v6 := []byte{1, 2, 3, 4}, make([]byte, 16)
	prefix := []byte("id=")
	for _, c := range []struct {
		name     string
		src, dst []byte
	}{
		{"mixed families", v4, v6},
		{"mixed families reversed", v6, v4},
		{"empty", nil, nil},
		{"5 bytes", []byte{1, 2, 3, 4, 5}, []byte{1, 2, 3, 4, 5}},
	} {
		if got := h.Append(prefix, c.src, c.dst, protoTCP, 1, 2); !bytes.Equal(got, prefix) {
			t.Errorf("%s: Append = %q, want dst unchanged", c.name, got)
		}
		if got := h.AppendHex(prefix, c.src, c.dst, protoTCP, 1, 2); !bytes.Equal(got, prefix) {
			t.Errorf("%s: AppendHex = %q, want dst unchanged", c.name, got)
		}
	}
}

// TestAppendKeepsPrefixAndInputs guards the append contract and that the
// endpoint swap never writes through to the caller's address slices.
func TestAppendKeepsPrefixAndInputs(t *testing.T) {
	h := New(0)
	src, dst := []byte{5, 6, 7, 8}, []byte{1, 2, 3, 4}
	got := string(h.Append([]byte("cid="), src, dst, protoTCP, 3344, 1122))
	if got != "cid=1:wCb3OG7yAFWelaUydu0D+125CLM=" {
		t.Errorf("got %s", got)
	}
	if !bytes.Equal(src, []byte{5, 6, 7, 8}) || !bytes.Equal(dst, []byte{1, 2, 3, 4}) {
		t.Errorf("inputs modified: %v %v", src, dst)
	}
	if n := len(h.Append(nil, src, dst, protoTCP, 1, 2)); n != 30 {
		t.Errorf("base64 ID length %d, want 30", n)
	}
	if n := len(h.AppendHex(nil, src, dst, protoTCP, 1, 2)); n != 42 {
		t.Errorf("hex ID length %d, want 42", n)
	}
}

func TestAppendAllocatesNothing(t *testing.T) {
	h := New(0)
	a4, b4 := []byte{10, 0, 0, 2}, []byte{10, 0, 0, 1}
	a6, b6 := addrBytes(t, "2001:db8::2"), addrBytes(t, "2001:db8::1")
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = h.Append(buf[:0], a4, b4, protoTCP, 443, 51000)
		buf = h.Append(buf[:0], a6, b6, protoICMPv6, 128, 0)
		buf = h.Append(buf[:0], a6, b6, 47, 0, 0)
		buf = h.AppendHex(buf[:0], a4, b4, protoICMP, 3, 1)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per 4 calls, want 0", allocs)
	}
}

func BenchmarkAppend(b *testing.B) {
	a4, b4 := []byte{192, 168, 1, 52}, []byte{8, 8, 8, 8}
	a6, b6 := addrBytes(b, "2001:470:e5bf:dead:4957:2174:e82c:4887"), addrBytes(b, "2607:f8b0:400c:c03::1a")
	for _, c := range []struct {
		name     string
		src, dst []byte
		proto    uint8
		sp, dp   uint16
		hex      bool
	}{
		{"udp4", a4, b4, protoUDP, 54585, 53, false},
		{"tcp6", a6, b6, protoTCP, 63943, 25, false},
		{"icmp6-echo", a6, b6, protoICMPv6, 128, 0, false},
		{"udp4-hex", a4, b4, protoUDP, 54585, 53, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := New(0)
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				if c.hex {
					buf = h.AppendHex(buf[:0], c.src, c.dst, c.proto, c.sp, c.dp)
				} else {
					buf = h.Append(buf[:0], c.src, c.dst, c.proto, c.sp, c.dp)
				}
			}
		})
	}
}
