package bitmex

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// faultStream shortens every timer of the stream so that faults show fast.
func faultStream(c *wsconn.Config) {
	c.BackoffMin = 10 * time.Millisecond
	c.BackoffMax = 50 * time.Millisecond
	c.PingInterval = 100 * time.Millisecond
	c.ReadTimeout = 500 * time.Millisecond
	c.HandshakeTimeout = 200 * time.Millisecond
	c.SubscribeTimeout = time.Second
	c.ReadLimit = 64 << 10
}

func startFaults(t *testing.T, mod func(*Config)) (*harness, *exchangetest.LogRecorder) {
	t.Helper()
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) {
		c.Logger = logs.Logger()
		c.Stream = faultStream
		if mod != nil {
			mod(c)
		}
	})
	return h, logs
}

func connects(s collectortest.Samples) float64 {
	return val(s, "crypto_exporter_stream_connects_total", streamLabels...)
}

func decodeErrors(s collectortest.Samples) float64 {
	return val(s, "crypto_exporter_stream_decode_errors_total", streamLabels...)
}

func streamUp(s collectortest.Samples) bool {
	return val(s, "crypto_exporter_stream_up", streamLabels...) == 1
}

var btcLong = append(instLabels("inverse", "XBTUSD", "BTC"), "side", "long")

// liqFrame is one XBTUSD long liquidation of 30000 contracts, 30000 USD.
func liqFrame(id int64) []byte {
	return exchangetest.BitMEXLiquidationFrame("insert",
		exchangetest.BitMEXOrder{OrderID: fmt.Sprintf("fault-%d", id), Symbol: "XBTUSD", Side: "Sell", Price: 60000, LeavesQty: 30000})
}

// checkCount checks the XBTUSD long liquidations counted so far.
func checkCount(t *testing.T, s collectortest.Samples, n float64) {
	t.Helper()
	if got := val(s, "crypto_liquidations_total", btcLong...); got != n {
		t.Errorf("XBTUSD long liquidations = %v, want %v", got, n)
	}
	if got := val(s, "crypto_liquidation_notional_usd_total", btcLong...); !collectortest.Close(got, n*30000) {
		t.Errorf("XBTUSD long notional = %v, want %v", got, n*30000)
	}
	if got := s.Sum("crypto_liquidations_total", "exchange", Name); got != n {
		t.Errorf("liquidations of every symbol = %v, want %v", got, n)
	}
}

func TestFaultsCloseCodesAndBadFrames(t *testing.T) {
	t.Parallel()
	h, logs := startFaults(t, nil)
	h.waitUp(t)
	reconnect := func(what string, ev exchangetest.Event) {
		t.Helper()
		before := connects(h.samples(t))
		h.fake.Play([]exchangetest.Event{ev})
		h.eventually(t, what, func(s collectortest.Samples) bool { return connects(s) > before && streamUp(s) })
	}
	for _, code := range []int{1000, 1001, 1011, 4000} {
		reconnect(fmt.Sprintf("a new connection after close code %d", code), exchangetest.Event{CloseCode: code})
	}
	reconnect("a new connection after a TCP close", exchangetest.Event{Disconnect: true})
	if n := logs.Count(slog.LevelWarn, "websocket disconnected"); n < 5 {
		t.Errorf("%d disconnects logged, want >= 5", n)
	}

	// Garbage and truncated frames are counted and dropped on the live
	// connection; a slow frame after them is counted once.
	ts := time.Now().UnixMilli()
	c0 := connects(h.samples(t))
	h.fake.Play([]exchangetest.Event{
		{Frame: []byte("garbage \x01\x02")},
		{Frame: liqFrame(ts)[:40]},
		{Delay: 300 * time.Millisecond, Frame: liqFrame(ts + 1)},
	})
	s := h.eventually(t, "bad frames counted", func(s collectortest.Samples) bool {
		return decodeErrors(s) == 2 && val(s, "crypto_liquidations_total", btcLong...) == 1
	})
	if got := connects(s); got != c0 {
		t.Errorf("connects %v -> %v after bad frames, want the connection kept", c0, got)
	}

	// An oversized frame is a decode error and the connection is replaced.
	reconnect("a new connection after an oversized frame", exchangetest.Event{Frame: exchangetest.OversizedFrame(256 << 10)})
	h.fake.Play([]exchangetest.Event{{Frame: liqFrame(ts + 2)}})
	h.eventually(t, "the last liquidation", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btcLong...) >= 2
	})
	time.Sleep(100 * time.Millisecond) // let a late double count show
	s = h.samples(t)
	checkCount(t, s, 2)
	if got := decodeErrors(s); got != 3 {
		t.Errorf("decode errors %v, want 3 (garbage, truncated, oversized)", got)
	}
	if got := connects(s); got != c0+1 {
		t.Errorf("connects %v, want %v", got, c0+1)
	}
	if n := logs.Count(slog.LevelWarn, "read limit"); n < 1 {
		t.Error("the oversized frame was not logged")
	}
}

// The half-open peer is TestVenueHeartbeat.
func TestFaultsStalledHandshake(t *testing.T) {
	t.Parallel()
	h, logs := startFaults(t, nil)
	h.waitUp(t)

	// A server that accepts TCP but never completes the handshake: every
	// dial times out and is retried, and none counts as a connection.
	h.fake.SetStallHandshake(true)
	c1 := connects(h.samples(t))
	h.fake.Disconnect()
	s := h.eventually(t, "stalled handshakes retried", func(s collectortest.Samples) bool {
		return h.fake.StalledHandshakes() >= 2 && !streamUp(s)
	})
	if got := connects(s); got != c1 {
		t.Errorf("connects %v -> %v with every handshake stalled", c1, got)
	}
	if n := logs.Count(slog.LevelWarn, "websocket connect failed"); n < 1 {
		t.Error("the failed handshakes were not logged")
	}
	h.fake.SetStallHandshake(false)
	h.waitUp(t)
	h.fake.Play([]exchangetest.Event{{Frame: liqFrame(time.Now().UnixMilli())}})
	h.eventually(t, "counted after recovering", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", btcLong...) == 1
	})
	checkCount(t, h.samples(t), 1)
}

func TestFaultsRESTRetryAfterOn403And418(t *testing.T) {
	t.Parallel()
	path := exchangetest.BitMEXInstrumentActivePath
	for _, status := range []int{http.StatusForbidden, http.StatusTeapot} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			h, logs := startFaults(t, func(c *Config) { c.PollInterval = 200 * time.Millisecond })
			h.waitPoll(t)
			failures := func(s collectortest.Samples) float64 {
				return val(s, "crypto_exporter_poll_failures_total", endpointLabels...)
			}
			before := failures(h.samples(t))
			h.fake.FailNext(path, 1, status, 2, "")
			s := h.eventually(t, "the refusal counted", func(s collectortest.Samples) bool { return failures(s) > before })
			n := h.fake.Requests(path)
			if got := val(s, "crypto_mark_price_usd", instLabels("inverse", "XBTUSD", "BTC")...); got != 60000.5 {
				t.Errorf("mark after the refusal = %v, want the last value", got)
			}
			time.Sleep(time.Second) // five poll intervals, within the 2 s Retry-After
			if got := h.fake.Requests(path); got != n {
				t.Errorf("%d requests within the Retry-After", got-n)
			}
			h.waitPoll(t)
			if n := logs.Count(slog.LevelWarn, "rate limiting"); n < 1 {
				t.Error("the back-off was not logged")
			}
		})
	}
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
	s = h.eventually(t, "SOLUSDT listed and ETHUSDT delisted", func(s collectortest.Samples) bool {
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
	s = h.eventually(t, "the delisted liquidation dropped", func(s collectortest.Samples) bool { return decodeErrors(s) > before })
	if got := s.Sum("crypto_liquidations_total", "exchange", Name); got != 0 {
		t.Errorf("liquidations %v, want 0", got)
	}
}
