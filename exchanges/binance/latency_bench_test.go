package binance

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

// latencyRate is the send rate of BenchmarkFrameToCounterLatency, e.g.
//
//	go test -run XXX -bench FrameToCounterLatency ./exchanges/binance/ -latency.rate 5000
var latencyRate = flag.Int("latency.rate", 20000, "liquidation frames per second sent by BenchmarkFrameToCounterLatency")

// latencyGC keeps Go's default garbage collection during the measured part
// of BenchmarkFrameToCounterLatency instead of pausing it (see there).
var latencyGC = flag.Bool("latency.gc", false, "BenchmarkFrameToCounterLatency: keep the garbage collector running while sending")

// BenchmarkFrameToCounterLatency measures the time from the moment the fake
// Binance market is about to write a liquidation frame to the WebSocket
// until the real collector has counted it (collector.Collector.Liquidation
// returned, so the next scrape shows it), with the real venue in between:
// WebSocket read, decode, instrument lookup, collector update.
//
// One op is one frame; frames are paced to -latency.rate per second (frame
// i is due at start + i/rate; the pacer sleeps until the next frame is due,
// so with a timer granularity of about 1 ms frames leave in small bursts of
// rate/1000). ns/op is therefore the send interval, and the latency
// percentiles are the reported metrics. The number of frames follows
// -benchtime (1 s = about rate frames); -benchtime 60000x sends exactly
// 60,000. Every run checks that each frame was counted exactly once.
//
// The fake, the venue and the pacer share this process's CPUs, and the
// timestamps are taken before the write to the socket, so the figures are an
// upper bound of the frame read -> counter visible latency.
//
// They share the heap too: the fake allocates a few KiB per frame (it
// decodes each frame to route it), about 100 MB/s at 20,000 frames/s, which
// alone would trigger dozens of collections per second, while the exporter's
// own path does not allocate (TestHotPathDoesNotAllocate; the load tool
// reports the exporter's GC cycles under load, 0 in 20 s at 20,000/s). So
// while sending, collection is paused unless the heap nears 1 GiB;
// -latency.gc keeps Go's default instead. GCs reports the collections that
// ran while sending.
func BenchmarkFrameToCounterLatency(b *testing.B) {
	if *latencyRate <= 0 {
		b.Fatalf("-latency.rate %d: must be positive", *latencyRate)
	}
	r := newLatencyRig(b, 500, *latencyRate)
	if !*latencyGC {
		runtime.GC()
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 30))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	sent := 0
	start := time.Now()
	for b.Loop() {
		r.send(sent)
		sent++
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms)
	lat := r.finish(b, sent)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(ms.NumGC-gc0), "GCs")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-µs")
}

// TestFrameToCounterLatencyRig checks the benchmark's matching of sends to
// counted liquidations on a short run (counts and order only, no timing).
func TestFrameToCounterLatencyRig(t *testing.T) {
	r := newLatencyRig(t, 50, 5000)
	const n = 300
	for i := range n {
		r.send(i)
	}
	lat := r.finish(t, n)
	if len(lat) != n {
		t.Fatalf("%d latencies, want %d", len(lat), n)
	}
}

// timedSink is the real collector, recording when each Liquidation call
// returned, that is when the counter became visible to a scrape.
type timedSink struct {
	*collector.Collector
	base time.Time

	mu       sync.Mutex
	counted  []time.Duration // since base, in call order
	rejected int
}

func (s *timedSink) Liquidation(l exchanges.Liquidation) bool {
	ok := s.Collector.Liquidation(l)
	at := time.Since(s.base)
	s.mu.Lock()
	s.counted = append(s.counted, at)
	if !ok {
		s.rejected++
	}
	s.mu.Unlock()
	return ok
}

func (s *timedSink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.counted)
}

// latencyRig is the real USDⓈ-M venue running against the fake market, with
// a timestamp taken right before the fake writes each frame.
type latencyRig struct {
	fake     *exchangetest.BinanceMarket
	h        *venuetest.Harness // runs the venue with sink, which wraps h.Coll
	sink     *timedSink
	frames   [][]byte
	notional []float64 // USD notional of frames[i]
	interval time.Duration
	event    []exchangetest.Event

	t0           time.Time       // when frame 0 was due
	sends        []time.Duration // since sink.base, one per frame written
	missed       int             // frames Play did not write to exactly one connection
	wantNotional float64
}

func newLatencyRig(tb testing.TB, nsym, rate int) *latencyRig {
	tb.Helper()
	fake := exchangetest.NewBinanceMarket(exchangetest.BinanceUSDM)
	fake.SetWeightLimit(1 << 30)
	fake.SetKeepHistory(false)
	syms := make([]exchangetest.BinanceSymbol, 0, nsym)
	for i := range nsym {
		syms = append(syms, exchangetest.BinanceSymbol{Symbol: fmt.Sprintf("L%dUSDT", i), Pair: fmt.Sprintf("L%dUSDT", i),
			BaseAsset: fmt.Sprintf("L%d", i), QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING",
			MarkPrice: 100, IndexPrice: 100, LastFundingRate: 0.0001, NextFundingTime: 1_800_000_000_000, OpenInterest: 1000, Volume: 1, QuoteVolume: 100})
	}
	fake.SetSymbols(syms)
	tb.Cleanup(fake.Close)
	h := venuetest.New(tb)

	r := &latencyRig{
		fake:     fake,
		h:        h,
		sink:     &timedSink{Collector: h.Coll, base: time.Now()},
		interval: time.Second / time.Duration(rate),
		event:    make([]exchangetest.Event, 1),
	}
	for i := range 1024 {
		qty, px := 0.5+float64(i%7), 100+float64(i%13)
		r.frames = append(r.frames, exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: fmt.Sprintf("L%dUSDT", (i*31)%nsym),
			Side: []string{"SELL", "BUY"}[i%2], Qty: qty, Price: px, AvgPrice: px, FilledQty: qty, LastFilledQty: qty}))
		r.notional = append(r.notional, qty*px)
	}
	// Runs in the goroutine that calls Play (send), so sends needs no lock.
	fake.SetBeforeWrite(func([]byte) { r.sends = append(r.sends, time.Since(r.sink.base)) })

	v := New(Config{
		USDMREST: fake.RESTURL(), USDMWS: fake.WSURL(),
		Markets:        []string{usdm},
		LongShortCoins: []string{},
		Client:         exchanges.NewClient(5*time.Second, "latency-bench"),
		Logger:         slog.New(slog.DiscardHandler),
	})
	h.StartWith(r.sink, v.Run)
	// The venue subscribes once discovery has declared every instrument.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := fake.WaitSubscribed(wctx, 1); err != nil {
		tb.Fatalf("venue did not subscribe: %v", err)
	}
	return r
}

// send waits until frame i is due, then plays it.
func (r *latencyRig) send(i int) {
	if i == 0 {
		r.t0 = time.Now()
	}
	if d := time.Until(r.t0.Add(time.Duration(i) * r.interval)); d > 0 {
		time.Sleep(d)
	}
	k := i & 1023
	r.event[0] = exchangetest.Event{Frame: r.frames[k]}
	d := r.fake.Play(r.event)
	if len(d) != 1 || d[0].Conns != 1 {
		r.missed++
	}
	r.wantNotional += r.notional[k]
}

// finish waits until all n frames are counted, checks that every one was
// counted exactly once, and returns the sorted latencies.
func (r *latencyRig) finish(tb testing.TB, n int) []time.Duration {
	tb.Helper()
	if r.missed > 0 || len(r.sends) != n {
		tb.Fatalf("%d frames played, %d written to the venue's connection, %d not written to exactly one connection", n, len(r.sends), r.missed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.sink.calls() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a surplus call would show up here
	r.sink.mu.Lock()
	counted, rejected := slices.Clone(r.sink.counted), r.sink.rejected
	r.sink.mu.Unlock()
	if len(counted) != n || rejected != 0 {
		tb.Fatalf("%d frames sent, %d liquidations reached the sink, %d rejected", n, len(counted), rejected)
	}
	s := r.h.Samples(tb)
	if got := s.Sum("crypto_liquidations_total"); got != float64(n) {
		tb.Fatalf("crypto_liquidations_total %v, want %d", got, n)
	}
	if got := s.Sum("crypto_liquidation_notional_usd_total"); !collectortest.Close(got, r.wantNotional) {
		tb.Fatalf("crypto_liquidation_notional_usd_total %v, want %v", got, r.wantNotional)
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total"); got != 0 {
		tb.Fatalf("crypto_exporter_stream_decode_errors_total %v, want 0", got)
	}
	// One connection carries the frames in order: the i-th send is the
	// i-th liquidation counted.
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = counted[i] - r.sends[i]
		if lat[i] < 0 {
			tb.Fatalf("liquidation %d counted %v before its frame was sent: sends and counts do not match", i, -lat[i])
		}
	}
	slices.Sort(lat)
	return lat
}
