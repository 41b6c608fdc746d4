package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const (
	benchInstruments = 500
	benchFrames      = 64 // a power of two: frames[i&(benchFrames-1)]
	// benchStepMs is the time between two messages. Every contract appears
	// once in benchFrames messages, so each one's orders are 1024 ms apart:
	// never two in one second (the dedupe names an order by its second), as
	// Gate pushes at most one order per contract per second.
	benchStepMs = 16
)

// benchOrder is the one liquidation order of a benchmark frame. Sizes are
// whole contracts, prices multiples of 1/2 and quanto multipliers 1/4, 1/2,
// 1 or 10, so every notional and every sum of them is exact in float64 and
// the totals can be compared with ==.
type benchOrder struct {
	contract, coin string
	side           exchanges.Side
	size           float64 // signed: negative = sell order = long liquidated
	price          float64
	notional       float64
}

// benchFrame is a futures.public_liquidates update whose times are
// rewritten in place before every use, so that each message is a distinct
// order.
type benchFrame struct {
	data []byte
	sec  int    // offset of the 10 digits of time (s)
	ms   [2]int // offsets of the 13 digits of time_ms: the push's, the order's
}

// stamp writes ms, a 13-digit Unix time in milliseconds, as the push's and
// the order's time_ms, and its second as the push's time.
func (f *benchFrame) stamp(ms int64) {
	putDigits(f.data[f.sec:f.sec+10], ms/1000)
	for _, off := range f.ms {
		putDigits(f.data[off:off+13], ms)
	}
}

// putDigits writes n in decimal into d, right-aligned and zero-padded.
func putDigits(d []byte, n int64) {
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
}

// benchFeed hands out the benchmark frames in turn, each stamped
// benchStepMs after the previous message.
type benchFeed struct {
	frames []benchFrame
	ms     int64 // time of the last message
	sent   int   // messages handed out
}

// next returns the next message.
func (fd *benchFeed) next() []byte {
	f := &fd.frames[fd.sent&(benchFrames-1)]
	fd.ms += benchStepMs
	f.stamp(fd.ms)
	fd.sent++
	return f.data
}

// benchPush returns an update of one order in the documented shape
// (compact, as Gate sends it and as exchangetest.GateLiquidationFrame
// builds it: price, size and time_ms JSON numbers).
func benchPush(o benchOrder) benchFrame {
	const ms = 1_700_000_000_000
	data := fmt.Appendf(nil, `{"channel":"%s","event":"update","time":%d,"time_ms":%d,"result":[`+
		`{"price":%s,"size":%s,"time_ms":%d,"contract":"%s"}]}`,
		Channel, ms/1000, ms, strconv.FormatFloat(o.price, 'f', -1, 64), strconv.FormatFloat(o.size, 'f', -1, 64), ms, o.contract)
	f := benchFrame{data: data, sec: bytes.Index(data, []byte(`"time":`)) + len(`"time":`)}
	f.ms[0] = bytes.Index(data, []byte(`"time_ms":`)) + len(`"time_ms":`)
	f.ms[1] = f.ms[0] + bytes.Index(data[f.ms[0]:], []byte(`"time_ms":`)) + len(`"time_ms":`)
	return f
}

// benchStream is the USDT settle's stream wired to a real collector with n
// contracts declared through the discovery path, its connection
// subscribed, and the default dedupe. It returns the frame handler the
// WebSocket runner calls for every frame (given no connection: updates do
// not use it), the venue, the collector, and benchFrames updates over many
// contracts and both sides.
func benchStream(tb testing.TB, n int) (func([]byte), *Venue, *collector.Collector, []benchOrder, []benchFrame) {
	tb.Helper()
	fake := exchangetest.NewGate()
	defer fake.Close()
	v := New(Config{Settles: []string{SettleUSDT}, USDTWS: fake.WSURL(exchangetest.GateUSDT),
		Logger: slog.New(slog.DiscardHandler), DisableBackfill: true})
	coll := collector.New()
	v.sink = coll
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		coll.SetFeedComplete(Name, mk, false)
	}
	s := v.settles[0]
	s.declare(coll)
	mults := []float64{0.25, 0.5, 1, 10}
	rows := make([]contractRow, 0, n)
	for i := range n {
		rows = append(rows, contractRow{Name: fmt.Sprintf("C%d_USDT", i), Type: "direct", Status: "trading",
			QuantoMultiplier: exchanges.Number{Value: mults[i%len(mults)], Set: true}})
	}
	list, skipped := s.contractsFrom(rows)
	if len(list) != n || skipped != 0 {
		tb.Fatalf("contracts %d skipped %d", len(list), skipped)
	}
	v.setList(s, list)
	benchSubscribe(tb, s, coll, fake)
	onMessage := s.streamConfig().OnMessage
	handler := func(data []byte) { onMessage(nil, data) }

	orders := make([]benchOrder, 0, benchFrames)
	frames := make([]benchFrame, 0, benchFrames)
	for i := range benchFrames {
		c := list[(i*7)%n]
		o := benchOrder{contract: c.name, coin: c.inst.Coin, side: exchanges.Short, size: 1 + float64(i), price: 100.5 + float64(i)}
		if i%3 == 0 {
			o.side, o.size = exchanges.Long, -o.size
		}
		o.notional = math.Abs(o.size) * c.size * o.price
		orders = append(orders, o)
		frames = append(frames, benchPush(o))
	}
	return handler, v, coll, orders, frames
}

// benchSubscribe runs the settle's stream against a fake Gate until Gate
// acknowledges the subscription, then stops it. The settle is left as a
// subscribed connection leaves it: every frame also refreshes lastLive.
func benchSubscribe(tb testing.TB, s *settle, coll *collector.Collector, fake *exchangetest.Gate) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		wsconn.Run(ctx, s.streamConfig())
	}()
	up := func() bool {
		samples, err := collectortest.FromCollector(coll)
		if err != nil {
			tb.Fatal(err)
		}
		got, _ := samples.Get("crypto_exporter_stream_up", "exchange", Name, "stream", s.streamName())
		return got == 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for !up() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if s.lastLive.IsZero() || fake.TotalConnections() != 1 {
		tb.Fatalf("the subscription was not acknowledged on the one connection (%d connections)", fake.TotalConnections())
	}
}

// BenchmarkPublicLiquidates measures one futures.public_liquidates update
// through the stream's frame handler (decoder, contract lookup, dedupe,
// notional) and the collector sink: the exporter's per-message hot path
// for Gate. Every message is a distinct order (benchStepMs after the
// previous one), so all of them pass the dedupe and are counted. The
// untimed warm-up fills the dedupe set to its cap, so that every timed
// message also evicts the oldest key: the steady state.
func BenchmarkPublicLiquidates(b *testing.B) {
	handler, v, _, _, frames := benchStream(b, benchInstruments)
	feed := benchFeed{frames: frames, ms: v.epoch.UnixMilli()}
	for range DefaultDedupeMaxKeys + benchFrames {
		handler(feed.next())
	}
	if n := v.dedupe.Len(); n != DefaultDedupeMaxKeys {
		b.Fatalf("dedupe holds %d keys after the warm-up, want %d", n, DefaultDedupeMaxKeys)
	}
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		handler(feed.next())
	})
	b.StopTimer()
	if got := v.stats.counted.Load(); got != int64(feed.sent) {
		b.Fatalf("counted %d of %d messages (duplicates %d, history %d)", got, feed.sent, v.stats.duplicates.Load(), v.stats.history.Load())
	}
}

// baselinePush is what a straightforward implementation decodes into.
type baselinePush struct {
	Channel string `json:"channel"`
	Event   string `json:"event"`
	Time    int64  `json:"time"`
	TimeMs  int64  `json:"time_ms"`
	Result  []struct {
		Price    float64 `json:"price"`
		Size     float64 `json:"size"`
		TimeMs   int64   `json:"time_ms"`
		Contract string  `json:"contract"`
	} `json:"result"`
}

// BenchmarkPublicLiquidatesBaseline is the straightforward implementation
// the hot path is compared with: encoding/json into a struct, then
// CounterVec.WithLabelValues(...).Add per order. It does no dedupe, so it
// does less work than the hot path.
func BenchmarkPublicLiquidatesBaseline(b *testing.B) {
	_, v, _, _, frames := benchStream(b, benchInstruments)
	counters := collectortest.NewBaseline()
	type meta struct {
		coin string
		size float64
	}
	contracts := map[string]meta{}
	for name, c := range *v.contracts.Load() {
		contracts[name] = meta{c.inst.Coin, c.size}
	}
	feed := benchFeed{frames: frames, ms: v.epoch.UnixMilli()}
	venuetest.Bench(b, len(frames[0].data), func(i int) {
		var push baselinePush
		if err := json.Unmarshal(feed.next(), &push); err != nil {
			b.Fatal(err)
		}
		for _, o := range push.Result {
			c := contracts[o.Contract]
			side := "short"
			if o.Size < 0 {
				side = "long"
			}
			counters.Add("gate", "linear", o.Contract, c.coin, side, math.Abs(o.Size)*c.size*o.Price)
		}
	})
}

// BenchmarkDecodeFrame isolates the decoder.
func BenchmarkDecodeFrame(b *testing.B) {
	_, _, _, _, frames := benchStream(b, benchInstruments)
	var sink float64
	emit := func(l liq) { sink += l.Size }
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
	handler, v, coll, orders, frames := benchStream(t, benchInstruments)
	feed := benchFeed{frames: frames, ms: v.epoch.UnixMilli()}
	send := func() { handler(feed.next()) }
	// Warm up: fill the dedupe set to its cap; the first liquidation of a
	// series allocates its window.
	for range DefaultDedupeMaxKeys + benchFrames {
		send()
	}
	if n := v.dedupe.Len(); n != DefaultDedupeMaxKeys {
		t.Fatalf("dedupe holds %d keys after the warm-up, want %d", n, DefaultDedupeMaxKeys)
	}
	start := time.Now()
	allocs := testing.AllocsPerRun(5000, send)
	if allocs != 0 {
		t.Errorf("%.2f allocations per futures.public_liquidates update, want 0", allocs)
	}
	if v.settles[0].lastLive.Before(start) {
		t.Error("frames of the subscribed connection did not refresh lastLive")
	}
	sent := feed.sent
	if got := v.stats.counted.Load(); got != int64(sent) {
		t.Fatalf("counted %d of %d distinct messages (duplicates %d, history %d)", got, sent, v.stats.duplicates.Load(), v.stats.history.Load())
	}
	// A replay of the last frames (same times) is recognised and not counted.
	for j := range benchFrames {
		handler(frames[(sent-1-j)&(benchFrames-1)].data)
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
		want.Add(o.notional, "exchange", Name, "market", "linear", "symbol", o.contract, "coin", o.coin, "side", o.side.String())
	}
	want.Check(t, coll)
}
