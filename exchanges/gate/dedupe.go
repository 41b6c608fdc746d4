package gate

import (
	"container/heap"
	"sync"
	"time"
)

// key identifies one liquidation order: Gate sends no order id, so the order
// is named by what it carries, (contract, second, signed size, price). The
// push carries time_ms, liq_orders whole seconds, so the key holds the
// second; Gate pushes at most one order per contract per second, so two
// orders of one contract rarely share a second, and never also size and
// price.
type key struct {
	contract    string // the contract's own name string, shared, not copied per key
	sec         int64
	size, price float64
}

// dedupe is the bounded set of the keys counted recently. It guarantees that
// no liquidation is counted twice: an order is counted only if it is after
// the start, its key is not in the set, and its second is after the
// eviction floor; every key with a second after the floor is kept. The
// floor rises with age-based eviction (keys older than the window go, and
// with them the right to count orders that old) and when the set is full
// (the oldest key goes and the floor rises to its second).
type dedupe struct {
	mu      sync.Mutex
	window  time.Duration
	max     int
	startMs int64 // orders at or before it are history
	floor   int64 // s; orders with sec <= floor are never counted
	seen    map[key]struct{}
	order   keyHeap // the keys of seen, oldest second first
}

func newDedupe(window time.Duration, maxKeys int, start time.Time) *dedupe {
	return &dedupe{
		window:  window,
		max:     max(maxKeys, 1),
		startMs: start.UnixMilli(),
		floor:   -1,
		seen:    map[key]struct{}{},
	}
}

// verdict is what admit decided.
type verdict uint8

const (
	admitted  verdict = iota // new: count it
	duplicate                // counted before
	tooOld                   // before the start, older than the window, or at/below a floor raised by eviction
)

// admit decides whether the order k, which happened at tsMs (for orders
// known to the second only, the second's start: the earliest it can have
// happened), is new at now and, if so, records it.
func (d *dedupe) admit(k key, tsMs int64, now time.Time) verdict {
	d.mu.Lock()
	defer d.mu.Unlock()
	if tsMs <= d.startMs {
		return tooOld
	}
	d.evictLocked(now.Add(-d.window).Unix())
	if k.sec <= d.floor {
		return tooOld
	}
	if _, ok := d.seen[k]; ok {
		return duplicate
	}
	if len(d.seen) >= d.max {
		oldest := heap.Pop(&d.order).(entry)
		delete(d.seen, oldest.k)
		d.floor = max(d.floor, oldest.k.sec)
		if k.sec <= d.floor {
			return tooOld
		}
	}
	d.seen[k] = struct{}{}
	heap.Push(&d.order, entry{k})
	return admitted
}

// evictLocked drops the keys with sec <= cut and raises the floor to cut.
func (d *dedupe) evictLocked(cut int64) {
	if cut <= d.floor {
		return
	}
	d.floor = cut
	for len(d.order) > 0 && d.order[0].k.sec <= cut {
		e := heap.Pop(&d.order).(entry)
		delete(d.seen, e.k)
	}
}

// earliest returns the earliest time an order may have to count: after the
// start and after the eviction floor.
func (d *dedupe) earliest() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.UnixMilli(max(d.startMs, (d.floor+1)*1000))
}

// Len returns the number of keys held.
func (d *dedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

type entry struct{ k key }

// keyHeap is a min-heap of keys by second.
type keyHeap []entry

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i].k.sec < h[j].k.sec }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *keyHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	*h = old[:n-1]
	return e
}
