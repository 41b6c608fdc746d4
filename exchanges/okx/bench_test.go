package okx

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
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const (
	benchInstruments = 500
	benchFrames      = 64 // a power of two: frames[i&(benchFrames-1)]
)

// benchOrder is the one liquidation order of a benchmark frame. Sizes are
// whole contracts, prices whole numbers and ctVal 0.25 (linear) or 100
// (inverse), so every notional and every sum of them is exact in float64
// and the totals can be compared with ==.
type benchOrder struct {
	instID, family, coin string
	market               exchanges.Market
	side, posSide        string
	pos                  exchanges.Side // the position side the order liquidated
	sz, px               float64
	notional             float64
}

// benchFrame is a liquidation-orders push whose ts digits are rewritten
// in place before every use, so that each message is a distinct order.
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

// benchPush returns a push of one order in the shape of the documented
// sample (compact, as OKX sends it).
func benchPush(o benchOrder) benchFrame {
	data := fmt.Appendf(nil, `{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[`+
		`{"bkLoss":"0","bkPx":"%s","ccy":"","posSide":"%s","side":"%s","sz":"%s","ts":"1700000000000"}],`+
		`"instFamily":"%s","instId":"%s","instType":"SWAP","uly":"%s"}]}`,
		strconv.FormatFloat(o.px, 'f', -1, 64), o.posSide, o.side, strconv.FormatFloat(o.sz, 'f', -1, 64),
		o.family, o.instID, o.family)
	return benchFrame{data: data, ts: bytes.Index(data, []byte(`"ts":"`)) + len(`"ts":"`)}
}

// benchStream is an OKX SWAP stream wired to a real collector with n
// instruments (every fourth one inverse) declared through the discovery
// path, its connection subscribed, and the default dedupe. It returns the
// frame handler the WebSocket runner calls for every frame, the venue, the
// collector, and benchFrames pushes over many instruments and both sides.
func benchStream(tb testing.TB, n int) (func(*wsconn.Session, []byte), *Venue, *collector.Collector, []benchOrder, []benchFrame) {
	tb.Helper()
	v := New(Config{InstTypes: []string{Swap}, Logger: slog.New(slog.DiscardHandler), DisableBackfill: true})
	coll := collector.New()
	v.sink = coll
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		coll.SetFeedComplete(Name, mk, false)
	}
	k := v.kinds[0]
	k.declare(coll)
	rows := make([]instrumentInfo, 0, n)
	for i := range n {
		if i%4 == 3 {
			rows = append(rows, instrumentInfo{InstType: Swap, InstID: fmt.Sprintf("C%d-USD-SWAP", i), InstFamily: fmt.Sprintf("C%d-USD", i),
				SettleCcy: fmt.Sprintf("C%d", i), CtVal: exchanges.Number{Value: 100, Set: true}, CtType: "inverse", State: "live"})
		} else {
			rows = append(rows, instrumentInfo{InstType: Swap, InstID: fmt.Sprintf("C%d-USDT-SWAP", i), InstFamily: fmt.Sprintf("C%d-USDT", i),
				SettleCcy: "USDT", CtVal: exchanges.Number{Value: 0.25, Set: true}, CtMult: exchanges.Number{Value: 1, Set: true}, CtType: "linear", State: "live"})
		}
	}
	list, skipped := k.instrumentsFrom(rows)
	if len(list) != n || skipped != 0 {
		tb.Fatalf("instruments %d skipped %d", len(list), skipped)
	}
	v.setList(k, list)
	k.sessionUp = true // subscribed: every frame also refreshes lastLive
	handler := k.streamConfig().OnMessage

	orders := make([]benchOrder, 0, benchFrames)
	frames := make([]benchFrame, 0, benchFrames)
	for i := range benchFrames {
		in := list[(i*7)%n]
		o := benchOrder{instID: in.id, family: in.family, coin: in.inst.Coin, market: in.inst.Market,
			sz: 1 + float64(i), px: 100 + float64(i)}
		switch i % 4 {
		case 0: // hedge mode, a long closed by a sell
			o.side, o.posSide, o.pos = "sell", "long", exchanges.Long
		case 1: // hedge mode, a short closed by a buy
			o.side, o.posSide, o.pos = "buy", "short", exchanges.Short
		case 2: // net mode, a sell closes a long
			o.side, o.posSide, o.pos = "sell", "net", exchanges.Long
		case 3: // net mode, a buy closes a short
			o.side, o.posSide, o.pos = "buy", "net", exchanges.Short
		}
		if o.market == exchanges.Inverse {
			o.notional = o.sz * 100
		} else {
			o.notional = o.sz * 0.25 * o.px
		}
		orders = append(orders, o)
		frames = append(frames, benchPush(o))
	}
	return handler, v, coll, orders, frames
}

// BenchmarkLiquidationOrders measures one liquidation-orders push through
// the stream's frame handler (decoder, instrument lookup, dedupe, notional)
// and the collector sink: the exporter's per-message hot path for OKX.
// Every message is a distinct order (its ts is one millisecond after the
// previous one's), so all of them pass the dedupe and are counted. A
// warm-up fills the dedupe set to DefaultDedupeMaxKeys first, so that the
// timed messages each also evict the oldest key: the steady state.
func BenchmarkLiquidationOrders(b *testing.B) {
	handler, v, _, _, frames := benchStream(b, benchInstruments)
	ts := v.epoch.UnixMilli()
	send := func(i int) {
		f := &frames[i&(benchFrames-1)]
		ts++
		f.stamp(ts)
		handler(nil, f.data)
	}
	const warm = DefaultDedupeMaxKeys + benchFrames
	for i := range warm {
		send(i)
	}
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		send(i)
	})
	b.StopTimer()
	if got := v.stats.counted.Load(); got != int64(warm+b.N) {
		b.Fatalf("counted %d of %d messages (duplicates %d, history %d)", got, warm+b.N, v.stats.duplicates.Load(), v.stats.history.Load())
	}
}

// baselinePush is what a straightforward implementation decodes into.
type baselinePush struct {
	Arg struct {
		Channel  string `json:"channel"`
		InstType string `json:"instType"`
	} `json:"arg"`
	Data []struct {
		InstID     string `json:"instId"`
		InstType   string `json:"instType"`
		InstFamily string `json:"instFamily"`
		Uly        string `json:"uly"`
		Details    []struct {
			BkLoss  string `json:"bkLoss"`
			BkPx    string `json:"bkPx"`
			Ccy     string `json:"ccy"`
			PosSide string `json:"posSide"`
			Side    string `json:"side"`
			Sz      string `json:"sz"`
			TS      string `json:"ts"`
		} `json:"details"`
	} `json:"data"`
}

// BenchmarkLiquidationOrdersBaseline is the straightforward implementation
// the hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per order. It does no dedupe, so it
// does less work than the hot path.
func BenchmarkLiquidationOrdersBaseline(b *testing.B) {
	_, v, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	type meta struct {
		market, coin string
		size         float64
	}
	insts := map[string]meta{}
	for id, in := range *v.instruments.Load() {
		insts[id] = meta{string(in.inst.Market), in.inst.Coin, in.size}
	}
	ts := v.epoch.UnixMilli()
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		f := &frames[i&(benchFrames-1)]
		ts++
		f.stamp(ts)
		var push baselinePush
		if err := json.Unmarshal(f.data, &push); err != nil {
			b.Fatal(err)
		}
		for _, item := range push.Data {
			in := insts[item.InstID]
			for _, d := range item.Details {
				sz, _ := strconv.ParseFloat(d.Sz, 64)
				px, _ := strconv.ParseFloat(d.BkPx, 64)
				side := "short"
				if d.PosSide == "long" || (d.PosSide != "short" && d.Side == "sell") {
					side = "long"
				}
				n := sz * in.size
				if in.market == "linear" {
					n *= px
				}
				counters.Add("okx", in.market, item.InstID, in.coin, side, n)
			}
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(d detail) { sink += d.Sz }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = decodeFrame(frames[i&(benchFrames-1)].data, emit)
	}
	_ = sink
}

// BenchmarkDecodeFrameGeneric is the decoder without its single-pass path
// for pushes, the measure of what decodePush saves.
func BenchmarkDecodeFrameGeneric(b *testing.B) {
	_, _, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(d detail) { sink += d.Sz }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = decodeGeneric(frames[i&(benchFrames-1)].data, emit)
	}
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady
// state, with the dedupe set full so that every message also evicts the
// oldest key, and that every distinct message is counted exactly once
// while replays are not.
func TestHotPathDoesNotAllocate(t *testing.T) {
	handler, v, coll, orders, frames := benchStream(t, benchInstruments)
	ts := v.epoch.UnixMilli()
	sent := 0
	send := func() {
		f := &frames[sent&(benchFrames-1)]
		ts++
		f.stamp(ts)
		handler(nil, f.data)
		sent++
	}
	// Warm up: fill the dedupe set to its cap; the first liquidation of a
	// series allocates its window.
	for range DefaultDedupeMaxKeys + benchFrames {
		send()
	}
	if n := v.dedupe.Len(); n != DefaultDedupeMaxKeys {
		t.Fatalf("dedupe holds %d keys after the warm-up, want %d", n, DefaultDedupeMaxKeys)
	}
	allocs := testing.AllocsPerRun(5000, send)
	if allocs != 0 {
		t.Errorf("%.2f allocations per liquidation-orders push, want 0", allocs)
	}
	if got := v.stats.counted.Load(); got != int64(sent) {
		t.Fatalf("counted %d of %d distinct messages (duplicates %d, history %d)", got, sent, v.stats.duplicates.Load(), v.stats.history.Load())
	}
	// A replay of the last frames (same ts) is recognised and not counted.
	for j := range benchFrames {
		handler(nil, frames[(sent-1-j)&(benchFrames-1)].data)
	}
	if got := v.stats.duplicates.Load(); got != benchFrames {
		t.Errorf("%d duplicates after replaying %d frames, want %d", got, benchFrames, benchFrames)
	}
	if got := v.stats.counted.Load(); got != int64(sent) || v.stats.history.Load() != 0 {
		t.Errorf("counted %d (history %d) after the replay, want %d (0)", got, v.stats.history.Load(), sent)
	}

	var want collectortest.Liquidations
	for j := range sent {
		o := orders[j%benchFrames]
		want.Add(o.notional, "exchange", Name, "market", string(o.market), "symbol", o.instID, "coin", o.coin, "side", o.pos.String())
	}
	want.Check(t, coll)
}

// FuzzDecodePush checks that the single-pass decoder of pushes either
// declines, emitting nothing, or gives exactly what decodeGeneric gives.
func FuzzDecodePush(f *testing.F) {
	for _, name := range []string{"liquidation_doc.json", "liquidation_multi.json", "liquidation_inverse.json",
		"subscribe_ack.json", "error_event.json", "pong.txt"} {
		f.Add(readTestdata(f, name))
	}
	_, _, _, _, frames := benchStream(f, 8)
	for _, fr := range frames[:8] {
		f.Add(fr.data)
	}
	f.Add([]byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"A","details":[{"side":"sell","sz":"1","bkPx":"1","ts":"1"}]}]}`))
	f.Add([]byte(` {"arg":{"channel":"liquidation-orders"},"data":[{"instId":"A","details":[]},{"instId":"B","instType":"SWAP","details":[{"side":"buy","posSide":null,"sz":2,"bkPx":3,"ts":4}]}]} `))
	f.Add([]byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"A","details":[{"side":"sell","sz":"1","bkPx":"1","ts":"1"}],"details":[]}]}`))
	f.Add([]byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"A","details":[{"side":"sell","sz":"1","bkPx":"1","ts":"1","x":{"y":[1]}}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow []detail
		fr, ok := decodePush(data, func(d detail) { fast = append(fast, d) })
		if !ok {
			if len(fast) != 0 {
				t.Fatalf("declined after emitting %d orders", len(fast))
			}
			return
		}
		want, err := decodeGeneric(data, func(d detail) { slow = append(slow, d) })
		if err != nil || want.bad != 0 {
			t.Fatalf("accepted a frame decodeGeneric rejects (bad %d, %v)", want.bad, err)
		}
		if fr.kind != want.kind || fr.events != want.events || fr.bad != 0 ||
			!bytes.Equal(fr.channel, want.channel) || !bytes.Equal(fr.instType, want.instType) ||
			fr.event != nil || fr.code != nil || fr.msg != nil || (fr.instType == nil) != (want.instType == nil) {
			t.Fatalf("frame %+v, decodeGeneric %+v", fr, want)
		}
		if len(fast) != len(slow) {
			t.Fatalf("%d orders, decodeGeneric %d", len(fast), len(slow))
		}
		for i := range fast {
			a, b := fast[i], slow[i]
			if !bytes.Equal(a.InstID, b.InstID) || a.Side != b.Side || a.side != b.side || a.posSide != b.posSide ||
				a.Sz != b.Sz || a.Px != b.Px || a.TS != b.TS {
				t.Fatalf("order %d: %+v, decodeGeneric %+v", i, a, b)
			}
		}
	})
}
