package okx

import (
	"math"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest/faultsuite"
)

// TestNoLossNoDoubleCount runs seeded random fault schedules against the
// fake and asserts, for every series, that the exported totals equal the
// good orders the fake recorded: every well-formed order it pushed, and
// every one that happened while no connection was subscribed (a gap), must
// count exactly once, whether it arrives live, in the replay of recent
// orders after a resubscribe, from the REST backfill of the gap, or from
// several of these. Garbage, bad orders next to good ones, disconnects,
// close frames, error events, rejected subscriptions, server pings and REST
// faults of the polls lose nothing and double-count nothing. Every schedule
// holds at least one gap with more orders of one instType than the replay
// carries, so that both the replay and the backfill are exercised.
// A failure prints its seed; replay it with -property.seed=N.
func TestNoLossNoDoubleCount(t *testing.T) {
	faultsuite.Property(t, "./exchanges/okx/", func(t *testing.T, s *faultsuite.Schedule) {
		p := &propRun{t: t, Schedule: s}
		p.run()
	})
}

// propRun is one fault schedule.
type propRun struct {
	t *testing.T
	*faultsuite.Schedule
	h       *harness
	streams *faultsuite.Streams
	live    []exchangetest.OKXInstrument
	n       int     // orders made; each gets the size n, so no two share a key
	good    int     // well-formed orders handed to the fake
	bad     float64 // decode errors the exporter must count
}

// await waits until cond holds, for at most 10 s.
func (p *propRun) await(cond func(s collectortest.Samples) bool) {
	p.h.Await(p.t, 10*time.Second, cond)
}

// frame returns a push of k well-formed details of a random instrument (of
// instType when it is not empty), each with a distinct size, and the bad
// details given among them.
func (p *propRun) frame(instType string, k int, bad ...exchangetest.OKXDetail) []byte {
	var in exchangetest.OKXInstrument
	for {
		in = p.live[p.Rand.IntN(len(p.live))]
		if instType == "" || in.InstType == instType {
			break
		}
	}
	var ds []exchangetest.OKXDetail
	for range k {
		p.n++
		p.good++
		side, posSide := "sell", "long"
		if p.Rand.IntN(2) == 0 {
			side, posSide = "buy", "short"
		}
		if p.Rand.IntN(3) == 0 {
			posSide = "net"
		}
		ds = append(ds, exchangetest.OKXDetail{Side: side, PosSide: posSide, Sz: float64(p.n), BkPx: in.MarkPx * (0.9 + 0.2*p.Rand.Float64())})
	}
	for _, b := range bad {
		i := p.Rand.IntN(len(ds) + 1)
		ds = append(ds[:i], append([]exchangetest.OKXDetail{b}, ds[i:]...)...)
	}
	return exchangetest.OKXLiquidationFrame(in.InstType, in.InstID, "", ds...)
}

func (p *propRun) run() {
	t := p.t
	rng := p.Rand
	p.h = newHarness(t)
	h := p.h
	p.streams = &faultsuite.Streams{Samples: h.Samples, Exchange: "okx", Names: allStreams, Fake: h.fake}
	for _, in := range fakeInstruments() {
		if in.State == "live" {
			p.live = append(p.live, in)
		}
	}
	// A short replay, so that a gap of a few orders already needs the
	// backfill; the window covers the whole schedule.
	replay := 2 + rng.IntN(3)
	h.fake.SetReplay(replay, time.Minute)
	h.run(t, func(c *Config) {
		c.BackfillRequestInterval = 5 * time.Millisecond
		c.BackfillRetryInterval = 50 * time.Millisecond
	})
	h.waitUp(t, allStreams...)
	h.waitPolls(t, "swap_liquidation_backfill", "futures_liquidation_backfill")
	epoch := h.v.epoch.UnixMilli()

	badDetails := []exchangetest.OKXDetail{
		{Side: "sell", PosSide: "long", Sz: math.NaN(), BkPx: 1}, // sz ""
		{Side: "hold", PosSide: "long", Sz: 1, BkPx: 1},          // side
		{Side: "buy", PosSide: "short", Sz: -5, BkPx: 1},         // negative size
		{Side: "buy", PosSide: "net", Sz: 3, BkPx: 0},            // zero price
		{Side: "sell", PosSide: "net", Sz: 4, BkPx: 1, TS: -1},   // ts
	}
	garbage := [][]byte{
		[]byte(`not json`),
		[]byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"BTC-USDT-SWAP","details":[`),
		{0xff, 0xfe, 0x00},
	}
	paths := []string{"/api/v5/public/open-interest", "/api/v5/public/mark-price", "/api/v5/market/tickers", "/api/v5/public/funding-rate"}

	steps := 20 + rng.IntN(10)
	forced := rng.IntN(steps) // this step is a gap the replay cannot cover
	for i := range steps {
		r := rng.IntN(100)
		if i == forced {
			r = -1
		}
		switch {
		case r < 0: // a gap of more SWAP orders than the replay holds
			var frames [][]byte
			for range replay + 1 + rng.IntN(4) {
				frames = append(frames, p.frame(Swap, 1))
			}
			p.Step("big-gap(%d)", len(frames))
			p.Gap(t, p.streams, frames, false)
		case r < 50: // good orders
			k := 1 + rng.IntN(3)
			p.Step("good(%d)", k)
			d := h.fake.Play([]exchangetest.Event{{Frame: p.frame("", k)}})
			if len(d) != 1 || d[0].Conns != 1 {
				t.Errorf("seed %d: frame not delivered: %+v", p.Seed, d)
			}
		case r < 58: // good orders with a bad one among them
			b := badDetails[rng.IntN(len(badDetails))]
			p.Step("bad-detail")
			d := h.fake.Play([]exchangetest.Event{{Frame: p.frame("", 1+rng.IntN(2), b)}})
			if len(d) != 1 || d[0].Conns != 1 {
				t.Errorf("seed %d: frame not delivered: %+v", p.Seed, d)
			} else {
				p.bad += float64(d[0].Conns)
			}
		case r < 64: // garbage, to every subscribed connection
			p.Step("garbage")
			d := h.fake.Play([]exchangetest.Event{{Frame: garbage[rng.IntN(len(garbage))]}})
			for _, x := range d {
				p.bad += float64(x.Conns)
			}
		case r < 66: // a notice: not an error
			p.Step("notice")
			h.fake.Play([]exchangetest.Event{{Frame: []byte(`{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade.","connId":"a4d3ae55"}`)}})
		case r < 72: // abrupt disconnect
			before := p.streams.Connects(t)
			p.Step("disconnect")
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			p.streams.AfterFault(t, before)
		case r < 76: // close frame with a random code
			before := p.streams.Connects(t)
			code := []int{1000, 1001, 1011, 4000}[rng.IntN(4)]
			p.Step("close(%d)", code)
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, CloseCode: code}})
			p.streams.AfterFault(t, before)
		case r < 79: // an error event: counted, and every connection reconnects
			before := p.streams.Connects(t)
			p.Step("error-event")
			d := h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Frame: []byte(`{"event":"error","code":"60012","msg":"Invalid request","connId":"x"}`)}})
			for _, x := range d {
				p.bad += float64(x.Conns)
			}
			p.streams.AfterFault(t, before)
		case r < 82: // a disconnect whose first resubscribe is rejected
			before := p.streams.Connects(t)
			p.Step("rejected-resubscribe")
			h.fake.RejectNextSubscribe(1)
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			p.streams.AfterFault(t, before)
			p.bad++
		case r < 88: // a gap: orders while connections are refused
			var frames [][]byte
			for range 1 + rng.IntN(6) {
				frames = append(frames, p.frame("", 1+rng.IntN(2)))
			}
			if rng.IntN(3) == 0 { // the backfill meets server errors first: retried
				p.Step("backfill-503")
				h.fake.FailNext("/api/v5/public/liquidation-orders", 1+rng.IntN(2), 503, 0, "")
			}
			p.Step("gap(%d)", len(frames))
			p.Gap(t, p.streams, frames, false)
		case r < 92: // orders racing a reconnect
			var frames [][]byte
			for range 1 + rng.IntN(6) {
				frames = append(frames, p.frame("", 1+rng.IntN(2)))
			}
			p.Step("racy-gap(%d)", len(frames))
			p.Gap(t, p.streams, frames, true)
		case r < 96: // server ping
			p.Step("ping")
			h.fake.Play([]exchangetest.Event{{Ping: []byte("p")}})
		default: // a REST fault of a poll: the stream must not care
			path := paths[rng.IntN(len(paths))]
			p.Step("rest-fault")
			h.fake.FailNext(path, 1, []int{429, 500, 503}[rng.IntN(3)], rng.IntN(2), "")
		}
		if t.Failed() {
			return
		}
	}

	history := h.fake.History("")
	if len(history) != p.good {
		t.Errorf("seed %d: the fake holds %d orders, %d good ones were made", p.Seed, len(history), p.good)
	}
	truth, distinct := groundTruth(t, newTape(p.live).insts, history, epoch)
	if distinct != p.good {
		t.Errorf("seed %d: %d distinct orders in the history, want %d", p.Seed, distinct, p.good)
	}
	// No t.Fatal on a timeout: the comparison below tells what is missing.
	p.await(func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct) &&
			s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "okx") >= p.bad
	})
	// Let the last backfills finish: anything counted twice shows by then.
	path := "/api/v5/public/liquidation-orders"
	for n, quiet := h.fake.Requests(path), 0; quiet < 6; {
		time.Sleep(50 * time.Millisecond)
		if m := h.fake.Requests(path); m != n {
			n, quiet = m, 0
		} else {
			quiet++
		}
	}
	s := h.Samples(t)
	for _, in := range p.live {
		for _, side := range []string{"long", "short"} {
			k := seriesKey{in.CtType, in.InstID, coinOf(in.InstID), side}
			w := truth[k]
			l := append(instLabels(k.market, k.symbol, k.coin), "side", side)
			c, n := val(s, "crypto_liquidations_total", l...), val(s, "crypto_liquidation_notional_usd_total", l...)
			if c != w.count || !collectortest.Close(n, w.notional) {
				t.Errorf("seed %d: %s %s: count %v notional %v, recorded %v %v", p.Seed, in.InstID, side, c, n, w.count, w.notional)
			}
		}
	}
	if got := s.Sum("crypto_liquidations_total"); got != float64(distinct) {
		t.Errorf("seed %d: liquidations total %v, want %d", p.Seed, got, distinct)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", "okx"); got != float64(distinct) {
		t.Errorf("seed %d: histogram count %v, want %d", p.Seed, got, distinct)
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "okx"); got != p.bad {
		t.Errorf("seed %d: decode errors %v, want %v", p.Seed, got, p.bad)
	}
	// Both recovery paths ran: the big gap holds more orders than the
	// replay, and the backfill re-serves what the replay brought.
	if h.fake.Replayed() == 0 {
		t.Errorf("seed %d: nothing replayed", p.Seed)
	}
	if h.v.stats.backfilled.Load() == 0 {
		t.Errorf("seed %d: nothing recovered by the backfill", p.Seed)
	}
	if h.v.stats.duplicates.Load() == 0 {
		t.Errorf("seed %d: no duplicate skipped", p.Seed)
	}
	t.Logf("seed %d: %d steps, %d orders, %d replayed, %d backfilled, %d duplicates skipped, %v decode errors",
		p.Seed, steps, distinct, h.fake.Replayed(), h.v.stats.backfilled.Load(), h.v.stats.duplicates.Load(), p.bad)
}
