package bitget

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

const (
	benchInstruments = 500 // a multiple of 4: every product type gets its share
	benchFrames      = 64  // a power of two: frames[i&(benchFrames-1)]
)

// benchLiq is the one liquidation of a benchmark frame. Amounts are
// multiples of 1/4 and prices multiples of 1/2, so every notional (amount
// x price, every product type) and every sum of them is exact in float64
// and the totals can be compared with ==.
type benchLiq struct {
	instType, symbol, coin string
	market                 exchanges.Market
	side                   string         // as sent: "sell" or "buy"
	pos                    exchanges.Side // the position side liquidated
	amount, price          float64
}

// benchFrame is a liquidation push whose ts digits are rewritten in place
// before every use, so that each message is a distinct liquidation.
type benchFrame struct {
	data []byte
	ts   int // offset of the 13 ts digits
}

// stamp writes ms, a 13-digit Unix time in milliseconds, as the frame's ts.
func (f *benchFrame) stamp(ms int64) {
	d := f.data[f.ts : f.ts+13]
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + ms%10)
		ms /= 10
	}
}

// benchFeed hands out the benchmark frames in turn, each stamped one
// millisecond after the previous message.
type benchFeed struct {
	frames []benchFrame
	ms     int64 // ts of the last message
	sent   int   // messages handed out
}

// next returns the next message.
func (fd *benchFeed) next() []byte {
	f := &fd.frames[fd.sent&(benchFrames-1)]
	fd.ms++
	f.stamp(fd.ms)
	fd.sent++
	return f.data
}

// benchPush returns a push of one liquidation in the shape of the sample
// in testdata (compact, string numbers, as Bitget sends it and as
// exchangetest.BitgetLiquidationFrame builds it).
func benchPush(l benchLiq) benchFrame {
	data := fmt.Appendf(nil, `{"arg":{"instType":"%s","topic":"%s"},"data":[`+
		`{"symbol":"%s","price":"%s","amount":"%s","side":"%s","ts":"1700000000000"}]}`,
		l.instType, Topic, l.symbol, strconv.FormatFloat(l.price, 'f', -1, 64), strconv.FormatFloat(l.amount, 'f', -1, 64), l.side)
	return benchFrame{data: data, ts: bytes.Index(data, []byte(`"ts":"`)) + len(`"ts":"`)}
}

// benchStream is the liquidation stream of a venue with the liquidation
// topic on, wired to a real collector with n instruments declared through
// the discovery path (usdt-futures, usdc-futures and coin-futures), and
// the default dedupe. It returns the frame handler the WebSocket runner
// calls for every frame (given no connection: pushes do not use it), the
// venue, the collector, and benchFrames pushes over many symbols, every
// product type and both sides.
func benchStream(tb testing.TB, n int) (func([]byte), *Venue, *collector.Collector, []benchLiq, []benchFrame) {
	tb.Helper()
	v := New(Config{Liquidations: true, Logger: slog.New(slog.DiscardHandler)})
	coll := collector.New()
	v.sink = coll
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		coll.SetFeedComplete(Name, mk, false)
	}
	v.streamObs = coll.Stream(Name, StreamLiquidations)
	kinds := map[string]*kind{}
	lists := map[*kind]map[string]*instrument{}
	for _, k := range v.kinds {
		kinds[k.productType] = k
		lists[k] = map[string]*instrument{}
	}
	all := make([]*instrument, 0, n)
	kindOf := make([]*kind, 0, n)
	for i := range n {
		var k *kind
		var symbol string
		switch i % 4 {
		case 2:
			k, symbol = kinds[USDCFutures], fmt.Sprintf("C%dPERP", i)
		case 3:
			k, symbol = kinds[CoinFutures], fmt.Sprintf("C%dUSD", i)
		default:
			k, symbol = kinds[USDTFutures], fmt.Sprintf("C%dUSDT", i)
		}
		in, ok := k.instrumentOf(contract{Symbol: symbol, BaseCoin: fmt.Sprintf("C%d", i), SymbolType: "perpetual", SymbolStatus: "normal"})
		if !ok || in.inst == nil {
			tb.Fatalf("instrument %s not made", symbol)
		}
		lists[k][symbol] = in
		all = append(all, in)
		kindOf = append(kindOf, k)
	}
	for _, k := range v.kinds {
		v.setList(k, lists[k])
	}
	onMessage := v.streamConfig().OnMessage
	handler := func(data []byte) { onMessage(nil, data) }

	liqs := make([]benchLiq, 0, benchFrames)
	frames := make([]benchFrame, 0, benchFrames)
	for i := range benchFrames {
		j := (i * 7) % n
		in, k := all[j], kindOf[j]
		l := benchLiq{instType: k.wsInstType, symbol: in.symbol, coin: in.inst.Coin, market: in.inst.Market,
			side: "buy", pos: exchanges.Short, amount: 0.25 + float64(i), price: 100.5 + float64(i)}
		if i%3 == 0 {
			l.side, l.pos = "sell", exchanges.Long
		}
		liqs = append(liqs, l)
		frames = append(frames, benchPush(l))
	}
	return handler, v, coll, liqs, frames
}

// BenchmarkLiquidation measures one liquidation push through the stream's
// frame handler (product type, decoder, instrument lookup, dedupe,
// notional) and the collector sink: the exporter's per-message hot path
// for Bitget. Every message is a distinct liquidation (its ts is one
// millisecond after the previous one's), so all of them pass the dedupe
// and are counted. The untimed warm-up fills the dedupe set to its cap, so
// that every timed message also evicts the oldest key: the steady state.
func BenchmarkLiquidation(b *testing.B) {
	handler, v, _, _, frames := benchStream(b, benchInstruments)
	feed := benchFeed{frames: frames, ms: v.epoch.UnixMilli()}
	for range dedupeMaxKeys + benchFrames {
		handler(feed.next())
	}
	if n := v.dedupe.Len(); n != dedupeMaxKeys {
		b.Fatalf("dedupe holds %d keys after the warm-up, want %d", n, dedupeMaxKeys)
	}
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		handler(feed.next())
	})
	b.StopTimer()
	if got := v.counted.Load(); got != int64(feed.sent) {
		b.Fatalf("counted %d of %d messages (history or repeats %d)", got, feed.sent, v.history.Load())
	}
}

// baselinePush is what a straightforward implementation decodes into.
type baselinePush struct {
	Arg struct {
		InstType string `json:"instType"`
		Topic    string `json:"topic"`
	} `json:"arg"`
	Data []struct {
		Symbol string `json:"symbol"`
		Price  string `json:"price"`
		Amount string `json:"amount"`
		Side   string `json:"side"`
		TS     string `json:"ts"`
	} `json:"data"`
}

// BenchmarkLiquidationBaseline is the straightforward implementation the
// hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per liquidation. It does no dedupe,
// so it does less work than the hot path.
func BenchmarkLiquidationBaseline(b *testing.B) {
	_, v, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	type meta struct{ market, coin string }
	insts := map[string]meta{} // instType/symbol -> meta
	for _, k := range v.kinds {
		for symbol, in := range *k.instruments.Load() {
			insts[k.wsInstType+"/"+symbol] = meta{string(in.inst.Market), in.inst.Coin}
		}
	}
	feed := benchFeed{frames: frames, ms: v.epoch.UnixMilli()}
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		var push baselinePush
		if err := json.Unmarshal(feed.next(), &push); err != nil {
			b.Fatal(err)
		}
		for _, d := range push.Data {
			in := insts[push.Arg.InstType+"/"+d.Symbol]
			amount, _ := strconv.ParseFloat(d.Amount, 64)
			price, _ := strconv.ParseFloat(d.Price, 64)
			side := "short"
			if d.Side == "sell" {
				side = "long"
			}
			counters.Add("bitget", in.market, d.Symbol, in.coin, side, amount*price)
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(e event) { sink += e.Amount }
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		_, _ = decodeFrame(frames[i&(benchFrames-1)].data, emit)
	})
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady
// state, with the dedupe set full so that every message also evicts the
// oldest key, and that every distinct message is counted exactly once
// while replays are not.
func TestHotPathDoesNotAllocate(t *testing.T) {
	handler, v, coll, liqs, frames := benchStream(t, benchInstruments)
	feed := benchFeed{frames: frames, ms: v.epoch.UnixMilli()}
	send := func() { handler(feed.next()) }
	// Warm up: fill the dedupe set to its cap; the first liquidation of a
	// series allocates its window.
	for range dedupeMaxKeys + benchFrames {
		send()
	}
	if n := v.dedupe.Len(); n != dedupeMaxKeys {
		t.Fatalf("dedupe holds %d keys after the warm-up, want %d", n, dedupeMaxKeys)
	}
	allocs := testing.AllocsPerRun(5000, send)
	if allocs != 0 {
		t.Errorf("%.2f allocations per liquidation push, want 0", allocs)
	}
	sent := feed.sent
	if got := v.counted.Load(); got != int64(sent) {
		t.Fatalf("counted %d of %d distinct messages (history or repeats %d)", got, sent, v.history.Load())
	}
	// A replay of the last frames (same ts) is recognised and not counted.
	for j := range benchFrames {
		handler(frames[(sent-1-j)&(benchFrames-1)].data)
	}
	if got := v.history.Load(); got != benchFrames {
		t.Errorf("%d repeats after replaying %d frames, want %d", got, benchFrames, benchFrames)
	}
	if got := v.counted.Load(); got != int64(sent) {
		t.Errorf("counted %d after the replay, want %d", got, sent)
	}

	var want collectortest.Liquidations
	for j := range sent {
		l := liqs[j%benchFrames]
		want.Add(l.amount*l.price, "exchange", Name, "market", string(l.market), "symbol", l.symbol, "coin", l.coin, "side", l.pos.String())
	}
	want.Check(t, coll)
}
