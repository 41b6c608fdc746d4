package binance

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

// Fake instrument lists: perpetuals, a dated future, a 1000x symbol, a
// non-default funding interval and a symbol that is not trading.
func usdmSymbols() []exchangetest.BinanceSymbol {
	return []exchangetest.BinanceSymbol{
		{Symbol: "BTCUSDT", Pair: "BTCUSDT", BaseAsset: "BTC", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING",
			MarkPrice: 65000.5, IndexPrice: 65001, LastFundingRate: 0.0001, NextFundingTime: 1_800_000_000_000, OpenInterest: 1000.5, Volume: 70000, QuoteVolume: 4.5e9,
			LongShortAccountRatio: 1.2345},
		{Symbol: "ETHUSDT", Pair: "ETHUSDT", BaseAsset: "ETH", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING", FundingIntervalHours: 4,
			MarkPrice: 3000.25, IndexPrice: 3000, LastFundingRate: -0.00025, NextFundingTime: 1_800_000_000_000, OpenInterest: 20000, Volume: 1e6, QuoteVolume: 3e9,
			LongShortAccountRatio: 0.8},
		{Symbol: "1000PEPEUSDT", Pair: "1000PEPEUSDT", BaseAsset: "1000PEPE", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING",
			MarkPrice: 0.0125, IndexPrice: 0.0125, LastFundingRate: 0.0005, NextFundingTime: 1_800_000_000_000, OpenInterest: 4e9, Volume: 1e11, QuoteVolume: 1.2e9},
		{Symbol: "BTCUSDT_261225", Pair: "BTCUSDT", BaseAsset: "BTC", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "CURRENT_QUARTER", Status: "TRADING",
			MarkPrice: 66000, IndexPrice: 65001, LastFundingRate: math.NaN(), OpenInterest: 50, Volume: 100, QuoteVolume: 6.6e6},
		{Symbol: "OLDUSDT", Pair: "OLDUSDT", BaseAsset: "OLD", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "SETTLING",
			MarkPrice: 1, LastFundingRate: 0, OpenInterest: 1},
	}
}

func coinmSymbols() []exchangetest.BinanceSymbol {
	return []exchangetest.BinanceSymbol{
		{Symbol: "BTCUSD_PERP", Pair: "BTCUSD", BaseAsset: "BTC", QuoteAsset: "USD", MarginAsset: "BTC", ContractType: "PERPETUAL", Status: "TRADING", ContractSize: 100,
			MarkPrice: 65010, IndexPrice: 65000, LastFundingRate: 0.0001, NextFundingTime: 1_800_000_000_000, OpenInterest: 300000, Volume: 2e6, BaseVolume: 3000},
		{Symbol: "ETHUSD_PERP", Pair: "ETHUSD", BaseAsset: "ETH", QuoteAsset: "USD", MarginAsset: "ETH", ContractType: "PERPETUAL", Status: "TRADING", ContractSize: 10,
			MarkPrice: 3001, IndexPrice: 3000, LastFundingRate: 0.0002, NextFundingTime: 1_800_000_000_000, OpenInterest: 500000, Volume: 4e6, BaseVolume: 13000},
		{Symbol: "BTCUSD_261225", Pair: "BTCUSD", BaseAsset: "BTC", QuoteAsset: "USD", MarginAsset: "BTC", ContractType: "CURRENT_QUARTER", Status: "TRADING", ContractSize: 100,
			MarkPrice: 66500, IndexPrice: 65000, LastFundingRate: math.NaN(), OpenInterest: 12000, Volume: 50000, BaseVolume: 75},
	}
}

type harness struct {
	*venuetest.Harness
	usdm, coinm *exchangetest.BinanceMarket
}

func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	usdm, coinm := exchangetest.NewBinanceMarket("usdm"), exchangetest.NewBinanceMarket("coinm")
	t.Cleanup(coinm.Close)
	t.Cleanup(usdm.Close)
	h := &harness{Harness: venuetest.New(t), usdm: usdm, coinm: coinm}
	h.usdm.SetSymbols(usdmSymbols())
	h.coinm.SetSymbols(coinmSymbols())
	// The tests poll every 200ms, far more often than a real deployment;
	// TestVenueWeightLimit covers the venue's limit.
	h.usdm.SetWeightLimit(1_000_000)
	h.coinm.SetWeightLimit(1_000_000)
	cfg := Config{
		USDMREST: h.usdm.RESTURL(), USDMWS: h.usdm.WSURL(),
		CoinMREST: h.coinm.RESTURL(), CoinMWS: h.coinm.WSURL(),
		PollInterval:        200 * time.Millisecond,
		InstrumentsInterval: time.Hour,
		Client:              exchanges.NewClient(2*time.Second, "test"),
		Logger:              slog.New(slog.DiscardHandler),
		Stream:              venuetest.FastStream,
	}
	if mod != nil {
		mod(&cfg)
	}
	h.Start(New(cfg).Run)
	return h
}

func waitSubscribed(t *testing.T, m *exchangetest.BinanceMarket, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitSubscribed(ctx, n); err != nil {
		t.Fatalf("waiting for %d subscriptions: %v", n, err)
	}
}

// val reads a series, NaN when missing.
var val = venuetest.Val

func inst(exchange, market, symbol, coin string) []string {
	return []string{"exchange", exchange, "market", market, "symbol", symbol, "coin", coin}
}

type want struct {
	count    float64
	notional float64
}

func TestVenueLiquidationsAndGauges(t *testing.T) {
	h := start(t, nil)
	waitSubscribed(t, h.usdm, 1)
	waitSubscribed(t, h.coinm, 1)

	s := h.Samples(t)
	// Every trading instrument has pre-initialised counters; the settling one has none.
	if n := len(s.Names("crypto_market_info")); n != 7 {
		t.Errorf("crypto_market_info has %d series, want 7 (4 USDⓈ-M + 3 COIN-M trading)", n)
	}
	if n := len(s.Names("crypto_liquidations_total")); n != 14 {
		t.Errorf("crypto_liquidations_total has %d series, want 14", n)
	}
	if _, ok := s.Get("crypto_market_info", append(inst("binance", "linear", "1000PEPEUSDT", "PEPE"), "quote", "USDT", "contract_type", "perpetual")...); !ok {
		t.Error("1000PEPEUSDT not listed as coin PEPE")
	}
	if _, ok := s.Get("crypto_market_info", append(inst("binance", "inverse", "BTCUSD_261225", "BTC"), "quote", "USD", "contract_type", "future")...); !ok {
		t.Error("BTCUSD_261225 not listed as a future")
	}
	for _, m := range []string{"linear", "inverse"} {
		if v := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", "binance", "market", m); v != 0 {
			t.Errorf("feed_complete %s = %v, want 0", m, v)
		}
	}

	usdmTape := []exchangetest.ForceOrder{
		{Symbol: "BTCUSDT", Side: "SELL", Qty: 0.5, Price: 64000, AvgPrice: 64100.5, FilledQty: 0.5, LastFilledQty: 0.5},
		{Symbol: "BTCUSDT", Side: "BUY", Qty: 2, Price: 66000, AvgPrice: 65950, FilledQty: 1.25, LastFilledQty: 0.25, Status: "PARTIALLY_FILLED"},
		{Symbol: "1000PEPEUSDT", Side: "SELL", Qty: 1e6, Price: 0.012, AvgPrice: 0.0121, FilledQty: 1e6, LastFilledQty: 1e6},
		{Symbol: "BTCUSDT_261225", Side: "BUY", Qty: 0.1, Price: 66500, AvgPrice: 66400, FilledQty: 0.1, LastFilledQty: 0.1},
	}
	coinmTape := []exchangetest.ForceOrder{
		{Symbol: "BTCUSD_PERP", Pair: "BTCUSD", Side: "SELL", Qty: 30, Price: 64000, AvgPrice: 64050, FilledQty: 30, LastFilledQty: 30},
		{Symbol: "ETHUSD_PERP", Pair: "ETHUSD", Side: "BUY", Qty: 7, Price: 3100, AvgPrice: 3099, FilledQty: 7, LastFilledQty: 7},
	}
	expected := map[string]want{}
	add := func(market, symbol, coin, side string, notional float64) {
		k := collectortest.Key("", append(inst("binance", market, symbol, coin), "side", side)...)
		w := expected[k]
		w.count++
		w.notional += notional
		expected[k] = w
	}
	var events []exchangetest.Event
	for _, fo := range usdmTape {
		events = append(events, exchangetest.Event{Frame: exchangetest.ForceOrderFrame(fo)})
	}
	// Garbage around good frames: each counts one decode error and nothing else.
	garbage := [][]byte{
		[]byte(`{"e":"forceOrder","o":{`),
		[]byte(`{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1"}`),
		exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "BTCUSDT", Side: "SELL", Qty: 1, AvgPrice: math.NaN(), FilledQty: 1}),
		exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "NOSUCHUSDT", Side: "SELL", Qty: 1, AvgPrice: 1, FilledQty: 1}),
	}
	for _, g := range garbage {
		events = append(events, exchangetest.Event{Frame: g})
	}
	// A mid-stream disconnect, then the same good events once more.
	events = append(events, exchangetest.Event{Delay: 100 * time.Millisecond, Disconnect: true})
	for _, fo := range usdmTape {
		events = append(events, exchangetest.Event{Frame: exchangetest.ForceOrderFrame(fo)})
	}
	for range 2 {
		for _, fo := range usdmTape {
			sym := h.lookupCoin(fo.Symbol)
			add("linear", fo.Symbol, sym, sideOf(fo.Side), fo.FilledQty*fo.AvgPrice)
		}
	}
	var cevents []exchangetest.Event
	for _, fo := range coinmTape {
		cevents = append(cevents, exchangetest.Event{Frame: exchangetest.ForceOrderFrame(fo)})
		size := map[string]float64{"BTCUSD_PERP": 100, "ETHUSD_PERP": 10}[fo.Symbol]
		add("inverse", fo.Symbol, h.lookupCoin(fo.Symbol), sideOf(fo.Side), fo.FilledQty*size)
	}

	var wg sync.WaitGroup
	var ud, cd []exchangetest.Delivered
	wg.Add(2)
	go func() { defer wg.Done(); ud = h.usdm.Play(events) }()
	go func() { defer wg.Done(); cd = h.coinm.Play(cevents) }()
	wg.Wait()
	for _, d := range append(ud, cd...) {
		if d.Frame != nil && d.Conns != 1 {
			t.Fatalf("frame %s delivered to %d connections", d.Frame, d.Conns)
		}
	}

	total := 0.0
	for _, w := range expected {
		total += w.count
	}
	s = h.Eventually(t, "all liquidations counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= total &&
			val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order") >= float64(len(garbage))
	})
	// Series by series: every counter equals the tape's ground truth.
	for _, k := range s.Names("crypto_liquidations_total") {
		labels := k[len("crypto_liquidations_total"):]
		w := expected[labels]
		if got := s[k]; got != w.count {
			t.Errorf("%s = %v, want %v", k, got, w.count)
		}
		nk := "crypto_liquidation_notional_usd_total" + labels
		if got := s[nk]; !collectortest.Close(got, w.notional) {
			t.Errorf("%s = %v, want %v", nk, got, w.notional)
		}
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order"); got != float64(len(garbage)) {
		t.Errorf("usdm decode errors = %v, want %d", got, len(garbage))
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "coinm_force_order"); got != 0 {
		t.Errorf("coinm decode errors = %v, want 0", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "usdm_force_order"); got != 2 {
		t.Errorf("usdm connects = %v, want 2 (one disconnect)", got)
	}
	for _, st := range []string{"usdm_force_order", "coinm_force_order"} {
		if got := val(s, "crypto_exporter_stream_up", "exchange", "binance", "stream", st); got != 1 {
			t.Errorf("%s up = %v", st, got)
		}
	}
	if got := val(s, "crypto_liquidation_largest_usd", append(inst("binance", "inverse", "BTCUSD_PERP", "BTC"), "side", "long")...); got != 3000 {
		t.Errorf("largest BTCUSD_PERP long = %v, want 3000", got)
	}

	// Polled gauges, computed from the fake's state by the project's rules.
	s = h.Eventually(t, "open interest of every instrument", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_usd")) == 7 && len(s.Names("crypto_volume_24h_usd")) == 7
	})
	type g struct {
		name   string
		labels []string
		want   float64
	}
	btc := inst("binance", "linear", "BTCUSDT", "BTC")
	eth := inst("binance", "linear", "ETHUSDT", "ETH")
	pepe := inst("binance", "linear", "1000PEPEUSDT", "PEPE")
	fut := inst("binance", "linear", "BTCUSDT_261225", "BTC")
	cbtc := inst("binance", "inverse", "BTCUSD_PERP", "BTC")
	ceth := inst("binance", "inverse", "ETHUSD_PERP", "ETH")
	cfut := inst("binance", "inverse", "BTCUSD_261225", "BTC")
	for _, c := range []g{
		{"crypto_mark_price_usd", btc, 65000.5},
		{"crypto_mark_price_usd", pepe, 0.0125},
		{"crypto_mark_price_usd", cbtc, 65010},
		{"crypto_funding_rate_ratio", btc, 0.0001},
		{"crypto_funding_rate_ratio", eth, -0.00025},
		{"crypto_funding_rate_ratio", ceth, 0.0002},
		{"crypto_funding_interval_seconds", btc, 8 * 3600},
		{"crypto_funding_interval_seconds", eth, 4 * 3600},
		{"crypto_funding_next_timestamp_seconds", btc, 1_800_000_000},
		{"crypto_open_interest_coins", btc, 1000.5},
		{"crypto_open_interest_usd", btc, 1000.5 * 65000.5},
		{"crypto_open_interest_coins", pepe, 4e9 * 1000},
		{"crypto_open_interest_usd", pepe, 4e9 * 0.0125},
		{"crypto_open_interest_usd", fut, 50 * 66000},
		{"crypto_open_interest_usd", cbtc, 300000 * 100},
		{"crypto_open_interest_coins", cbtc, 300000 * 100 / 65010.0},
		{"crypto_open_interest_usd", ceth, 500000 * 10},
		{"crypto_open_interest_usd", cfut, 12000 * 100},
		{"crypto_volume_24h_usd", btc, 4.5e9},
		{"crypto_volume_24h_usd", pepe, 1.2e9},
		{"crypto_volume_24h_usd", cbtc, 2e6 * 100},
		{"crypto_volume_24h_usd", ceth, 4e6 * 10},
	} {
		got, ok := s.Get(c.name, c.labels...)
		if !ok || !collectortest.Close(got, c.want) {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// Long/short account ratios of the default coins listed as <COIN>USDT.
	s = h.Eventually(t, "long/short ratios", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_long_short_account_ratio")) == 2
	})
	for sym, want := range map[string]float64{"BTCUSDT": 1.2345, "ETHUSDT": 0.8} {
		l := inst("binance", "linear", sym, sym[:3])
		if got := val(s, "crypto_long_short_account_ratio", l...); got != want {
			t.Errorf("long/short ratio %s = %v, want %v", sym, got, want)
		}
	}
	if got := val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_long_short_ratio"); got != 1 {
		t.Errorf("long/short poll success %v", got)
	}
	// Delivery contracts have no funding series.
	for _, l := range [][]string{fut, cfut} {
		if _, ok := s.Get("crypto_funding_rate_ratio", l...); ok {
			t.Errorf("funding rate exported for delivery contract %v", l)
		}
	}
	for _, ep := range []string{"exchange_info", "funding_info", "premium_index", "ticker_24hr", "open_interest"} {
		for _, m := range []string{"usdm", "coinm"} {
			if got := val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", m+"_"+ep); got != 1 {
				t.Errorf("poll_success %s_%s = %v", m, ep, got)
			}
		}
	}
}

// lookupCoin is the coin the test expects for a fake symbol.
func (h *harness) lookupCoin(symbol string) string {
	for _, s := range append(usdmSymbols(), coinmSymbols()...) {
		if s.Symbol == symbol {
			c, _ := exchanges.NormalizeCoin(s.BaseAsset)
			return c
		}
	}
	return ""
}

func sideOf(binanceSide string) string {
	if binanceSide == "SELL" {
		return "long"
	}
	return "short"
}

func TestVenueRateLimitHonoursRetryAfter(t *testing.T) {
	usdmPremium := "/fapi/v1/premiumIndex"
	h := start(t, func(c *Config) { c.Markets = []string{usdm} })
	h.usdm.FailNext(usdmPremium, 1, 429, 1, "")
	// The first premiumIndex poll gets the 429.
	s := h.Eventually(t, "a failed premiumIndex poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_premium_index") >= 1
	})
	if got := val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_premium_index"); got != 0 {
		t.Errorf("poll_success after 429 = %v", got)
	}
	failedAt := time.Now()
	n := h.usdm.Requests(usdmPremium)
	// No request to this market for the Retry-After second, although the poll interval is 200ms.
	time.Sleep(700 * time.Millisecond)
	if got := h.usdm.Requests(usdmPremium); got != n {
		t.Errorf("%d premiumIndex requests within Retry-After", got-n)
	}
	h.Eventually(t, "recovery after Retry-After", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_premium_index") == 1
	})
	if d := time.Since(failedAt); d < 800*time.Millisecond {
		t.Errorf("recovered %v after the 429; Retry-After was 1s", d)
	}
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	h := start(t, func(c *Config) { c.Markets = []string{usdm} })
	btc := inst("binance", "linear", "BTCUSDT", "BTC")
	h.Eventually(t, "mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 65000.5
	})
	path := "/fapi/v1/premiumIndex"
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"500", func() { h.usdm.FailNext(path, 1, 500, 0, "") }},
		{"503 maintenance", func() { h.usdm.FailNext(path, 1, 503, 0, "<html>maintenance</html>") }},
		{"malformed body", func() { h.usdm.FailNext(path, 1, 200, 0, `[{"symbol":"BTCUSDT","markPrice":`) }},
		{"NaN in body", func() { h.usdm.FailNext(path, 1, 200, 0, `[{"symbol":"BTCUSDT","markPrice":"NaN"}]`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := val(h.Samples(t), "crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_premium_index")
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_premium_index") > before
			})
			if got := val(s, "crypto_mark_price_usd", btc...); got != 65000.5 {
				t.Errorf("mark price after a failed poll = %v, want the last good 65000.5", got)
			}
			// Values expire after three poll periods without a good poll, so
			// let one succeed before the next fault.
			h.Eventually(t, "a good poll again", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_premium_index") == 1
			})
		})
	}
	// Polls that keep failing make the values go stale instead of freezing.
	h.usdm.FailNext(path, 6, 502, 0, "")
	h.Eventually(t, "stale mark price removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_mark_price_usd", btc...)
		return !ok
	})
	// A price change reaches the gauge at the next good poll.
	h.usdm.UpdateSymbol("BTCUSDT", func(s *exchangetest.BinanceSymbol) { s.MarkPrice = 70000 })
	h.Eventually(t, "new mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 70000
	})
}

func TestVenueTimeoutIsAFailedPoll(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Markets = []string{usdm}
		c.Client = exchanges.NewClient(100*time.Millisecond, "test")
	})
	h.Eventually(t, "first good ticker poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_ticker_24hr") == 1
	})
	h.usdm.SetLatency("/fapi/v1/ticker/24hr", 300*time.Millisecond)
	h.Eventually(t, "a timed-out ticker poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_ticker_24hr") == 0 &&
			val(s, "crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_ticker_24hr") >= 1
	})
}

func TestVenueNewListingIsDiscoveredEarly(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Markets = []string{usdm}
		c.RefreshSpacing = 100 * time.Millisecond
	})
	waitSubscribed(t, h.usdm, 1)
	syms := usdmSymbols()
	syms = append(syms, exchangetest.BinanceSymbol{Symbol: "NEWUSDT", Pair: "NEWUSDT", BaseAsset: "NEW", QuoteAsset: "USDT", MarginAsset: "USDT",
		ContractType: "PERPETUAL", Status: "TRADING", MarkPrice: 2, LastFundingRate: 0.0001, OpenInterest: 10})
	h.usdm.SetSymbols(syms)
	frame := exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "NEWUSDT", Side: "SELL", Qty: 100, Price: 2, AvgPrice: 2, FilledQty: 100})
	h.usdm.Play([]exchangetest.Event{{Frame: frame}})
	newInst := inst("binance", "linear", "NEWUSDT", "NEW")
	h.Eventually(t, "NEWUSDT discovered after its first liquidation", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(newInst, "side", "long")...)
		return ok
	})
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order"); got != 1 {
		t.Errorf("decode errors = %v, want 1 (the liquidation before discovery)", got)
	}
	h.usdm.Play([]exchangetest.Event{{Frame: frame}})
	h.Eventually(t, "NEWUSDT liquidation counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", append(newInst, "side", "long")...) == 200
	})
	// Delisting: the symbol stops trading and its series go at the next discovery.
	h.usdm.UpdateSymbol("NEWUSDT", func(s *exchangetest.BinanceSymbol) { s.Status = "SETTLING" })
	h.usdm.Play([]exchangetest.Event{{Frame: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "NOTLISTED", Side: "SELL", Qty: 1, AvgPrice: 1, FilledQty: 1})}})
	h.Eventually(t, "NEWUSDT removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(newInst, "side", "long")...)
		return !ok
	})
}

func TestVenueCoinAllowlist(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Markets = []string{usdm}
		c.Coins = []string{"ETH"}
	})
	waitSubscribed(t, h.usdm, 1)
	h.usdm.Play([]exchangetest.Event{
		{Frame: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "BTCUSDT", Side: "SELL", Qty: 1, AvgPrice: 1, FilledQty: 1})},
		{Frame: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "ETHUSDT", Side: "BUY", Qty: 2, AvgPrice: 3000, FilledQty: 2})},
	})
	s := h.Eventually(t, "ETH liquidation", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") == 1
	})
	if n := len(s.Names("crypto_market_info")); n != 1 {
		t.Errorf("%d instruments with coins [ETH], want 1", n)
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order"); got != 0 {
		t.Errorf("a liquidation of an excluded coin counted as a decode error (%v)", got)
	}
}

func TestOpenInterestPlan(t *testing.T) {
	for _, tc := range []struct {
		n, weight int
		interval  time.Duration
		batch     int
		cycle     time.Duration
	}{
		{600, 500, 30 * time.Second, 250, 90 * time.Second},
		{40, 500, 30 * time.Second, 40, 30 * time.Second},
		{10, 60, time.Second, 1, 10 * time.Second},
		{5, 1, time.Second, 1, 5 * time.Second},
	} {
		batch, cycle := openInterestPlan(tc.n, tc.weight, tc.interval)
		if batch != tc.batch || cycle != tc.cycle {
			t.Errorf("openInterestPlan(%d, %d, %v) = %d, %v; want %d, %v", tc.n, tc.weight, tc.interval, batch, cycle, tc.batch, tc.cycle)
		}
	}
}

func TestVenueOpenInterestStaysWithinBudget(t *testing.T) {
	// 60 weight per minute at a 1s interval: one symbol per round.
	h := start(t, func(c *Config) {
		c.Markets = []string{usdm}
		c.PollInterval = time.Second
		c.OpenInterestWeightPerMinute = 60
	})
	h.Eventually(t, "first open interest round", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_coins")) >= 1
	})
	n0 := h.usdm.Requests("/fapi/v1/openInterest")
	time.Sleep(2500 * time.Millisecond)
	n := h.usdm.Requests("/fapi/v1/openInterest") - n0
	if n < 1 || n > 3 {
		t.Errorf("%d open interest requests in 2.5 rounds, want one per round", n)
	}
}

func TestVenueWeightLimit(t *testing.T) {
	// Binance answers 429 with Retry-After once a minute's weight is spent;
	// the market then stops polling until the Retry-After has passed.
	h := start(t, func(c *Config) { c.Markets = []string{usdm} })
	h.usdm.SetWeightLimit(100)
	s := h.Eventually(t, "429 from the weight limit", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_ticker_24hr") >= 1 ||
			val(s, "crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_premium_index") >= 1
	})
	_ = s
	total := func() int {
		n := 0
		for _, p := range []string{"/fapi/v1/premiumIndex", "/fapi/v1/ticker/24hr", "/fapi/v1/openInterest", "/fapi/v1/exchangeInfo"} {
			n += h.usdm.Requests(p)
		}
		return n
	}
	// Retry-After is the rest of the minute (at least 1s): during the next
	// 700ms at most the requests already in flight arrive.
	n := total()
	time.Sleep(700 * time.Millisecond)
	if extra := total() - n; extra > OpenInterestWorkers {
		t.Errorf("%d requests while Binance asked to back off", extra)
	}
}

func TestVenueStopsOnCancel(t *testing.T) {
	h := start(t, nil)
	waitSubscribed(t, h.usdm, 1)
	start := time.Now()
	h.Stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %v", d)
	}
	_ = fmt.Sprint()
}

func TestVenueOversizedFrame(t *testing.T) {
	h := start(t, func(c *Config) { c.Markets = []string{usdm} })
	waitSubscribed(t, h.usdm, 1)
	huge := make([]byte, 0, 2<<20)
	huge = append(huge, `{"e":"forceOrder","pad":"`...)
	for len(huge) < 2<<20 {
		huge = append(huge, "xxxxxxxxxxxxxxxx"...)
	}
	huge = append(huge, `"}`...)
	good := exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "BTCUSDT", Side: "SELL", Qty: 1, AvgPrice: 50000, FilledQty: 1})
	h.usdm.Play([]exchangetest.Event{{Frame: good}, {Frame: huge}})
	h.Eventually(t, "the reconnect after the oversized frame", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "usdm_force_order") == 2 &&
			val(s, "crypto_exporter_stream_up", "exchange", "binance", "stream", "usdm_force_order") == 1
	})
	h.usdm.Play([]exchangetest.Event{{Frame: good}})
	btc := append(inst("binance", "linear", "BTCUSDT", "BTC"), "side", "long")
	s := h.Eventually(t, "both good liquidations", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btc...) == 2
	})
	if got := val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order"); got != 1 {
		t.Errorf("decode errors %v, want 1 for the oversized frame", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "usdm_force_order"); got != 2 {
		t.Errorf("connects %v, want 2 (the oversized frame closes the connection)", got)
	}
	if got := val(s, "crypto_liquidation_notional_usd_total", btc...); got != 100000 {
		t.Errorf("notional %v, want 100000", got)
	}
}
