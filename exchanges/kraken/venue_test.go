package kraken

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
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Kraken
	v    *Venue
}

func start(t *testing.T, setup func(*exchangetest.Kraken), mod func(*Config)) *harness {
	t.Helper()
	fake := exchangetest.NewKraken()
	t.Cleanup(fake.Close)
	fake.SetProducts(exchangetest.KrakenSampleProducts())
	fake.SetHeartbeatInterval(200 * time.Millisecond)
	fake.SetIdleTimeout(2 * time.Second)
	if setup != nil {
		setup(fake)
	}
	h := &harness{Harness: venuetest.New(t), fake: fake}
	h.Timeout = 15 * time.Second
	cfg := Config{
		REST: fake.RESTURL(), WS: fake.WSURL(),
		PollInterval:        200 * time.Millisecond,
		InstrumentsInterval: 300 * time.Millisecond,
		Client:              exchanges.NewClient(2*time.Second, "test"),
		Logger:              slog.New(slog.DiscardHandler),
		RefreshSpacing:      100 * time.Millisecond,
		ProductsPerMessage:  2,
		Stream: func(c *wsconn.Config) {
			venuetest.FastStream(c)
			c.PingInterval = 500 * time.Millisecond
			c.ReadTimeout = 3 * time.Second
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h.v = New(cfg)
	h.Start(h.v.Run)
	return h
}

func (h *harness) waitSubscribed(t *testing.T, products ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.fake.WaitSubscribed(ctx, products...); err != nil {
		t.Fatal(err)
	}
}

// val reads a series, NaN when missing.
var val = venuetest.Val

func marketOf(symbol string) string {
	if symbol[1] == 'I' {
		return "inverse"
	}
	return "linear"
}

func inst(symbol, coin string) []string {
	return []string{"exchange", Name, "market", marketOf(symbol), "symbol", symbol, "coin", coin}
}

func side(symbol, coin, sd string) []string { return append(inst(symbol, coin), "side", sd) }

func up(s collectortest.Samples) bool {
	return val(s, "crypto_exporter_stream_up", "exchange", Name, "stream", StreamTrades) == 1
}

var (
	active = []string{"PF_XBTUSD", "PF_ETHUSD", "PI_XBTUSD", "FI_XBTUSD_991231", "PF_OLDUSD"}
	coinOf = map[string]string{"PF_XBTUSD": "BTC", "PF_ETHUSD": "ETH", "PI_XBTUSD": "BTC", "FI_XBTUSD_991231": "BTC", "PF_OLDUSD": "OLD"}
)

func TestVenueDiscoveryAndGauges(t *testing.T) {
	h := start(t, nil, nil)
	h.waitSubscribed(t, active...)
	s := h.Eventually(t, "stream up and gauges", func(s collectortest.Samples) bool {
		return up(s) && !math.IsNaN(val(s, "crypto_volume_24h_usd", inst("FI_XBTUSD_991231", "BTC")...))
	})
	for _, mk := range []string{"linear", "inverse"} {
		if v := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", Name, "market", mk); v != 1 {
			t.Errorf("feed complete %s %v", mk, v)
		}
	}
	for _, ep := range []string{EndpointInstruments, EndpointTickers} {
		if v := val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", ep); v != 1 {
			t.Errorf("poll %s %v", ep, v)
		}
	}
	if _, ok := s.Get("crypto_market_info", append(inst("PF_GONEUSD", "GONE"), "quote", "USD", "contract_type", "perpetual")...); ok {
		t.Error("a product that is not tradeable was declared")
	}
	for _, p := range exchangetest.KrakenSampleProducts() {
		coin, ok := coinOf[p.Symbol]
		if !ok {
			continue
		}
		l := inst(p.Symbol, coin)
		ct := "perpetual"
		if p.Symbol[0] == 'F' {
			ct = "future"
		}
		if v := val(s, "crypto_market_info", append(l, "quote", "USD", "contract_type", ct)...); v != 1 {
			t.Errorf("%s market_info %v", p.Symbol, v)
		}
		for _, sd := range []string{"long", "short"} {
			if v := val(s, "crypto_liquidations_total", side(p.Symbol, coin, sd)...); v != 0 {
				t.Errorf("%s %s counter %v, want 0 from start-up", p.Symbol, sd, v)
			}
		}
		want := map[string]float64{"crypto_mark_price_usd": p.MarkPrice}
		if p.Suspended {
			want = map[string]float64{"crypto_mark_price_usd": math.NaN(), "crypto_open_interest_usd": math.NaN()}
		} else if p.Type == "futures_inverse" {
			want["crypto_open_interest_usd"] = p.OpenInterest
			want["crypto_open_interest_coins"] = p.OpenInterest / p.MarkPrice
			want["crypto_volume_24h_usd"] = p.Vol24h
		} else {
			want["crypto_open_interest_coins"] = p.OpenInterest
			want["crypto_open_interest_usd"] = p.OpenInterest * p.MarkPrice
			want["crypto_volume_24h_usd"] = p.Vol24h * p.MarkPrice
		}
		if ct == "perpetual" && !p.Suspended {
			want["crypto_funding_interval_seconds"] = 3600
			if p.RelativeFundingRate != nil {
				want["crypto_funding_rate_ratio"] = *p.RelativeFundingRate
			} else {
				want["crypto_funding_rate_ratio"] = p.FundingRate / p.MarkPrice
			}
			next := val(s, "crypto_funding_next_timestamp_seconds", l...)
			if int64(next)%3600 != 0 || next < float64(time.Now().Unix()) || next > float64(time.Now().Unix()+3601) {
				t.Errorf("%s next funding %v", p.Symbol, next)
			}
		} else if _, ok := s.Get("crypto_funding_rate_ratio", l...); ok {
			t.Errorf("%s has a funding rate", p.Symbol)
		}
		for name, w := range want {
			got := val(s, name, l...)
			if math.IsNaN(w) != math.IsNaN(got) || (!math.IsNaN(w) && !collectortest.Close(got, w)) {
				t.Errorf("%s %s = %v, want %v", p.Symbol, name, got, w)
			}
		}
	}
	// Keep-alive: the fake drops connections silent for 2 s; the client's
	// keep-alive message every 500 ms keeps the one connection open.
	time.Sleep(2500 * time.Millisecond)
	if n := h.fake.IdleDisconnects(); n != 0 {
		t.Errorf("%d idle disconnects", n)
	}
	if n := h.fake.TotalConnections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func liq(product, sd string, qty, price float64) []byte {
	return exchangetest.KrakenTradeFrame(exchangetest.KrakenTrade{Product: product, Side: sd, Type: "liquidation", Qty: qty, Price: price})
}

func TestVenueTapeWithDisconnect(t *testing.T) {
	history := []exchangetest.KrakenTrade{
		{Side: "sell", Type: "liquidation", Qty: 100, Price: 65000},
		{Side: "buy", Type: "liquidation", Qty: 50, Price: 65000},
	}
	h := start(t, func(f *exchangetest.Kraken) {
		for _, p := range active {
			f.SetHistory(p, history)
		}
	}, nil)
	h.waitSubscribed(t, active...)
	h.Eventually(t, "stream up", up)

	type key struct{ sym, side string }
	truth := map[key][2]float64{} // count, notional
	add := func(sym, sd string, n float64) {
		v := truth[key{sym, sd}]
		truth[key{sym, sd}] = [2]float64{v[0] + 1, v[1] + n}
	}
	part1 := exchangetest.FrameEvents(0,
		liq("PF_XBTUSD", "sell", 0.5, 65000),
		exchangetest.KrakenTradeFrame(exchangetest.KrakenTrade{Product: "PF_XBTUSD", Side: "buy", Qty: 3, Price: 65000}), // fill
		liq("PI_XBTUSD", "buy", 12000, 65010),
		liq("PF_ETHUSD", "buy", 2, 3000),
		liq("FI_XBTUSD_991231", "sell", 500, 66000),
		liq("PF_ETHUSD", "sideways", 2, 3000), // malformed
	)
	add("PF_XBTUSD", "long", 0.5*65000)
	add("PI_XBTUSD", "short", 12000)
	add("PF_ETHUSD", "short", 2*3000)
	add("FI_XBTUSD_991231", "long", 500)
	for _, d := range h.fake.Play(part1) {
		if d.Conns != 1 {
			t.Fatalf("frame delivered to %d connections", d.Conns)
		}
	}
	h.Eventually(t, "part 1 counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", Name) == 1
	})
	connects := h.fake.TotalConnections()
	h.fake.Play([]exchangetest.Event{{Disconnect: true}})
	h.Eventually(t, "reconnected", func(s collectortest.Samples) bool {
		return h.fake.TotalConnections() > connects && up(s)
	})
	h.waitSubscribed(t, active...)
	part2 := exchangetest.FrameEvents(0,
		liq("PF_XBTUSD", "buy", 0.25, 64000),
		liq("PI_XBTUSD", "sell", 7000, 64000),
		liq("PF_ETHUSD", "sell", 4, 2990),
	)
	add("PF_XBTUSD", "short", 0.25*64000)
	add("PI_XBTUSD", "long", 7000)
	add("PF_ETHUSD", "long", 4*2990)
	h.fake.Play(part2)
	s := h.Eventually(t, "part 2 counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", side("PF_ETHUSD", "ETH", "long")...) == 1
	})
	for _, sym := range active {
		coin := coinOf[sym]
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
	pfx := inst("PF_XBTUSD", "BTC")
	h.Eventually(t, "a good poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", EndpointTickers) == 1
	})
	h.fake.UpdateProduct("PF_XBTUSD", func(p *exchangetest.KrakenProduct) { p.MarkPrice = 70000 })
	h.fake.FailNext(exchangetest.KrakenTickersPath, 1, http.StatusTooManyRequests, 2, "")
	s := h.Eventually(t, "a rate-limited poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", Name, "endpoint", EndpointTickers) >= 1
	})
	failedAt := time.Now()
	before := h.fake.Requests(exchangetest.KrakenTickersPath)
	if got := val(s, "crypto_mark_price_usd", pfx...); got != 65000.5 && got != 70000 {
		t.Errorf("mark price %v after failed poll", got)
	}
	time.Sleep(time.Second)
	if n := h.fake.Requests(exchangetest.KrakenTickersPath); n > before {
		t.Errorf("%d requests during Retry-After", n-before)
	}
	h.Eventually(t, "recovery after Retry-After", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", pfx...) == 70000 &&
			val(s, "crypto_exporter_poll_success", "exchange", Name, "endpoint", EndpointTickers) == 1
	})
	if time.Since(failedAt) < 1500*time.Millisecond {
		t.Errorf("recovered %v after the 429, before Retry-After", time.Since(failedAt))
	}
	// A 500 and an error envelope keep the last values.
	h.fake.FailNext(exchangetest.KrakenTickersPath, 1, http.StatusInternalServerError, 0, "")
	h.fake.FailNext(exchangetest.KrakenTickersPath, 1, http.StatusOK, 0, `{"result":"error","error":"apiLimitExceeded"}`)
	failures := val(s, "crypto_exporter_poll_failures_total", "exchange", Name, "endpoint", EndpointTickers)
	s = h.Eventually(t, "two failed polls", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", Name, "endpoint", EndpointTickers) >= failures+2
	})
	if got := val(s, "crypto_mark_price_usd", pfx...); got != 70000 {
		t.Errorf("mark price %v after failed polls, want the last value", got)
	}
}

func TestVenueSubscriptionFailureAndNewListing(t *testing.T) {
	h := start(t, func(f *exchangetest.Kraken) { f.RejectNextSubscribe(1) }, nil)
	h.waitSubscribed(t, active...)
	s := h.Eventually(t, "up after the refusal", up)
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", Name); got != 1 {
		t.Errorf("decode errors %v, want 1 (the refusal)", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", "exchange", Name, "stream", StreamTrades); got < 2 {
		t.Errorf("connects %v, want a retry", got)
	}
	// A new listing is subscribed live; a delisted product unsubscribed.
	h.fake.UpdateProduct("PF_SOLUSD", func(p *exchangetest.KrakenProduct) {
		*p = exchangetest.KrakenProduct{Symbol: "PF_SOLUSD", Type: "flexible_futures", ContractSize: 1, Base: "SOL", Quote: "USD", MarkPrice: 150, OpenInterest: 1000, Vol24h: 10}
	})
	h.fake.UpdateProduct("PF_ETHUSD", func(p *exchangetest.KrakenProduct) { p.NotTradeable = true })
	connects := h.fake.TotalConnections()
	h.waitSubscribed(t, "PF_SOLUSD")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.fake.WaitNotSubscribed(ctx, "PF_ETHUSD"); err != nil {
		t.Fatal(err)
	}
	h.fake.Play([]exchangetest.Event{{Frame: liq("PF_SOLUSD", "sell", 10, 150)}})
	s = h.Eventually(t, "SOL liquidation counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidations_total", side("PF_SOLUSD", "SOL", "long")...) == 1 &&
			math.IsNaN(val(s, "crypto_liquidations_total", side("PF_ETHUSD", "ETH", "long")...))
	})
	if got := val(s, "crypto_liquidation_notional_usd_total", side("PF_SOLUSD", "SOL", "long")...); got != 1500 {
		t.Errorf("SOL notional %v", got)
	}
	if n := h.fake.TotalConnections(); n != connects {
		t.Errorf("the listing change reconnected (%d -> %d connections)", connects, n)
	}
}

func TestVenueUnknownProductTriggersDiscovery(t *testing.T) {
	h := start(t, nil, func(c *Config) { c.InstrumentsInterval = time.Hour })
	h.waitSubscribed(t, active...)
	h.Eventually(t, "stream up", up)
	before := h.fake.Requests(exchangetest.KrakenInstrumentsPath)
	// The fake routes frames by product_id to subscribers only, so the
	// frame of a product nobody subscribed goes straight to the handler.
	h.v.trades.onMessage(nil, liq("PF_NEWUSD", "sell", 1, 1))
	s := h.Eventually(t, "early discovery", func(s collectortest.Samples) bool {
		return h.fake.Requests(exchangetest.KrakenInstrumentsPath) > before
	})
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", Name); got != 1 {
		t.Errorf("decode errors %v, want 1 (unknown product)", got)
	}
}
