package dydx

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
	h := start(t, nil, func(c *Config) {
		c.MarketsPerConnection = 10 // one connection, trades_0
		c.Logger = logs.Logger()
		c.Stream = faultsuite.Stream
		if mod != nil {
			mod(c)
		}
	})
	return h, logs
}

var streamLabels = []string{"exchange", Name, "stream", "trades_0"}

func (h *harness) waitUp(t *testing.T) {
	t.Helper()
	h.waitMarkets(t, active...)
	h.Eventually(t, "stream up", streamUp)
}

func streamUp(s collectortest.Samples) bool {
	return val(s, "crypto_exporter_stream_up", streamLabels...) == 1
}

// faultVenue describes a running venue for the shared fault scenarios.
func faultVenue(t *testing.T) *faultsuite.Venue {
	h, logs := startFaults(t, nil)
	return &faultsuite.Venue{
		Samples: h.Samples, WaitUp: func(t *testing.T) { h.waitUp(t) }, Fake: h.fake, Logs: logs,
		Exchange: Name, Stream: streamLabels, Series: side("BTC-USD", "BTC", "long"),
		// 0.5 x 60000 = 30000 USD.
		Liquidation: func(k int) []byte {
			return exchangetest.DydxTradesFrame("BTC-USD", exchangetest.DydxTrade{ID: fmt.Sprintf("fault-%d", k), Side: "SELL",
				Size: 0.5, Price: 60000, Liquidation: true})
		},
		Notional:            30000,
		SetAnswerHeartbeats: h.fake.SetAnswerPings,
	}
}

// TestFaultsStream runs the shared WebSocket fault scenarios.
func TestFaultsStream(t *testing.T) { faultsuite.Run(t, faultVenue) }

func endpointLabels(ep string) []string { return []string{"exchange", Name, "endpoint", ep} }

func (h *harness) waitPoll(t *testing.T, ep string) collectortest.Samples {
	t.Helper()
	return h.Eventually(t, ep+" polled", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", endpointLabels(ep)...) == 1
	})
}

func TestFaultsRESTRetryAfterOn403And418(t *testing.T) {
	t.Parallel()
	faultsuite.RetryAfterOn403And418(t, func(t *testing.T) *faultsuite.REST {
		h, logs := startFaults(t, nil)
		return &faultsuite.REST{Samples: h.Samples, Fake: h.fake, Logs: logs, Path: exchangetest.DydxMarketsPath,
			Endpoint: endpointLabels(Endpoint), Mark: inst("BTC-USD", "BTC"), MarkValue: 65000.5}
	})
}

func TestFaultsRESTOutageMalformedAndTimeout(t *testing.T) {
	t.Parallel()
	h, logs := startFaults(t, func(c *Config) { c.Client = exchanges.NewClient(150*time.Millisecond, "test") })
	ep := Endpoint
	h.waitPoll(t, ep)
	path := exchangetest.DydxMarketsPath
	btc := inst("BTC-USD", "BTC")
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpointLabels(ep)...)
	}

	// Maintenance: 5xx for several polls, values kept, then new values.
	before := failures(h.Samples(t))
	h.fake.FailNext(path, 4, http.StatusServiceUnavailable, 0, "<html>maintenance</html>")
	s := h.Eventually(t, "the first 503", func(s collectortest.Samples) bool { return failures(s) > before })
	if got := val(s, "crypto_mark_price_usd", btc...); got != 65000.5 {
		t.Errorf("mark during the outage = %v, want the last value", got)
	}
	h.fake.UpdateMarket("BTC-USD", func(m *exchangetest.DydxMarket) { m.OraclePrice = 61000 })
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
		{"malformed body", func() { h.fake.FailNext(path, 1, http.StatusOK, 0, `{"markets":{"BTC-USD":{"ticker":"BTC`) }, func() {}},
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

// The listing and delisting mid-run are TestVenueSubscriptionErrorAndNewListing.
