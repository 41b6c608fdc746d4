package gate

import (
	"bytes"
	"fmt"
	"strings"
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
// count exactly once, whether it arrives live, from the liq_orders backfill
// of the gap, or from both. Garbage, bad orders next to good ones,
// disconnects, close frames, rejected subscriptions, server pings, REST
// faults of the polls and rate-limit answers to the backfill lose nothing
// and double-count nothing. Every schedule holds at least one gap, so that
// the backfill is exercised. A failure prints its seed; replay it with
// -property.seed=N.
func TestNoLossNoDoubleCount(t *testing.T) {
	faultsuite.Property(t, "./exchanges/gate/", func(t *testing.T, s *faultsuite.Schedule) {
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
	live    []exchangetest.GateContract
	n       int     // orders made; each gets the size n, so no two share a key
	good    int     // well-formed orders handed to the fake
	bad     float64 // decode errors the exporter must count
}

// await waits until cond holds, for at most 10 s.
func (p *propRun) await(cond func(s collectortest.Samples) bool) {
	p.h.Await(p.t, 10*time.Second, cond)
}

// frame returns a push of k good orders of a random contract, with the bad
// result elements given after them (the fake routes a push by its first
// element's contract).
func (p *propRun) frame(k int, bad ...string) []byte {
	c := p.live[p.Rand.IntN(len(p.live))]
	var ls []exchangetest.GateLiquidation
	for range k {
		p.n++
		p.good++
		size := float64(p.n)
		if p.Rand.IntN(2) == 0 {
			size = -size // a sell order: a long liquidated
		}
		ls = append(ls, exchangetest.GateLiquidation{Contract: c.Name, Size: size, Price: c.MarkPrice * (0.9 + 0.2*p.Rand.Float64())})
	}
	f := exchangetest.GateLiquidationFrame(ls...)
	for _, b := range bad {
		i := bytes.LastIndex(f, []byte("]}"))
		f = append(f[:i:i], append([]byte(","+strings.ReplaceAll(b, "CONTRACT", c.Name)), f[i:]...)...)
	}
	return f
}

func (p *propRun) run() {
	t := p.t
	rng := p.Rand
	p.h = newHarness(t)
	h := p.h
	p.streams = &faultsuite.Streams{Samples: h.Samples, Exchange: "gate", Names: allStreams, Fake: h.fake}
	for _, c := range h.fake.Contracts() {
		if !c.InDelisting {
			p.live = append(p.live, c)
		}
	}
	h.run(t, func(c *Config) {
		c.BackfillRequestInterval = 5 * time.Millisecond
		c.BackfillRetryInterval = 50 * time.Millisecond
	})
	h.waitUp(t, allStreams...)
	h.waitPolls(t, "usdt_liq_orders", "btc_liq_orders")
	epoch := h.v.epoch.UnixMilli()
	// Orders in the exporter's start second are ambiguous in the REST
	// history (whole seconds); the schedule starts after it.
	time.Sleep(time.Until(h.v.epoch.Truncate(time.Second).Add(1100 * time.Millisecond)))

	now := time.Now().UnixMilli()
	badOrders := []string{
		fmt.Sprintf(`{"price":1.5,"size":"NaN","time_ms":%d,"contract":"CONTRACT"}`, now),
		fmt.Sprintf(`{"price":1.5,"size":0,"time_ms":%d,"contract":"CONTRACT"}`, now),
		fmt.Sprintf(`{"price":0,"size":-3,"time_ms":%d,"contract":"CONTRACT"}`, now),
		fmt.Sprintf(`{"price":2.5,"size":4,"time_ms":%d}`, now),
		`{"price":2.5,"size":5,"time_ms":0,"contract":"CONTRACT"}`,
	}
	garbage := [][]byte{
		[]byte(`not json`),
		[]byte(`{"channel":"futures.public_liquidates","event":"update","time":1,"time_ms":1,"result":[{"price":1,"size":`),
		[]byte(`{"channel":"futures.public_liquidates","event":"update","time":1,"time_ms":1,"result":{}}`),
		{0xff, 0xfe, 0x00},
	}
	paths := []string{usdtTickers, usdtContracts, "/api/v4/futures/btc/tickers", "/api/v4/futures/btc/contracts"}

	steps := 20 + rng.IntN(10)
	forced := rng.IntN(steps) // this step is a gap
	for i := range steps {
		r := rng.IntN(100)
		if i == forced {
			r = 80
		}
		switch {
		case r < 50: // good orders
			k := 1 + rng.IntN(3)
			p.Step("good(%d)", k)
			d := h.fake.Play([]exchangetest.Event{{Frame: p.frame(k)}})
			if len(d) != 1 || d[0].Conns != 1 {
				t.Errorf("seed %d: frame not delivered: %+v", p.Seed, d)
			}
		case r < 58: // good orders with a bad one among them
			p.Step("bad-order")
			d := h.fake.Play([]exchangetest.Event{{Frame: p.frame(1+rng.IntN(2), badOrders[rng.IntN(len(badOrders))])}})
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
		case r < 66: // another channel's update: not an error
			p.Step("other-channel")
			h.fake.Play([]exchangetest.Event{{Frame: []byte(`{"time":1,"time_ms":1,"channel":"futures.tickers","event":"update","result":[]}`)}})
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
		case r < 79: // a disconnect whose first resubscribe is rejected
			before := p.streams.Connects(t)
			p.Step("rejected-resubscribe")
			h.fake.RejectNextSubscribe(1)
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			p.streams.AfterFault(t, before)
			p.bad++
		case r < 88: // a gap: orders while connections are refused
			if i == forced { // after a live order, which the backfill re-serves
				p.Step("good(1)")
				if d := h.fake.Play([]exchangetest.Event{{Frame: p.frame(1)}}); len(d) != 1 || d[0].Conns != 1 {
					t.Errorf("seed %d: frame not delivered: %+v", p.Seed, d)
				}
			}
			var frames [][]byte
			for range 1 + rng.IntN(6) {
				frames = append(frames, p.frame(1+rng.IntN(2)))
			}
			if rng.IntN(3) == 0 { // the backfill fails first: rate limited (Retry-After 1 s) or a server error, retried
				settle := []string{usdtLiqOrders, btcLiqOrders}[rng.IntN(2)]
				if rng.IntN(2) == 0 {
					p.Step("backfill-429")
					h.fake.FailNext(settle, 1, 429, 1, "")
				} else {
					p.Step("backfill-503")
					h.fake.FailNext(settle, 1+rng.IntN(2), 503, 0, "")
				}
			}
			p.Step("gap(%d)", len(frames))
			p.Gap(t, p.streams, frames, false)
		case r < 92: // orders racing a reconnect
			var frames [][]byte
			for range 1 + rng.IntN(6) {
				frames = append(frames, p.frame(1+rng.IntN(2)))
			}
			p.Step("racy-gap(%d)", len(frames))
			p.Gap(t, p.streams, frames, true)
		case r < 96: // server ping
			p.Step("ping")
			h.fake.Play([]exchangetest.Event{{Ping: []byte("p")}})
		default: // a REST fault of a poll: the stream must not care
			p.Step("rest-fault")
			h.fake.FailNext(paths[rng.IntN(len(paths))], 1, []int{429, 500, 503}[rng.IntN(3)], rng.IntN(2), "")
		}
		if t.Failed() {
			return
		}
	}

	history := h.fake.History("")
	if len(history) != p.good {
		t.Errorf("seed %d: the fake holds %d orders, %d good ones were made", p.Seed, len(history), p.good)
	}
	truth, distinct := groundTruth(newTape(p.live).contracts, history, epoch)
	if distinct != p.good {
		t.Errorf("seed %d: %d distinct orders in the history, want %d", p.Seed, distinct, p.good)
	}
	// No t.Fatal on a timeout: the comparison below tells what is missing.
	p.await(func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct) &&
			s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "gate") >= p.bad
	})
	// Let the last backfills finish: anything counted twice shows by then.
	requests := func() int { return h.fake.Requests(usdtLiqOrders) + h.fake.Requests(btcLiqOrders) }
	for n, quiet := requests(), 0; quiet < 6; {
		time.Sleep(50 * time.Millisecond)
		if m := requests(); m != n {
			n, quiet = m, 0
		} else {
			quiet++
		}
	}
	s := h.Samples(t)
	for _, c := range p.live {
		for _, side := range []string{"long", "short"} {
			k := seriesKey{marketOf(c), c.Name, coinOf(c.Name), side}
			w := truth[k]
			l := append(instLabels(k.market, k.symbol, k.coin), "side", side)
			got, n := val(s, "crypto_liquidations_total", l...), val(s, "crypto_liquidation_notional_usd_total", l...)
			if got != w.count || !collectortest.Close(n, w.notional) {
				t.Errorf("seed %d: %s %s: count %v notional %v, recorded %v %v", p.Seed, c.Name, side, got, n, w.count, w.notional)
			}
		}
	}
	if got := s.Sum("crypto_liquidations_total"); got != float64(distinct) {
		t.Errorf("seed %d: liquidations total %v, want %d", p.Seed, got, distinct)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", "gate"); got != float64(distinct) {
		t.Errorf("seed %d: histogram count %v, want %d", p.Seed, got, distinct)
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "gate"); got != p.bad {
		t.Errorf("seed %d: decode errors %v, want %v", p.Seed, got, p.bad)
	}
	// The backfill ran: the forced gap holds orders no connection took, and
	// the backfill re-serves orders pushed live shortly before a gap.
	if h.v.stats.backfilled.Load() == 0 {
		t.Errorf("seed %d: nothing recovered by the backfill", p.Seed)
	}
	if h.v.stats.duplicates.Load() == 0 {
		t.Errorf("seed %d: no duplicate skipped", p.Seed)
	}
	t.Logf("seed %d: %d steps, %d orders, %d backfilled, %d duplicates skipped, %v decode errors",
		p.Seed, steps, distinct, h.v.stats.backfilled.Load(), h.v.stats.duplicates.Load(), p.bad)
}
