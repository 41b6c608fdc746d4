package bitmex

import (
	"fmt"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
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

func decodeErrors(s collectortest.Samples) float64 {
	return val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...)
}

// faultVenue describes a running venue for the shared fault scenarios.
func faultVenue(t *testing.T) *faultsuite.Venue {
	h, logs := startFaults(t, nil)
	return &faultsuite.Venue{
		Samples: h.Samples, WaitUp: func(t *testing.T) { h.waitUp(t) }, Fake: h.fake, Logs: logs,
		Exchange: Name, Stream: streamLabels, Series: append(instLabels("inverse", "XBTUSD", "BTC"), "side", "long"),
		// 30000 contracts of 1 USD.
		Liquidation: func(k int) []byte {
			return exchangetest.BitMEXLiquidationFrame("insert", exchangetest.BitMEXOrder{OrderID: fmt.Sprintf("fault-%d", k),
				Symbol: "XBTUSD", Side: "Sell", Price: 60000, LeavesQty: 30000})
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
		return &faultsuite.REST{Samples: h.Samples, Fake: h.fake, Logs: logs, Path: exchangetest.BitMEXInstrumentActivePath,
			Endpoint: endpointLabels, Mark: instLabels("inverse", "XBTUSD", "BTC"), MarkValue: 60000.5}
	})
}

func TestFaultsListingAndDelisting(t *testing.T) {
	t.Parallel()
	h, _ := startFaults(t, func(c *Config) { c.PollInterval = 200 * time.Millisecond })
	h.waitUp(t)
	s := h.waitPoll(t)
	eth := instLabels("linear", "ETHUSDT", "ETH")
	if _, ok := s.Get("crypto_mark_price_usd", eth...); !ok {
		t.Fatal("ETHUSDT not exported before the delisting")
	}
	var list []exchangetest.BitMEXInstrument
	for _, in := range h.fake.Instruments() {
		if in.Symbol != "ETHUSDT" {
			list = append(list, in)
		}
	}
	list = append(list, exchangetest.BitMEXInstrument{Symbol: "SOLUSDT", RootSymbol: "SOL", Typ: exchangetest.BitMEXPerpetual, Underlying: "SOL",
		QuoteCurrency: "USDT", SettlCurrency: "USDt", Multiplier: 1, UnderlyingToPositionMultiplier: 1e4,
		FundingRate: 0.0001, FundingTimestamp: time.Now().Add(time.Hour), FundingInterval: 8 * time.Hour,
		OpenInterest: 1e6, MarkPrice: 150, ForeignNotional24h: 5e5})
	h.fake.SetInstruments(list)
	sol := instLabels("linear", "SOLUSDT", "SOL")
	s = h.Eventually(t, "SOLUSDT listed and ETHUSDT delisted", func(s collectortest.Samples) bool {
		_, ethLiq := s.Get("crypto_liquidations_total", append(eth, "side", "long")...)
		return val(s, "crypto_mark_price_usd", sol...) == 150 && !ethLiq
	})
	for _, name := range []string{"crypto_mark_price_usd", "crypto_open_interest_usd", "crypto_funding_rate_ratio"} {
		if _, ok := s.Get(name, eth...); ok {
			t.Errorf("%s of the delisted ETHUSDT still exported", name)
		}
	}
	if _, ok := s.Get("crypto_liquidations_total", append(sol, "side", "long")...); !ok {
		t.Error("no liquidation series for the new SOLUSDT")
	}
	// A liquidation of the delisted instrument is dropped and counted.
	before := decodeErrors(s)
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.BitMEXLiquidationFrame("insert",
		exchangetest.BitMEXOrder{OrderID: "eth-gone", Symbol: "ETHUSDT", Side: "Sell", Price: 3000, LeavesQty: 1e4})}})
	s = h.Eventually(t, "the delisted liquidation dropped", func(s collectortest.Samples) bool { return decodeErrors(s) > before })
	if got := s.Sum("crypto_liquidations_total", "exchange", Name); got != 0 {
		t.Errorf("liquidations %v, want 0", got)
	}
}
