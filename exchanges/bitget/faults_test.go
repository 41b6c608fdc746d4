package bitget

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest/faultsuite"
)

func startFaults(t *testing.T, mod func(*Config)) (*harness, *exchangetest.LogRecorder) {
	t.Helper()
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) {
		c.Logger = logs.Logger()
		c.Stream = faultsuite.Stream
		if mod != nil {
			mod(c)
		}
	})
	return h, logs
}

// faultVenue describes a running venue for the shared fault scenarios.
func faultVenue(t *testing.T) *faultsuite.Venue {
	h, logs := startFaults(t, nil)
	return &faultsuite.Venue{
		Samples: h.Samples, WaitUp: func(t *testing.T) { h.waitUp(t) }, Fake: h.fake, Logs: logs,
		Exchange: Name, Stream: streamLabels, Series: withSide(inst("linear", "BTCUSDT", "BTC"), "long"),
		// 0.5 x 60000 = 30000 USD, a second apart so that every one is new.
		Liquidation: func(k int) []byte {
			return exchangetest.BitgetLiquidationFrame(exchangetest.BitgetUSDTFutures, exchangetest.BitgetLiquidation{Symbol: "BTCUSDT",
				Side: "sell", Amount: 0.5, Price: 60000, TS: time.Now().UnixMilli() + int64(k)*1000})
		},
		Notional:            30000,
		SetAnswerHeartbeats: h.fake.SetAnswerPings,
	}
}

// TestFaultsStream runs the shared WebSocket fault scenarios.
func TestFaultsStream(t *testing.T) { faultsuite.Run(t, faultVenue) }

func TestFaultsRESTRetryAfterOn403And418(t *testing.T) {
	t.Parallel()
	faultsuite.RetryAfterOn403And418(t, func(t *testing.T) *faultsuite.REST {
		h, logs := startFaults(t, func(c *Config) { c.PollInterval = 200 * time.Millisecond; c.Liquidations = false })
		return &faultsuite.REST{Samples: h.Samples, Fake: h.fake, Logs: logs, Path: "/api/v2/mix/market/tickers?productType=USDT-FUTURES",
			Endpoint: endpoint("usdt_futures_tickers"), Mark: inst("linear", "BTCUSDT", "BTC"), MarkValue: 60000}
	})
}

func TestFaultsRESTOutageMalformedAndTimeout(t *testing.T) {
	t.Parallel()
	h, logs := startFaults(t, func(c *Config) {
		c.PollInterval = 200 * time.Millisecond
		c.Liquidations = false
		c.Client = exchanges.NewClient(150*time.Millisecond, "test")
	})
	h.waitPolls(t)
	const path = "/api/v2/mix/market/tickers?productType=USDT-FUTURES"
	ep := endpoint("usdt_futures_tickers")
	btc := inst("linear", "BTCUSDT", "BTC")
	failures := func(s collectortest.Samples) float64 { return val(s, "crypto_exporter_poll_failures_total", ep...) }

	// Maintenance: 5xx for several polls, values kept, then new values.
	before := failures(h.Samples(t))
	h.fake.FailNext(path, 4, http.StatusServiceUnavailable, 0, "<html>maintenance</html>")
	s := h.Eventually(t, "the first 503", func(s collectortest.Samples) bool { return failures(s) > before })
	if got := val(s, "crypto_mark_price_usd", btc...); got != 60000 {
		t.Errorf("mark during the outage = %v, want the last value", got)
	}
	h.fake.UpdateInstrument("BTCUSDT", func(in *exchangetest.BitgetInstrument) { in.MarkPrice = 61000 })
	s = h.Eventually(t, "recovery with new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 61000
	})
	if got := failures(s); got != before+4 {
		t.Errorf("failures %v, want %v (four 503s)", got, before+4)
	}
	if got := val(s, "crypto_exporter_poll_success", ep...); got != 1 {
		t.Errorf("poll_success %v after the outage", got)
	}

	// A malformed body and a timeout are failed polls that keep values.
	for _, tc := range []struct {
		name   string
		inject func()
		undo   func()
	}{
		{"malformed body", func() { h.fake.FailNext(path, 1, http.StatusOK, 0, `{"code":"00000","data":[{"symbol":"BTC`) }, func() {}},
		{"timeout", func() { h.fake.SetLatency(path, time.Second) }, func() { h.fake.SetLatency(path, 0) }},
	} {
		before := failures(h.Samples(t))
		tc.inject()
		s := h.Eventually(t, tc.name+" counted", func(s collectortest.Samples) bool { return failures(s) > before })
		tc.undo()
		if got := val(s, "crypto_mark_price_usd", btc...); got != 61000 {
			t.Errorf("%s: mark = %v, want the last value", tc.name, got)
		}
		h.waitPolls(t)
	}
	if n := logs.Count(slog.LevelWarn, "poll failed"); n < 6 {
		t.Errorf("%d failed polls logged, want >= 6", n)
	}
}

func TestFaultsListingAndDelisting(t *testing.T) {
	t.Parallel()
	h, _ := startFaults(t, func(c *Config) { c.InstrumentsInterval = 200 * time.Millisecond; c.Liquidations = false })
	s := h.waitPolls(t)
	eth := inst("linear", "ETHUSDT", "ETH")
	if _, ok := s.Get("crypto_mark_price_usd", eth...); !ok {
		t.Fatal("ETHUSDT not exported before the delisting")
	}
	var list []exchangetest.BitgetInstrument
	for _, in := range h.fake.Instruments() {
		if in.Symbol != "ETHUSDT" {
			list = append(list, in)
		}
	}
	list = append(list, exchangetest.BitgetInstrument{ProductType: exchangetest.BitgetUSDTFutures, Symbol: "SOLUSDT",
		BaseCoin: "SOL", QuoteCoin: "USDT", SymbolType: "perpetual", MarkPrice: 150, HoldingAmount: 10, USDTVolume: 1,
		NextFunding: 1, RatePeriod: 8})
	h.fake.SetInstruments(list)
	sol := inst("linear", "SOLUSDT", "SOL")
	s = h.Eventually(t, "SOLUSDT listed and ETHUSDT delisted", func(s collectortest.Samples) bool {
		_, ethInfo := s.Get("crypto_market_info", append(eth, "quote", "USDT", "contract_type", "perpetual")...)
		return val(s, "crypto_mark_price_usd", sol...) == 150 && !ethInfo
	})
	for _, name := range []string{"crypto_mark_price_usd", "crypto_open_interest_coins", "crypto_funding_rate_ratio"} {
		if _, ok := s.Get(name, eth...); ok {
			t.Errorf("%s of the delisted ETHUSDT still exported", name)
		}
	}
	if got := val(s, "crypto_market_info", append(sol, "quote", "USDT", "contract_type", "perpetual")...); got != 1 {
		t.Errorf("market_info SOLUSDT = %v", got)
	}
}
