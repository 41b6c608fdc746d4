package okx

import (
	"container/heap"
	"sync"
	"time"
)

// key identifies one liquidation order: OKX sends no order id, so the
// order is named by what it carries, (instId, side, posSide, sz, bkPx, ts).
// The same order pushed live, replayed after a (re)subscribe, or served by
// the REST backfill has the same key. Numbers are compared by value, so
// "13" and "13.0" are the same size.
type key struct {
	instID  string // the instrument's Symbol string, shared, not copied per key
	side    byte   // 'b' buy, 's' sell
	posSide byte   // 'l' long, 's' short, 'n' net, 0 absent
	sz, px  float64
	ts      int64 // ms
}

// dedupe is the bounded set of the keys counted recently. It guarantees
// that no liquidation is counted twice: an order is counted only if its key
// is not in the set and its ts is after the floor, and every key with a ts
// after the floor is kept. The floor starts just before the venue's start
// (history is not new) and rises with age-based eviction (keys older than
// the window go, and with them the right to count orders that old) and when
// the set is full (the oldest key goes, and the floor rises to its ts).
type dedupe struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	floor  int64 // ms; orders with ts <= floor are never counted
	seen   map[key]struct{}
	order  keyHeap // the keys of seen, oldest ts first
}

func newDedupe(window time.Duration, maxKeys int, start time.Time) *dedupe {
	return &dedupe{
		window: window,
		max:    max(maxKeys, 1),
		floor:  start.UnixMilli() - 1,
		seen:   map[key]struct{}{},
	}
}

// verdict is what admit decided.
type verdict uint8

const (
	admitted  verdict = iota // new: count it
	duplicate                // counted before
	tooOld                   // before the start, older than the window, or at/below a floor raised by eviction
)

// admit decides whether the order k is new at now and, if so, records it.
func (d *dedupe) admit(k key, now time.Time) verdict {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evictLocked(now.Add(-d.window).UnixMilli())
	if k.ts <= d.floor {
		return tooOld
	}
	if _, ok := d.seen[k]; ok {
		return duplicate
	}
	if len(d.seen) >= d.max {
		oldest := heap.Pop(&d.order).(entry)
		delete(d.seen, oldest.k)
		d.floor = max(d.floor, oldest.k.ts)
		if k.ts <= d.floor {
			return tooOld
		}
	}
	d.seen[k] = struct{}{}
	heap.Push(&d.order, entry{k})
	return admitted
}

// evictLocked drops the keys with ts <= cut and raises the floor to cut.
func (d *dedupe) evictLocked(cut int64) {
	if cut <= d.floor {
		return
	}
	d.floor = cut
	for len(d.order) > 0 && d.order[0].k.ts <= cut {
		e := heap.Pop(&d.order).(entry)
		delete(d.seen, e.k)
	}
}

// Floor returns the ts (ms) at or before which nothing is counted.
func (d *dedupe) Floor() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.floor
}

// Len returns the number of keys held.
func (d *dedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

type entry struct{ k key }

// keyHeap is a min-heap of keys by ts.
type keyHeap []entry

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i].k.ts < h[j].k.ts }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *keyHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	*h = old[:n-1]
	return e
}
