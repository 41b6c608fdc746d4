package binance

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// benchMarket is a USDⓈ-M market wired to a real collector, with n
// instruments, as the stream handler sees it in production.
func benchMarket(tb testing.TB, n int) (*market, [][]byte) {
	m, _, frames := benchMarketCollector(tb, n)
	return m, frames
}

// benchMarketCollector is benchMarket with its collector.
func benchMarketCollector(tb testing.TB, n int) (*market, *collector.Collector, [][]byte) {
	tb.Helper()
	v := New(Config{Logger: slog.New(slog.DiscardHandler)})
	m := v.markets[0]
	coll := collector.New()
	m.declare(coll)
	list := make([]*exchanges.Instrument, 0, n)
	byName := map[string]*exchanges.Instrument{}
	for i := range n {
		sym := fmt.Sprintf("C%dUSDT", i)
		inst := &exchanges.Instrument{Exchange: Name, Market: exchanges.Linear, Symbol: sym, Coin: fmt.Sprintf("C%d", i),
			Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
		list = append(list, inst)
		byName[sym] = inst
	}
	coll.SetInstruments(Name, exchanges.Linear, list)
	m.instruments.Store(&byName)
	frames := make([][]byte, 0, 64)
	for i := range 64 {
		o := benchOrder(i, n)
		frames = append(frames, exchangetest.ForceOrderFrame(o))
	}
	return m, coll, frames
}

// benchOrder is the i-th of the 64 benchmark orders over n instruments.
// Quantities are multiples of 1/4 and average prices of 1/2, so every
// notional and every sum of them is exact in float64.
func benchOrder(i, n int) exchangetest.ForceOrder {
	side := "SELL" // a long liquidated
	if i%3 == 0 {
		side = "BUY"
	}
	return exchangetest.ForceOrder{Symbol: fmt.Sprintf("C%dUSDT", (i*7)%n), Side: side, Qty: 0.25 + float64(i), Price: 100 + float64(i),
		AvgPrice: 100.5 + float64(i), FilledQty: 0.25 + float64(i), LastFilledQty: 0.25, EventTime: 1_700_000_000_000 + int64(i)}
}

// BenchmarkForceOrder measures one forceOrder frame through the decoder and
// the collector sink: the exporter's per-message hot path.
func BenchmarkForceOrder(b *testing.B) {
	m, frames := benchMarket(b, 500)
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.onMessage(nil, frames[i&63])
	}
}

// baselineEvent is what a straightforward implementation decodes into. It
// declares both keys of each case pair so encoding/json matches exactly.
type baselineEvent struct {
	E  string `json:"e"`
	ET int64  `json:"E"`
	O  struct {
		Symbol string `json:"s"`
		Side   string `json:"S"`
		Type   string `json:"o"`
		TIF    string `json:"f"`
		Qty    string `json:"q"`
		Price  string `json:"p"`
		Avg    string `json:"ap"`
		Status string `json:"X"`
		Last   string `json:"l"`
		Filled string `json:"z"`
		Time   int64  `json:"T"`
	} `json:"o"`
}

// BenchmarkForceOrderBaseline is the straightforward implementation the hot
// path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per message.
func BenchmarkForceOrderBaseline(b *testing.B) {
	_, frames := benchMarket(b, 500)
	counters := collectortest.NewBaseline()
	coins := map[string]string{}
	for i := range 500 {
		coins[fmt.Sprintf("C%dUSDT", i)] = fmt.Sprintf("C%d", i)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ev baselineEvent
		if err := json.Unmarshal(frames[i&63], &ev); err != nil {
			b.Fatal(err)
		}
		z, _ := strconv.ParseFloat(ev.O.Filled, 64)
		ap, _ := strconv.ParseFloat(ev.O.Avg, 64)
		side := "short"
		if ev.O.Side == "SELL" {
			side = "long"
		}
		coin := coins[ev.O.Symbol]
		counters.Add("binance", "linear", ev.O.Symbol, coin, side, z*ap)
	}
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, frames := benchMarket(b, 500)
	var sink float64
	emit := func(fo forceOrder) { sink += fo.FilledQty }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		decodeFrame(frames[i&63], emit)
	}
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady state.
// Every message of the run is counted exactly once, by series.
func TestHotPathDoesNotAllocate(t *testing.T) {
	const n = 500
	m, coll, frames := benchMarketCollector(t, n)
	for _, f := range frames { // warm up: first liquidation of a series allocates its window
		m.onMessage(nil, f)
	}
	const runs = 1000
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		m.onMessage(nil, frames[i&63])
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per forceOrder frame, want 0", allocs)
	}
	// AllocsPerRun calls the function once more than runs (a warm-up).
	if i != runs+1 {
		t.Fatalf("handler ran %d times, want %d", i, runs+1)
	}
	var want collectortest.Liquidations
	for j := range len(frames) + i {
		o := benchOrder(j%64, n)
		side := "long" // SELL: a long position liquidated
		if o.Side == "BUY" {
			side = "short"
		}
		want.Add(o.FilledQty*o.AvgPrice, "exchange", Name, "market", "linear", "symbol", o.Symbol,
			"coin", strings.TrimSuffix(o.Symbol, "USDT"), "side", side) // z x ap
	}
	want.Check(t, coll)
}
