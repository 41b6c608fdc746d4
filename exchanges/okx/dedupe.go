package okx

import (
	"hash/maphash"
	"math"
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
//
// It is built for the per-message path, where the set is usually full and
// every new order evicts the oldest key: the keys live in a slab whose slots
// are reused, an open-addressing hash table (linear probing, at most half
// full, deletion by backward shift, so no tombstones build up) maps them,
// and their (ts, slot) entries are kept by ts in two queues. Orders mostly
// arrive in ts order; those that do are appended to a ring, which is then
// sorted oldest first, and the others go to a 4-ary min-heap. The oldest key
// is the older of the two heads. Once the set has reached its cap nothing
// allocates, and a new order costs one probe to find its place, one probe
// and backward shift to drop the oldest key, and, in ts order, a ring push
// and pop that touch memory sequentially (a heap push and pop otherwise).
type dedupe struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	floor  int64 // ms; orders with ts <= floor are never counted

	seed  maphash.Seed
	keys  []key      // slab; a slot is in use while ring or late holds it
	free  []int32    // slab slots not in use
	table []uint64   // 0 = empty, else the hash's low 32 bits << 32 | slot+1
	ring  ring       // slots that arrived in ts order, oldest first
	late  []heapSlot // the other slots in use, a min-heap by ts
}

// heapSlot is a queue entry: a key's ts, slab slot and the low 32 bits of
// its hash (its table entry's tag, so that dropping the oldest key needs
// neither the key nor its hash again).
type heapSlot struct {
	ts   int64
	slot int32
	tag  uint32
}

// minTable is the initial table size (a power of two).
const minTable = 64

func newDedupe(window time.Duration, maxKeys int, start time.Time) *dedupe {
	return &dedupe{
		window: window,
		max:    max(maxKeys, 1),
		floor:  start.UnixMilli() - 1,
		seed:   maphash.MakeSeed(),
		table:  make([]uint64, minTable),
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
	h := d.hash(k)
	pos, found := d.find(k, h)
	if found {
		return duplicate
	}
	if d.len() >= d.max {
		ts := d.removeOldest()
		d.floor = max(d.floor, ts)
		if k.ts <= d.floor {
			return tooOld
		}
		pos, _ = d.find(k, h) // the backward shift may have moved the free slot
	}
	if 2*(d.len()+1) > len(d.table) {
		d.grow()
		pos, _ = d.find(k, h)
	}
	var slot int32
	if n := len(d.free); n > 0 {
		slot = d.free[n-1]
		d.free = d.free[:n-1]
		d.keys[slot] = k
	} else {
		slot = int32(len(d.keys))
		d.keys = append(d.keys, k)
	}
	d.table[pos] = uint64(uint32(h))<<32 | uint64(slot+1)
	e := heapSlot{ts: k.ts, slot: slot, tag: uint32(h)}
	if d.ring.n == 0 || e.ts >= d.ring.last().ts {
		d.ring.push(e)
	} else {
		d.push(e)
	}
	return admitted
}

// len returns the number of keys held.
func (d *dedupe) len() int { return d.ring.n + len(d.late) }

// oldestInRing reports whether the ring's first entry has the smallest ts
// of the set; the set must not be empty.
func (d *dedupe) oldestInRing() bool {
	return d.ring.n > 0 && (len(d.late) == 0 || d.ring.first().ts <= d.late[0].ts)
}

// oldest returns the entry with the smallest ts; the set must not be empty.
func (d *dedupe) oldest() heapSlot {
	if d.oldestInRing() {
		return *d.ring.first()
	}
	return d.late[0]
}

// evictLocked drops the keys with ts <= cut and raises the floor to cut.
func (d *dedupe) evictLocked(cut int64) {
	if cut <= d.floor {
		return
	}
	d.floor = cut
	for d.len() > 0 && d.oldest().ts <= cut {
		d.removeOldest()
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
	return d.len()
}

// hash hashes a key consistently with ==: sizes and prices by value (+0 and
// -0 alike).
func (d *dedupe) hash(k key) uint64 {
	bits := func(f float64) uint64 {
		if f == 0 {
			return 0
		}
		return math.Float64bits(f)
	}
	h := maphash.String(d.seed, k.instID)
	h = mix(h ^ bits(k.sz))
	h = mix(h ^ bits(k.px))
	return mix(h ^ uint64(k.ts) ^ uint64(k.side)<<56 ^ uint64(k.posSide)<<48)
}

// mix is a 64-bit finaliser (splitmix64's).
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// find returns the table position of k, or of the empty entry where k
// would go.
func (d *dedupe) find(k key, h uint64) (pos int, found bool) {
	mask := len(d.table) - 1
	tag := uint64(uint32(h))
	for i := int(tag) & mask; ; i = (i + 1) & mask {
		e := d.table[i]
		if e == 0 {
			return i, false
		}
		if e>>32 == tag && d.keys[uint32(e)-1] == k {
			return i, true
		}
	}
}

// removeOldest drops the key with the smallest ts and returns its ts; the
// set must not be empty.
func (d *dedupe) removeOldest() int64 {
	var top heapSlot
	if d.oldestInRing() {
		top = d.ring.pop()
	} else {
		top = d.pop()
	}
	mask := len(d.table) - 1
	want := uint64(top.slot + 1)
	i := int(top.tag) & mask
	for uint32(d.table[i]) != uint32(want) {
		i = (i + 1) & mask
	}
	d.deleteAt(i)
	d.keys[top.slot] = key{} // drop the reference to the instId string
	d.free = append(d.free, top.slot)
	return top.ts
}

// deleteAt empties table position i and moves later entries of its probe
// run back so that every entry stays reachable from its home position.
func (d *dedupe) deleteAt(i int) {
	t := d.table
	mask := len(t) - 1
	for j := i; ; {
		j = (j + 1) & mask
		e := t[j]
		if e == 0 {
			t[i] = 0
			return
		}
		home := int(e>>32) & mask
		// e may fill the hole at i unless its home lies cyclically in (i, j].
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			t[i] = e
			i = j
		}
	}
}

// grow doubles the table.
func (d *dedupe) grow() {
	old := d.table
	d.table = make([]uint64, 2*len(old))
	mask := len(d.table) - 1
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := int(e>>32) & mask
		for d.table[i] != 0 {
			i = (i + 1) & mask
		}
		d.table[i] = e
	}
}

// push adds an entry to the 4-ary min-heap late. A 4-ary heap has half
// the depth of a binary one and a node's children share a cache line.
func (d *dedupe) push(x heapSlot) {
	d.late = append(d.late, x)
	h := d.late
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if h[p].ts <= x.ts {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = x
}

// pop removes and returns the entry of late with the smallest ts; late must
// not be empty.
func (d *dedupe) pop() heapSlot {
	h := d.late
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	d.late = h
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < min(c+4, n); j++ {
			if h[j].ts < h[m].ts {
				m = j
			}
		}
		if h[m].ts >= last.ts {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top
}

// ring is a growable FIFO queue of entries.
type ring struct {
	buf  []heapSlot // its length is zero or a power of two
	head int        // index of the first entry
	n    int        // number of entries
}

// first returns the first entry; the ring must not be empty.
func (r *ring) first() *heapSlot { return &r.buf[r.head] }

// last returns the last entry; the ring must not be empty.
func (r *ring) last() *heapSlot { return &r.buf[(r.head+r.n-1)&(len(r.buf)-1)] }

// push appends x.
func (r *ring) push(x heapSlot) {
	if r.n == len(r.buf) {
		buf := make([]heapSlot, max(2*len(r.buf), minTable))
		copy(buf, r.buf[r.head:])
		copy(buf[len(r.buf)-r.head:], r.buf[:r.head])
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = x
	r.n++
}

// pop removes and returns the first entry; the ring must not be empty.
func (r *ring) pop() heapSlot {
	x := r.buf[r.head]
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return x
}
