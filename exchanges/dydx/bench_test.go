package dydx

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

const (
	benchInstruments = 500
	benchFrames      = 64 // a power of two: frames[i&(benchFrames-1)]
)

// benchEvent is the one liquidation trade of a benchmark frame. Sizes are
// multiples of 1/4 and prices whole numbers, so every notional and every
// sum of them is exact in float64 and the totals can be compared with ==.
type benchEvent struct {
	market string
	coin   string
	side   exchanges.Side
	size   float64
	price  float64
	typed  bool // marked by "type":"LIQUIDATED" rather than "liquidation":true
}

// benchFrame returns a channel_data message of v4_trades with one
// liquidation trade, in the documented shape and key order of
// testdata/trades_doc.json (compact, with its own message_id and trade id).
// A typed event carries "liquidation":false and "type":"LIQUIDATED", as the
// last trade of testdata/trades_liquidations.json.
func benchFrame(ev benchEvent, msgID int64, at time.Time) []byte {
	side := "BUY"
	if ev.side == exchanges.Long {
		side = "SELL" // the taker's side: SELL = a long was liquidated
	}
	mark := `"liquidation":true`
	if ev.typed {
		mark = `"liquidation":false,"type":"LIQUIDATED"`
	}
	return fmt.Appendf(nil, `{"type":"channel_data","connection_id":"57844645-0b1d-4c3f-ad71-1c6154154a13","message_id":%d,"id":"%s","channel":"v4_trades","version":"1.1.0","contents":{"trades":[{"id":"8ee6d90d-272d-5edd-bf0f-%012d","size":"%s","price":"%s","side":"%s","createdAt":"%s",%s}]}}`,
		msgID, ev.market, msgID, strconv.FormatFloat(ev.size, 'f', -1, 64), strconv.FormatFloat(ev.price, 'f', -1, 64),
		side, at.UTC().Format("2006-01-02T15:04:05.000Z"), mark)
}

// benchStream is a venue wired to a real collector with n markets declared,
// as discovery leaves it in production. It returns the frame handler the
// WebSocket runner calls for every frame of one trade connection (shard),
// the collector, and benchFrames distinct frames over many markets and
// both sides.
func benchStream(tb testing.TB, n int) (func([]byte), *collector.Collector, []benchEvent, [][]byte) {
	tb.Helper()
	v := New(Config{Logger: slog.New(slog.DiscardHandler)})
	coll := collector.New()
	v.sink = coll
	list := make([]*exchanges.Instrument, 0, n)
	byTicker := make(map[string]*exchanges.Instrument, n)
	for i := range n {
		ticker := fmt.Sprintf("C%d-USD", i)
		inst := &exchanges.Instrument{Exchange: Name, Market: exchanges.Linear, Symbol: ticker, Coin: fmt.Sprintf("C%d", i),
			Quote: Quote, ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
		list = append(list, inst)
		byTicker[ticker] = inst
	}
	coll.SetInstruments(Name, exchanges.Linear, list)
	v.instruments.Store(&byTicker)
	// The frame handler of one shard (OnMessage), called as the runner calls
	// it but without a connection: the liquidation path never uses one. No
	// runner or writer is started.
	sh := v.newShard("trades_0", coll.Stream(Name, "trades_0"), map[string]bool{})
	onMessage := sh.streamConfig().OnMessage
	handler := func(frame []byte) { onMessage(nil, frame) }

	events := make([]benchEvent, 0, benchFrames)
	frames := make([][]byte, 0, benchFrames)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range benchFrames {
		j := (i * 7) % n
		ev := benchEvent{market: fmt.Sprintf("C%d-USD", j), coin: fmt.Sprintf("C%d", j), side: exchanges.Short,
			size: 0.25 + float64(i), price: 100 + float64(i), typed: i%4 == 3}
		if i%3 == 0 {
			ev.side = exchanges.Long
		}
		events = append(events, ev)
		frames = append(frames, benchFrame(ev, 5+int64(i), start.Add(time.Duration(i)*500*time.Millisecond)))
	}
	return handler, coll, events, frames
}

// BenchmarkTradesLiquidation measures one v4_trades channel_data message
// with a liquidation through the shard's frame handler (decoder, market
// lookup, notional) and the collector sink: the exporter's per-message hot
// path for dYdX.
func BenchmarkTradesLiquidation(b *testing.B) {
	handler, _, _, frames := benchStream(b, benchInstruments)
	venuetest.Bench(b, len(frames[0]), func(i int) {
		handler(frames[i&(benchFrames-1)])
	})
}

// baselineFrame is what a straightforward implementation decodes into.
type baselineFrame struct {
	Type         string `json:"type"`
	ConnectionID string `json:"connection_id"`
	MessageID    int64  `json:"message_id"`
	ID           string `json:"id"`
	Channel      string `json:"channel"`
	Version      string `json:"version"`
	Contents     struct {
		Trades []struct {
			ID          string `json:"id"`
			Size        string `json:"size"`
			Price       string `json:"price"`
			Side        string `json:"side"`
			CreatedAt   string `json:"createdAt"`
			Liquidation bool   `json:"liquidation"`
			Type        string `json:"type"`
		} `json:"trades"`
	} `json:"contents"`
}

// BenchmarkTradesLiquidationBaseline is the straightforward implementation
// the hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per liquidation.
func BenchmarkTradesLiquidationBaseline(b *testing.B) {
	_, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	coins := map[string]string{}
	for i := range benchInstruments {
		coins[fmt.Sprintf("C%d-USD", i)] = fmt.Sprintf("C%d", i)
	}
	venuetest.Bench(b, len(frames[0]), func(i int) {
		var fr baselineFrame
		if err := json.Unmarshal(frames[i&(benchFrames-1)], &fr); err != nil {
			b.Fatal(err)
		}
		if fr.Type != "channel_data" || fr.Channel != "v4_trades" {
			return
		}
		coin := coins[fr.ID]
		for _, tr := range fr.Contents.Trades {
			if !tr.Liquidation && tr.Type != "LIQUIDATED" {
				continue
			}
			size, _ := strconv.ParseFloat(tr.Size, 64)
			price, _ := strconv.ParseFloat(tr.Price, 64)
			side := "short"
			if tr.Side == "SELL" {
				side = "long"
			}
			counters.Add("dydx", "linear", fr.ID, coin, side, size*price)
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(ev liquidation) { sink += ev.Size }
	venuetest.Bench(b, len(frames[0]), func(i int) {
		_, _ = decodeFrame(frames[i&(benchFrames-1)], emit)
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
		t.Errorf("%.2f allocations per v4_trades liquidation message, want 0", allocs)
	}
	// AllocsPerRun calls the function once more than runs (a warm-up).
	if i != runs+1 {
		t.Fatalf("handler ran %d times, want %d", i, runs+1)
	}
	sent := len(frames) + i
	var want collectortest.Liquidations
	for j := range sent {
		ev := events[j%benchFrames]
		want.Add(ev.size*ev.price, "exchange", Name, "market", "linear", "symbol", ev.market, "coin", ev.coin, "side", ev.side.String())
	}
	want.Check(t, coll)
}
