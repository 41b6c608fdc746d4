package bitmex

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// benchOrder is the one order of a benchmark insert frame. The benchmark
// market is inverse, XBTUSD-style (XBt settled, multiplier -100000000: one
// contract is worth 1 USD whatever the price), so the notional is
// leavesQty USD; quantities are whole contracts, so every notional and
// every sum of them is exact in float64 and the totals can be compared
// with ==.
type benchOrder struct {
	symbol, coin string
	side         exchanges.Side
	qty, price   float64
}

// benchFrame is a liquidation insert whose orderID ends in 12 hex digits
// rewritten in place before every use, so that each message is a new
// order.
type benchFrame struct {
	data []byte
	id   int // offset of the 12 hex digits that end the orderID
}

// stamp writes seq as the last 12 hex digits of the frame's orderID.
func (f *benchFrame) stamp(seq uint64) {
	const hex = "0123456789abcdef"
	d := f.data[f.id : f.id+12]
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = hex[seq&15]
		seq >>= 4
	}
}

// benchInsert returns an insert of one order in the shape of the
// documented sample and of the fake's frames (compact, fields in BitMEX's
// order).
func benchInsert(o benchOrder) benchFrame {
	side := "Buy" // the engine buys back a liquidated short
	if o.side == exchanges.Long {
		side = "Sell"
	}
	data := fmt.Appendf(nil, `{"table":"liquidation","action":"insert","data":[`+
		`{"orderID":"98ae1dad-6a3b-51c4-14bd-000000000000","symbol":"%s","side":"%s","price":%s,"leavesQty":%s}]}`,
		o.symbol, side, strconv.FormatFloat(o.price, 'f', -1, 64), strconv.FormatFloat(o.qty, 'f', -1, 64))
	return benchFrame{data: data, id: bytes.Index(data, []byte(`-14bd-`)) + len(`-14bd-`)}
}

// benchStream is the venue wired to a real collector after one poll of
// instrument/active (served by a local server) that listed n inverse
// perpetuals, as discovery leaves it in production. It returns the
// connection's runner configuration (its OnMessage is the frame handler
// the WebSocket runner calls for every frame; no runner is started), the
// venue, the collector, and benchFrames inserts over many symbols and both
// sides.
func benchStream(tb testing.TB, n int) (wsconn.Config, *Venue, *collector.Collector, []benchOrder, []benchFrame) {
	tb.Helper()
	rows := []byte{'['}
	for i := range n {
		if i > 0 {
			rows = append(rows, ',')
		}
		rows = fmt.Appendf(rows, `{"symbol":"C%dUSD","rootSymbol":"C%d","state":"Open","typ":"FFWCSX","underlying":"C%d",`+
			`"quoteCurrency":"USD","settlCurrency":"XBt","isQuanto":false,"isInverse":true,"multiplier":-100000000,`+
			`"fundingRate":0.0001,"openInterest":1000000,"markPrice":%d,"foreignNotional24h":5000000}`, i, i, i, 100+i)
	}
	rows = append(rows, ']')
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rows)
	}))
	tb.Cleanup(srv.Close)

	v := New(Config{REST: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	coll := collector.New()
	// What Run does before it polls and opens the stream.
	v.sink = coll
	v.obs = coll.Stream(Name, StreamLiquidation)
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		coll.SetFeedComplete(Name, mk, true)
	}
	if err := v.pollOnce(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if got := len(*v.instruments.Load()); got != n {
		tb.Fatalf("%d instruments after the poll, want %d", got, n)
	}
	cfg := v.streamConfig()

	orders := make([]benchOrder, 0, benchFrames)
	frames := make([]benchFrame, 0, benchFrames)
	for i := range benchFrames {
		j := (i * 7) % n
		o := benchOrder{symbol: fmt.Sprintf("C%dUSD", j), coin: fmt.Sprintf("C%d", j), side: exchanges.Short,
			qty: 100 * float64(i+1), price: 100.5 + float64(i)}
		if i%3 == 0 {
			o.side = exchanges.Long
		}
		orders = append(orders, o)
		frames = append(frames, benchInsert(o))
	}
	return cfg, v, coll, orders, frames
}

// BenchmarkLiquidationInsert measures one liquidation insert through the
// connection's frame handler (decoder, resting-order set, instrument
// lookup, notional) and the collector sink: the exporter's per-message
// hot path for BitMEX. Every message is a new orderID, so all of them are
// counted; the resting-order set fills to maxActive, is cleared and fills
// again, as it does when deletes never come.
func BenchmarkLiquidationInsert(b *testing.B) {
	cfg, v, _, _, frames := benchStream(b, benchInstruments)
	handler := cfg.OnMessage
	var seq uint64
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		f := &frames[i&(benchFrames-1)]
		seq++
		f.stamp(seq)
		handler(nil, f.data)
	})
	b.StopTimer()
	if got := v.counted.Load(); got != int64(b.N) {
		b.Fatalf("counted %d of %d messages", got, b.N)
	}
}

// baselineFrame is what a straightforward implementation decodes into.
type baselineFrame struct {
	Table  string `json:"table"`
	Action string `json:"action"`
	Data   []struct {
		OrderID   string  `json:"orderID"`
		Symbol    string  `json:"symbol"`
		Side      string  `json:"side"`
		Price     float64 `json:"price"`
		LeavesQty float64 `json:"leavesQty"`
	} `json:"data"`
}

// BenchmarkLiquidationInsertBaseline is the straightforward implementation
// the hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per order. It keeps no set of
// resting orders, so it does less work than the hot path.
func BenchmarkLiquidationInsertBaseline(b *testing.B) {
	_, v, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	type meta struct {
		market, coin string
		size         float64
	}
	insts := map[string]meta{}
	for sym, in := range *v.instruments.Load() {
		insts[sym] = meta{string(in.inst.Market), in.inst.Coin, in.size}
	}
	var seq uint64
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		f := &frames[i&(benchFrames-1)]
		seq++
		f.stamp(seq)
		var fr baselineFrame
		if err := json.Unmarshal(f.data, &fr); err != nil {
			b.Fatal(err)
		}
		if fr.Table != "liquidation" || fr.Action != "insert" {
			return
		}
		for _, o := range fr.Data {
			in := insts[o.Symbol]
			side := "short"
			if o.Side == "Sell" {
				side = "long"
			}
			counters.Add("bitmex", in.market, o.Symbol, in.coin, side, o.LeavesQty*in.size)
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder: the envelope (decodeFrame)
// and the orders of its data array (eachOrder).
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(o order) { sink += o.Qty }
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0].data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := decodeFrame(frames[i&(benchFrames-1)].data)
		if err != nil {
			b.Fatal(err)
		}
		_, _, _ = eachOrder(f.data, f.action, emit)
	}
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady
// state, with the resting-order set through a full fill and clear, and
// that every insert is counted exactly once while replays are not.
func TestHotPathDoesNotAllocate(t *testing.T) {
	cfg, v, coll, orders, frames := benchStream(t, benchInstruments)
	handler := cfg.OnMessage
	var seq uint64
	sent := 0
	send := func() {
		f := &frames[sent&(benchFrames-1)]
		seq++
		f.stamp(seq)
		handler(nil, f.data)
		sent++
	}
	// Warm up: the first liquidation of a series allocates its window, and
	// the resting-order set goes once through a fill to maxActive and a
	// clear.
	for range maxActive + benchFrames {
		send()
	}
	if n := len(v.active); n != benchFrames {
		t.Fatalf("%d resting orders after the warm-up, want %d", n, benchFrames)
	}
	const runs = maxActive + 5000 // through one more clear of the set
	allocs := testing.AllocsPerRun(runs, send)
	if allocs != 0 {
		t.Errorf("%.2f allocations per liquidation insert, want 0", allocs)
	}
	if got := v.counted.Load(); got != int64(sent) {
		t.Fatalf("counted %d of %d inserts", got, sent)
	}
	// A replay of the last frames (same orderIDs, still resting) is not
	// counted again.
	for j := range benchFrames {
		handler(nil, frames[(sent-1-j)&(benchFrames-1)].data)
	}
	if got := v.counted.Load(); got != int64(sent) {
		t.Errorf("counted %d after replaying %d inserts, want %d", got, benchFrames, sent)
	}

	var want collectortest.Liquidations
	for j := range sent {
		o := orders[j%benchFrames]
		// inverse: 1 USD per contract
		want.Add(o.qty, "exchange", Name, "market", "inverse", "symbol", o.symbol, "coin", o.coin, "side", o.side.String())
	}
	want.Check(t, coll)
}
