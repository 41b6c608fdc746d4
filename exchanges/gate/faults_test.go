package gate

import (
	"log/slog"
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
		c.Settles = []string{SettleUSDT}
		c.Logger = logs.Logger()
		c.Stream = faultsuite.Stream
		if mod != nil {
			mod(c)
		}
	})
	return h, logs
}

// waitUpFaults waits for the stream, then until the exporter's start
// second has passed (liquidations in it are ambiguous in Gate's history).
func (h *harness) waitUpFaults(t *testing.T) {
	t.Helper()
	h.waitUp(t, "usdt_liquidations")
	time.Sleep(time.Until(h.v.epoch.Truncate(time.Second).Add(1100 * time.Millisecond)))
}

// faultVenue describes a running venue for the shared fault scenarios.
func faultVenue(t *testing.T) *faultsuite.Venue {
	h, logs := startFaults(t, nil)
	return &faultsuite.Venue{
		Samples: h.Samples, WaitUp: func(t *testing.T) { h.waitUpFaults(t) }, Fake: h.fake, Logs: logs,
		Exchange: Name, Stream: stream("usdt_liquidations"), Series: append(instLabels("linear", "BTC_USDT", "BTC"), "side", "long"),
		// 5000 contracts of 0.0001 BTC at 60000 = 30000 USD; Gate pushes at
		// most one order per contract and second, so they are a second apart.
		Liquidation: func(k int) []byte {
			return exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: "BTC_USDT", Size: -5000, Price: 60000,
				TimeMs: time.Now().UnixMilli() + int64(k)*1000})
		},
		Notional: 30000,
		// No SetAnswerHeartbeats: the half-open peer is TestVenueHeartbeat.
	}
}

// TestFaultsStream runs the shared WebSocket fault scenarios.
func TestFaultsStream(t *testing.T) { faultsuite.Run(t, faultVenue) }

func TestFaultsRESTRetryAfterOn403And418(t *testing.T) {
	t.Parallel()
	faultsuite.RetryAfterOn403And418(t, func(t *testing.T) *faultsuite.REST {
		h, logs := startFaults(t, func(c *Config) { c.PollInterval = 200 * time.Millisecond })
		return &faultsuite.REST{Samples: h.Samples, Fake: h.fake, Logs: logs, Path: usdtTickers,
			Endpoint: endpoint("usdt_tickers"), Mark: instLabels("linear", "BTC_USDT", "BTC"), MarkValue: 60000.5}
	})
}

// The 5xx outage and the malformed bodies are TestVenuePollFailuresKeepLastValues.
func TestFaultsRESTTimeout(t *testing.T) {
	t.Parallel()
	h, logs := startFaults(t, func(c *Config) {
		c.PollInterval = 200 * time.Millisecond
		c.Client = exchanges.NewClient(150*time.Millisecond, "test")
	})
	h.waitPolls(t, "usdt_tickers")
	btc := instLabels("linear", "BTC_USDT", "BTC")
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpoint("usdt_tickers")...)
	}
	before := failures(h.Samples(t))
	h.fake.SetLatency(usdtTickers, time.Second)
	s := h.Eventually(t, "the timeout counted", func(s collectortest.Samples) bool { return failures(s) > before })
	h.fake.SetLatency(usdtTickers, 0)
	if got := val(s, "crypto_mark_price_usd", btc...); got != 60000.5 {
		t.Errorf("mark after a timed-out poll = %v, want the last value", got)
	}
	h.fake.UpdateContract("BTC_USDT", func(c *exchangetest.GateContract) { c.MarkPrice = 61000 })
	h.Eventually(t, "new values", func(s collectortest.Samples) bool { return val(s, "crypto_mark_price_usd", btc...) == 61000 })
	if n := logs.Count(slog.LevelWarn, "poll failed"); n < 1 {
		t.Error("the timeout was not logged")
	}
}

func TestFaultsListingAndDelisting(t *testing.T) {
	t.Parallel()
	h, _ := startFaults(t, func(c *Config) {
		c.PollInterval = 200 * time.Millisecond
		c.InstrumentsInterval = 200 * time.Millisecond
	})
	h.waitUpFaults(t)
	s := h.waitPolls(t, "usdt_tickers")
	eth := instLabels("linear", "ETH_USDT", "ETH")
	if _, ok := s.Get("crypto_mark_price_usd", eth...); !ok {
		t.Fatal("ETH_USDT not exported before the delisting")
	}
	var list []exchangetest.GateContract
	for _, c := range h.fake.Contracts() {
		if c.Name != "ETH_USDT" {
			list = append(list, c)
		}
	}
	list = append(list, exchangetest.GateContract{Settle: "usdt", Name: "SOL_USDT", Type: "direct", QuantoMultiplier: 1, MarkPrice: 150,
		FundingRate: 0.0001, FundingInterval: 28800, FundingNextApply: time.Now().Unix() + 3600, TotalSize: 10, Volume24hQuote: 1e6})
	h.fake.SetContracts(list)
	sol := instLabels("linear", "SOL_USDT", "SOL")
	s = h.Eventually(t, "SOL_USDT listed and ETH_USDT delisted", func(s collectortest.Samples) bool {
		_, ethLiq := s.Get("crypto_liquidations_total", append(eth, "side", "long")...)
		return val(s, "crypto_mark_price_usd", sol...) == 150 && !ethLiq
	})
	for _, name := range []string{"crypto_mark_price_usd", "crypto_open_interest_usd", "crypto_funding_rate_ratio"} {
		if _, ok := s.Get(name, eth...); ok {
			t.Errorf("%s of the delisted ETH_USDT still exported", name)
		}
	}
	// A liquidation of the new listing counts.
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: "SOL_USDT", Size: -3, Price: 150})}})
	s = h.Eventually(t, "the new listing counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", append(sol, "side", "long")...) == 1
	})
	if got := s.Sum("crypto_liquidations_total", "exchange", "gate"); got != 1 {
		t.Errorf("liquidations %v, want 1", got)
	}
}
