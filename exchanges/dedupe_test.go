package exchanges

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestDedupe(t *testing.T) {
	start := time.UnixMilli(1_000_000)
	d := NewDedupe(time.Minute, 4, start)
	k := func(sz float64) uint64 { return d.Hash("BTC-USDT-SWAP", 's', 'l', FloatWord(sz), FloatWord(1)) }
	now := start.Add(time.Second)
	for _, tc := range []struct {
		k    uint64
		ts   int64
		want Verdict
	}{
		{k(1), 1_000_000, Admitted},  // at the start
		{k(1), 999_999, TooOld},      // history before the start
		{k(1), 1_000_000, Duplicate}, // replayed
		{k(2), 1_000_000, Admitted},  // same ts, other size: another order
		{d.Hash("BTC-USDT-SWAP", 'b', 'l', FloatWord(1), FloatWord(1)), 1_000_000, Admitted}, // other side
		{k(1), 1_000_500, Admitted},
	} {
		key := tc.k ^ uint64(tc.ts) // the time is part of the name
		if got := d.Admit(key, tc.ts, now); got != tc.want {
			t.Errorf("Admit(%x, %d) = %v, want %v", tc.k, tc.ts, got, tc.want)
		}
	}
	if d.Len() != 4 {
		t.Fatalf("len %d", d.Len())
	}
	at := func(sz float64, ts int64) uint64 { return k(sz) ^ uint64(ts) }
	// Full: the oldest key goes and the floor rises to its ts, so an order
	// at that ts can no longer be counted (it might have been counted).
	if got := d.Admit(at(1, 1_000_600), 1_000_600, now); got != Admitted {
		t.Errorf("admit when full = %v", got)
	}
	if d.Len() != 4 || d.Floor() != 1_000_000 {
		t.Errorf("len %d floor %d", d.Len(), d.Floor())
	}
	if got := d.Admit(at(3, 1_000_000), 1_000_000, now); got != TooOld {
		t.Errorf("order at the raised floor = %v, want too old", got)
	}
	if got := d.Admit(at(1, 1_000_500), 1_000_500, now); got != Duplicate {
		t.Errorf("kept key = %v, want duplicate", got)
	}
	// Age: keys older than the window go; orders that old are not counted.
	later := start.Add(time.Minute + 550*time.Millisecond)
	if got := d.Admit(at(1, 1_000_700), 1_000_700, later); got != Admitted {
		t.Errorf("fresh order = %v", got)
	}
	if d.Floor() != later.Add(-time.Minute).UnixMilli() || d.Len() != 2 {
		t.Errorf("after eviction: floor %d len %d", d.Floor(), d.Len())
	}
	if got := d.Admit(at(1, 1_000_500), 1_000_500, later); got != TooOld {
		t.Errorf("order older than the window = %v, want too old", got)
	}
	if got := d.Admit(at(1, 1_000_600), 1_000_600, later); got != Duplicate {
		t.Errorf("key inside the window = %v, want duplicate", got)
	}
	if got := d.Admit(0, 1_000_800, later); got != Admitted { // 0 is a key like any other
		t.Errorf("key 0 = %v", got)
	}
	if got := d.Admit(0, 1_000_800, later); got != Duplicate {
		t.Errorf("key 0 again = %v", got)
	}
}

func TestDedupeHash(t *testing.T) {
	d := NewDedupe(time.Minute, 4, time.Now())
	negZero := math.Copysign(0, -1)
	if d.Hash("X", FloatWord(13), 5) != d.Hash("X", FloatWord(13.0), 5) || d.Hash("X", FloatWord(0)) != d.Hash("X", FloatWord(negZero)) {
		t.Error("equal values hash differently")
	}
	for _, other := range []uint64{d.Hash("Y", FloatWord(13), 5), d.Hash("X", FloatWord(14), 5), d.Hash("X", FloatWord(13), 6), d.Hash("X", 5, FloatWord(13))} {
		if other == d.Hash("X", FloatWord(13), 5) {
			t.Errorf("distinct names share a key %x", other)
		}
	}
}

func TestDedupeOutOfOrderAndMany(t *testing.T) {
	start := time.Now()
	d := NewDedupe(time.Hour, 1000, start)
	base := start.UnixMilli()
	counted := 0
	// Orders arrive out of ts order, each three times (live, replay, backfill).
	for round := 0; round < 3; round++ {
		for i := 0; i < 500; i++ {
			ts := base + int64((i*7919)%500)
			if d.Admit(d.Hash("X", 's', FloatWord(float64(i)), uint64(ts)), ts, start) == Admitted {
				counted++
			}
		}
	}
	if counted != 500 {
		t.Errorf("counted %d of 500 distinct orders seen three times", counted)
	}
}

// refDedupe is Dedupe's rule written the plain way: a map of the keys and
// a slice of them sorted by time, searched and moved on every change.
type refDedupe struct {
	window time.Duration
	max    int
	floor  int64
	seen   map[uint64]bool
	order  []entry // by ts
}

func (r *refDedupe) admit(k uint64, ts int64, now time.Time) Verdict {
	if cut := now.Add(-r.window).UnixMilli(); cut > r.floor {
		r.floor = cut
		for len(r.order) > 0 && r.order[0].ts <= cut {
			delete(r.seen, r.order[0].key)
			r.order = r.order[1:]
		}
	}
	if ts <= r.floor {
		return TooOld
	}
	if r.seen[k] {
		return Duplicate
	}
	if len(r.order) >= r.max {
		r.floor = max(r.floor, r.order[0].ts)
		delete(r.seen, r.order[0].key)
		r.order = r.order[1:]
		if ts <= r.floor {
			return TooOld
		}
	}
	r.seen[k] = true
	i, _ := slices.BinarySearchFunc(r.order, ts, func(e entry, ts int64) int {
		if e.ts <= ts {
			return -1
		}
		return 1
	})
	r.order = slices.Insert(r.order, i, entry{ts, k})
	return Admitted
}

// TestDedupeMatchesPlainRule drives Dedupe and the plain rule with the same
// random orders (in and out of time order, replays, bursts that fill the
// set, pauses that age it) and wants the same verdict every time. Ties in
// time may evict a different key of the same ts; the floor makes both
// refuse every order at that ts, so verdicts agree.
func TestDedupeMatchesPlainRule(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		start := time.Unix(1_800_000_000, 0)
		d := NewDedupe(time.Second, 50, start)
		ref := &refDedupe{window: time.Second, max: 50, floor: start.UnixMilli() - 1, seen: map[uint64]bool{}}
		now := start
		type order struct {
			k  uint64
			ts int64
		}
		var recent []order
		for i := range 20000 {
			now = now.Add(time.Duration(rng.IntN(5)) * time.Millisecond)
			if rng.IntN(1000) == 0 {
				now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond) // a pause
			}
			var o order
			if len(recent) > 0 && rng.IntN(4) == 0 { // a replay of a recent order
				o = recent[rng.IntN(len(recent))]
			} else {
				ts := now.UnixMilli() - int64(rng.IntN(20)) // mostly in order
				if rng.IntN(5) == 0 {
					ts = now.UnixMilli() - int64(rng.IntN(1500)) // late
				}
				o = order{d.Hash([]string{"BTC", "ETH"}[rng.IntN(2)], uint64(rng.IntN(3)), uint64(ts)), ts}
				recent = append(recent, o)
				if len(recent) > 200 {
					recent = recent[1:]
				}
			}
			if got, want := d.Admit(o.k, o.ts, now), ref.admit(o.k, o.ts, now); got != want {
				t.Fatalf("seed %d step %d: Admit(%x, %d) = %v, the plain rule says %v", seed, i, o.k, o.ts, got, want)
			}
			if d.Len() != len(ref.order) || d.Floor() != ref.floor {
				t.Fatalf("seed %d step %d: %d keys floor %d, the plain rule %d keys floor %d", seed, i, d.Len(), d.Floor(), len(ref.order), ref.floor)
			}
		}
	}
}

// Once full, admitting a new order allocates nothing.
func TestDedupeFullDoesNotAllocate(t *testing.T) {
	start := time.Now()
	d := NewDedupe(time.Hour, 1000, start)
	ts := start.UnixMilli()
	for range 2000 {
		ts++
		d.Admit(d.Hash("BTCUSDT", FloatWord(1), uint64(ts)), ts, start)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		ts++
		if d.Admit(d.Hash("BTCUSDT", FloatWord(1), uint64(ts)), ts, start) != Admitted {
			t.Fatal("new order refused")
		}
		if ts%3 == 0 { // and a late one
			d.Admit(d.Hash("BTCUSDT", FloatWord(2), uint64(ts-500)), ts-500, start)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per order", allocs)
	}
}

// BenchmarkDedupeFull admits new orders, in time order, into a full set of
// 100,000 keys (OKX's and Gate's cap).
func BenchmarkDedupeFull(b *testing.B) {
	start := time.Now()
	d := NewDedupe(time.Hour, 100_000, start)
	ts := start.UnixMilli()
	for range 100_000 {
		ts++
		d.Admit(d.Hash("BTCUSDT", FloatWord(1), uint64(ts)), ts, start)
	}
	b.ReportAllocs()
	for b.Loop() {
		ts++
		if d.Admit(d.Hash("BTCUSDT", FloatWord(1), uint64(ts)), ts, start) != Admitted {
			b.Fatal("new order refused")
		}
	}
}
