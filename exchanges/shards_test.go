package exchanges

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestAssignment(t *testing.T) {
	type step struct {
		symbols []string
		want    [][]string    // symbols per shard afterwards
		changes []ShardChange // what the call reports
	}
	// The first discovery of A..G with three a shard, in any order.
	abc := strings.Split("A B C D E F G", " ")
	abcShards := [][]string{{"A", "D", "G"}, {"B", "E"}, {"C", "F"}}
	first := step{symbols: abc, want: abcShards, changes: []ShardChange{
		{Shard: 0, Created: true, Subscribe: []string{"A", "D", "G"}},
		{Shard: 1, Created: true, Subscribe: []string{"B", "E"}},
		{Shard: 2, Created: true, Subscribe: []string{"C", "F"}},
	}}
	shuffled := first
	shuffled.symbols = []string{"G", "C", "A", "E", "B", "F", "D"}
	tests := []struct {
		name   string
		limits ShardLimits
		steps  []step
	}{
		{
			name:   "first discovery deals sorted symbols round robin",
			limits: ShardLimits{PerShard: 3},
			steps:  []step{shuffled},
		},
		{
			name:   "same list again changes nothing",
			limits: ShardLimits{PerShard: 3},
			steps: []step{
				first,
				{symbols: abc, want: abcShards},
				{symbols: shuffled.symbols, want: abcShards},
				{symbols: slices.Concat(abc, []string{"A"}), want: abcShards},
			},
		},
		{
			name:   "listing and delisting touch only their shards",
			limits: ShardLimits{PerShard: 3},
			steps: []step{
				first,
				{
					symbols: []string{"A", "C", "D", "E", "F", "G", "H", "I", "J"},
					want:    [][]string{{"A", "D", "G"}, {"E", "H", "I"}, {"C", "F", "J"}},
					changes: []ShardChange{
						{Shard: 1, Subscribe: []string{"H", "I"}, Unsubscribe: []string{"B"}},
						{Shard: 2, Subscribe: []string{"J"}},
					},
				},
				{
					// A relisted symbol is new: it goes where there is room.
					symbols: []string{"A", "B", "C", "E", "F", "G", "H", "I", "J"},
					want:    [][]string{{"A", "B", "G"}, {"E", "H", "I"}, {"C", "F", "J"}},
					changes: []ShardChange{{Shard: 0, Subscribe: []string{"B"}, Unsubscribe: []string{"D"}}},
				},
			},
		},
		{
			name:   "new symbols fill the least loaded shard, lowest index first",
			limits: ShardLimits{PerShard: 4},
			steps: []step{
				{symbols: strings.Split("A B C D E F", " "), want: [][]string{{"A", "C", "E"}, {"B", "D", "F"}}, changes: []ShardChange{
					{Shard: 0, Created: true, Subscribe: []string{"A", "C", "E"}},
					{Shard: 1, Created: true, Subscribe: []string{"B", "D", "F"}},
				}},
				{
					symbols: strings.Split("A C D E F", " "),
					want:    [][]string{{"A", "C", "E"}, {"D", "F"}},
					changes: []ShardChange{{Shard: 1, Unsubscribe: []string{"B"}}},
				},
				{
					symbols: strings.Split("A C D E F X Y Z", " "),
					want:    [][]string{{"A", "C", "E", "Y"}, {"D", "F", "X", "Z"}},
					changes: []ShardChange{
						{Shard: 0, Subscribe: []string{"Y"}},
						{Shard: 1, Subscribe: []string{"X", "Z"}},
					},
				},
			},
		},
		{
			name:   "a new shard when every shard is full; none is removed",
			limits: ShardLimits{PerShard: 2},
			steps: []step{
				{symbols: []string{"A", "B", "C", "D"}, want: [][]string{{"A", "C"}, {"B", "D"}}, changes: []ShardChange{
					{Shard: 0, Created: true, Subscribe: []string{"A", "C"}},
					{Shard: 1, Created: true, Subscribe: []string{"B", "D"}},
				}},
				{
					symbols: []string{"A", "B", "C", "D", "E", "F", "G"},
					want:    [][]string{{"A", "C"}, {"B", "D"}, {"E", "F"}, {"G"}},
					changes: []ShardChange{
						{Shard: 2, Created: true, Subscribe: []string{"E", "F"}},
						{Shard: 3, Created: true, Subscribe: []string{"G"}},
					},
				},
				{
					symbols: nil,
					want:    [][]string{{}, {}, {}, {}},
					changes: []ShardChange{
						{Shard: 0, Unsubscribe: []string{"A", "C"}},
						{Shard: 1, Unsubscribe: []string{"B", "D"}},
						{Shard: 2, Unsubscribe: []string{"E", "F"}},
						{Shard: 3, Unsubscribe: []string{"G"}},
					},
				},
				{symbols: nil, want: [][]string{{}, {}, {}, {}}},
				{
					symbols: []string{"H"},
					want:    [][]string{{"H"}, {}, {}, {}},
					changes: []ShardChange{{Shard: 0, Subscribe: []string{"H"}}},
				},
			},
		},
		{
			name:   "no symbols at first: one empty shard",
			limits: ShardLimits{PerShard: 3},
			steps: []step{
				{symbols: nil, want: [][]string{{}}, changes: []ShardChange{{Shard: 0, Created: true}}},
				{symbols: []string{"A"}, want: [][]string{{"A"}}, changes: []ShardChange{{Shard: 0, Subscribe: []string{"A"}}}},
			},
		},
		{
			name:   "weight bound",
			limits: ShardLimits{PerShard: 10, Weight: func(s string) int { return len(s) }, MaxWeight: 8},
			steps: []step{
				{
					symbols: []string{"AAAA", "BBBB", "CCCC"},
					want:    [][]string{{"AAAA", "BBBB"}, {"CCCC"}},
					changes: []ShardChange{
						{Shard: 0, Created: true, Subscribe: []string{"AAAA", "BBBB"}},
						{Shard: 1, Created: true, Subscribe: []string{"CCCC"}},
					},
				},
				{
					// Delisting gives the weight back.
					symbols: []string{"AAAA", "CCCC", "DD", "EEEEEEEEEE"},
					want:    [][]string{{"AAAA", "DD"}, {"CCCC"}, {"EEEEEEEEEE"}},
					changes: []ShardChange{
						{Shard: 0, Subscribe: []string{"DD"}, Unsubscribe: []string{"BBBB"}},
						{Shard: 2, Created: true, Subscribe: []string{"EEEEEEEEEE"}},
					},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Assignment{Limits: tc.limits}
			for i, st := range tc.steps {
				changes := a.Assign(st.symbols)
				if len(changes) == 0 {
					changes = nil
				}
				if !reflect.DeepEqual(changes, st.changes) {
					t.Errorf("step %d: changes %+v, want %+v", i, changes, st.changes)
				}
				if got := a.Snapshot(); !equalSnapshots(got, st.want) {
					t.Errorf("step %d: shards %v, want %v", i, got, st.want)
				}
				if a.Len() != len(st.want) {
					t.Errorf("step %d: Len %d, want %d", i, a.Len(), len(st.want))
				}
				for n, syms := range st.want {
					if got := slices.Sorted(maps.Keys(a.Symbols(n))); !slices.Equal(got, syms) {
						t.Errorf("step %d: Symbols(%d) = %v, want %v", i, n, got, syms)
					}
				}
			}
		})
	}
}

// The same list, in any order, gives the same shards.
func TestAssignmentDeterministic(t *testing.T) {
	var syms []string
	for i := range 1000 {
		syms = append(syms, fmt.Sprintf("S%04d", i))
	}
	a := Assignment{Limits: ShardLimits{PerShard: 64}}
	a.Assign(syms)
	want := a.Snapshot()
	if len(want) != 16 {
		t.Fatalf("%d shards for 1000 symbols of 64, want 16", len(want))
	}
	for range 5 {
		shuffled := slices.Clone(syms)
		slices.Reverse(shuffled)
		shuffled = append(shuffled[500:], shuffled[:500]...)
		b := Assignment{Limits: ShardLimits{PerShard: 64}}
		b.Assign(shuffled)
		if !equalSnapshots(b.Snapshot(), want) {
			t.Fatal("a reordered list gave other shards")
		}
	}
}

func TestAssignmentSymbolsIsACopy(t *testing.T) {
	a := Assignment{Limits: ShardLimits{PerShard: 2}}
	a.Assign([]string{"A"})
	a.Symbols(0)["B"] = true
	if got := a.Snapshot(); !equalSnapshots(got, [][]string{{"A"}}) {
		t.Errorf("Symbols leaked the set: %v", got)
	}
	if len(a.Symbols(5)) != 0 || len(a.Symbols(-1)) != 0 {
		t.Error("Symbols of a shard that does not exist is not empty")
	}
}

func TestSymbolDiff(t *testing.T) {
	set := func(s ...string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	tests := []struct {
		want, have map[string]bool
		add, del   []string
	}{
		{want: set("A", "B"), have: nil, add: []string{"A", "B"}},
		{want: set("C", "A", "B"), have: set("B", "D", "E"), add: []string{"A", "C"}, del: []string{"D", "E"}},
		{want: set("A"), have: set("A")},
		{want: nil, have: set("B", "A"), del: []string{"A", "B"}},
	}
	for _, tc := range tests {
		add, del := SymbolDiff(tc.want, tc.have)
		if !slices.Equal(add, tc.add) || !slices.Equal(del, tc.del) {
			t.Errorf("SymbolDiff(%v, %v) = %v, %v; want %v, %v", tc.want, tc.have, add, del, tc.add, tc.del)
		}
	}
}

// shardSink records the streams declared and their up flags.
type shardSink struct {
	Sink // only Stream is used
	mu   sync.Mutex
	up   map[string]bool
}

func (s *shardSink) Stream(exchange, stream string) StreamObserver {
	return &shardObs{s: s, key: exchange + "/" + stream}
}

type shardObs struct {
	s   *shardSink
	key string
}

func (o *shardObs) SetUp(up bool) {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	o.s.up[o.key] = up
}
func (*shardObs) Connected()   {}
func (*shardObs) Message()     {}
func (*shardObs) DecodeError() {}

// testShard is a venue connection as a ShardSet sees it.
type testShard struct {
	name    string
	obs     StreamObserver
	want    map[string]bool
	started bool
	syncs   int
}

func TestShardSet(t *testing.T) {
	sink := &shardSink{up: map[string]bool{}}
	var log []string
	ss := ShardSet[*testShard]{
		Exchange:     "venue",
		StreamPrefix: "trades_",
		Limits:       ShardLimits{PerShard: 2},
		New: func(name string, obs StreamObserver, symbols map[string]bool) *testShard {
			log = append(log, "new "+name)
			return &testShard{name: name, obs: obs, want: symbols}
		},
		Sync: func(sh *testShard, symbols map[string]bool) {
			log = append(log, "sync "+sh.name)
			sh.want = symbols
			sh.syncs++
		},
	}
	ss.DeclareFirst(sink)
	if up, ok := sink.up["venue/trades_0"]; !ok || up {
		t.Fatalf("first stream not declared down: %v", sink.up)
	}
	var shards []*testShard
	ss.Start = func(sh *testShard) {
		log = append(log, "start "+sh.name)
		sh.started = true
		shards = append(shards, sh)
	}

	ss.Assign([]string{"A", "B", "C"})
	wantLog := []string{"new trades_0", "new trades_1", "start trades_0", "start trades_1"}
	if !slices.Equal(log, wantLog) {
		t.Fatalf("calls %v, want %v", log, wantLog)
	}
	if len(shards) != 2 || shards[0].obs != ss.first || !equalSet(shards[0].want, "A", "C") || !equalSet(shards[1].want, "B") {
		t.Fatalf("shards %+v", shards)
	}
	if up, ok := sink.up["venue/trades_1"]; !ok || up {
		t.Errorf("second stream not declared down: %v", sink.up)
	}

	// The same list: nothing is called.
	log = nil
	ss.Assign([]string{"C", "B", "A"})
	if len(log) != 0 {
		t.Errorf("calls for an unchanged list: %v", log)
	}

	// A delisting and three listings: D and E fill shards 0 and 1, F opens
	// shard 2.
	ss.Assign([]string{"B", "C", "D", "E", "F"})
	wantLog = []string{"new trades_2", "sync trades_0", "sync trades_1", "start trades_2"}
	if !slices.Equal(log, wantLog) {
		t.Errorf("calls %v, want %v", log, wantLog)
	}
	if len(shards) != 3 || !equalSet(shards[0].want, "C", "D") || !equalSet(shards[1].want, "B", "E") || !equalSet(shards[2].want, "F") {
		t.Errorf("sets %v %v %v", shards[0].want, shards[1].want, shards[2].want)
	}
	if got := ss.Snapshot(); !equalSnapshots(got, [][]string{{"C", "D"}, {"B", "E"}, {"F"}}) {
		t.Errorf("snapshot %v", got)
	}

	// Everything delisted: the shards stay, empty, and their streams too.
	log = nil
	ss.Assign(nil)
	if len(shards) != 3 || len(log) != 3 || len(shards[2].want) != 0 {
		t.Errorf("after delisting everything: calls %v, shards %d", log, len(shards))
	}
	if len(sink.up) != 3 {
		t.Errorf("streams %v, want 3", sink.up)
	}
}

// Assign, and the sets handed to the shards, are safe with concurrent
// callers (run with -race).
func TestShardSetConcurrent(t *testing.T) {
	sink := &shardSink{up: map[string]bool{}}
	ss := ShardSet[*testShard]{
		Exchange: "venue", StreamPrefix: "s_", Limits: ShardLimits{PerShard: 3},
		New: func(name string, obs StreamObserver, symbols map[string]bool) *testShard {
			return &testShard{name: name, want: symbols}
		},
		Sync: func(sh *testShard, symbols map[string]bool) { sh.want = symbols },
	}
	ss.DeclareFirst(sink)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				syms := []string{"A", "B", fmt.Sprint("X", g), fmt.Sprint("Y", i%7)}
				ss.Assign(syms)
				_ = ss.Snapshot()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, sh := range ss.Snapshot() {
		total += len(sh)
	}
	if total != 4 {
		t.Errorf("%d symbols assigned after the last list of 4", total)
	}
}

func equalSet(m map[string]bool, syms ...string) bool {
	return slices.Equal(slices.Sorted(maps.Keys(m)), syms)
}

func equalSnapshots(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return len(x) == 0 && len(y) == 0 || slices.Equal(x, y) })
}
