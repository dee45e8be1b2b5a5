package dnscache

import (
	"testing"
	"time"
)

// answerModel is every answer kept, looked up the slow, obvious way: the
// reference the cache must agree with while it holds them all.
type answerModel struct {
	name         string
	at, deadline int64
}

func (m answerModel) valid(ts int64) bool { return m.deadline >= ts }

func modelLookup(as []answerModel, ts, skew int64) (string, bool) {
	best, after := -1, -1
	for i, a := range as {
		switch {
		case !a.valid(ts):
		case a.at <= ts:
			if best < 0 || a.at >= as[best].at {
				best = i
			}
		case a.at-ts <= skew && (after < 0 || a.at < as[after].at):
			after = i
		}
	}
	if best < 0 {
		best = after
	}
	if best < 0 {
		return "", false
	}
	return as[best].name, true
}

// FuzzAddLookup adds up to 100 answers (all fit in MaxValueBytes) in time order, 4 bytes each
// (name, gap, TTL, unused), and checks every lookup around them against
// the model. Then it adds the same answers in the order the last bytes
// say and checks only that no name comes from after the flow.
func FuzzAddLookup(f *testing.F) {
	f.Add([]byte{0, 10, 3, 0, 1, 10, 3, 0, 0, 10, 3, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 2, 1, 200, 0})
	f.Add([]byte{3, 1, 1, 7, 3, 5, 1, 3, 2, 40, 9, 1, 1, 2, 8, 0, 0, 0, 2, 5})
	names := []string{"a.example", "b.example", "c.example", "d.example"}
	ms := int64(time.Millisecond)
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := Config{ClockSkew: 2 * time.Millisecond}
		c, shuffled := New(cfg), New(cfg)
		client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
		var as []answerModel
		ts := int64(1_800_000_000) * sec
		for i := 0; i+4 <= len(b) && len(as) < 100; i += 4 {
			ts += int64(b[i+1]) * 100 * ms
			ttl := uint32(b[i+2] % 16)
			a := answerModel{name: names[b[i]%4], at: ts, deadline: ts + int64(ttl)*sec}
			as = append(as, a)
			c.Add(client, addr, []byte(a.name), ttl, a.at)
		}
		perm := append([]answerModel(nil), as...)
		for i := len(perm) - 1; i >= 0; i-- { // a permutation from the input
			j := int(b[(4*i+3)%len(b)]) % (i + 1)
			a := perm[j]
			shuffled.Add(client, addr, []byte(a.name), uint32((a.deadline-a.at)/sec), a.at)
			perm[j], perm[i] = perm[i], perm[j]
		}
		for _, a := range as {
			for _, d := range []int64{-3 * ms, -2 * ms, -ms, -1, 0, 1, 50 * ms, sec, 5 * sec, 20 * sec} {
				q := a.at + d
				want, wok := modelLookup(as, q, 2*ms)
				if got, ok := c.Lookup(nil, client, addr, q); ok != wok || string(got) != want {
					t.Fatalf("at %d: %q %v, model %q %v", q, got, ok, want, wok)
				}
				if got, ok := shuffled.Lookup(nil, client, addr, q); ok {
					named := false
					for _, x := range as {
						named = named || x.name == string(got) && x.at <= q+2*ms
					}
					if !named {
						t.Fatalf("out of order, at %d: %q, answered only later", q, got)
					}
				}
			}
		}
	})
}
