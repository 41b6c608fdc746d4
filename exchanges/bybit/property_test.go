package bybit

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest/faultsuite"
)

// TestNoLossNoDoubleCount runs seeded random fault schedules against the
// fake and asserts, for every series, that the exported totals equal the
// good events the fake delivered. Bybit has no backfill and no replay, so
// what counts is exactly what the fake wrote to a subscribed connection:
// every frame must reach exactly one connection (each symbol's topic is
// held once) and be counted once. Garbage, bad events next to good ones,
// disconnects of one or both categories, close frames, rejected
// subscriptions, frames played while the connections are coming back,
// server pings and REST faults lose nothing and double-count nothing.
// A failure prints its seed; replay it with -property.seed=N.
func TestNoLossNoDoubleCount(t *testing.T) {
	faultsuite.Property(t, "./exchanges/bybit/", func(t *testing.T, s *faultsuite.Schedule) {
		p := &propRun{t: t, Schedule: s, want: map[propKey]propWant{}}
		p.run()
	})
}

type propKey struct{ market, symbol, coin, side string }

type propWant struct{ count, notional float64 }

// propEvent is one good event of a frame and the series it counts on.
type propEvent struct {
	k        propKey
	notional float64
}

// propRun is one fault schedule.
type propRun struct {
	t *testing.T
	*faultsuite.Schedule
	h     *harness
	syms  []exchangetest.BybitSymbol // trading symbols
	want  map[propKey]propWant       // what the delivered frames hold
	total float64                    // events delivered
	bad   float64                    // decode errors the exporter must count
}

// await waits until cond holds, for at most 10 s.
func (p *propRun) await(cond func(s collectortest.Samples) bool) {
	p.h.Await(p.t, 10*time.Second, cond)
}

// frame returns a push of k good events of a random symbol, with the bad
// events given after them, and the good events.
func (p *propRun) frame(k int, bad ...string) ([]byte, []propEvent) {
	sym := p.syms[p.Rand.IntN(len(p.syms))]
	coin, _ := NormalizeCoin(sym.BaseCoin)
	var liqs []exchangetest.BybitLiquidation
	var evs []propEvent
	for range k {
		side, label := "Buy", "long" // S is the position's side
		if p.Rand.IntN(2) == 0 {
			side, label = "Sell", "short"
		}
		px := sym.MarkPrice * (0.9 + 0.2*p.Rand.Float64())
		var size, n float64
		if sym.Category == exchangetest.BybitInverse {
			size = float64(1 + p.Rand.IntN(20000)) // USD contracts
			n = size
		} else {
			size = math.Round((0.001+p.Rand.Float64()*5)*1000) / 1000
			n = size * px
		}
		liqs = append(liqs, exchangetest.BybitLiquidation{Side: side, Size: size, Price: px})
		evs = append(evs, propEvent{propKey{sym.Category, sym.Symbol, coin, label}, n})
	}
	f := exchangetest.BybitLiquidationFrame(sym.Symbol, 0, liqs...)
	for _, b := range bad {
		i := bytes.LastIndex(f, []byte("]}"))
		f = append(f[:i:i], append([]byte(","+strings.ReplaceAll(b, "SYM", sym.Symbol)), f[i:]...)...)
	}
	return f, evs
}

// count adds the events of a frame delivered to conns connections.
func (p *propRun) count(evs []propEvent, conns int) {
	for _, e := range evs {
		w := p.want[e.k]
		w.count += float64(conns)
		w.notional += float64(conns) * e.notional
		p.want[e.k] = w
		p.total += float64(conns)
	}
}

// play plays one frame of good events, checks it reached exactly one
// connection, and returns the number of connections it reached.
func (p *propRun) play(ev exchangetest.Event, evs []propEvent) int {
	d := p.h.fake.Play([]exchangetest.Event{ev})
	if len(d) != 1 || d[0].Conns != 1 {
		p.t.Errorf("seed %d: frame not delivered to exactly one connection: %+v", p.Seed, d)
	}
	conns := 0
	for _, x := range d {
		p.count(evs, x.Conns)
		conns += x.Conns
	}
	return conns
}

func (p *propRun) connects() map[string]float64 {
	s := p.h.Samples(p.t)
	out := map[string]float64{}
	for _, st := range allStreams {
		out[st] = val(s, "crypto_exporter_stream_connects_total", stream(st)...)
	}
	return out
}

// afterFault waits until the streams given have reconnected, every stream
// is subscribed and the fake holds no connection but theirs, so that the
// next frame is not written to a connection that is going away.
func (p *propRun) afterFault(before map[string]float64, streams []string) {
	p.h.Eventually(p.t, "reconnect after a fault", func(s collectortest.Samples) bool {
		for _, st := range allStreams {
			if (slices.Contains(streams, st) && val(s, "crypto_exporter_stream_connects_total", stream(st)...) <= before[st]) ||
				val(s, "crypto_exporter_stream_up", stream(st)...) != 1 {
				return false
			}
		}
		return p.h.fake.Connections("") == len(allStreams)
	})
	p.h.waitTopics(p.t, append(slices.Clone(linearTrading), inverseTrading...)...)
}

func (p *propRun) run() {
	t := p.t
	rng := p.Rand
	p.h = newHarness(t)
	h := p.h
	for _, s := range fakeSymbols() {
		if s.Status == "Trading" {
			p.syms = append(p.syms, s)
		}
	}
	h.run(t, nil)
	h.waitTopics(t, append(slices.Clone(linearTrading), inverseTrading...)...)
	h.waitAllUp(t, allStreams...)

	badEvents := []string{
		`{"T":1,"s":"SYM","S":"sell","v":"1","p":"1"}`,    // side
		`{"T":1,"s":"SYM","S":"Buy","v":"NaN","p":"1"}`,   // size
		`{"T":1,"s":"SYM","S":"Sell","v":"-5","p":"1"}`,   // negative size
		`{"T":1,"s":"SYM","S":"Buy","v":"2","p":"0"}`,     // price
		`{"T":1,"S":"Buy","v":"2","p":"1"}`,               // no symbol
		`{"T":1,"s":"NOTSYM","S":"Sell","v":"2","p":"1"}`, // another symbol
	}
	garbage := [][]byte{
		[]byte(`not json`),
		[]byte(`{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT"`),
		[]byte(`{"type":"snapshot","ts":1,"data":[]}`),
		{0xff, 0xfe, 0x00},
	}
	inverseStreams := []string{"inverse_liquidations_0"}
	linearStreams := []string{"linear_liquidations_0", "linear_liquidations_1", "linear_liquidations_2"}

	steps := 25 + rng.IntN(15)
	for range steps {
		switch r := rng.IntN(100); {
		case r < 55: // good events
			k := 1 + rng.IntN(3)
			f, evs := p.frame(k)
			p.Step("good(%d)", k)
			p.play(exchangetest.Event{Frame: f}, evs)
		case r < 62: // good events with a bad one among them
			f, evs := p.frame(1+rng.IntN(2), badEvents[rng.IntN(len(badEvents))])
			p.Step("bad-event")
			p.bad += float64(p.play(exchangetest.Event{Frame: f}, evs))
		case r < 68: // garbage, to every subscribed connection
			p.Step("garbage")
			d := h.fake.Play([]exchangetest.Event{{Frame: garbage[rng.IntN(len(garbage))]}})
			for _, x := range d {
				p.bad += float64(x.Conns)
			}
		case r < 74: // abrupt disconnect of both categories
			before := p.connects()
			p.Step("disconnect")
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			p.afterFault(before, allStreams)
		case r < 77: // abrupt disconnect of one category
			before := p.connects()
			p.Step("disconnect-category")
			time.Sleep(100 * time.Millisecond)
			if rng.IntN(2) == 0 {
				h.fake.Disconnect(exchangetest.BybitInverse)
				p.afterFault(before, inverseStreams)
			} else {
				h.fake.Disconnect(exchangetest.BybitLinear)
				p.afterFault(before, linearStreams)
			}
		case r < 81: // close frame with a random code
			before := p.connects()
			code := []int{1000, 1001, 1011, 4000}[rng.IntN(4)]
			p.Step("close(%d)", code)
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, CloseCode: code}})
			p.afterFault(before, allStreams)
		case r < 84: // a disconnect whose first resubscribe is rejected
			before := p.connects()
			p.Step("rejected-resubscribe")
			h.fake.RejectNextSubscribe(1)
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			p.afterFault(before, allStreams)
			p.bad++
		case r < 90: // frames played while the connections come back: each
			// waits for its topic's new subscription and counts once
			before := p.connects()
			n := 1 + rng.IntN(4)
			p.Step("during-reconnect(%d)", n)
			h.fake.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			for range n {
				f, evs := p.frame(1 + rng.IntN(2))
				p.play(exchangetest.Event{Frame: f}, evs)
			}
			p.afterFault(before, allStreams)
		case r < 95: // server ping
			p.Step("ping")
			h.fake.Play([]exchangetest.Event{{Ping: []byte("p")}})
		default: // a REST fault: the stream must not care
			path := []string{"/v5/market/tickers?category=linear", "/v5/market/tickers?category=inverse"}[rng.IntN(2)]
			p.Step("rest-fault")
			h.fake.FailNext(path, 1, []int{429, 500, 503}[rng.IntN(3)], rng.IntN(2), "")
		}
		if t.Failed() {
			return
		}
	}

	// No t.Fatal on a timeout: the comparison below tells what is missing.
	p.await(func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= p.total && sumStreams(s, "crypto_exporter_stream_decode_errors_total") >= p.bad
	})
	time.Sleep(100 * time.Millisecond) // anything counted twice would show by now
	s := h.Samples(t)
	for _, sym := range p.syms {
		coin, _ := NormalizeCoin(sym.BaseCoin)
		for _, side := range []string{"long", "short"} {
			k := propKey{sym.Category, sym.Symbol, coin, side}
			w := p.want[k]
			l := append(inst(k.market, k.symbol, k.coin), "side", side)
			c, n := val(s, "crypto_liquidations_total", l...), val(s, "crypto_liquidation_notional_usd_total", l...)
			if c != w.count || !collectortest.Close(n, w.notional) {
				t.Errorf("seed %d: %s %s: count %v notional %v, delivered %v %v", p.Seed, sym.Symbol, side, c, n, w.count, w.notional)
			}
		}
	}
	if got := s.Sum("crypto_liquidations_total"); got != p.total {
		t.Errorf("seed %d: liquidations total %v, delivered %v", p.Seed, got, p.total)
	}
	if got := sumStreams(s, "crypto_exporter_stream_decode_errors_total"); got != p.bad {
		t.Errorf("seed %d: decode errors %v, want %v", p.Seed, got, p.bad)
	}
	t.Logf("seed %d: %d steps, %v events delivered, %v decode errors", p.Seed, steps, p.total, p.bad)
}
