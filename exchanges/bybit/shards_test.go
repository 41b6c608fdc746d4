package bybit

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
)

func shardMarket(t *testing.T, per int) (*market, *collector.Collector) {
	t.Helper()
	v := New(Config{Markets: []string{MarketLinear}, TopicsPerConnection: per})
	m := v.markets[0]
	coll := collector.New()
	m.sink = coll
	m.shards.declareFirst()
	return m, coll
}

func TestShardAssignment(t *testing.T) {
	m, coll := shardMarket(t, 3)
	m.shards.assign([]string{"A", "B", "C", "D", "E", "F", "G"})
	want := [][]string{{"A", "D", "G"}, {"B", "E"}, {"C", "F"}}
	if got := m.shards.snapshot(); !equalShards(got, want) {
		t.Fatalf("first assignment %v, want %v", got, want)
	}
	// Same list, same shards; a removal leaves the others where they are;
	// additions fill the least loaded shard first, then a new one.
	m.shards.assign([]string{"A", "B", "C", "D", "E", "F", "G"})
	m.shards.assign([]string{"A", "C", "D", "E", "F", "G", "H", "I", "J"})
	want = [][]string{{"A", "D", "G"}, {"E", "H", "I"}, {"C", "F", "J"}}
	if got := m.shards.snapshot(); !equalShards(got, want) {
		t.Fatalf("after changes %v, want %v", got, want)
	}
	m.shards.assign([]string{"A", "C", "D", "E", "F", "G", "H", "I", "J", "K"})
	want = append(want, []string{"K"})
	if got := m.shards.snapshot(); !equalShards(got, want) {
		t.Fatalf("after overflow %v, want %v", got, want)
	}
	s, err := collectortest.FromCollector(coll)
	if err != nil {
		t.Fatal(err)
	}
	for n := range 4 {
		if _, ok := s.Get("crypto_exporter_stream_up", "exchange", "bybit", "stream", fmt.Sprintf("linear_liquidations_%d", n)); !ok {
			t.Errorf("stream linear_liquidations_%d not declared", n)
		}
	}
	// Everything delisted: the shards stay, empty.
	m.shards.assign(nil)
	if got := m.shards.snapshot(); len(got) != 4 || len(got[0])+len(got[1])+len(got[2])+len(got[3]) != 0 {
		t.Errorf("after delisting everything %v", got)
	}
}

func TestShardAssignmentEmpty(t *testing.T) {
	m, _ := shardMarket(t, 3)
	m.shards.assign(nil)
	if got := m.shards.snapshot(); len(got) != 1 || len(got[0]) != 0 {
		t.Errorf("no symbols: %v, want one empty shard", got)
	}
}

func TestShardArgsCharLimit(t *testing.T) {
	m, _ := shardMarket(t, 1000)
	var syms []string
	for i := range 400 {
		syms = append(syms, fmt.Sprintf("%03d%s", i, strings.Repeat("X", 97)))
	}
	m.shards.assign(syms)
	got := m.shards.snapshot()
	if len(got) != 3 {
		t.Fatalf("%d shards for 400 topics of 115 characters, want 3", len(got))
	}
	total := 0
	for _, sh := range got {
		chars := 0
		for _, s := range sh {
			chars += len(Topic(s))
		}
		if chars > MaxArgsChars {
			t.Errorf("a shard holds %d characters of args", chars)
		}
		total += len(sh)
	}
	if total != 400 {
		t.Errorf("%d topics assigned, want 400", total)
	}
}

func equalShards(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}
