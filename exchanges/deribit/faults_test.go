package deribit

import (
	"fmt"
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

func decodeErrors(s collectortest.Samples) float64 {
	return val(s, "crypto_exporter_stream_decode_errors_total", streamLabels()...)
}

// faultVenue describes a running venue for the shared fault scenarios:
// BTC-PERPETUAL long liquidations of 30000 USD.
func faultVenue(t *testing.T) *faultsuite.Venue {
	h, logs := startFaults(t, nil)
	return &faultsuite.Venue{
		Samples: h.Samples, WaitUp: func(t *testing.T) { h.waitUp(t) }, Fake: h.fake, Logs: logs,
		Exchange: Name, Stream: streamLabels(), Series: append(inst("inverse", "BTC-PERPETUAL", "BTC"), "side", "long"),
		Liquidation: func(k int) []byte {
			return exchangetest.DeribitTradesFrame(Channel("BTC"), exchangetest.DeribitTrade{InstrumentName: "BTC-PERPETUAL",
				Direction: "sell", Amount: 30000, Price: 60000, Liquidation: "T", TradeID: fmt.Sprintf("fault-%d", k)})
		},
		Notional:            30000,
		SetAnswerHeartbeats: h.fake.SetAnswerHeartbeats,
	}
}

// TestFaultsStream runs the shared WebSocket fault scenarios.
func TestFaultsStream(t *testing.T) { faultsuite.Run(t, faultVenue) }

func endpointLabels(ep string) []string { return []string{"exchange", "deribit", "endpoint", ep} }

func (h *harness) waitPoll(t *testing.T, ep string) collectortest.Samples {
	t.Helper()
	return h.Eventually(t, ep+" polled", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", endpointLabels(ep)...) == 1
	})
}

func TestFaultsRESTRetryAfterOn403And418(t *testing.T) {
	t.Parallel()
	faultsuite.RetryAfterOn403And418(t, func(t *testing.T) *faultsuite.REST {
		h, logs := startFaults(t, func(c *Config) { c.PollInterval = 200 * time.Millisecond })
		return &faultsuite.REST{Samples: h.Samples, Fake: h.fake, Logs: logs, Path: exchangetest.DeribitBookSummaryPath + "?currency=BTC",
			Endpoint: endpointLabels("btc_book_summary"), Mark: inst("inverse", "BTC-PERPETUAL", "BTC"), MarkValue: 60000.5}
	})
}

func TestFaultsRESTOutageMalformedAndTimeout(t *testing.T) {
	t.Parallel()
	h, logs := startFaults(t, func(c *Config) {
		c.PollInterval = 200 * time.Millisecond
		c.Client = exchanges.NewClient(150*time.Millisecond, "test")
	})
	const ep = "btc_book_summary"
	h.waitPoll(t, ep)
	path := exchangetest.DeribitBookSummaryPath + "?currency=BTC"
	btc := inst("inverse", "BTC-PERPETUAL", "BTC")
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpointLabels(ep)...)
	}

	// Maintenance: 5xx for several polls, values kept, then new values.
	before := failures(h.Samples(t))
	h.fake.FailNext(path, 4, http.StatusServiceUnavailable, 0, "<html>maintenance</html>")
	s := h.Eventually(t, "the first 503", func(s collectortest.Samples) bool { return failures(s) > before })
	if got := val(s, "crypto_mark_price_usd", btc...); got != 60000.5 {
		t.Errorf("mark during the outage = %v, want the last value", got)
	}
	h.fake.UpdateInstrument("BTC-PERPETUAL", func(in *exchangetest.DeribitInstrument) { in.MarkPrice = 61000 })
	s = h.Eventually(t, "recovery with new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 61000
	})
	if got := failures(s); got != before+4 {
		t.Errorf("failures %v, want %v (four 503s)", got, before+4)
	}

	// A malformed body and a timeout are failed polls that keep values.
	for _, tc := range []struct {
		name   string
		inject func()
		undo   func()
	}{
		{"malformed body", func() {
			h.fake.FailNext(path, 1, http.StatusOK, 0, `{"jsonrpc":"2.0","result":[{"instrument_name":"BTC`)
		}, func() {}},
		{"timeout", func() { h.fake.SetLatency(path, time.Second) }, func() { h.fake.SetLatency(path, 0) }},
	} {
		before := failures(h.Samples(t))
		tc.inject()
		s := h.Eventually(t, tc.name+" counted", func(s collectortest.Samples) bool { return failures(s) > before })
		tc.undo()
		if got := val(s, "crypto_mark_price_usd", btc...); got != 61000 {
			t.Errorf("%s: mark = %v, want the last value", tc.name, got)
		}
		h.waitPoll(t, ep)
	}
	if n := logs.Count(slog.LevelWarn, "poll failed"); n < 6 {
		t.Errorf("%d failed polls logged, want >= 6", n)
	}
}

func TestFaultsListingAndDelisting(t *testing.T) {
	t.Parallel()
	h, _ := startFaults(t, func(c *Config) {
		c.InstrumentsInterval = 200 * time.Millisecond
		c.PollInterval = 200 * time.Millisecond
	})
	h.waitUp(t)
	s := h.waitPoll(t, "eth_book_summary")
	eth := inst("inverse", "ETH-PERPETUAL", "ETH")
	if _, ok := s.Get("crypto_mark_price_usd", eth...); !ok {
		t.Fatal("ETH-PERPETUAL not exported before the delisting")
	}
	var list []exchangetest.DeribitInstrument
	for _, in := range h.fake.Instruments() {
		if in.Name != "ETH-PERPETUAL" {
			list = append(list, in)
		}
	}
	list = append(list, exchangetest.DeribitInstrument{Name: "SOL_USDC-PERPETUAL", Currency: "USDC", BaseCurrency: "SOL", QuoteCurrency: "USDC",
		SettlementCurrency: "USDC", InstrumentType: "linear", SettlementPeriod: "perpetual", ContractSize: 0.1,
		MarkPrice: 150, OpenInterest: 1000, VolumeUSD: 1e6, Funding8h: 0.0001})
	h.fake.SetInstruments(list)
	sol := inst("linear", "SOL_USDC-PERPETUAL", "SOL")
	s = h.Eventually(t, "SOL listed and ETH-PERPETUAL delisted", func(s collectortest.Samples) bool {
		_, ethLiq := s.Get("crypto_liquidations_total", append(eth, "side", "long")...)
		return val(s, "crypto_mark_price_usd", sol...) == 150 && !ethLiq
	})
	for _, name := range []string{"crypto_mark_price_usd", "crypto_open_interest_usd", "crypto_funding_rate_ratio"} {
		if _, ok := s.Get(name, eth...); ok {
			t.Errorf("%s of the delisted ETH-PERPETUAL still exported", name)
		}
	}
	// A liquidation of the delisted instrument is dropped and counted; one
	// of the new listing is counted.
	before := decodeErrors(s)
	h.fake.Play([]exchangetest.Event{
		{Frame: exchangetest.DeribitTradesFrame(Channel("ETH"), exchangetest.DeribitTrade{InstrumentName: "ETH-PERPETUAL",
			Direction: "sell", Amount: 10, Price: 3000, Liquidation: "T", TradeID: "eth-gone"})},
		{Frame: exchangetest.DeribitTradesFrame(Channel("USDC"), exchangetest.DeribitTrade{InstrumentName: "SOL_USDC-PERPETUAL",
			Direction: "sell", Amount: 2, Price: 150, Liquidation: "T", TradeID: "sol-new"})},
	})
	s = h.Eventually(t, "the new listing counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", append(sol, "side", "long")...) == 1
	})
	if got := decodeErrors(s); got != before+1 {
		t.Errorf("decode errors %v, want %v (the delisted instrument)", got, before+1)
	}
	if got := s.Sum("crypto_liquidations_total", "exchange", Name); got != 1 {
		t.Errorf("liquidations %v, want 1", got)
	}
}
