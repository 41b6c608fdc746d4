package bybit

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

// faultVenue describes one linear liquidation connection for the shared
// fault scenarios: BTCUSDT long liquidations of 30000 USD.
func faultVenue(t *testing.T) *faultsuite.Venue {
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) {
		c.Markets = []string{MarketLinear}
		c.TopicsPerConnection = len(linearTrading) // one connection
		c.Logger = logs.Logger()
		c.Stream = faultsuite.Stream
	})
	const st = "linear_liquidations_0"
	return &faultsuite.Venue{
		Samples: h.Samples, Fake: h.fake, Logs: logs,
		WaitUp: func(t *testing.T) {
			h.waitTopics(t, linearTrading...)
			h.WaitStreamsUp(t, "bybit", st)
		},
		Exchange: "bybit", Stream: stream(st),
		Series: append(inst("linear", "BTCUSDT", "BTC"), "side", "long"),
		Liquidation: func(int) []byte {
			return exchangetest.BybitLiquidationFrame("BTCUSDT", 0, exchangetest.BybitLiquidation{Side: "Buy", Size: 0.5, Price: 60000})
		},
		Notional:            30000,
		SetAnswerHeartbeats: h.fake.SetAnswerPings,
	}
}

// TestFaultsStream runs the shared WebSocket fault scenarios.
func TestFaultsStream(t *testing.T) { faultsuite.Run(t, faultVenue) }

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

// A public endpoint that accepts TCP but never answers the WebSocket
// upgrade: every dial times out and is retried with back-off, the stream
// stays down, polls and scrapes go on, and nothing is counted twice or
// lost. Once the stall is lifted the stream comes back and counts a new
// liquidation once.
func TestFaultsStalledHandshake(t *testing.T) {
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) {
		c.Markets = []string{MarketLinear}
		c.TopicsPerConnection = len(linearTrading) // one connection
		c.Logger = logs.Logger()
		c.Stream = stallStream
	})
	const st = "linear_liquidations_0"
	h.waitTopics(t, linearTrading...)
	up := func(s collectortest.Samples) float64 { return val(s, "crypto_exporter_stream_up", stream(st)...) }
	connects := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_stream_connects_total", stream(st)...)
	}
	btcLong := append(inst("linear", "BTCUSDT", "BTC"), "side", "long")
	liq := func() []exchangetest.Event {
		return []exchangetest.Event{{Frame: exchangetest.BybitLiquidationFrame("BTCUSDT", 0,
			exchangetest.BybitLiquidation{Side: "Buy", Size: 0.5, Price: 60000})}}
	}
	checkCount := func(s collectortest.Samples, n float64) {
		t.Helper()
		if got := val(s, "crypto_liquidations_total", btcLong...); got != n {
			t.Errorf("BTCUSDT long liquidations = %v, want %v", got, n)
		}
		if got := val(s, "crypto_liquidation_notional_usd_total", btcLong...); !collectortest.Close(got, n*30000) {
			t.Errorf("BTCUSDT long notional = %v, want %v", got, n*30000)
		}
		if got := s.Sum("crypto_liquidations_total", "exchange", "bybit"); got != n {
			t.Errorf("liquidations of every symbol = %v, want %v", got, n)
		}
		if got := sumStreams(s, "crypto_exporter_stream_decode_errors_total"); got != 0 {
			t.Errorf("decode errors = %v, want 0", got)
		}
	}

	// One liquidation before the fault.
	if d := h.fake.Play(liq()); len(d) != 1 || d[0].Conns != 1 {
		t.Fatalf("delivered %+v", d)
	}
	s := h.Eventually(t, "the first liquidation", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btcLong...) == 1 && up(s) == 1
	})
	before := connects(s)

	faultAt := time.Now()
	h.fake.SetStallHandshake(true)
	h.fake.Disconnect(exchangetest.BybitLinear)
	h.Eventually(t, "stalled handshakes retried", func(s collectortest.Samples) bool {
		return len(connectFailures(logs, st)) >= 2 && up(s) == 0
	})
	// Polls go on during the stall, and a scrape is not held up by it.
	h.fake.UpdateSymbol(exchangetest.BybitLinear, "BTCUSDT", func(s *exchangetest.BybitSymbol) { s.MarkPrice = 61000 })
	h.Eventually(t, "a poll during the stall", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", inst("linear", "BTCUSDT", "BTC")...) == 61000
	})
	scrapeAt := time.Now()
	s = h.Samples(t)
	if took := time.Since(scrapeAt); took > time.Second {
		t.Errorf("a scrape during the stall took %v", took)
	}
	stalled, elapsed := h.fake.StalledHandshakes(), time.Since(faultAt)
	if got := val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers"); got != 1 {
		t.Errorf("tickers poll_success = %v during the stall", got)
	}
	if got := up(s); got != 0 {
		t.Errorf("stream up = %v with every handshake stalled", got)
	}
	if got := connects(s); got != before {
		t.Errorf("connects %v -> %v with every handshake stalled", before, got)
	}
	checkCount(s, 1)
	// Every dial waits out the handshake timeout before the next one.
	if most := int(elapsed/stallHandshakeTimeout) + 1; stalled > most {
		t.Errorf("%d stalled handshakes in %v, want at most %d at a %v handshake timeout", stalled, elapsed, most, stallHandshakeTimeout)
	}
	failures := connectFailures(logs, st)
	if len(failures) < 2 || len(failures) > stalled {
		t.Errorf("%d failed connections logged, want 2..%d (the stalled handshakes)", len(failures), stalled)
	}
	for _, r := range failures {
		if r.Level != slog.LevelWarn || !strings.Contains(r.Attrs, "timeout") || !strings.Contains(r.Attrs, "retry_in=") {
			t.Errorf("a stalled handshake logged without its timeout or back-off: %v %s %s", r.Level, r.Message, r.Attrs)
		}
	}

	// The stall lifted: one new connection, and a liquidation counted once.
	h.fake.SetStallHandshake(false)
	h.waitAllUp(t, st)
	stalled = h.fake.StalledHandshakes()
	if d := h.fake.Play(liq()); len(d) != 1 || d[0].Conns != 1 {
		t.Fatalf("delivered %+v after the stall", d)
	}
	h.Eventually(t, "counted after the stall", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btcLong...) >= 2
	})
	time.Sleep(100 * time.Millisecond) // let a late double count show
	s = h.Samples(t)
	checkCount(s, 2)
	if got := connects(s); got != before+1 {
		t.Errorf("connects %v, want %v", got, before+1)
	}
	if n := h.fake.StalledHandshakes(); n != stalled {
		t.Errorf("%d handshakes stalled after the stream came back", n-stalled)
	}
}
