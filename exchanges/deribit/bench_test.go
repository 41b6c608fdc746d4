package deribit

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

// benchTrade is the one liquidation trade of a benchmark frame. Inverse
// amounts are whole multiples of the 10 USD contract, linear amounts
// multiples of 0.25 coin and prices whole numbers, so every notional and
// every sum of them is exact in float64 and the totals can be compared
// with ==.
type benchTrade struct {
	instrument, coin string
	market           exchanges.Market
	channel          string
	liq, dir         string // liquidation letters and the taker's direction
	sides            []exchanges.Side
	amount, price    float64
	notional         float64 // of each liquidated side
}

// benchFrame is a trades notification whose trade_id digits are rewritten
// in place before every use, so that each message is a new trade.
type benchFrame struct {
	data []byte
	id   int // offset of the 10 digits that end the trade_id
}

// stamp writes seq as the last 10 digits of the frame's trade_id.
func (f *benchFrame) stamp(seq uint64) {
	d := f.data[f.id : f.id+10]
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + seq%10)
		seq /= 10
	}
}

// benchNotification returns a trades notification of one liquidation trade
// in the shape of the documented sample and of the fake's frames
// (compact, fields in Deribit's order).
func benchNotification(tr benchTrade, seq int, ts int64, contractSize float64) benchFrame {
	prefix := "" // inverse trade ids are plain numbers
	if tr.market == exchanges.Linear {
		prefix = "USDC-"
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	data := fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"%s","data":[`+
		`{"trade_seq":%d,"trade_id":"%s0000000000","timestamp":%d,"tick_direction":%d,"price":%s,"mark_price":%s,`+
		`"index_price":%s,"instrument_name":"%s","direction":"%s","amount":%s,"contracts":%s,"liquidation":"%s"}]}}`,
		tr.channel, 35684502+seq, prefix, ts, seq%4, num(tr.price), num(tr.price+0.5), num(tr.price-0.25),
		tr.instrument, tr.dir, num(tr.amount), num(tr.amount/contractSize), tr.liq)
	return benchFrame{data: data, id: bytes.Index(data, []byte(`"trade_id":"`)) + len(`"trade_id":"`) + len(prefix)}
}

// benchStream is the trades stream wired to a real collector with n
// instruments (every fourth one linear, USDC settled; the others inverse)
// declared through the discovery path. It returns the stream's runner
// configuration (its OnMessage is the frame handler the WebSocket runner
// calls for every frame; no runner is started), the venue, the collector,
// and benchFrames notifications over many instruments, both sides and
// every liquidation letter.
func benchStream(tb testing.TB, n int) (wsconn.Config, *Venue, *collector.Collector, []benchTrade, []benchFrame) {
	tb.Helper()
	v := New(Config{Currencies: []string{"BTC", "USDC"}, Logger: slog.New(slog.DiscardHandler)})
	coll := collector.New()
	// What Run does before it discovers and opens the stream.
	v.sink = coll
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		coll.SetFeedComplete(Name, mk, true)
	}
	v.stream.obs = coll.Stream(Name, StreamName)
	var inverseRows, linearRows []instrumentInfo
	for i := range n {
		base := fmt.Sprintf("C%d", i)
		if i%4 == 3 {
			linearRows = append(linearRows, instrumentInfo{InstrumentName: base + "_USDC-PERPETUAL", Kind: "future", BaseCurrency: base,
				QuoteCurrency: "USDC", SettlementCurrency: "USDC", SettlementPeriod: "perpetual", InstrumentType: "linear",
				ContractSize: exchanges.Number{Value: 0.001, Set: true}})
		} else {
			inverseRows = append(inverseRows, instrumentInfo{InstrumentName: base + "-PERPETUAL", Kind: "future", BaseCurrency: base,
				QuoteCurrency: "USD", SettlementCurrency: base, SettlementPeriod: "perpetual", InstrumentType: "reversed",
				ContractSize: exchanges.Number{Value: 10, Set: true}})
		}
	}
	for i, rows := range [][]instrumentInfo{inverseRows, linearRows} {
		list, excluded, skipped := v.instrumentsFrom(rows)
		if len(list) != len(rows) || len(excluded) != 0 || skipped != 0 {
			tb.Fatalf("instruments %d excluded %d skipped %d of %d", len(list), len(excluded), skipped, len(rows))
		}
		v.setList(v.currencies[i], list, nil) // BTC lists the inverse ones, USDC the linear ones
	}
	cfg := v.stream.config()

	ts := v.epoch.UnixMilli() + 1000 // live trades, after the venue's start
	trades := make([]benchTrade, 0, benchFrames)
	frames := make([]benchFrame, 0, benchFrames)
	for i := range benchFrames {
		j := (i * 7) % n
		base := fmt.Sprintf("C%d", j)
		inst, _ := v.lookup([]byte(base + "-PERPETUAL"))
		tr := benchTrade{instrument: base + "-PERPETUAL", coin: base, market: exchanges.Inverse, channel: Channel("BTC"),
			amount: 10 * float64(i+1), price: 100 + float64(i)}
		if j%4 == 3 {
			inst, _ = v.lookup([]byte(base + "_USDC-PERPETUAL"))
			tr.instrument, tr.market, tr.channel, tr.amount = base+"_USDC-PERPETUAL", exchanges.Linear, Channel("USDC"), 0.25*float64(i+1)
		}
		if inst == nil {
			tb.Fatalf("%s not declared", tr.instrument)
		}
		// direction is the taker's: T = the taker was liquidated, M = the
		// maker (the other side), MT = both.
		switch i % 5 {
		case 0:
			tr.liq, tr.dir, tr.sides = "T", "sell", []exchanges.Side{exchanges.Long}
		case 1:
			tr.liq, tr.dir, tr.sides = "T", "buy", []exchanges.Side{exchanges.Short}
		case 2:
			tr.liq, tr.dir, tr.sides = "M", "buy", []exchanges.Side{exchanges.Long}
		case 3:
			tr.liq, tr.dir, tr.sides = "M", "sell", []exchanges.Side{exchanges.Short}
		case 4:
			tr.liq, tr.dir, tr.sides = "MT", "buy", []exchanges.Side{exchanges.Long, exchanges.Short}
		}
		tr.notional = tr.amount // inverse: amount is USD
		if tr.market == exchanges.Linear {
			tr.notional = tr.amount * tr.price // linear: base coin at a USDC price
		}
		trades = append(trades, tr)
		frames = append(frames, benchNotification(tr, i, ts+int64(i), inst.ContractSize))
	}
	return cfg, v, coll, trades, frames
}

// BenchmarkTradesLiquidation measures one trades notification carrying a
// liquidation trade through the stream's frame handler (decoder, seen set,
// instrument lookup, notional) and the collector sink: the exporter's
// per-message hot path for Deribit. Every message is a new trade_id, so
// all of them are counted; past seenCapacity messages the seen set is full
// and each message also evicts the oldest key, its steady state.
func BenchmarkTradesLiquidation(b *testing.B) {
	cfg, _, _, _, frames := benchStream(b, benchInstruments)
	handler := cfg.OnMessage
	var seq uint64
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		f := &frames[i&(benchFrames-1)]
		seq++
		f.stamp(seq)
		handler(nil, f.data)
	})
}

// baselineNotification is what a straightforward implementation decodes
// into.
type baselineNotification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  struct {
		Channel string `json:"channel"`
		Data    []struct {
			TradeSeq       int64   `json:"trade_seq"`
			TradeID        string  `json:"trade_id"`
			Timestamp      int64   `json:"timestamp"`
			TickDirection  int     `json:"tick_direction"`
			Price          float64 `json:"price"`
			MarkPrice      float64 `json:"mark_price"`
			IndexPrice     float64 `json:"index_price"`
			InstrumentName string  `json:"instrument_name"`
			Direction      string  `json:"direction"`
			Amount         float64 `json:"amount"`
			Contracts      float64 `json:"contracts"`
			Liquidation    string  `json:"liquidation"`
		} `json:"data"`
	} `json:"params"`
}

// BenchmarkTradesLiquidationBaseline is the straightforward implementation
// the hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per liquidated side. It keeps no set
// of seen trade ids, so it does less work than the hot path.
func BenchmarkTradesLiquidationBaseline(b *testing.B) {
	_, v, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	insts := map[string]*exchanges.Instrument{}
	for name, in := range *v.instruments.Load() {
		insts[name] = in
	}
	var seq uint64
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		f := &frames[i&(benchFrames-1)]
		seq++
		f.stamp(seq)
		var msg baselineNotification
		if err := json.Unmarshal(f.data, &msg); err != nil {
			b.Fatal(err)
		}
		if msg.Method != "subscription" {
			return
		}
		for _, tr := range msg.Params.Data {
			if tr.Liquidation == "" {
				continue
			}
			in := insts[tr.InstrumentName]
			n := tr.Amount
			if in.Market == exchanges.Linear {
				n *= tr.Price
			}
			taker, maker := "short", "long"
			if tr.Direction == "sell" {
				taker, maker = "long", "short"
			}
			var sides []string
			switch tr.Liquidation {
			case "T":
				sides = []string{taker}
			case "M":
				sides = []string{maker}
			case "MT":
				sides = []string{"long", "short"}
			}
			for _, side := range sides {
				counters.Add("deribit", string(in.Market), tr.InstrumentName, in.Coin, side, n)
			}
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) { benchDecoder(b, decodeFrame) }

// BenchmarkDecodeFrameGeneric is the decoder that skips every nested value
// before walking it, which decodeFrame falls back to.
func BenchmarkDecodeFrameGeneric(b *testing.B) { benchDecoder(b, decodeGeneric) }

func benchDecoder(b *testing.B, decode func([]byte, func(trade)) (frame, error)) {
	_, _, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(t trade) { sink += t.Amount }
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		_, _ = decode(frames[i&(benchFrames-1)].data, emit)
	})
	_ = sink
}

// TestHotPathDoesNotAllocate proves the zero-allocation claim in steady
// state, with the seen set full so that every message also evicts the
// oldest key, and that every new trade is counted exactly once per
// liquidated side while replays are not. (TestSeenSetEvicts checks the
// seen set alone.)
func TestHotPathDoesNotAllocate(t *testing.T) {
	cfg, v, coll, trades, frames := benchStream(t, benchInstruments)
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
	// Warm up: fill the seen set to its cap; the first liquidation of a
	// series allocates its window.
	for range seenCapacity + benchFrames {
		send()
	}
	if n := len(v.stream.seen.keys); n != seenCapacity {
		t.Fatalf("the seen set holds %d keys after the warm-up, want %d", n, seenCapacity)
	}
	const runs = 2 * seenCapacity // the ring turns twice
	allocs := testing.AllocsPerRun(runs, send)
	if allocs != 0 {
		t.Errorf("%.2f allocations per trades notification, want 0", allocs)
	}
	// A replay of the last frames (same trade ids) is not counted again.
	for j := range benchFrames {
		handler(nil, frames[(sent-1-j)&(benchFrames-1)].data)
	}

	// A trade that liquidated both sides (MT) counts on both series.
	var want collectortest.Liquidations
	for j := range sent {
		tr := trades[j%benchFrames]
		for _, side := range tr.sides {
			want.Add(tr.notional, "exchange", Name, "market", string(tr.market), "symbol", tr.instrument, "coin", tr.coin, "side", side.String())
		}
	}
	want.Check(t, coll)
}
