package gate

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const pollInterval = 500 * time.Millisecond

const (
	usdtTickers   = "/api/v4/futures/usdt/tickers"
	usdtContracts = "/api/v4/futures/usdt/contracts"
	usdtLiqOrders = "/api/v4/futures/usdt/liq_orders"
	btcLiqOrders  = "/api/v4/futures/btc/liq_orders"
)

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Gate
	v    *Venue
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewGate()
	t.Cleanup(fake.Close)
	fake.SetContracts(exchangetest.GateSampleContracts())
	return &harness{Harness: venuetest.New(t), fake: fake}
}

func (h *harness) run(t *testing.T, mod func(*Config)) {
	t.Helper()
	cfg := Config{
		REST: h.fake.RESTURL(), USDTWS: h.fake.WSURL(exchangetest.GateUSDT), BTCWS: h.fake.WSURL(exchangetest.GateBTC),
		PollInterval:            pollInterval,
		InstrumentsInterval:     time.Hour,
		RefreshSpacing:          100 * time.Millisecond,
		BackfillRequestInterval: 10 * time.Millisecond,
		Client:                  exchanges.NewClient(2*time.Second, "test"),
		Logger:                  slog.New(slog.DiscardHandler),
		Stream:                  venuetest.FastStream,
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
	return []string{"exchange", "gate", "market", market, "symbol", symbol, "coin", coin}
}

func stream(name string) []string { return []string{"exchange", "gate", "stream", name} }

func endpoint(name string) []string { return []string{"exchange", "gate", "endpoint", name} }

var (
	allStreams   = []string{"usdt_liquidations", "btc_liquidations"}
	allEndpoints = []string{"usdt_contracts", "usdt_tickers", "usdt_liq_orders", "btc_contracts", "btc_tickers", "btc_liq_orders"}
)

func (h *harness) waitUp(t *testing.T, streams ...string) collectortest.Samples {
	t.Helper()
	return h.WaitStreamsUp(t, "gate", streams...)
}

func (h *harness) waitPolls(t *testing.T, eps ...string) collectortest.Samples {
	t.Helper()
	return h.WaitPolled(t, "gate", eps...)
}

func marketOf(c exchangetest.GateContract) string {
	if c.Type == "inverse" {
		return "inverse"
	}
	return "linear"
}

func coinOf(name string) string {
	base, _, _ := strings.Cut(name, "_")
	c, _ := exchanges.NormalizeCoin(base)
	return c
}

func TestVenueDiscovery(t *testing.T) {
	h := newHarness(t)
	h.fake.SetLatency(usdtContracts, 300*time.Millisecond)
	h.fake.SetLatency("/api/v4/futures/btc/contracts", 300*time.Millisecond)
	h.run(t, nil)
	time.Sleep(100 * time.Millisecond)
	s := h.Samples(t)
	for _, st := range allStreams {
		if got := val(s, "crypto_exporter_stream_up", stream(st)...); got != 0 {
			t.Errorf("%s up = %v before discovery", st, got)
		}
	}
	for _, ep := range allEndpoints {
		if _, ok := s.Get("crypto_exporter_poll_success", endpoint(ep)...); !ok {
			t.Errorf("poll %s not declared at start-up", ep)
		}
	}
	for _, m := range []string{"linear", "inverse"} {
		if got := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", "gate", "market", m); got != 0 {
			t.Errorf("feed_complete %s = %v, want 0", m, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.fake.WaitSubscribed(ctx, exchangetest.GateUSDT, exchangetest.GateBTC); err != nil {
		t.Fatal(err)
	}
	h.waitUp(t, allStreams...)
	s = h.waitPolls(t, allEndpoints...)
	if n := len(s.Names("crypto_exporter_stream_up")); n != 2 {
		t.Errorf("%d streams, want 2", n)
	}
	if n := len(s.Names("crypto_exporter_poll_success")); n != len(allEndpoints) {
		t.Errorf("%d endpoints, want %d", n, len(allEndpoints))
	}
	listed := 0
	for _, c := range h.fake.Contracts() {
		labels := instLabels(marketOf(c), c.Name, coinOf(c.Name))
		if c.InDelisting {
			if _, ok := s.Get("crypto_liquidations_total", append(labels, "side", "long")...); ok {
				t.Errorf("delisting %s has series", c.Name)
			}
			continue
		}
		listed++
		quote := map[string]string{"linear": "USDT", "inverse": "USD"}[marketOf(c)]
		if _, ok := s.Get("crypto_market_info", append(labels, "quote", quote, "contract_type", "perpetual")...); !ok {
			t.Errorf("missing crypto_market_info for %s", c.Name)
		}
		for _, side := range []string{"long", "short"} {
			if got := val(s, "crypto_liquidations_total", append(labels, "side", side)...); got != 0 {
				t.Errorf("%s %s counter = %v, want a pre-initialised 0", c.Name, side, got)
			}
		}
	}
	if n := len(s.Names("crypto_liquidations_total")); n != 2*listed {
		t.Errorf("crypto_liquidations_total has %d series, want %d", n, 2*listed)
	}
}

// tape builds liquidation frames with distinct orders and remembers them.
type tape struct {
	contracts map[string]exchangetest.GateContract
	n         int
}

func newTape(list []exchangetest.GateContract) *tape {
	tp := &tape{contracts: map[string]exchangetest.GateContract{}}
	for _, c := range list {
		tp.contracts[c.Name] = c
	}
	return tp
}

// frame returns a push with one order per side given ("long": negative
// size); every order gets a distinct size.
func (tp *tape) frame(contract string, sides ...string) []byte {
	c := tp.contracts[contract]
	var ls []exchangetest.GateLiquidation
	for _, side := range sides {
		tp.n++
		size := float64(tp.n)
		if side == "long" {
			size = -size
		}
		ls = append(ls, exchangetest.GateLiquidation{Contract: contract, Size: size, Price: c.MarkPrice * (1 + float64(tp.n)/1000)})
	}
	return exchangetest.GateLiquidationFrame(ls...)
}

type seriesKey struct{ market, symbol, coin, side string }
type want struct{ count, notional float64 }

// groundTruth computes the expected counters from every distinct order the
// fake generated after since (ms), by the project's rules.
func groundTruth(contracts map[string]exchangetest.GateContract, history []exchangetest.GateOrder, since int64) (map[seriesKey]want, int) {
	out := map[seriesKey]want{}
	seen := map[string]bool{}
	distinct := 0
	for _, o := range history {
		if o.TimeMs <= since {
			continue
		}
		id := fmt.Sprint(o.Contract, o.TimeMs/1000, o.Size, o.Price)
		if seen[id] {
			continue
		}
		seen[id] = true
		distinct++
		c := contracts[o.Contract]
		n := math.Abs(o.Size) * c.QuantoMultiplier * o.Price
		if c.Type == "inverse" {
			n = math.Abs(o.Size)
		}
		side := "short"
		if o.Size < 0 {
			side = "long"
		}
		k := seriesKey{marketOf(c), o.Contract, coinOf(o.Contract), side}
		w := out[k]
		w.count++
		w.notional += n
		out[k] = w
	}
	return out, distinct
}

func TestVenueTapeWithGapRecoveredOnce(t *testing.T) {
	h := newHarness(t)
	tp := newTape(h.fake.Contracts())
	// History from before the exporter started: served by the first
	// backfill's window only if it reached back, and never counted.
	before := time.Now().Add(-3 * time.Second).UnixMilli()
	h.fake.AddHistory(
		exchangetest.GateOrder{GateLiquidation: exchangetest.GateLiquidation{Contract: "BTC_USDT", Size: -1000, Price: 60000, TimeMs: before}},
		exchangetest.GateOrder{GateLiquidation: exchangetest.GateLiquidation{Contract: "BTC_USD", Size: 1001, Price: 60000, TimeMs: before + 1}},
	)
	h.run(t, nil)
	h.waitUp(t, allStreams...)
	h.waitPolls(t, "usdt_liq_orders", "btc_liq_orders")
	epoch := h.v.epoch.UnixMilli()
	if got := h.Samples(t).Sum("crypto_liquidations_total"); got != 0 {
		t.Fatalf("history before the start counted: %v", got)
	}
	// Orders in the exporter's start second are ambiguous in the REST
	// history (whole seconds); the tape starts after it.
	time.Sleep(time.Until(h.v.epoch.Truncate(time.Second).Add(1100 * time.Millisecond)))

	part1 := [][]byte{
		tp.frame("BTC_USDT", "long", "short", "long"),
		tp.frame("ETH_USDT", "short"),
		tp.frame("BTC_USD", "long", "short", "long"),
		tp.frame("PEPE_USDT", "long", "short"),
	}
	var events []exchangetest.Event
	for _, f := range part1 {
		events = append(events, exchangetest.Event{Frame: f})
	}
	now := time.Now().UnixMilli()
	events = append(events,
		exchangetest.Event{Frame: []byte(fmt.Sprintf(`{"channel":"futures.public_liquidates","event":"update","time":1,"time_ms":1,"result":[`+
			`{"price":1.5,"size":"NaN","time_ms":%d,"contract":"ETH_USDT"},{"price":3001.5,"size":-77,"time_ms":%d,"contract":"ETH_USDT"}]}`, now, now))},
		exchangetest.Event{Frame: []byte(`not json`)},
	)
	delivered := h.fake.Play(events)
	for _, d := range delivered {
		if d.Conns == 0 {
			t.Fatalf("frame %s reached no connection", d.Frame)
		}
	}
	wantErrors := 1 + float64(delivered[len(delivered)-1].Conns) // the NaN order; garbage on every connection
	_, distinct := groundTruth(tp.contracts, h.fake.History(""), epoch)
	h.Eventually(t, "part one counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct)
	})

	// The gap: no connection for a while; orders happen meanwhile.
	h.fake.SetRefuseConnections(true)
	h.fake.Disconnect()
	h.Eventually(t, "streams down", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_up", stream("usdt_liquidations")...) == 0 &&
			val(s, "crypto_exporter_stream_up", stream("btc_liquidations")...) == 0
	})
	gap := [][]byte{
		tp.frame("BTC_USDT", "long", "short"),
		tp.frame("ETH_USDT", "short", "long", "long"),
		tp.frame("PEPE_USDT", "short"),
		tp.frame("BTC_USD", "long"),
		tp.frame("BTC_USD", "short", "short"),
	}
	for _, f := range gap {
		if d := h.fake.Liquidate(f); d.Conns != 0 {
			t.Fatalf("gap frame delivered to %d connections", d.Conns)
		}
	}
	usdtBefore, btcBefore := h.fake.Requests(usdtLiqOrders), h.fake.Requests(btcLiqOrders)
	h.fake.SetRefuseConnections(false)
	h.waitUp(t, allStreams...)
	_, distinct = groundTruth(tp.contracts, h.fake.History(""), epoch)
	h.Eventually(t, "the gap recovered", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct)
	})
	if h.fake.Requests(usdtLiqOrders) == usdtBefore || h.fake.Requests(btcLiqOrders) == btcBefore {
		t.Error("no backfill of both settles after the reconnect")
	}

	// Part two, live.
	events = events[:0]
	for _, f := range [][]byte{tp.frame("BTC_USDT", "short"), tp.frame("BTC_USD", "long", "short")} {
		events = append(events, exchangetest.Event{Frame: f})
	}
	h.fake.Play(events)
	truth, distinct := groundTruth(tp.contracts, h.fake.History(""), epoch)
	h.Eventually(t, "everything counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct)
	})
	time.Sleep(300 * time.Millisecond) // late duplicates would land now
	s := h.Samples(t)
	for _, k := range s.Names("crypto_liquidations_total") {
		labels := k[len("crypto_liquidations_total"):]
		var w want
		for kk, ww := range truth {
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
	if got := s.Sum("crypto_liquidations_total"); got != float64(distinct) {
		t.Errorf("liquidations total %v, want %v distinct orders", got, distinct)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", "gate"); got != float64(distinct) {
		t.Errorf("histogram count %v, want %v", got, distinct)
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "gate"); got != wantErrors {
		t.Errorf("decode errors %v, want %v", got, wantErrors)
	}
	for _, st := range allStreams {
		if got := val(s, "crypto_exporter_stream_connects_total", stream(st)...); got != 2 {
			t.Errorf("%s connects = %v, want 2", st, got)
		}
	}
	if n := h.v.stats.duplicates.Load(); n == 0 {
		t.Error("no duplicates skipped; the gap backfill re-serves the orders of part one pushed before the disconnect")
	}
	if n := h.v.stats.backfilled.Load(); n != 9 {
		t.Errorf("%d orders recovered by the backfill, want the 9 of the gap", n)
	}
}

// checkGauges compares every polled gauge with the fake's state by the
// project's rules.
func checkGauges(t *testing.T, s collectortest.Samples, contracts []exchangetest.GateContract) {
	t.Helper()
	now := float64(time.Now().Unix())
	for _, c := range contracts {
		labels := instLabels(marketOf(c), c.Name, coinOf(c.Name))
		if c.InDelisting {
			if _, ok := s.Get("crypto_mark_price_usd", labels...); ok {
				t.Errorf("gauges for delisting %s", c.Name)
			}
			continue
		}
		w := map[string]float64{
			"crypto_mark_price_usd":                 c.MarkPrice,
			"crypto_funding_rate_ratio":             c.FundingRate,
			"crypto_volume_24h_usd":                 c.Volume24hQuote,
			"crypto_funding_interval_seconds":       float64(c.FundingInterval),
			"crypto_funding_next_timestamp_seconds": float64(c.FundingNextApply),
		}
		if c.Type == "inverse" {
			w["crypto_open_interest_usd"] = c.TotalSize
			w["crypto_open_interest_coins"] = c.TotalSize / c.MarkPrice
		} else {
			w["crypto_open_interest_coins"] = c.TotalSize * c.QuantoMultiplier
			w["crypto_open_interest_usd"] = c.TotalSize * c.QuantoMultiplier * c.MarkPrice
		}
		if float64(c.FundingNextApply) <= now {
			t.Fatalf("fixture funding time of %s in the past", c.Name)
		}
		for name, wv := range w {
			got, ok := s.Get(name, labels...)
			if !ok || !collectortest.Close(got, wv) {
				t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, wv)
			}
		}
	}
}

func TestVenueGauges(t *testing.T) {
	h := start(t, nil)
	s := h.Eventually(t, "gauges of every listed contract", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_usd")) == 4 && len(s.Names("crypto_funding_next_timestamp_seconds")) == 4
	})
	checkGauges(t, s, h.fake.Contracts())
	// A passed funding_next_apply is rolled forward by the interval.
	h.fake.UpdateContract("ETH_USDT", func(c *exchangetest.GateContract) { c.FundingNextApply = time.Now().Unix() - 100 })
	h.v.settles[0].requestRefresh()
	eth := instLabels("linear", "ETH_USDT", "ETH")
	h.Eventually(t, "rolled-forward funding time", func(s collectortest.Samples) bool {
		got := val(s, "crypto_funding_next_timestamp_seconds", eth...)
		return got > float64(time.Now().Unix()) && got <= float64(time.Now().Unix()+28800)
	})
}

func TestVenueRateLimitHonoured(t *testing.T) {
	h := start(t, func(c *Config) { c.Settles = []string{SettleUSDT} })
	h.waitPolls(t, "usdt_tickers")
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpoint("usdt_tickers")...)
	}
	before := failures(h.Samples(t))
	h.fake.FailNext(usdtTickers, 1, 429, 2, "")
	s := h.Eventually(t, "the failure", func(s collectortest.Samples) bool { return failures(s) > before })
	if got := val(s, "crypto_exporter_poll_success", endpoint("usdt_tickers")...); got != 0 {
		t.Errorf("poll_success after a rate-limit answer = %v", got)
	}
	failedAt := time.Now()
	n := h.fake.Requests(usdtTickers)
	time.Sleep(1500 * time.Millisecond)
	if got := h.fake.Requests(usdtTickers); got != n {
		t.Errorf("%d requests within the 2 s back-off", got-n)
	}
	h.waitPolls(t, "usdt_tickers")
	if d := time.Since(failedAt); d < 1700*time.Millisecond {
		t.Errorf("recovered %v after the rate-limit answer; want >= 2s", d)
	}
	// The fake's own limit (200 per 10 s) answers 429 TOO_MANY_REQUESTS.
	h.fake.SetRateLimit(usdtTickers, 1, time.Hour)
	h.Eventually(t, "the fake's limit", func(s collectortest.Samples) bool { return failures(s) > before+1 })
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Settles = []string{SettleUSDT}
		c.PollInterval = 200 * time.Millisecond
	})
	btc := instLabels("linear", "BTC_USDT", "BTC")
	h.Eventually(t, "mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 60000.5
	})
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpoint("usdt_tickers")...)
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"500", 500, ""},
		{"503 html", 503, "<html>maintenance</html>"},
		{"malformed body", 200, `[{"contract":"BTC_USDT","mark_price":`},
		{"NaN in body", 200, `[{"contract":"BTC_USDT","mark_price":"NaN","total_size":"1"}]`},
		{"error object", 200, `{"label":"SERVER_ERROR","message":"x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := failures(h.Samples(t))
			h.fake.FailNext(usdtTickers, 1, tc.status, 0, tc.body)
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool { return failures(s) > before })
			if got := val(s, "crypto_mark_price_usd", btc...); got != 60000.5 {
				t.Errorf("mark price after a failed poll = %v, want the last good 60000.5", got)
			}
			h.waitPolls(t, "usdt_tickers")
		})
	}
	h.fake.FailNext(usdtTickers, 8, 502, 0, "")
	h.Eventually(t, "stale mark price removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_mark_price_usd", btc...)
		return !ok
	})
	h.fake.UpdateContract("BTC_USDT", func(c *exchangetest.GateContract) { c.MarkPrice, c.FundingRate = 70000, 0.0003 })
	h.Eventually(t, "new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 70000 && val(s, "crypto_funding_rate_ratio", btc...) == 0.0003
	})
}

func TestVenueSubscriptionError(t *testing.T) {
	h := newHarness(t)
	h.fake.RejectNextSubscribe(1)
	h.run(t, nil)
	s := h.waitUp(t, allStreams...)
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "gate"); got != 1 {
		t.Errorf("decode errors %v, want 1 (the rejected subscription)", got)
	}
	if got := s.Sum("crypto_exporter_stream_connects_total", "exchange", "gate"); got != 3 {
		t.Errorf("connects %v, want 3 (two streams, one reconnect)", got)
	}
}

func TestVenueNewListing(t *testing.T) {
	h := start(t, func(c *Config) { c.Settles = []string{SettleUSDT} })
	h.waitUp(t, "usdt_liquidations")
	h.waitPolls(t, "usdt_liq_orders")
	h.fake.UpdateContract("SOL_USDT", func(c *exchangetest.GateContract) {
		*c = exchangetest.GateContract{Settle: "usdt", Name: "SOL_USDT", Type: "direct", QuantoMultiplier: 1, MarkPrice: 150,
			FundingRate: 0.0001, FundingInterval: 28800, FundingNextApply: time.Now().Unix() + 3600, TotalSize: 10, Volume24hQuote: 1e6}
	})
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: "SOL_USDT", Size: -3, Price: 149})}})
	sol := instLabels("linear", "SOL_USDT", "SOL")
	h.Eventually(t, "SOL listed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(sol, "side", "long")...)
		return ok && val(s, "crypto_exporter_stream_decode_errors_total", stream("usdt_liquidations")...) == 1
	})
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: "SOL_USDT", Size: 4, Price: 151})}})
	s := h.Eventually(t, "SOL liquidation counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", append(sol, "side", "short")...) == 4*151
	})
	if got := val(s, "crypto_liquidations_total", append(sol, "side", "long")...); got != 0 {
		t.Errorf("the dropped order counted: %v", got)
	}
	h.Eventually(t, "SOL gauges", func(s collectortest.Samples) bool {
		return val(s, "crypto_open_interest_usd", sol...) == 1500
	})
}

func TestVenueHeartbeat(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Settles = []string{SettleBTC}
		c.Stream = func(c *wsconn.Config) {
			venuetest.FastStream(c)
			c.PingInterval = 150 * time.Millisecond
		}
	})
	h.waitUp(t, "btc_liquidations")
	time.Sleep(1200 * time.Millisecond)
	if n := h.fake.Pings(); n < 4 {
		t.Errorf("%d futures.ping in 1.2s at a 150ms interval", n)
	}
	if got := val(h.Samples(t), "crypto_exporter_stream_connects_total", stream("btc_liquidations")...); got != 1 {
		t.Errorf("connects %v with pongs answered", got)
	}
	h.fake.SetAnswerPings(false)
	h.Eventually(t, "a reconnect after unanswered pings", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_connects_total", stream("btc_liquidations")...) >= 2
	})
	h.fake.SetAnswerPings(true)
	h.waitUp(t, "btc_liquidations")
}

func TestVenueStopsOnCancel(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t, allStreams...)
	h.StopWithin(t, 3*time.Second)
	venuetest.WaitClosed(t, 2*time.Second, h.fake.Connections)
}

// TestBackfillWindows drives the backfiller directly over a gap of 2.5 h
// (the fake rejects windows over 3600 s) with a window holding more orders
// than one page.
func TestBackfillWindows(t *testing.T) {
	fake := exchangetest.NewGate()
	defer fake.Close()
	fake.SetContracts(exchangetest.GateSampleContracts())
	coll := collector.New()
	v := New(Config{REST: fake.RESTURL(), Settles: []string{SettleUSDT}, BackfillRequestInterval: time.Millisecond,
		Client: exchanges.NewClient(2*time.Second, "test"), Logger: slog.New(slog.DiscardHandler)})
	v.sink = coll
	now := time.Now()
	v.epoch = now.Add(-150 * time.Minute)
	v.dedupe = newDedupe(v.cfg.DedupeWindow, v.cfg.DedupeMaxKeys, v.epoch)
	s := v.settles[0]
	s.declare(coll)
	if err := s.discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	var orders []exchangetest.GateOrder
	add := func(ms int64, size float64) {
		orders = append(orders, exchangetest.GateOrder{GateLiquidation: exchangetest.GateLiquidation{Contract: "BTC_USDT", Size: size, Price: 60000, TimeMs: ms}})
	}
	base := v.epoch.Truncate(time.Second).Add(time.Second).UnixMilli()
	for i := range 60 { // one every 2.5 minutes over the gap
		add(base+int64(i)*150_000, float64(i+1))
	}
	burst := now.Add(-30 * time.Minute).Truncate(time.Second).UnixMilli()
	for i := range 1500 { // more than one page within one window, 10 per second
		add(burst+int64(i/10)*1000, -float64(i+1))
	}
	add(v.epoch.UnixMilli()-5000, 9999) // before the start
	fake.AddHistory(orders...)
	if err := s.backfill.fill(context.Background(), v.epoch, now); err != nil {
		t.Fatal(err)
	}
	if got := v.stats.backfilled.Load(); got != 1560 {
		t.Errorf("backfilled %d, want 1560", got)
	}
	if got := v.stats.counted.Load(); got != 1560 {
		t.Errorf("counted %d", got)
	}
	if n := fake.Requests(usdtLiqOrders); n < 4 {
		t.Errorf("%d requests for 2.5 h and a split window", n)
	}
	// A second pass over the same gap counts nothing new.
	if err := s.backfill.fill(context.Background(), v.epoch, now); err != nil {
		t.Fatal(err)
	}
	if got := v.stats.backfilled.Load(); got != 1560 {
		t.Errorf("second pass: backfilled %d, want still 1560", got)
	}
}

// A backfill answered with a server error is retried: the gap's orders are
// counted once the venue answers again, and only once.
func TestVenueBackfillRetriedAfterServerError(t *testing.T) {
	h := newHarness(t)
	h.run(t, func(c *Config) { c.BackfillRetryInterval = 50 * time.Millisecond })
	h.waitUp(t, allStreams...)
	h.waitPolls(t, "usdt_liq_orders", "btc_liq_orders")
	// Orders in the exporter's start second are ambiguous in the REST
	// history (whole seconds); the gap starts after it.
	time.Sleep(time.Until(h.v.epoch.Truncate(time.Second).Add(1100 * time.Millisecond)))
	h.fake.SetRefuseConnections(true)
	h.fake.Disconnect()
	h.Eventually(t, "streams down", func(s collectortest.Samples) bool {
		return s.Sum("crypto_exporter_stream_up", "exchange", "gate") == 0
	})
	now := time.Now().UnixMilli()
	var orders []exchangetest.GateOrder
	for i := range 5 {
		orders = append(orders, exchangetest.GateOrder{Settle: exchangetest.GateUSDT,
			GateLiquidation: exchangetest.GateLiquidation{Contract: "BTC_USDT", Size: -float64(100 * (i + 1)), Price: 60000, TimeMs: now - 5 + int64(i)}})
	}
	h.fake.AddHistory(orders...)
	h.fake.FailNext("/api/v4/futures/usdt/liq_orders", 2, 503, 0, "")
	h.fake.SetRefuseConnections(false)
	s := h.Eventually(t, "the gap recovered after the failed backfills", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= 5
	})
	if got := s.Sum("crypto_exporter_poll_failures_total", "exchange", "gate", "endpoint", "usdt_liq_orders"); got < 2 {
		t.Errorf("backfill failures %v, want the 2 server errors counted", got)
	}
	time.Sleep(200 * time.Millisecond)
	s = h.Samples(t)
	long := []string{"exchange", "gate", "symbol", "BTC_USDT", "side", "long"}
	if got := s.Sum("crypto_liquidations_total"); got != 5 {
		t.Errorf("counted %v, want 5", got)
	}
	// Negative size = long; |size| x quanto 0.0001 x price: (100+...+500) x 6.
	if got := s.Sum("crypto_liquidation_notional_usd_total", long...); math.Abs(got-1500*0.0001*60000) > 1e-6 {
		t.Errorf("notional %v, want %v", got, 1500*0.0001*60000)
	}
}
