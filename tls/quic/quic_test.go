package quic

import (
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC9001Keys: the client Initial keys of RFC 9001 Appendix A.1, derived
// from the destination connection ID 0x8394c8f03e515708.
func TestRFC9001Keys(t *testing.T) {
	k, ok := ClientKeys(V1, unhex(t, "8394c8f03e515708"))
	if !ok {
		t.Fatal("no keys for v1")
	}
	for name, c := range map[string][2]string{
		"key": {hex.EncodeToString(k.Key), "1f369613dd76d5467730efcbe3b1a22d"},
		"iv":  {hex.EncodeToString(k.IV), "fa044b2f42a3fd3b46fb255c"},
		"hp":  {hex.EncodeToString(k.HP), "9f50449e04a0e810283a1e9933adedd2"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s %s, RFC 9001 A.1 gives %s", name, c[0], c[1])
		}
	}
}

// TestRFC9369Keys: the QUIC v2 client Initial keys of RFC 9369 Appendix A.1.
func TestRFC9369Keys(t *testing.T) {
	k, ok := ClientKeys(V2, unhex(t, "8394c8f03e515708"))
	if !ok {
		t.Fatal("no keys for v2")
	}
	for name, c := range map[string][2]string{
		"key": {hex.EncodeToString(k.Key), "8b1a0bc121284290a29e0971b5cd045d"},
		"iv":  {hex.EncodeToString(k.IV), "91f73e2351d8fa91660e909f"},
		"hp":  {hex.EncodeToString(k.HP), "45b95e15235d6f45a6b19cbcb0294ba9"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s %s, RFC 9369 A.1 gives %s", name, c[0], c[1])
		}
	}
}

func TestBadDatagrams(t *testing.T) {
	var a Assembler
	for _, d := range [][]byte{
		{0xc0},
		{0xc0, 0, 0, 0, 1, 8},
		{0xc0, 0xde, 0xad, 0xbe, 0xef, 0, 0},
		append([]byte{0xc0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x44, 0xff}, make([]byte, 40)...),
	} {
		a.Reset()
		if _, err := a.Feed(d); err == nil {
			t.Errorf("%x: no error", d)
		} else if _, ok := err.(*Error); !ok {
			t.Errorf("%x: error %T", d, err)
		}
	}
}

func FuzzAssembler(f *testing.F) {
	f.Add([]byte{0xc0, 0, 0, 0, 1, 8, 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08, 0, 0, 0x40, 0x20})
	f.Add(append([]byte{0xd0, 0x6b, 0x33, 0x43, 0xcf, 4, 1, 2, 3, 4, 0, 0, 0x41, 0}, make([]byte, 300)...))
	var a Assembler
	f.Fuzz(func(t *testing.T, d []byte) {
		a.Reset()
		done, err := a.Feed(d)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T", err)
			}
		}
		if done && len(a.Hello()) < 4 {
			t.Fatal("done without a hello")
		}
	})
}
