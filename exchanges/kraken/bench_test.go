package kraken

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

const (
	benchInstruments = 500
	benchFrames      = 64 // a power of two: frames[i&(benchFrames-1)]
)

// benchEvent is one liquidation trade of the benchmark frames. Linear (PF_)
// quantities are multiples of 1/4 and prices whole numbers, inverse (PI_)
// quantities whole USD contracts, so every notional and every sum of them
// is exact in float64 and the totals can be compared with ==.
type benchEvent struct {
	product string
	coin    string
	market  exchanges.Market
	side    exchanges.Side
	qty     float64
	price   float64
}

// notional is the USD notional the collector must count for ev (contract
// size 1): qty x price for PF_, qty (USD contracts) for PI_.
func (ev benchEvent) notional() float64 {
	if ev.market == exchanges.Inverse {
		return ev.qty
	}
	return ev.qty * ev.price
}

// benchFrame returns a "trade" feed message of type liquidation built by
// the fake's KrakenTradeFrame: the shape of testdata/trade_liquidation_*.json
// (compact, as Kraken sends it), with its own uid and seq.
func benchFrame(ev benchEvent, seq, ms int64) []byte {
	side := "buy"
	if ev.side == exchanges.Long {
		side = "sell" // the taker's side: sell = a long was liquidated (ASSUMED)
	}
	return exchangetest.KrakenTradeFrame(exchangetest.KrakenTrade{Product: ev.product, Side: side, Type: typeLiquidation,
		Qty: ev.qty, Price: ev.price, Seq: seq, Time: ms, UID: fmt.Sprintf("4d7a3c11-6a2b-4f6f-9a51-%012d", seq)})
}

// benchStream is a venue wired to a real collector with n products declared
// over both markets (even: PF_ linear, odd: PI_ inverse), as discovery
// leaves it in production. It returns the frame handler the WebSocket
// runner calls for every frame of the trade connection, the collector, and
// benchFrames distinct frames over many products, both markets and both
// sides.
func benchStream(tb testing.TB, n int) (func([]byte), *collector.Collector, []benchEvent, [][]byte) {
	tb.Helper()
	v := New(Config{Logger: slog.New(slog.DiscardHandler)})
	coll := collector.New()
	v.sink = coll
	v.trades.obs = coll.Stream(Name, StreamTrades)
	byMarket := map[exchanges.Market][]*exchanges.Instrument{}
	byName := make(map[string]*exchanges.Instrument, n)
	for i := range n {
		sym, mk := fmt.Sprintf("PF_C%dUSD", i), exchanges.Linear
		if i%2 == 1 {
			sym, mk = fmt.Sprintf("PI_C%dUSD", i), exchanges.Inverse
		}
		inst := &exchanges.Instrument{Exchange: Name, Market: mk, Symbol: sym, Coin: fmt.Sprintf("C%d", i),
			Quote: "USD", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
		byMarket[mk] = append(byMarket[mk], inst)
		byName[sym] = inst
	}
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		coll.SetInstruments(Name, mk, byMarket[mk])
	}
	v.instruments.Store(&byName)
	// The frame handler of the trade connection (OnMessage), called as the
	// runner calls it but without a connection: the liquidation path never
	// uses one. No runner is started.
	onMessage := v.trades.streamConfig().OnMessage
	handler := func(frame []byte) { onMessage(nil, frame) }

	events := make([]benchEvent, 0, benchFrames)
	frames := make([][]byte, 0, benchFrames)
	for i := range benchFrames {
		j := (i * 7) % n // n is even, so j has the parity of i: both markets
		inst := byName[fmt.Sprintf("PF_C%dUSD", j)]
		if j%2 == 1 {
			inst = byName[fmt.Sprintf("PI_C%dUSD", j)]
		}
		ev := benchEvent{product: inst.Symbol, coin: inst.Coin, market: inst.Market, side: exchanges.Short,
			qty: 0.25 + float64(i), price: 100 + float64(i)}
		if inst.Market == exchanges.Inverse {
			ev.qty, ev.price = 1000+10*float64(i), 60000+float64(i)
		}
		if i%3 == 0 {
			ev.side = exchanges.Long
		}
		events = append(events, ev)
		frames = append(frames, benchFrame(ev, 90_001+int64(i), 1_700_000_000_000+int64(i)*500))
	}
	return handler, coll, events, frames
}

// BenchmarkTradeLiquidation measures one liquidation trade message through
// the trade connection's frame handler (decoder, product lookup, notional)
// and the collector sink: the exporter's per-message hot path for Kraken.
func BenchmarkTradeLiquidation(b *testing.B) {
	handler, _, _, frames := benchStream(b, benchInstruments)
	venuetest.Bench(b, len(frames[0]), func(i int) {
		handler(frames[i&(benchFrames-1)])
	})
}

// baselineTrade is what a straightforward implementation decodes into.
type baselineTrade struct {
	Feed    string  `json:"feed"`
	Product string  `json:"product_id"`
	UID     string  `json:"uid"`
	Side    string  `json:"side"`
	Type    string  `json:"type"`
	Seq     int64   `json:"seq"`
	Time    int64   `json:"time"`
	Qty     float64 `json:"qty"`
	Price   float64 `json:"price"`
}

// BenchmarkTradeLiquidationBaseline is the straightforward implementation
// the hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per liquidation.
func BenchmarkTradeLiquidationBaseline(b *testing.B) {
	_, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	type product struct{ coin, market string }
	products := map[string]product{}
	for i := range benchInstruments {
		if i%2 == 1 {
			products[fmt.Sprintf("PI_C%dUSD", i)] = product{fmt.Sprintf("C%d", i), "inverse"}
		} else {
			products[fmt.Sprintf("PF_C%dUSD", i)] = product{fmt.Sprintf("C%d", i), "linear"}
		}
	}
	venuetest.Bench(b, len(frames[0]), func(i int) {
		var tr baselineTrade
		if err := json.Unmarshal(frames[i&(benchFrames-1)], &tr); err != nil {
			b.Fatal(err)
		}
		if tr.Feed != "trade" || tr.Type != "liquidation" {
			return
		}
		side := "short"
		if tr.Side == "sell" {
			side = "long"
		}
		p := products[tr.Product]
		n := tr.Qty * tr.Price
		if p.market == "inverse" {
			n = tr.Qty
		}
		counters.Add("kraken", p.market, tr.Product, p.coin, side, n)
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	venuetest.Bench(b, len(frames[0]), func(i int) {
		_, ev, _ := decodeFrame(frames[i&(benchFrames-1)])
		sink += ev.Qty
	})
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady
// state and that every message of the run is counted exactly once.
func TestHotPathDoesNotAllocate(t *testing.T) {
	handler, coll, events, frames := benchStream(t, benchInstruments)
	for _, f := range frames { // warm up: the first liquidation of a series allocates its window
		handler(f)
	}
	const runs = 1000
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		handler(frames[i&(benchFrames-1)])
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per liquidation trade message, want 0", allocs)
	}
	// AllocsPerRun calls the function once more than runs (a warm-up).
	if i != runs+1 {
		t.Fatalf("handler ran %d times, want %d", i, runs+1)
	}
	sent := len(frames) + i
	var want collectortest.Liquidations
	perMarket := map[exchanges.Market]float64{} // by the product's prefix: PI_ is inverse, PF_ linear
	for j := range sent {
		ev := events[j%benchFrames]
		want.Add(ev.notional(), "exchange", Name, "market", string(ev.market), "symbol", ev.product, "coin", ev.coin, "side", ev.side.String())
		mk := exchanges.Linear
		if ev.product[1] == 'I' {
			mk = exchanges.Inverse
		}
		perMarket[mk]++
	}
	s, err := collectortest.FromCollector(coll)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range want.Diff(s) {
		t.Error(d)
	}
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		n := perMarket[mk]
		if n == 0 {
			t.Fatalf("the frames carry no %s liquidation", mk)
		}
		if got := s.Sum("crypto_liquidations_total", "market", string(mk)); got != n {
			t.Errorf("%s liquidations sum to %v, want %v", mk, got, n)
		}
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total"); got != 0 {
		t.Errorf("%v decode errors, want 0", got)
	}
}
