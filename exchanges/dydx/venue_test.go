package dydx

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Dydx
	v    *Venue
}

func start(t *testing.T, setup func(*exchangetest.Dydx), mod func(*Config)) *harness {
	t.Helper()
	fake := exchangetest.NewDydx()
	t.Cleanup(fake.Close)
	fake.SetMarkets(exchangetest.DydxSampleMarkets())
	fake.SetPingInterval(200 * time.Millisecond)
	if setup != nil {
		setup(fake)
	}
	h := &harness{Harness: venuetest.New(t), fake: fake}
	h.Timeout = 15 * time.Second
	cfg := Config{
		REST: fake.RESTURL(), WS: fake.WSURL(),
		PollInterval:         200 * time.Millisecond,
		Client:               exchanges.NewClient(2*time.Second, "test"),
		Logger:               slog.New(slog.DiscardHandler),
		RefreshSpacing:       100 * time.Millisecond,
		MarketsPerConnection: 2,
		SubscribeInterval:    5 * time.Millisecond,
		Stream:               venuetest.FastStream,
	}
	if mod != nil {
		mod(&cfg)
	}
	h.v = New(cfg)
	h.Start(h.v.Run)
	return h
}

func (h *harness) waitMarkets(t *testing.T, markets ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.fake.WaitMarkets(ctx, markets...); err != nil {
		t.Fatal(err)
	}
}

// val reads a series, NaN when missing.
var val = venuetest.Val

func inst(symbol, coin string) []string {
	return []string{"exchange", Name, "market", "linear", "symbol", symbol, "coin", coin}
}

func side(symbol, coin, sd string) []string { return append(inst(symbol, coin), "side", sd) }

func allUp(s collectortest.Samples, streams ...string) bool {
	for _, st := range streams {
		if val(s, "crypto_exporter_stream_up", "exchange", Name, "stream", st) != 1 {
			return false
		}
	}
	return true
}

var active = []string{"BTC-USD", "ETH-USD", "SOL-USD"}

func TestVenueDiscoveryAndGauges(t *testing.T) {
	h := start(t, nil, nil)
	h.waitMarkets(t, active...)
	s := h.Eventually(t, "streams up and gauges", func(s collectortest.Samples) bool {
		return allUp(s, "trades_0", "trades_1") && !math.IsNaN(val(s, "crypto_mark_price_usd", inst("SOL-USD", "SOL")...))
	})
	held := h.fake.Subscriptions()
	if len(held) != 3 || held["BTC-USD"] != 1 || held["ETH-USD"] != 1 || held["SOL-USD"] != 1 {
		t.Errorf("subscriptions %v", held)
	}
	if got := h.v.shards.snapshot(); len(got) != 2 || len(got[0]) != 2 || len(got[1]) != 1 {
		t.Errorf("shards %v", got)
	}
	if v := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", Name, "market", "linear"); v != 1 {
		t.Errorf("feed complete %v", v)
	}
	for _, m := range exchangetest.DydxSampleMarkets() {
		if m.Status != "" {
			if _, ok := s.Get("crypto_market_info", append(inst(m.Ticker, m.Ticker[:len(m.Ticker)-4]), "quote", "USD", "contract_type", "perpetual")...); ok {
				t.Errorf("%s (%s) declared", m.Ticker, m.Status)
			}
			continue
		}
		coin := m.Ticker[:len(m.Ticker)-4]
		l := inst(m.Ticker, coin)
		if v := val(s, "crypto_market_info", append(l, "quote", "USD", "contract_type", "perpetual")...); v != 1 {
			t.Errorf("%s market_info %v", m.Ticker, v)
		}
		for name, want := range map[string]float64{
			"crypto_mark_price_usd":           m.OraclePrice,
			"crypto_funding_rate_ratio":       m.NextFundingRate,
			"crypto_funding_interval_seconds": 3600,
			"crypto_open_interest_coins":      m.OpenInterest,
			"crypto_open_interest_usd":        m.OpenInterest * m.OraclePrice,
			"crypto_volume_24h_usd":           m.Volume24H,
		} {
			if got := val(s, name, l...); !collectortest.Close(got, want) {
				t.Errorf("%s %s = %v, want %v", m.Ticker, name, got, want)
			}
		}
		next := val(s, "crypto_funding_next_timestamp_seconds", l...)
		if int64(next)%3600 != 0 || next < float64(time.Now().Unix()) || next > float64(time.Now().Unix()+3601) {
			t.Errorf("%s next funding %v", m.Ticker, next)
		}
		for _, sd := range []string{"long", "short"} {
			if v := val(s, "crypto_liquidations_total", side(m.Ticker, coin, sd)...); v != 0 {
				t.Errorf("%s %s counter %v, want 0 from start-up", m.Ticker, sd, v)
			}
		}
	}
	if h.fake.Pongs() == 0 {
		time.Sleep(500 * time.Millisecond)
		if h.fake.Pongs() == 0 {
			t.Error("server pings were not answered")
		}
	}
}

func liq(sideStr string, size, price float64) exchangetest.DydxTrade {
	return exchangetest.DydxTrade{ID: "x", Side: sideStr, Size: size, Price: price, Liquidation: true}
}

func TestVenueTapeWithDisconnect(t *testing.T) {
	history := []exchangetest.DydxTrade{liq("SELL", 100, 65000), liq("BUY", 50, 65000)}
	h := start(t, func(f *exchangetest.Dydx) {
		f.SetHistory("BTC-USD", history)
		f.SetHistory("ETH-USD", history)
	}, func(c *Config) { c.Batched = true })
	h.waitMarkets(t, active...)
	h.Eventually(t, "streams up", func(s collectortest.Samples) bool { return allUp(s, "trades_0", "trades_1") })

	type key struct{ sym, side string }
	truth := map[key][2]float64{} // count, notional
	add := func(sym, sd string, n float64) {
		v := truth[key{sym, sd}]
		truth[key{sym, sd}] = [2]float64{v[0] + 1, v[1] + n}
	}
	part1 := []exchangetest.Event{
		{Frame: exchangetest.DydxTradesFrame("BTC-USD", liq("SELL", 0.5, 65000), exchangetest.DydxTrade{Side: "BUY", Size: 3, Price: 65000})},
		{Frame: exchangetest.DydxTradesFrame("ETH-USD", liq("BUY", 2, 3000), exchangetest.DydxTrade{Side: "SELL", Size: 1, Price: 3000, Type: "LIQUIDATED"})},
		{Frame: exchangetest.DydxTradesFrame("SOL-USD", liq("SELL", 10, 150))},
		{Frame: exchangetest.DydxTradesFrame("SOL-USD", liq("sideways", 10, 150))}, // malformed
	}
	add("BTC-USD", "long", 0.5*65000)
	add("ETH-USD", "short", 2*3000)
	add("ETH-USD", "long", 1*3000)
	add("SOL-USD", "long", 10*150)
	for _, d := range h.fake.Play(part1) {
		if d.Conns != 1 {
			t.Fatalf("frame delivered to %d connections", d.Conns)
		}
	}
	h.Eventually(t, "part 1 counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", side("SOL-USD", "SOL", "long")...) == 1
	})
	connects := h.fake.TotalConnections()
	h.fake.Disconnect()
	h.Eventually(t, "reconnected", func(s collectortest.Samples) bool {
		return h.fake.TotalConnections() >= connects+2 && allUp(s, "trades_0", "trades_1")
	})
	h.waitMarkets(t, active...)
	part2 := []exchangetest.Event{
		{Frame: exchangetest.DydxTradesFrame("BTC-USD", liq("BUY", 0.25, 64000))},
		{Frame: exchangetest.DydxTradesFrame("ETH-USD", liq("SELL", 4, 2990))},
	}
	add("BTC-USD", "short", 0.25*64000)
	add("ETH-USD", "long", 4*2990)
	h.fake.Play(part2)
	s := h.Eventually(t, "part 2 counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", side("ETH-USD", "ETH", "long")...) == 2
	})
	for _, sym := range active {
		coin := sym[:3]
		for _, sd := range []string{"long", "short"} {
			want := truth[key{sym, sd}]
			if got := val(s, "crypto_liquidations_total", side(sym, coin, sd)...); got != want[0] {
				t.Errorf("%s %s count %v, want %v", sym, sd, got, want[0])
			}
			if got := val(s, "crypto_liquidation_notional_usd_total", side(sym, coin, sd)...); !collectortest.Close(got, want[1]) {
				t.Errorf("%s %s notional %v, want %v", sym, sd, got, want[1])
			}
		}
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", Name); got != 1 {
		t.Errorf("decode errors %v, want 1", got)
	}
}

func TestVenueRateLimitAndFailedPolls(t *testing.T) {
	h := start(t, nil, nil)
	h.Eventually(t, "a good poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", Endpoint) == 1
	})
	h.fake.UpdateMarket("BTC-USD", func(m *exchangetest.DydxMarket) { m.OraclePrice = 70000 })
	h.fake.FailNext(exchangetest.DydxMarketsPath, 1, http.StatusTooManyRequests, 2, "")
	before := h.fake.Requests(exchangetest.DydxMarketsPath)
	s := h.Eventually(t, "a rate-limited poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", Name, "endpoint", Endpoint) >= 1
	})
	failedAt := time.Now()
	if got := val(s, "crypto_mark_price_usd", inst("BTC-USD", "BTC")...); got != 65000.5 && got != 70000 {
		t.Errorf("mark price %v after failed poll", got)
	}
	time.Sleep(time.Second)
	if n := h.fake.Requests(exchangetest.DydxMarketsPath); n > before+1 {
		t.Errorf("%d requests during Retry-After", n-before)
	}
	h.Eventually(t, "recovery after Retry-After", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", inst("BTC-USD", "BTC")...) == 70000 &&
			val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", Endpoint) == 1
	})
	if time.Since(failedAt) < 1500*time.Millisecond {
		t.Errorf("recovered %v after the 429, before Retry-After", time.Since(failedAt))
	}
	// A 500 keeps the last values.
	h.fake.FailNext(exchangetest.DydxMarketsPath, 2, http.StatusInternalServerError, 0, "")
	s = h.Eventually(t, "a failed poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", Endpoint) == 0
	})
	if got := val(s, "crypto_mark_price_usd", inst("BTC-USD", "BTC")...); got != 70000 {
		t.Errorf("mark price %v after a failed poll, want the last value", got)
	}
}

func TestVenueSubscriptionErrorAndNewListing(t *testing.T) {
	h := start(t, func(f *exchangetest.Dydx) { f.RejectNextSubscribe(1) }, nil)
	h.waitMarkets(t, active...)
	s := h.Eventually(t, "up after the error", func(s collectortest.Samples) bool { return allUp(s, "trades_0", "trades_1") })
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", Name); got != 1 {
		t.Errorf("decode errors %v, want 1 (the subscription error)", got)
	}
	if got := s.Sum("crypto_exporter_stream_connects_total", "exchange", Name); got < 3 {
		t.Errorf("connects %v, want a retry", got)
	}
	// A new listing is subscribed live, a delisted market unsubscribed.
	h.fake.UpdateMarket("DOGE-USD", func(m *exchangetest.DydxMarket) { m.OraclePrice, m.OpenInterest = 0.1, 1e6 })
	h.fake.UpdateMarket("SOL-USD", func(m *exchangetest.DydxMarket) { m.Status = "FINAL_SETTLEMENT" })
	h.waitMarkets(t, "DOGE-USD")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.fake.WaitNoMarket(ctx, "SOL-USD"); err != nil {
		t.Fatal(err)
	}
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.DydxTradesFrame("DOGE-USD", liq("SELL", 1000, 0.1))}})
	h.Eventually(t, "DOGE liquidation counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", side("DOGE-USD", "DOGE", "long")...) == 1 &&
			math.IsNaN(val(s, "crypto_liquidations_total", side("SOL-USD", "SOL", "long")...))
	})
}
