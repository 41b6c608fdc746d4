package bybit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const (
	benchInstruments = 500
	benchFrames      = 64 // a power of two: frames[i&(benchFrames-1)]
)

// benchEvent is one allLiquidation event of the benchmark frames. Sizes are
// multiples of 1/4 and prices whole numbers, so every notional and every
// sum of them is exact in float64 and the totals can be compared with ==.
type benchEvent struct {
	symbol string
	coin   string
	side   exchanges.Side
	size   float64
	price  float64
}

// benchFrame returns an allLiquidation push of one event in the shape of
// the documented sample (compact, as Bybit sends it).
func benchFrame(ev benchEvent, ts int64) []byte {
	side := "Sell"
	if ev.side == exchanges.Long {
		side = "Buy" // the position side: Buy = a long was liquidated
	}
	return fmt.Appendf(nil, `{"topic":"allLiquidation.%s","type":"snapshot","ts":%d,"data":[{"T":%d,"s":"%s","S":"%s","v":"%s","p":"%s"}]}`,
		ev.symbol, ts, ts-275, ev.symbol, side,
		strconv.FormatFloat(ev.size, 'f', -1, 64), strconv.FormatFloat(ev.price, 'f', -1, 64))
}

// benchStream is a linear market wired to a real collector with n
// instruments declared and its liquidation shards assigned, as discovery
// leaves it in production. It returns the frame handler the WebSocket
// runner calls for every frame of the first shard, the collector, and
// benchFrames distinct frames over many symbols and both sides.
func benchStream(tb testing.TB, n int) (func(*wsconn.Session, []byte), *collector.Collector, []benchEvent, [][]byte) {
	tb.Helper()
	v := New(Config{Markets: []string{MarketLinear}, Logger: slog.New(slog.DiscardHandler)})
	m := v.markets[0]
	coll := collector.New()
	m.declare(coll)
	list := make([]*exchanges.Instrument, 0, n)
	byName := make(map[string]*exchanges.Instrument, n)
	for i := range n {
		sym := fmt.Sprintf("C%dUSDT", i)
		inst := &exchanges.Instrument{Exchange: Name, Market: exchanges.Linear, Symbol: sym, Coin: fmt.Sprintf("C%d", i),
			Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
		list = append(list, inst)
		byName[sym] = inst
	}
	coll.SetInstruments(Name, exchanges.Linear, list)
	m.instruments.Store(&byName)
	// The frame handler of one shard, as the runner calls it; no runner is
	// started.
	sh := m.shards.newShard("bench", m.sink.Stream(Name, "bench"), map[string]bool{})
	handler := sh.streamConfig().OnMessage

	events := make([]benchEvent, 0, benchFrames)
	frames := make([][]byte, 0, benchFrames)
	for i := range benchFrames {
		j := (i * 7) % n
		ev := benchEvent{symbol: fmt.Sprintf("C%dUSDT", j), coin: fmt.Sprintf("C%d", j), side: exchanges.Short,
			size: 0.25 + float64(i), price: 100 + float64(i)}
		if i%3 == 0 {
			ev.side = exchanges.Long
		}
		events = append(events, ev)
		frames = append(frames, benchFrame(ev, 1_739_502_303_204+int64(i)*500))
	}
	return handler, coll, events, frames
}

// BenchmarkAllLiquidation measures one allLiquidation frame through the
// shard's frame handler (decoder, instrument lookup, notional) and the
// collector sink: the exporter's per-message hot path for Bybit.
func BenchmarkAllLiquidation(b *testing.B) {
	handler, _, _, frames := benchStream(b, benchInstruments)
	venuetest.Bench(b, len(frames[0]), func(i int) {
		handler(nil, frames[i&(benchFrames-1)])
	})
}

// baselineFrame is what a straightforward implementation decodes into. It
// declares both keys of the "s"/"S" pair so encoding/json matches exactly.
type baselineFrame struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	TS    int64  `json:"ts"`
	Data  []struct {
		T      int64  `json:"T"`
		Symbol string `json:"s"`
		Side   string `json:"S"`
		Size   string `json:"v"`
		Price  string `json:"p"`
	} `json:"data"`
}

// BenchmarkAllLiquidationBaseline is the straightforward implementation the
// hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per event.
func BenchmarkAllLiquidationBaseline(b *testing.B) {
	_, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	coins := map[string]string{}
	for i := range benchInstruments {
		coins[fmt.Sprintf("C%dUSDT", i)] = fmt.Sprintf("C%d", i)
	}
	venuetest.Bench(b, len(frames[0]), func(i int) {
		var fr baselineFrame
		if err := json.Unmarshal(frames[i&(benchFrames-1)], &fr); err != nil {
			b.Fatal(err)
		}
		for _, ev := range fr.Data {
			v, _ := strconv.ParseFloat(ev.Size, 64)
			p, _ := strconv.ParseFloat(ev.Price, 64)
			side := "short"
			if ev.Side == "Buy" {
				side = "long"
			}
			coin := coins[ev.Symbol]
			counters.Add("bybit", "linear", ev.Symbol, coin, side, v*p)
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(ev liquidation) { sink += ev.Size }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = decodeFrame(frames[i&(benchFrames-1)], emit)
	}
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady
// state and that every message of the run is counted exactly once.
func TestHotPathDoesNotAllocate(t *testing.T) {
	handler, coll, events, frames := benchStream(t, benchInstruments)
	for _, f := range frames { // warm up: the first liquidation of a series allocates its window
		handler(nil, f)
	}
	const runs = 1000
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		handler(nil, frames[i&(benchFrames-1)])
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per allLiquidation frame, want 0", allocs)
	}
	// AllocsPerRun calls the function once more than runs (a warm-up).
	if i != runs+1 {
		t.Fatalf("handler ran %d times, want %d", i, runs+1)
	}
	sent := len(frames) + i
	var want collectortest.Liquidations
	for j := range sent {
		ev := events[j%benchFrames]
		want.Add(ev.size*ev.price, "exchange", Name, "market", "linear", "symbol", ev.symbol, "coin", ev.coin, "side", ev.side.String())
	}
	want.Check(t, coll)
}
