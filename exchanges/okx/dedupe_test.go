package okx

import (
	"testing"
	"time"
)

func TestDedupe(t *testing.T) {
	start := time.UnixMilli(1_000_000)
	d := newDedupe(time.Minute, 4, start)
	k := func(ts int64, sz float64) key {
		return key{instID: "BTC-USDT-SWAP", side: 's', posSide: 'l', sz: sz, px: 1, ts: ts}
	}
	now := start.Add(time.Second)
	for _, tc := range []struct {
		k    key
		want verdict
	}{
		{k(1_000_000, 1), admitted},  // at the start
		{k(999_999, 1), tooOld},      // history before the start
		{k(1_000_000, 1), duplicate}, // replayed
		{k(1_000_000, 2), admitted},  // same ts, other size: another order
		{key{instID: "BTC-USDT-SWAP", side: 'b', posSide: 'l', sz: 1, px: 1, ts: 1_000_000}, admitted}, // other side
		{k(1_000_500, 1), admitted},
	} {
		if got := d.admit(tc.k, now); got != tc.want {
			t.Errorf("admit(%+v) = %v, want %v", tc.k, got, tc.want)
		}
	}
	if d.Len() != 4 {
		t.Fatalf("len %d", d.Len())
	}
	// Full: the oldest key goes and the floor rises to its ts, so an order
	// at that ts can no longer be counted (it might have been counted).
	if got := d.admit(k(1_000_600, 1), now); got != admitted {
		t.Errorf("admit when full = %v", got)
	}
	if d.Len() != 4 || d.Floor() != 1_000_000 {
		t.Errorf("len %d floor %d", d.Len(), d.Floor())
	}
	if got := d.admit(k(1_000_000, 3), now); got != tooOld {
		t.Errorf("order at the raised floor = %v, want tooOld", got)
	}
	if got := d.admit(k(1_000_500, 1), now); got != duplicate {
		t.Errorf("kept key = %v, want duplicate", got)
	}
	// Age: keys older than the window go; orders that old are not counted.
	later := start.Add(time.Minute + 550*time.Millisecond)
	if got := d.admit(k(1_000_700, 1), later); got != admitted {
		t.Errorf("fresh order = %v", got)
	}
	if d.Floor() != later.Add(-time.Minute).UnixMilli() || d.Len() != 2 {
		t.Errorf("after eviction: floor %d len %d", d.Floor(), d.Len())
	}
	if got := d.admit(k(1_000_500, 1), later); got != tooOld {
		t.Errorf("order older than the window = %v, want tooOld", got)
	}
	if got := d.admit(k(1_000_600, 1), later); got != duplicate {
		t.Errorf("key inside the window = %v, want duplicate", got)
	}
}

func TestDedupeOutOfOrderAndMany(t *testing.T) {
	start := time.Now()
	d := newDedupe(time.Hour, 1000, start)
	base := start.UnixMilli()
	counted := 0
	// Orders arrive out of ts order, each three times (live, replay, backfill).
	for round := 0; round < 3; round++ {
		for i := 0; i < 500; i++ {
			ts := base + int64((i*7919)%500)
			if d.admit(key{instID: "X", side: 's', sz: float64(i), px: 1, ts: ts}, start) == admitted {
				counted++
			}
		}
	}
	if counted != 500 {
		t.Errorf("counted %d of 500 distinct orders seen three times", counted)
	}
}
