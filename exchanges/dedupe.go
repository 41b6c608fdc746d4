package exchanges

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Dedupe is the bounded set of the liquidations counted recently by a venue
// that sends no order id (OKX, Gate, Bitget), so that an order pushed live,
// replayed after a (re)subscribe or served by a REST backfill counts once.
// The venue names an order by what it carries (instrument, side, size,
// price, time), hashed to 64 bits with Hash; two distinct orders among a
// full set of 100,000 share a hash with a probability of about 3 in 10^10.
//
// It guarantees that no order is counted twice: an order is counted only if
// its key is not in the set and its time (ms) is after the floor, and every
// key with a time after the floor is kept. The floor starts just before the
// venue's start (history is not new) and rises with age-based eviction (keys
// older than the window go, and with them the right to count orders that
// old) and when the set is full (the oldest key goes, and the floor rises to
// its time).
//
// It is built for the per-message path, where the set is usually full and
// every new order evicts the oldest key: an open-addressing hash table of
// the keys (linear probing, at most half full, deletion by backward shift,
// so no tombstones build up) and their (time, key) entries kept by time in
// two queues. Orders mostly arrive in time order; those that do are
// appended to a ring, which is then sorted oldest first, and the others go
// to a 4-ary min-heap. The oldest key is the older of the two heads. Once
// the set has reached its cap nothing allocates, and a new order costs one
// probe to find its place, one probe and backward shift to drop the oldest
// key, and, in time order, a ring push and pop that touch memory
// sequentially. A key costs about 32 bytes (100,000 keys: about 3.5 MiB).
type Dedupe struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	floor  int64 // ms; orders with ts <= floor are never counted

	seed  maphash.Seed
	table []uint64 // 0 = empty, else a key
	ring  ring     // entries that arrived in ts order, oldest first
	late  []entry  // the other entries, a min-heap by ts
}

// entry is a queued key with its time.
type entry struct {
	ts  int64
	key uint64
}

// minTable is the initial table size (a power of two).
const minTable = 64

// NewDedupe returns an empty set keeping keys for window, at most maxKeys
// of them; orders at or before start are history and never counted.
func NewDedupe(window time.Duration, maxKeys int, start time.Time) *Dedupe {
	return &Dedupe{
		window: window,
		max:    max(maxKeys, 1),
		floor:  start.UnixMilli() - 1,
		seed:   maphash.MakeSeed(),
		table:  make([]uint64, minTable),
	}
}

// Verdict is what Admit decided.
type Verdict uint8

const (
	Admitted  Verdict = iota // new: count it
	Duplicate                // counted before
	TooOld                   // before the start, older than the window, or at/below a floor raised by eviction
)

func (v Verdict) String() string {
	switch v {
	case Admitted:
		return "admitted"
	case Duplicate:
		return "duplicate"
	}
	return "too old"
}

// Hash returns the key of an order named by id (its instrument) and words
// (side, sizes and prices as FloatWord, times). Equal names give equal keys
// within one Dedupe; the seed is the set's own.
func (d *Dedupe) Hash(id string, words ...uint64) uint64 {
	h := maphash.String(d.seed, id)
	for _, w := range words {
		h = mix(h ^ w)
	}
	return h
}

// FloatWord is a number as a Hash word, by value: +0 and -0 alike, so that
// "13" and "13.0" are the same size.
func FloatWord(f float64) uint64 {
	if f == 0 {
		return 0
	}
	return math.Float64bits(f)
}

// mix is a 64-bit finaliser (splitmix64's).
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Admit decides whether the order with key k and time ts (ms) is new at
// now and, if so, records it.
func (d *Dedupe) Admit(k uint64, ts int64, now time.Time) Verdict {
	if k == 0 {
		k = 1 // 0 marks an empty table slot
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evictLocked(now.Add(-d.window).UnixMilli())
	if ts <= d.floor {
		return TooOld
	}
	pos, found := d.find(k)
	if found {
		return Duplicate
	}
	if d.len() >= d.max {
		old := d.removeOldest()
		d.floor = max(d.floor, old)
		if ts <= d.floor {
			return TooOld
		}
		pos, _ = d.find(k) // the backward shift may have moved the free slot
	}
	if 2*(d.len()+1) > len(d.table) {
		d.grow()
		pos, _ = d.find(k)
	}
	d.table[pos] = k
	e := entry{ts: ts, key: k}
	if d.ring.n == 0 || e.ts >= d.ring.last().ts {
		d.ring.push(e)
	} else {
		d.push(e)
	}
	return Admitted
}

// len returns the number of keys held.
func (d *Dedupe) len() int { return d.ring.n + len(d.late) }

// oldestInRing reports whether the ring's first entry has the smallest ts
// of the set; the set must not be empty.
func (d *Dedupe) oldestInRing() bool {
	return d.ring.n > 0 && (len(d.late) == 0 || d.ring.first().ts <= d.late[0].ts)
}

// oldest returns the entry with the smallest ts; the set must not be empty.
func (d *Dedupe) oldest() entry {
	if d.oldestInRing() {
		return *d.ring.first()
	}
	return d.late[0]
}

// evictLocked drops the keys with ts <= cut and raises the floor to cut.
func (d *Dedupe) evictLocked(cut int64) {
	if cut <= d.floor {
		return
	}
	d.floor = cut
	for d.len() > 0 && d.oldest().ts <= cut {
		d.removeOldest()
	}
}

// Floor returns the time (ms) at or before which nothing is counted.
func (d *Dedupe) Floor() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.floor
}

// Len returns the number of keys held.
func (d *Dedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.len()
}

// find returns the table position of k, or of the empty slot where k
// would go.
func (d *Dedupe) find(k uint64) (pos int, found bool) {
	mask := len(d.table) - 1
	for i := int(k) & mask; ; i = (i + 1) & mask {
		switch d.table[i] {
		case 0:
			return i, false
		case k:
			return i, true
		}
	}
}

// removeOldest drops the key with the smallest ts and returns its ts; the
// set must not be empty.
func (d *Dedupe) removeOldest() int64 {
	var top entry
	if d.oldestInRing() {
		top = d.ring.pop()
	} else {
		top = d.pop()
	}
	if pos, found := d.find(top.key); found {
		d.deleteAt(pos)
	}
	return top.ts
}

// deleteAt empties table position i and moves later entries of its probe
// run back so that every entry stays reachable from its home position.
func (d *Dedupe) deleteAt(i int) {
	t := d.table
	mask := len(t) - 1
	for j := i; ; {
		j = (j + 1) & mask
		e := t[j]
		if e == 0 {
			t[i] = 0
			return
		}
		home := int(e) & mask
		// e may fill the hole at i unless its home lies cyclically in (i, j].
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			t[i] = e
			i = j
		}
	}
}

// grow doubles the table.
func (d *Dedupe) grow() {
	old := d.table
	d.table = make([]uint64, 2*len(old))
	mask := len(d.table) - 1
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := int(e) & mask
		for d.table[i] != 0 {
			i = (i + 1) & mask
		}
		d.table[i] = e
	}
}

// push adds an entry to the 4-ary min-heap late. A 4-ary heap has half
// the depth of a binary one and a node's children share a cache line.
func (d *Dedupe) push(x entry) {
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
func (d *Dedupe) pop() entry {
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
	buf  []entry // its length is zero or a power of two
	head int     // index of the first entry
	n    int     // number of entries
}

// first returns the first entry; the ring must not be empty.
func (r *ring) first() *entry { return &r.buf[r.head] }

// last returns the last entry; the ring must not be empty.
func (r *ring) last() *entry { return &r.buf[(r.head+r.n-1)&(len(r.buf)-1)] }

// push appends x.
func (r *ring) push(x entry) {
	if r.n == len(r.buf) {
		buf := make([]entry, max(2*len(r.buf), minTable))
		copy(buf, r.buf[r.head:])
		copy(buf[len(r.buf)-r.head:], r.buf[:r.head])
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = x
	r.n++
}

// pop removes and returns the first entry; the ring must not be empty.
func (r *ring) pop() entry {
	x := r.buf[r.head]
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return x
}
