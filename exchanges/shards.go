package exchanges

import (
	"maps"
	"slices"
	"strconv"
	"sync"
)

// Venues whose per-symbol subscriptions do not fit one WebSocket connection
// spread them over several connections ("shards"), each one stream with its
// own crypto_exporter_stream_* series named <prefix><n>: trades_0,
// trades_1, ...
//
// Assignment is sticky so that listing changes touch as few connections as
// possible:
//   - The first assignment creates ceil(symbols / PerShard) shards and deals
//     the sorted symbols out round robin, so the same list always gives the
//     same shards.
//   - A new symbol goes to the least loaded shard with room (lowest index
//     first); when every shard is full a new shard is created.
//   - A symbol that is no longer listed leaves its shard. Shards are never
//     removed (a shard may end up with no symbols; it stays connected).
//
// Assignment is the bookkeeping alone; ShardSet adds the locking, the
// stream declarations and the venue's connections, which it creates,
// starts and hands their changed symbol sets.

// ShardLimits bounds what one shard carries.
type ShardLimits struct {
	// PerShard is the most symbols a shard carries (at least 1).
	PerShard int
	// Weight and MaxWeight optionally bound the summed weight of a shard's
	// symbols too (for example the characters of its subscription
	// arguments); MaxWeight 0 means no such bound. A symbol that fits no
	// shard gets a new one, even when it alone weighs more than MaxWeight.
	Weight    func(symbol string) int
	MaxWeight int
}

func (l ShardLimits) weight(symbol string) int {
	if l.Weight == nil {
		return 0
	}
	return l.Weight(symbol)
}

// ShardChange is what one call of Assignment.Assign changed on one shard.
type ShardChange struct {
	Shard       int      // index of the shard
	Created     bool     // the shard was created by this call
	Subscribe   []string // symbols the shard gained, sorted
	Unsubscribe []string // symbols the shard lost, sorted
}

// Assignment is the sticky assignment of symbols to shards. The zero value
// with Limits set is ready to use; it is not safe for concurrent use.
type Assignment struct {
	Limits ShardLimits

	shards []assigned
	owner  map[string]int // symbol -> shard index
}

// assigned is the symbol set of one shard.
type assigned struct {
	symbols map[string]bool
	weight  int
}

// Assign moves the assignment to a new list of symbols and returns the
// shards it changed or created, in index order; an unchanged list returns
// none. The first call creates at least one shard, even for no symbols.
func (a *Assignment) Assign(symbols []string) []ShardChange {
	per := max(1, a.Limits.PerShard)
	if a.owner == nil {
		a.owner = map[string]int{}
	}
	keep := make(map[string]bool, len(symbols))
	for _, s := range symbols {
		keep[s] = true
	}
	byShard := map[int]*ShardChange{}
	change := func(n int) *ShardChange {
		c := byShard[n]
		if c == nil {
			c = &ShardChange{Shard: n}
			byShard[n] = c
		}
		return c
	}
	for sym, n := range a.owner {
		if !keep[sym] {
			delete(a.owner, sym)
			sh := &a.shards[n]
			delete(sh.symbols, sym)
			sh.weight -= a.Limits.weight(sym)
			c := change(n)
			c.Unsubscribe = append(c.Unsubscribe, sym)
		}
	}
	var added []string
	for _, s := range slices.Sorted(maps.Keys(keep)) {
		if _, ok := a.owner[s]; !ok {
			added = append(added, s)
		}
	}
	existing := len(a.shards)
	if existing == 0 {
		// On fresh shards the least loaded one with room is the next in
		// turn, so the loop below deals the sorted symbols round robin.
		for range max(1, (len(added)+per-1)/per) {
			a.newShard()
		}
	}
	for _, sym := range added {
		n := a.pick(sym, per)
		sh := &a.shards[n]
		sh.symbols[sym] = true
		sh.weight += a.Limits.weight(sym)
		a.owner[sym] = n
		c := change(n)
		c.Subscribe = append(c.Subscribe, sym)
	}
	for n := existing; n < len(a.shards); n++ {
		change(n).Created = true
	}
	out := make([]ShardChange, 0, len(byShard))
	for _, n := range slices.Sorted(maps.Keys(byShard)) {
		c := byShard[n]
		slices.Sort(c.Unsubscribe)
		out = append(out, *c)
	}
	return out
}

// pick returns the index of the least loaded shard with room for sym
// (lowest index first), creating a shard when all are full.
func (a *Assignment) pick(sym string, per int) int {
	best, bestLoad := -1, 0
	w := a.Limits.weight(sym)
	for n, sh := range a.shards {
		load := len(sh.symbols)
		if load >= per || (a.Limits.MaxWeight > 0 && sh.weight+w > a.Limits.MaxWeight) {
			continue
		}
		if best < 0 || load < bestLoad {
			best, bestLoad = n, load
		}
	}
	if best < 0 {
		best = a.newShard()
	}
	return best
}

func (a *Assignment) newShard() int {
	a.shards = append(a.shards, assigned{symbols: map[string]bool{}})
	return len(a.shards) - 1
}

// Len returns the number of shards.
func (a *Assignment) Len() int { return len(a.shards) }

// Symbols returns a copy of the symbol set of shard n (empty for a shard
// that does not exist).
func (a *Assignment) Symbols(n int) map[string]bool {
	if n < 0 || n >= len(a.shards) {
		return map[string]bool{}
	}
	return maps.Clone(a.shards[n].symbols)
}

// Snapshot returns the sorted symbols of every shard, in index order.
func (a *Assignment) Snapshot() [][]string {
	out := make([][]string, len(a.shards))
	for n, sh := range a.shards {
		out[n] = slices.Sorted(maps.Keys(sh.symbols))
	}
	return out
}

// SymbolDiff returns the symbols of want missing from have and those of
// have missing from want, both sorted: what a connection that requested
// have must subscribe and unsubscribe to carry want.
func SymbolDiff(want, have map[string]bool) (add, del []string) {
	for s := range want {
		if !have[s] {
			add = append(add, s)
		}
	}
	for s := range have {
		if !want[s] {
			del = append(del, s)
		}
	}
	slices.Sort(add)
	slices.Sort(del)
	return add, del
}

// ShardSet runs an Assignment for a venue whose connections are of type S:
// it declares the shards' streams, keeps the venue's shards, and hands each
// its symbol set as it creates, starts and updates them. The fields are set
// before DeclareFirst and not changed afterwards, except Start, which is
// set before the first Assign.
type ShardSet[S any] struct {
	Exchange     string // exchange label of the streams
	StreamPrefix string // stream n is named StreamPrefix + n
	Limits       ShardLimits

	// New creates the venue's shard named name around the observer of its
	// stream (declared, and down) with its symbols, which the shard keeps
	// for the subscriptions of every (re)connect. It is called with the
	// set's lock held, once per shard and in index order.
	New func(name string, obs StreamObserver, symbols map[string]bool) S
	// Start runs a shard once it is created; nil leaves shards idle.
	Start func(S)
	// Sync hands a shard created by an earlier Assign its changed symbol
	// set, for the venue to apply to the connection; nil ignores changes.
	Sync func(sh S, symbols map[string]bool)

	// assigning serialises Assign calls, so that Start and Sync never run
	// concurrently and every shard gets its sets in order.
	assigning sync.Mutex
	mu        sync.Mutex // guards what follows
	a         Assignment
	shards    []S
	sink      Sink
	first     StreamObserver
}

// StreamName is the stream label value of shard n.
func (ss *ShardSet[S]) StreamName(n int) string { return ss.StreamPrefix + strconv.Itoa(n) }

// DeclareFirst declares the stream of shard 0 (down) at start-up, so that
// a venue that is unreachable from the start is visible; the streams of
// later shards are declared on sink as they are created.
func (ss *ShardSet[S]) DeclareFirst(sink Sink) {
	first := sink.Stream(ss.Exchange, ss.StreamName(0))
	first.SetUp(false)
	ss.mu.Lock()
	ss.sink, ss.first = sink, first
	ss.mu.Unlock()
}

// Assign moves the shards to a new list of symbols: new shards are
// created (New) and started (Start), shards whose symbols changed get
// their new set (Sync), after the lock is released. DeclareFirst must
// have been called.
func (ss *ShardSet[S]) Assign(symbols []string) {
	ss.assigning.Lock()
	defer ss.assigning.Unlock()
	ss.mu.Lock()
	ss.a.Limits = ss.Limits
	changes := ss.a.Assign(symbols)
	var created []S
	type update struct {
		sh      S
		symbols map[string]bool
	}
	var updates []update
	for _, c := range changes {
		syms := ss.a.Symbols(c.Shard)
		if c.Created {
			sh := ss.createLocked(c.Shard, syms)
			created = append(created, sh)
		} else {
			updates = append(updates, update{ss.shards[c.Shard], syms})
		}
	}
	start, syncShard := ss.Start, ss.Sync
	ss.mu.Unlock()

	for _, u := range updates {
		if syncShard != nil {
			syncShard(u.sh, u.symbols)
		}
	}
	for _, sh := range created {
		if start != nil {
			start(sh)
		}
	}
}

func (ss *ShardSet[S]) createLocked(n int, symbols map[string]bool) S {
	name := ss.StreamName(n)
	obs := ss.first
	if n > 0 {
		obs = ss.sink.Stream(ss.Exchange, name)
		obs.SetUp(false)
	}
	sh := ss.New(name, obs, symbols)
	ss.shards = append(ss.shards, sh)
	return sh
}

// Snapshot returns the sorted symbols of every shard, for tests and logs.
func (ss *ShardSet[S]) Snapshot() [][]string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.a.Snapshot()
}
