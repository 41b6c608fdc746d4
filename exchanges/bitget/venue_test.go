package bitget

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

const pollInterval = 500 * time.Millisecond

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Bitget
	v    *Venue
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewBitget()
	t.Cleanup(fake.Close)
	fake.SetInstruments(exchangetest.BitgetSampleInstruments())
	h := &harness{Harness: venuetest.New(t), fake: fake}
	h.Timeout = 15 * time.Second
	return h
}

func (h *harness) run(t *testing.T, mod func(*Config)) {
	t.Helper()
	cfg := Config{
		REST: h.fake.RESTURL(), WS: h.fake.WSURL(), Liquidations: true,
		PollInterval: pollInterval, InstrumentsInterval: time.Hour, RefreshSpacing: 100 * time.Millisecond,
		Client: exchanges.NewClient(2*time.Second, "test"), Logger: slog.New(slog.DiscardHandler),
		Stream: venuetest.FastStream,
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

func inst(market, symbol, coin string) []string {
	return []string{"exchange", Name, "market", market, "symbol", symbol, "coin", coin}
}

func withSide(l []string, side string) []string {
	return append(append([]string(nil), l...), "side", side)
}

func endpoint(name string) []string { return []string{"exchange", Name, "endpoint", name} }

var streamLabels = []string{"exchange", Name, "stream", StreamLiquidations}

func marketOf(in exchangetest.BitgetInstrument) string {
	if in.ProductType == exchangetest.BitgetCoinFutures {
		return "inverse"
	}
	return "linear"
}

func (h *harness) waitUp(t *testing.T) {
	t.Helper()
	h.WaitStreamsUp(t, Name, StreamLiquidations)
}

func (h *harness) waitPolls(t *testing.T) collectortest.Samples {
	t.Helper()
	return h.WaitPolled(t, Name, Endpoints()...)
}

func TestVenueDiscoveryAndGauges(t *testing.T) {
	h := newHarness(t)
	h.fake.SetLatency("/api/v2/mix/market/contracts", 300*time.Millisecond)
	h.run(t, nil)
	time.Sleep(100 * time.Millisecond)
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_stream_up", streamLabels...); got != 0 {
		t.Errorf("stream_up before discovery = %v, want 0", got)
	}
	for _, ep := range Endpoints() {
		if _, ok := s.Get("crypto_exporter_poll_success", endpoint(ep)...); !ok {
			t.Errorf("poll %s not declared at start-up", ep)
		}
	}
	h.waitUp(t)
	// Funding-time reaches every perpetual within a few rounds.
	s = h.Eventually(t, "gauges", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_funding_next_timestamp_seconds")) == 5 && val(s, "crypto_exporter_poll_success", endpoint("usdc_futures_tickers")...) == 1
	})
	for _, m := range []string{"linear", "inverse"} {
		if got := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", Name, "market", m); got != 0 {
			t.Errorf("feed_complete %s = %v, want 0", m, got)
		}
	}
	for _, in := range exchangetest.BitgetSampleInstruments() {
		l := inst(marketOf(in), in.Symbol, in.BaseCoin)
		for _, side := range []string{"long", "short"} {
			if got := val(s, "crypto_liquidations_total", withSide(l, side)...); got != 0 {
				t.Errorf("%s %s liquidations = %v, want 0 from start-up", in.Symbol, side, got)
			}
		}
		check := func(name string, want float64) {
			t.Helper()
			if got := val(s, name, l...); !collectortest.Close(got, want) {
				t.Errorf("%s %s = %v, want %v", name, in.Symbol, got, want)
			}
		}
		check("crypto_mark_price_usd", in.MarkPrice)
		check("crypto_open_interest_coins", in.HoldingAmount)
		check("crypto_open_interest_usd", in.HoldingAmount*in.MarkPrice)
		check("crypto_volume_24h_usd", in.USDTVolume)
		if in.SymbolType == "perpetual" {
			check("crypto_funding_rate_ratio", in.FundingRate)
			check("crypto_funding_interval_seconds", float64(in.RatePeriod*3600))
			check("crypto_funding_next_timestamp_seconds", float64(in.NextFunding)/1000)
		} else if _, ok := s.Get("crypto_funding_rate_ratio", l...); ok {
			t.Errorf("delivery contract %s has a funding rate", in.Symbol)
		}
		ct := map[string]string{"perpetual": "perpetual", "delivery": "future"}[in.SymbolType]
		if got := val(s, "crypto_market_info", append(l, "quote", in.QuoteCoin, "contract_type", ct)...); got != 1 {
			t.Errorf("market_info %s = %v", in.Symbol, got)
		}
	}
}

func TestVenueTapeWithDisconnect(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	type liq struct {
		pt string
		l  exchangetest.BitgetLiquidation
	}
	tape1 := []liq{
		{exchangetest.BitgetUSDTFutures, exchangetest.BitgetLiquidation{Symbol: "BTCUSDT", Side: "sell", Amount: 0.5, Price: 60000}},
		{exchangetest.BitgetUSDTFutures, exchangetest.BitgetLiquidation{Symbol: "ETHUSDT", Side: "buy", Amount: 3, Price: 3000}},
		{exchangetest.BitgetCoinFutures, exchangetest.BitgetLiquidation{Symbol: "BTCUSD", Side: "sell", Amount: 0.2, Price: 59000}},
		{exchangetest.BitgetUSDCFutures, exchangetest.BitgetLiquidation{Symbol: "BTCPERP", Side: "buy", Amount: 0.1, Price: 61000}},
	}
	tape2 := []liq{
		{exchangetest.BitgetUSDTFutures, exchangetest.BitgetLiquidation{Symbol: "BTCUSDT", Side: "sell", Amount: 1, Price: 59000}},
		{exchangetest.BitgetCoinFutures, exchangetest.BitgetLiquidation{Symbol: "ETHUSD_231229", Side: "buy", Amount: 2, Price: 3000}},
		{exchangetest.BitgetUSDTFutures, exchangetest.BitgetLiquidation{Symbol: "PEPEUSDT", Side: "sell", Amount: 1e9, Price: 0.00001}},
	}
	want := map[string][2]float64{} // key -> count, notional
	ts := time.Now().UnixMilli()
	var events []exchangetest.Event
	add := func(tape []liq) {
		for _, x := range tape {
			ts++
			x.l.TS = ts
			f := exchangetest.BitgetLiquidationFrame(x.pt, x.l)
			events = append(events, exchangetest.Event{Frame: f})
			side := map[string]string{"sell": "long", "buy": "short"}[x.l.Side]
			market := "linear"
			if x.pt == exchangetest.BitgetCoinFutures {
				market = "inverse"
			}
			coin := strings.TrimSuffix(strings.TrimSuffix(strings.Split(x.l.Symbol, "_")[0], "USDT"), "USD")
			coin = strings.TrimSuffix(coin, "PERP")
			k := strings.Join(withSide(inst(market, x.l.Symbol, coin), side), ",")
			w := want[k]
			want[k] = [2]float64{w[0] + 1, w[1] + x.l.Amount*x.l.Price}
		}
	}
	add(tape1)
	first := events[0].Frame
	events = append(events, exchangetest.Event{Frame: []byte(`not json`)}, exchangetest.Event{Disconnect: true})
	add(tape2)
	// A repeat of an already counted liquidation (a replay) is not new.
	events = append(events, exchangetest.Event{Frame: first})
	got := h.fake.Play(events)
	for i, d := range got {
		if d.Conns != 1 {
			t.Fatalf("frame %d delivered to %d connections", i, d.Conns)
		}
	}
	h.Eventually(t, "tape counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total", "exchange", Name) == 7 && val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...) >= 1
	})
	time.Sleep(200 * time.Millisecond)
	s := h.Samples(t)
	for k, w := range want {
		l := strings.Split(k, ",")
		if got := val(s, "crypto_liquidations_total", l...); got != w[0] {
			t.Errorf("%s count = %v, want %v", k, got, w[0])
		}
		if got := val(s, "crypto_liquidation_notional_usd_total", l...); !collectortest.Close(got, w[1]) {
			t.Errorf("%s notional = %v, want %v", k, got, w[1])
		}
	}
	if n := s.Sum("crypto_liquidations_total", "exchange", Name); n != 7 {
		t.Errorf("total = %v, want 7", n)
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...); got != 1 {
		t.Errorf("decode errors = %v, want 1", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", streamLabels...); got < 2 {
		t.Errorf("connects = %v, want >= 2", got)
	}
	h.Eventually(t, "a text ping", func(collectortest.Samples) bool { return h.fake.Pings() > 0 })
}

func TestVenueLiquidationsOff(t *testing.T) {
	h := start(t, func(c *Config) { c.Liquidations = false })
	s := h.waitPolls(t)
	for _, name := range []string{"crypto_liquidations_total", "crypto_liquidation_notional_usd_total", "crypto_liquidation_largest_usd", "crypto_exporter_liquidation_feed_complete"} {
		if n := s.Names(name); len(n) != 0 {
			t.Errorf("%s exported with liquidations off: %v", name, n)
		}
	}
	if _, ok := s.Get("crypto_exporter_stream_up", streamLabels...); ok {
		t.Error("stream declared with liquidations off")
	}
	if got := val(s, "crypto_market_info", append(inst("linear", "BTCUSDT", "BTC"), "quote", "USDT", "contract_type", "perpetual")...); got != 1 {
		t.Errorf("market_info = %v", got)
	}
	if h.fake.TotalConnections() != 0 {
		t.Error("connected to the WebSocket with liquidations off")
	}
}

func TestVenueFundingTimeWithinBudget(t *testing.T) {
	h := start(t, nil)
	h.waitPolls(t)
	const path = "/api/v2/mix/market/funding-time"
	before := h.fake.Requests(path)
	time.Sleep(2 * time.Second)
	n := h.fake.Requests(path) - before
	// One request per FundingTimeSpacing at most (4 per second).
	if limit := int(2*time.Second/FundingTimeSpacing) + 1; n > limit {
		t.Errorf("%d funding-time requests in 2 s, budget %d", n, limit)
	}
	if n == 0 {
		t.Error("no funding-time requests")
	}
	if h.fake.RateLimited() != 0 {
		t.Errorf("%d requests over Bitget's rate limit", h.fake.RateLimited())
	}
	batch, cycle := fundingPlan(5, pollInterval)
	if batch != 1 || cycle != 5*pollInterval {
		t.Errorf("plan = %d, %v", batch, cycle)
	}
}

func TestVenueRateLimitHonouredAndLastValuesKept(t *testing.T) {
	h := start(t, nil)
	h.waitPolls(t)
	const path = "/api/v2/mix/market/tickers?productType=USDT-FUTURES"
	h.fake.FailNext(path, 1, http.StatusTooManyRequests, 2, "")
	h.Eventually(t, "failed poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", endpoint("usdt_futures_tickers")...) == 0
	})
	failedAt := time.Now()
	n := h.fake.Requests(path)
	s := h.Samples(t)
	if got := val(s, "crypto_mark_price_usd", inst("linear", "BTCUSDT", "BTC")...); got != 60000 {
		t.Errorf("mark after a failed poll = %v, want the last value", got)
	}
	h.fake.UpdateInstrument("BTCUSDT", func(in *exchangetest.BitgetInstrument) { in.MarkPrice = 61000 })
	time.Sleep(time.Second)
	if got := h.fake.Requests(path); got != n {
		t.Errorf("%d tickers requests within the 2 s Retry-After", got-n)
	}
	h.Eventually(t, "recovered", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", inst("linear", "BTCUSDT", "BTC")...) == 61000
	})
	if d := time.Since(failedAt); d < 1500*time.Millisecond {
		t.Errorf("recovered after %v, before Retry-After", d)
	}
	// A failed poll of another kind (code not 00000) keeps values too.
	h.fake.FailNext("/api/v2/mix/market/tickers?productType=COIN-FUTURES", 2, http.StatusOK, 0, `{"code":"40808","msg":"system error","requestTime":1,"data":null}`)
	s = h.Eventually(t, "code error", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", endpoint("coin_futures_tickers")...) >= 1
	})
	if got := val(s, "crypto_mark_price_usd", inst("inverse", "BTCUSD", "BTC")...); got != 59990 {
		t.Errorf("inverse mark after failures = %v", got)
	}
}

func TestVenueSubscriptionError(t *testing.T) {
	h := newHarness(t)
	h.fake.RejectNextSubscribe(1)
	h.run(t, nil)
	h.waitUp(t)
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...); got < 1 {
		t.Errorf("subscription error not counted: %v", got)
	}
	if h.fake.TotalConnections() < 2 {
		t.Errorf("connections = %d, want a retry", h.fake.TotalConnections())
	}
}

func TestVenueNewListing(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	h.fake.UpdateInstrument("SOLUSDT", func(in *exchangetest.BitgetInstrument) {
		*in = exchangetest.BitgetInstrument{ProductType: exchangetest.BitgetUSDTFutures, Symbol: "SOLUSDT", SymbolType: "perpetual",
			OmitCoins: true, MarkPrice: 150, HoldingAmount: 10, USDTVolume: 1, NextFunding: 1, RatePeriod: 8}
	})
	frame := exchangetest.BitgetLiquidationFrame(exchangetest.BitgetUSDTFutures, exchangetest.BitgetLiquidation{Symbol: "SOLUSDT", Side: "sell", Amount: 2, Price: 150})
	h.fake.Play([]exchangetest.Event{{Frame: frame}})
	sol := inst("linear", "SOLUSDT", "SOL")
	h.Eventually(t, "new listing discovered", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", withSide(sol, "long")...)
		return ok && val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...) == 1
	})
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.BitgetLiquidationFrame(exchangetest.BitgetUSDTFutures,
		exchangetest.BitgetLiquidation{Symbol: "SOLUSDT", Side: "sell", Amount: 2, Price: 150})}})
	h.Eventually(t, "counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", withSide(sol, "long")...) == 300
	})
}
