package binance

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest/faultsuite"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// stallHandshakeTimeout is the handshake timeout of the stalled-handshake
// test; every stalled dial lasts at least this long.
const stallHandshakeTimeout = 200 * time.Millisecond

// stallStream shortens the stream's handshake timeout and back-off so that
// a stalled handshake shows fast.
func stallStream(c *wsconn.Config) {
	c.BackoffMin = 10 * time.Millisecond
	c.BackoffMax = 50 * time.Millisecond
	c.PingInterval = time.Second
	c.HandshakeTimeout = stallHandshakeTimeout
}

// faultVenue describes the USDⓈ-M stream for the shared fault scenarios:
// BTCUSDT long liquidations of 30000 USD.
func faultVenue(t *testing.T) *faultsuite.Venue {
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) {
		c.Logger = logs.Logger()
		c.Stream = faultsuite.Stream
	})
	return &faultsuite.Venue{
		Samples: h.Samples, Fake: h.usdm, Logs: logs,
		WaitUp:   func(t *testing.T) { h.WaitStreamsUp(t, Name, "usdm_force_order") },
		Exchange: Name, Stream: streamLabels("usdm_force_order"),
		Series: append(inst(Name, "linear", "BTCUSDT", "BTC"), "side", "long"),
		Liquidation: func(int) []byte {
			return exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "BTCUSDT", Side: "SELL",
				Qty: 0.5, Price: 60000, AvgPrice: 60000, FilledQty: 0.5, LastFilledQty: 0.5})
		},
		Notional:            30000,
		SetAnswerHeartbeats: h.usdm.SetAnswerPings,
	}
}

// TestFaultsStream runs the shared WebSocket fault scenarios.
func TestFaultsStream(t *testing.T) { faultsuite.Run(t, faultVenue) }

func streamLabels(name string) []string { return []string{"exchange", "binance", "stream", name} }

// connectFailures returns the logged failed connection attempts of a
// stream.
func connectFailures(logs *exchangetest.LogRecorder, stream string) []exchangetest.LogRecord {
	var out []exchangetest.LogRecord
	for _, r := range logs.Records() {
		if strings.Contains(r.Message, "websocket connect failed") && strings.Contains(r.Attrs, "stream="+stream) {
			out = append(out, r)
		}
	}
	return out
}

// A USDⓈ-M endpoint that accepts TCP but never answers the WebSocket
// upgrade: every dial times out and is retried with back-off, the stream
// stays down, polls and scrapes go on, nothing is counted twice or lost,
// and COIN-M is not affected. Once the stall is lifted the stream comes
// back and counts a new liquidation once.
func TestFaultsStalledHandshake(t *testing.T) {
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) {
		c.Logger = logs.Logger()
		c.Stream = stallStream
	})
	waitSubscribed(t, h.usdm, 1)
	waitSubscribed(t, h.coinm, 1)
	up := func(s collectortest.Samples, stream string) float64 {
		return val(s, "crypto_exporter_stream_up", streamLabels(stream)...)
	}
	connects := func(s collectortest.Samples, stream string) float64 {
		return val(s, "crypto_exporter_stream_connects_total", streamLabels(stream)...)
	}
	btcLong := append(inst("binance", "linear", "BTCUSDT", "BTC"), "side", "long")
	liq := exchangetest.Event{Frame: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "BTCUSDT", Side: "SELL",
		Qty: 0.5, Price: 60000, AvgPrice: 60000, FilledQty: 0.5, LastFilledQty: 0.5})}
	checkCount := func(s collectortest.Samples, n float64) {
		t.Helper()
		if got := val(s, "crypto_liquidations_total", btcLong...); got != n {
			t.Errorf("BTCUSDT long liquidations = %v, want %v", got, n)
		}
		if got := val(s, "crypto_liquidation_notional_usd_total", btcLong...); !collectortest.Close(got, n*30000) {
			t.Errorf("BTCUSDT long notional = %v, want %v", got, n*30000)
		}
		if got := s.Sum("crypto_liquidations_total", "exchange", Name); got != n {
			t.Errorf("liquidations of every symbol = %v, want %v", got, n)
		}
		if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", Name); got != 0 {
			t.Errorf("decode errors = %v, want 0", got)
		}
	}

	// One liquidation before the fault.
	if d := h.usdm.Play([]exchangetest.Event{liq}); len(d) != 1 || d[0].Conns != 1 {
		t.Fatalf("delivered %+v", d)
	}
	s := h.Eventually(t, "the first liquidation", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btcLong...) == 1 && up(s, "usdm_force_order") == 1 && up(s, "coinm_force_order") == 1
	})
	usdmConnects, coinmConnects := connects(s, "usdm_force_order"), connects(s, "coinm_force_order")

	faultAt := time.Now()
	h.usdm.SetStallHandshake(true)
	h.usdm.Play([]exchangetest.Event{{Disconnect: true}})
	h.Eventually(t, "stalled handshakes retried", func(s collectortest.Samples) bool {
		return len(connectFailures(logs, "usdm_force_order")) >= 2 && up(s, "usdm_force_order") == 0
	})
	// Polls go on during the stall, and a scrape is not held up by it.
	h.usdm.UpdateSymbol("BTCUSDT", func(s *exchangetest.BinanceSymbol) { s.MarkPrice = 61000 })
	h.Eventually(t, "a poll during the stall", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", inst("binance", "linear", "BTCUSDT", "BTC")...) == 61000
	})
	scrapeAt := time.Now()
	s = h.Samples(t)
	if took := time.Since(scrapeAt); took > time.Second {
		t.Errorf("a scrape during the stall took %v", took)
	}
	stalled, elapsed := h.usdm.StalledHandshakes(), time.Since(faultAt)
	if got := val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", "usdm_premium_index"); got != 1 {
		t.Errorf("premium index poll_success = %v during the stall", got)
	}
	if got := up(s, "usdm_force_order"); got != 0 {
		t.Errorf("usdm stream up = %v with every handshake stalled", got)
	}
	if got := connects(s, "usdm_force_order"); got != usdmConnects {
		t.Errorf("usdm connects %v -> %v with every handshake stalled", usdmConnects, got)
	}
	checkCount(s, 1)
	// Every dial waits out the handshake timeout before the next one.
	if most := int(elapsed/stallHandshakeTimeout) + 1; stalled > most {
		t.Errorf("%d stalled handshakes in %v, want at most %d at a %v handshake timeout", stalled, elapsed, most, stallHandshakeTimeout)
	}
	failures := connectFailures(logs, "usdm_force_order")
	if len(failures) < 2 || len(failures) > stalled {
		t.Errorf("%d failed connections logged, want 2..%d (the stalled handshakes)", len(failures), stalled)
	}
	for _, r := range failures {
		if r.Level != slog.LevelWarn || !strings.Contains(r.Attrs, "timeout") || !strings.Contains(r.Attrs, "retry_in=") {
			t.Errorf("a stalled handshake logged without its timeout or back-off: %v %s %s", r.Level, r.Message, r.Attrs)
		}
	}
	// COIN-M has its own endpoint and is not affected.
	if got := up(s, "coinm_force_order"); got != 1 {
		t.Errorf("coinm stream up = %v during the USDⓈ-M stall", got)
	}
	if got := connects(s, "coinm_force_order"); got != coinmConnects {
		t.Errorf("coinm connects %v -> %v during the USDⓈ-M stall", coinmConnects, got)
	}
	if n := len(connectFailures(logs, "coinm_force_order")); n != 0 {
		t.Errorf("%d coinm connection failures logged", n)
	}

	// The stall lifted: one new connection, and a liquidation counted once.
	h.usdm.SetStallHandshake(false)
	waitSubscribed(t, h.usdm, 2)
	h.Eventually(t, "the stream back up", func(s collectortest.Samples) bool { return up(s, "usdm_force_order") == 1 })
	stalled = h.usdm.StalledHandshakes()
	if d := h.usdm.Play([]exchangetest.Event{liq}); len(d) != 1 || d[0].Conns != 1 {
		t.Fatalf("delivered %+v after the stall", d)
	}
	h.Eventually(t, "counted after the stall", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btcLong...) >= 2
	})
	time.Sleep(100 * time.Millisecond) // let a late double count show
	s = h.Samples(t)
	checkCount(s, 2)
	if got := connects(s, "usdm_force_order"); got != usdmConnects+1 {
		t.Errorf("usdm connects %v, want %v", got, usdmConnects+1)
	}
	if n := h.usdm.StalledHandshakes(); n != stalled {
		t.Errorf("%d handshakes stalled after the stream came back", n-stalled)
	}
}
