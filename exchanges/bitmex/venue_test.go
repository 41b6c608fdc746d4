package bitmex

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const pollInterval = 500 * time.Millisecond

type harness struct {
	*venuetest.Harness
	fake *exchangetest.BitMEX
	v    *Venue
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewBitMEX()
	t.Cleanup(fake.Close)
	fake.SetInstruments(exchangetest.BitMEXSampleInstruments())
	h := &harness{Harness: venuetest.New(t), fake: fake}
	h.Timeout = 15 * time.Second
	return h
}

func (h *harness) run(t *testing.T, mod func(*Config)) {
	t.Helper()
	cfg := Config{
		REST: h.fake.RESTURL(), WS: h.fake.WSURL(),
		PollInterval:   pollInterval,
		RefreshSpacing: 100 * time.Millisecond,
		Client:         exchanges.NewClient(2*time.Second, "test"),
		Logger:         slog.New(slog.DiscardHandler),
		Stream:         venuetest.FastStream,
	}
	if mod != nil {
		mod(&cfg)
	}
	h.v = New(cfg)
	h.Start(h.v.Run)
}

func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := newHarness(t)
	h.run(t, mod)
	return h
}

// val reads a series, NaN when missing.
var val = venuetest.Val

func instLabels(market, symbol, coin string) []string {
	return []string{"exchange", Name, "market", market, "symbol", symbol, "coin", coin}
}

var (
	streamLabels   = []string{"exchange", Name, "stream", StreamLiquidation}
	endpointLabels = []string{"exchange", Name, "endpoint", EndpointInstrumentActive}
)

func (h *harness) waitUp(t *testing.T) collectortest.Samples {
	t.Helper()
	return h.WaitStreamsUp(t, Name, StreamLiquidation)
}

func (h *harness) waitPoll(t *testing.T) collectortest.Samples {
	t.Helper()
	return h.WaitPolled(t, Name, EndpointInstrumentActive)
}

// sample describes the fake's sample instruments as the test expects them:
// the market label, the coin, and the USD notional of qty contracts at
// price, computed here from the documented contract terms rather than by
// the venue's code.
type sample struct {
	market, coin string
	usd          func(qty, price float64) float64
}

func samples() (map[string]sample, string) {
	var future string
	for _, in := range exchangetest.BitMEXSampleInstruments() {
		if in.Typ == exchangetest.BitMEXFuture {
			future = in.Symbol
		}
	}
	const btcMark = 60000.5 // XBTUSD's mark in the sample set
	return map[string]sample{
		"XBTUSD":  {"inverse", "BTC", func(q, _ float64) float64 { return q }},
		"XBTUSDT": {"linear", "BTC", func(q, p float64) float64 { return q / 1e6 * p }},
		"ETHUSDT": {"linear", "ETH", func(q, p float64) float64 { return q / 1e4 * p }},
		"ETHUSD":  {"inverse", "ETH", func(q, p float64) float64 { return q * 100 * p / 1e8 * btcMark }},
		future:    {"inverse", "BTC", func(q, _ float64) float64 { return q }},
	}, future
}

func TestVenueDiscovery(t *testing.T) {
	h := newHarness(t)
	h.fake.SetLatency(exchangetest.BitMEXInstrumentActivePath, 300*time.Millisecond)
	h.run(t, nil)
	time.Sleep(100 * time.Millisecond)
	s := h.Samples(t)
	if got, ok := s.Get("crypto_exporter_stream_up", streamLabels...); !ok || got != 0 {
		t.Errorf("stream_up before the first poll = %v, %v; want 0", got, ok)
	}
	if got, ok := s.Get("crypto_exporter_poll_success", endpointLabels...); !ok || got != 0 {
		t.Errorf("poll_success before the first poll = %v, %v; want 0", got, ok)
	}
	for _, m := range []string{"linear", "inverse"} {
		if got := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", Name, "market", m); got != 1 {
			t.Errorf("feed_complete %s = %v, want 1", m, got)
		}
	}
	h.waitUp(t)
	s = h.waitPoll(t)
	want, future := samples()
	if got := len(s.Names("crypto_market_info")); got != len(want) {
		t.Errorf("%d instruments, want %d: %v", got, len(want), s.Names("crypto_market_info"))
	}
	for sym, w := range want {
		ctype := "perpetual"
		if sym == future {
			ctype = "future"
		}
		quote := "USD"
		if w.market == "linear" {
			quote = "USDT"
		}
		if got := val(s, "crypto_market_info", append(instLabels(w.market, sym, w.coin), "quote", quote, "contract_type", ctype)...); got != 1 {
			t.Errorf("market_info of %s = %v", sym, got)
		}
		for _, side := range []string{"long", "short"} {
			if got := val(s, "crypto_liquidations_total", append(instLabels(w.market, sym, w.coin), "side", side)...); got != 0 {
				t.Errorf("%s %s counter = %v, want 0 from start-up", sym, side, got)
			}
		}
	}
}

// seriesKey identifies one liquidation series.
type seriesKey struct{ market, symbol, coin, side string }

type truth struct {
	count, notional float64
}

// tape builds liquidation frames and keeps the ground truth of what must
// be counted.
type tape struct {
	insts map[string]sample
	want  map[seriesKey]truth
	n     int
	seq   int
}

func newTape() *tape {
	insts, _ := samples()
	return &tape{insts: insts, want: map[seriesKey]truth{}}
}

func (tp *tape) order(symbol, side string, price, qty float64) exchangetest.BitMEXOrder {
	tp.seq++
	return exchangetest.BitMEXOrder{OrderID: fmt.Sprintf("00000000-0000-0000-0000-%012d", tp.seq), Symbol: symbol, Side: side, Price: price, LeavesQty: qty}
}

// live records orders that a live insert must count.
func (tp *tape) live(orders ...exchangetest.BitMEXOrder) []exchangetest.BitMEXOrder {
	for _, o := range orders {
		in := tp.insts[o.Symbol]
		side := "long" // Sell closes a long
		if o.Side == "Buy" {
			side = "short"
		}
		k := seriesKey{in.market, o.Symbol, in.coin, side}
		w := tp.want[k]
		w.count++
		w.notional += in.usd(o.LeavesQty, o.Price)
		tp.want[k] = w
		tp.n++
	}
	return orders
}

func frames(fs ...[]byte) []exchangetest.Event {
	return exchangetest.FrameEvents(0, fs...)
}

func TestVenueTapeWithDisconnect(t *testing.T) {
	h := newHarness(t)
	tp := newTape()
	_, future := samples()
	// Orders resting before the start: sent in the partial, never counted.
	r1, r2 := tp.order("XBTUSD", "Sell", 60000, 50000), tp.order("XBTUSDT", "Buy", 60100, 3e6)
	h.fake.SetBook(r1, r2)
	h.run(t, nil)
	h.waitUp(t)
	h.waitPoll(t)

	i1 := tp.live(tp.order("XBTUSD", "Sell", 59990.5, 1000))
	i23 := tp.live(tp.order("XBTUSDT", "Buy", 60010, 2_500_000), tp.order("ETHUSD", "Sell", 3000, 10))
	i4 := tp.live(tp.order(future, "Buy", 61000, 300))
	bad := tp.order("ETHUSDT", "Sell", 3000, 1)
	delivered := h.fake.Play(frames(
		exchangetest.BitMEXLiquidationFrame("insert", i1...),
		exchangetest.BitMEXLiquidationFrame("insert", i23...),
		exchangetest.BitMEXLiquidationFrame("update", exchangetest.BitMEXOrder{OrderID: i1[0].OrderID, Symbol: "XBTUSD", LeavesQty: 400}),
		exchangetest.BitMEXLiquidationFrame("insert", r1), // already resting: not new
		exchangetest.BitMEXLiquidationFrame("insert", i4...),
		exchangetest.BitMEXLiquidationFrame("delete", i23[0]),
		[]byte(`{"table":"liquidation","action":"insert","data":[{"orderID":"`+bad.OrderID+`","symbol":"ETHUSDT","side":"Sell","price":3000,"leavesQty":"NaN"}]}`),
		[]byte(`not json`),
		[]byte(`{"table":"trade","action":"insert","data":[]}`),
	))
	for _, d := range delivered {
		if d.Conns != 1 {
			t.Fatalf("frame %s reached %d connections", d.Frame, d.Conns)
		}
	}
	h.Eventually(t, "part one counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(tp.n) &&
			val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...) >= 3
	})

	// The gap: orders inserted while disconnected are lost (BitMEX serves
	// no liquidation history); after the reconnect the partial lists the
	// ones still resting, which must not count.
	h.fake.SetRefuseConnections(true)
	h.fake.Disconnect()
	h.Eventually(t, "stream down", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_up", streamLabels...) == 0
	})
	if d := h.fake.Push(exchangetest.BitMEXLiquidationFrame("insert", tp.order("ETHUSDT", "Buy", 3001, 50000))); d.Conns != 0 {
		t.Fatalf("gap frame delivered to %d connections", d.Conns)
	}
	h.fake.SetRefuseConnections(false)
	h.waitUp(t)
	if got := len(h.fake.Book()); got != 6 {
		t.Errorf("fake book holds %d orders, want 6 (2 resting, 3 live left, 1 from the gap)", got)
	}

	i56 := tp.live(tp.order("ETHUSDT", "Sell", 3000.5, 20000), tp.order("XBTUSD", "Buy", 60500, 7))
	h.fake.Play(frames(
		exchangetest.BitMEXLiquidationFrame("insert", i56[0]),
		exchangetest.BitMEXLiquidationFrame("insert", i1...), // resting since part one, in the new partial
		exchangetest.BitMEXLiquidationFrame("insert", i56[1]),
	))
	h.Eventually(t, "everything counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(tp.n)
	})
	time.Sleep(200 * time.Millisecond) // let any late double count show
	s := h.Samples(t)
	for _, k := range s.Names("crypto_liquidations_total") {
		labels := k[len("crypto_liquidations_total"):]
		var w truth
		for kk, ww := range tp.want {
			if labels == collectortest.Key("", append(instLabels(kk.market, kk.symbol, kk.coin), "side", kk.side)...) {
				w = ww
			}
		}
		if got := s[k]; got != w.count {
			t.Errorf("%s = %v, want %v", k, got, w.count)
		}
		nk := "crypto_liquidation_notional_usd_total" + labels
		if got := s[nk]; !collectortest.Close(got, w.notional) {
			t.Errorf("%s = %v, want %v", nk, got, w.notional)
		}
	}
	if got := s.Sum("crypto_liquidations_total"); got != float64(tp.n) {
		t.Errorf("liquidations total %v, want %v", got, tp.n)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", Name); got != float64(tp.n) {
		t.Errorf("histogram count %v, want %v", got, tp.n)
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...); got != 3 {
		t.Errorf("decode errors %v, want 3 (NaN qty, garbage, another table)", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", streamLabels...); got != 2 {
		t.Errorf("connects %v, want 2", got)
	}
	if got := h.fake.Subscriptions(); got != 2 {
		t.Errorf("%d subscriptions, want 2", got)
	}
	if got := h.v.counted.Load(); got != int64(tp.n) {
		t.Errorf("venue counted %d, want %d", got, tp.n)
	}
}

func TestVenueGauges(t *testing.T) {
	h := start(t, nil)
	want, _ := samples()
	s := h.Eventually(t, "gauges of every instrument", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_usd")) == len(want) && len(s.Names("crypto_funding_interval_seconds")) == len(want)-1
	})
	const btcMark = 60000.5
	for _, in := range h.fake.Instruments() {
		w, ok := want[in.Symbol]
		if !ok {
			continue // an index or a spot pair
		}
		l := instLabels(w.market, in.Symbol, w.coin)
		usd := w.usd(in.OpenInterest, in.MarkPrice)
		checks := map[string]float64{
			"crypto_open_interest_usd":   usd,
			"crypto_open_interest_coins": usd / in.MarkPrice,
			"crypto_mark_price_usd":      in.MarkPrice,
			"crypto_volume_24h_usd":      in.ForeignNotional24h,
		}
		if in.Typ == exchangetest.BitMEXPerpetual {
			checks["crypto_funding_rate_ratio"] = in.FundingRate
			checks["crypto_funding_interval_seconds"] = in.FundingInterval.Seconds()
			checks["crypto_funding_next_timestamp_seconds"] = float64(in.FundingTimestamp.UnixMilli()) / 1000
		} else if _, ok := s.Get("crypto_funding_rate_ratio", l...); ok {
			t.Errorf("%s: a future with a funding rate", in.Symbol)
		}
		for name, wv := range checks {
			if got := val(s, name, l...); !collectortest.Close(got, wv) {
				t.Errorf("%s %s = %v, want %v", in.Symbol, name, got, wv)
			}
		}
	}
	if got := len(s.Names("crypto_mark_price_usd")); got != len(want) {
		t.Errorf("%d mark prices, want %d", got, len(want))
	}
	if got := h.v.btcPrice(); got != btcMark {
		t.Errorf("BTC price %v", got)
	}
}

func TestVenueRateLimitHonoured(t *testing.T) {
	h := start(t, nil)
	h.waitPoll(t)
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpointLabels...)
	}
	before := failures(h.Samples(t))
	h.fake.FailNext(exchangetest.BitMEXInstrumentActivePath, 1, 429, 2, "")
	s := h.Eventually(t, "the failure", func(s collectortest.Samples) bool { return failures(s) > before })
	if got := val(s, "crypto_exporter_poll_success", endpointLabels...); got != 0 {
		t.Errorf("poll_success after 429 = %v", got)
	}
	failedAt := time.Now()
	n := h.fake.Requests(exchangetest.BitMEXInstrumentActivePath)
	time.Sleep(1500 * time.Millisecond)
	if got := h.fake.Requests(exchangetest.BitMEXInstrumentActivePath); got != n {
		t.Errorf("%d requests within the 2 s Retry-After", got-n)
	}
	h.waitPoll(t)
	if d := time.Since(failedAt); d < 1700*time.Millisecond {
		t.Errorf("recovered %v after the 429; want >= 2s", d)
	}

	// The fake's own limiter answers 429 with a Retry-After too.
	h.fake.SetRateLimit(1, 2*time.Second)
	before = failures(h.Samples(t))
	h.Eventually(t, "limited", func(s collectortest.Samples) bool { return failures(s) > before })
	h.fake.SetRateLimit(0, 0)
	h.waitPoll(t)
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	h := start(t, func(c *Config) { c.PollInterval = 200 * time.Millisecond })
	xbt := instLabels("inverse", "XBTUSD", "BTC")
	h.Eventually(t, "mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", xbt...) == 60000.5
	})
	path := exchangetest.BitMEXInstrumentActivePath
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpointLabels...)
	}
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"500", func() { h.fake.FailNext(path, 1, 500, 0, "") }},
		{"503 html", func() { h.fake.FailNext(path, 1, 503, 0, "<html>maintenance</html>") }},
		{"malformed body", func() { h.fake.FailNext(path, 1, 200, 0, `[{"symbol":"XBTUSD","markPrice":`) }},
		{"object instead of array", func() { h.fake.FailNext(path, 1, 200, 0, `{"error":{"message":"x","name":"HTTPError"}}`) }},
		{"no usable instrument", func() { h.fake.FailNext(path, 1, 200, 0, `[]`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := failures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool { return failures(s) > before })
			if got := val(s, "crypto_mark_price_usd", xbt...); got != 60000.5 {
				t.Errorf("mark price after a failed poll = %v, want the last good 60000.5", got)
			}
			if got := val(s, "crypto_exporter_poll_success", endpointLabels...); got != 0 {
				t.Errorf("poll_success = %v after a failure", got)
			}
			h.waitPoll(t)
		})
	}
	// Polls that keep failing make the values go stale.
	h.fake.FailNext(path, 10, 502, 0, "")
	h.Eventually(t, "stale mark price removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_mark_price_usd", xbt...)
		return !ok
	})
	h.fake.UpdateInstrument("XBTUSD", func(in *exchangetest.BitMEXInstrument) { in.MarkPrice, in.FundingRate = 70000, 0.0003 })
	h.Eventually(t, "new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", xbt...) == 70000 && val(s, "crypto_funding_rate_ratio", xbt...) == 0.0003
	})
}

func TestVenuePollTimeout(t *testing.T) {
	h := start(t, func(c *Config) { c.Client = exchanges.NewClient(250*time.Millisecond, "test") })
	xbt := instLabels("inverse", "XBTUSD", "BTC")
	h.waitPoll(t)
	path := exchangetest.BitMEXInstrumentActivePath
	h.fake.SetLatency(path, 600*time.Millisecond)
	s := h.Eventually(t, "the timeout counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", endpointLabels...) >= 1
	})
	h.fake.SetLatency(path, 0)
	if got := val(s, "crypto_mark_price_usd", xbt...); got != 60000.5 {
		t.Errorf("mark price after a timed-out poll = %v, want the last good 60000.5", got)
	}
	h.waitPoll(t)
}

func TestVenueSubscriptionRejected(t *testing.T) {
	h := newHarness(t)
	h.fake.RejectNextSubscribe(1)
	h.run(t, nil)
	s := h.waitUp(t)
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...); got != 1 {
		t.Errorf("decode errors %v, want 1 (the rejected subscription)", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", streamLabels...); got != 2 {
		t.Errorf("connects %v, want 2", got)
	}
	// An error on a live connection: counted, and the venue reconnects.
	h.fake.Play(frames([]byte(`{"status":429,"error":"Rate limit exceeded, retry in 1 seconds.","meta":{"retryAfter":1},"request":{}}`)))
	h.Eventually(t, "reconnect after the error", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_connects_total", streamLabels...) == 3 &&
			val(s, "crypto_exporter_stream_up", streamLabels...) == 1
	})
	tp := newTape()
	o := tp.live(tp.order("XBTUSD", "Sell", 60000, 123))
	h.fake.Play(frames(exchangetest.BitMEXLiquidationFrame("insert", o...)))
	s = h.Eventually(t, "counted after reconnecting", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") == 1
	})
	if got := val(s, "crypto_liquidation_notional_usd_total", append(instLabels("inverse", "XBTUSD", "BTC"), "side", "long")...); got != 123 {
		t.Errorf("notional %v, want 123", got)
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...); got != 2 {
		t.Errorf("decode errors %v, want 2", got)
	}
}

func TestVenueNewListing(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	h.waitPoll(t)
	h.fake.UpdateInstrument("SOLUSDT", func(in *exchangetest.BitMEXInstrument) {
		*in = exchangetest.BitMEXInstrument{Symbol: "SOLUSDT", RootSymbol: "SOL", Typ: exchangetest.BitMEXPerpetual, Underlying: "SOL",
			QuoteCurrency: "USDT", SettlCurrency: "USDt", Multiplier: 1, UnderlyingToPositionMultiplier: 1e4,
			FundingRate: 0.0001, FundingTimestamp: time.Now().Add(time.Hour), FundingInterval: 8 * time.Hour,
			OpenInterest: 1e6, MarkPrice: 150, ForeignNotional24h: 5e5}
	})
	// A liquidation of the unlisted instrument: dropped, counted as a
	// decode error, and an early poll lists it.
	h.fake.Play(frames(exchangetest.BitMEXLiquidationFrame("insert",
		exchangetest.BitMEXOrder{OrderID: "sol-1", Symbol: "SOLUSDT", Side: "Sell", Price: 149, LeavesQty: 30000})))
	sol := instLabels("linear", "SOLUSDT", "SOL")
	h.Eventually(t, "SOLUSDT listed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(sol, "side", "long")...)
		return ok && val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...) == 1
	})
	h.fake.Play(frames(exchangetest.BitMEXLiquidationFrame("insert",
		exchangetest.BitMEXOrder{OrderID: "sol-2", Symbol: "SOLUSDT", Side: "Buy", Price: 151, LeavesQty: 40000})))
	s := h.Eventually(t, "SOLUSDT liquidation counted", func(s collectortest.Samples) bool {
		return collectortest.Close(val(s, "crypto_liquidation_notional_usd_total", append(sol, "side", "short")...), 4*151)
	})
	if got := val(s, "crypto_liquidations_total", append(sol, "side", "long")...); got != 0 {
		t.Errorf("the dropped order counted: %v", got)
	}
	h.Eventually(t, "SOLUSDT gauges", func(s collectortest.Samples) bool {
		return val(s, "crypto_open_interest_usd", sol...) == 100*150
	})
}

func TestVenueCoinsAndQuantoWithoutBTCPrice(t *testing.T) {
	h := newHarness(t)
	var list []exchangetest.BitMEXInstrument
	for _, in := range exchangetest.BitMEXSampleInstruments() {
		if in.Symbol != "XBTUSD" {
			list = append(list, in)
		}
	}
	h.fake.SetInstruments(list)
	h.run(t, func(c *Config) { c.Coins = []string{"ETH"} })
	h.waitUp(t)
	s := h.waitPoll(t)
	if got := len(s.Names("crypto_market_info")); got != 2 {
		t.Errorf("%d instruments with coins [ETH], want 2: %v", got, s.Names("crypto_market_info"))
	}
	// No BTC/USD price: the ETHUSD quanto cannot be valued (dropped and
	// counted); XBTUSDT is excluded by the allowlist (silently ignored).
	h.fake.Play(frames(
		exchangetest.BitMEXLiquidationFrame("insert", exchangetest.BitMEXOrder{OrderID: "q1", Symbol: "ETHUSD", Side: "Sell", Price: 3000, LeavesQty: 5}),
		exchangetest.BitMEXLiquidationFrame("insert", exchangetest.BitMEXOrder{OrderID: "x1", Symbol: "XBTUSDT", Side: "Sell", Price: 60000, LeavesQty: 1e6}),
		exchangetest.BitMEXLiquidationFrame("insert", exchangetest.BitMEXOrder{OrderID: "e1", Symbol: "ETHUSDT", Side: "Buy", Price: 3000, LeavesQty: 1e4}),
	))
	s = h.Eventually(t, "ETHUSDT counted", func(s collectortest.Samples) bool { return s.Sum("crypto_liquidations_total") == 1 })
	if got := val(s, "crypto_liquidation_notional_usd_total", append(instLabels("linear", "ETHUSDT", "ETH"), "side", "short")...); got != 3000 {
		t.Errorf("ETHUSDT notional %v, want 3000", got)
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...); got != 1 {
		t.Errorf("decode errors %v, want 1 (the quanto without a BTC price)", got)
	}
	if _, ok := s.Get("crypto_open_interest_usd", instLabels("inverse", "ETHUSD", "ETH")...); ok {
		t.Error("quanto open interest in USD without a BTC price")
	}
}

func TestVenueHeartbeat(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Stream = func(c *wsconn.Config) {
			venuetest.FastStream(c)
			c.PingInterval = 150 * time.Millisecond
		}
	})
	h.waitUp(t)
	time.Sleep(time.Second)
	if n := h.fake.Pings(); n < 3 {
		t.Errorf("%d pings in 1 s at a 150 ms interval", n)
	}
	if got := val(h.Samples(t), "crypto_exporter_stream_connects_total", streamLabels...); got != 1 {
		t.Errorf("connects %v with answered pings", got)
	}
	// A peer that stops answering is detected by the read deadline.
	h.fake.SetAnswerPings(false)
	h.Eventually(t, "a reconnect after unanswered pings", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_connects_total", streamLabels...) >= 2
	})
	h.fake.SetAnswerPings(true)
	h.waitUp(t)
}

func TestVenueStopsOnCancel(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	h.StopWithin(t, 3*time.Second)
	venuetest.WaitClosed(t, 2*time.Second, h.fake.Connections)
}
