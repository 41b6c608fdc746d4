package collector

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestCollector() (*Collector, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return newWithClock(clk.now), clk
}

var (
	btc = &exchanges.Instrument{Exchange: "binance", Market: exchanges.Linear, Symbol: "BTCUSDT", Coin: "BTC", Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
	eth = &exchanges.Instrument{Exchange: "binance", Market: exchanges.Linear, Symbol: "ETHUSDT", Coin: "ETH", Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
)

func TestLiquidationSeries(t *testing.T) {
	c, clk := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})

	want := `
# HELP crypto_liquidations_total Liquidation events received from the venue's public feed, by the side of the position liquidated. Lower bound where crypto_exporter_liquidation_feed_complete is 0.
# TYPE crypto_liquidations_total counter
crypto_liquidations_total{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 0
crypto_liquidations_total{coin="BTC",exchange="binance",market="linear",side="short",symbol="BTCUSDT"} 0
crypto_liquidations_total{coin="ETH",exchange="binance",market="linear",side="long",symbol="ETHUSDT"} 0
crypto_liquidations_total{coin="ETH",exchange="binance",market="linear",side="short",symbol="ETHUSDT"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "crypto_liquidations_total"); err != nil {
		t.Fatalf("pre-initialised counters: %v", err)
	}

	for _, l := range []exchanges.Liquidation{
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: 1000},
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: 250.5},
		{Instrument: eth, Side: exchanges.Short, NotionalUSD: 2_000_000},
	} {
		if !c.Liquidation(l) {
			t.Fatalf("valid liquidation rejected: %+v", l)
		}
	}
	unknown := &exchanges.Instrument{Exchange: "binance", Market: exchanges.Linear, Symbol: "NOPE"}
	for _, l := range []exchanges.Liquidation{
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: math.NaN()},
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: math.Inf(1)},
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: 0},
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: -5},
		{Instrument: btc, Side: exchanges.Long, NotionalUSD: MaxNotionalUSD * 2},
		{Instrument: btc, Side: 7, NotionalUSD: 5},
		{Instrument: unknown, Side: exchanges.Long, NotionalUSD: 5},
		{Instrument: nil, Side: exchanges.Long, NotionalUSD: 5},
	} {
		if c.Liquidation(l) {
			t.Errorf("invalid liquidation accepted: %+v", l)
		}
	}

	want = `
# HELP crypto_liquidation_notional_usd_total USD notional of liquidations received from the venue's public feed, by the side of the position liquidated (stablecoins at par). Lower bound where crypto_exporter_liquidation_feed_complete is 0.
# TYPE crypto_liquidation_notional_usd_total counter
crypto_liquidation_notional_usd_total{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 1250.5
crypto_liquidation_notional_usd_total{coin="BTC",exchange="binance",market="linear",side="short",symbol="BTCUSDT"} 0
crypto_liquidation_notional_usd_total{coin="ETH",exchange="binance",market="linear",side="long",symbol="ETHUSDT"} 0
crypto_liquidation_notional_usd_total{coin="ETH",exchange="binance",market="linear",side="short",symbol="ETHUSDT"} 2e+06
# HELP crypto_liquidations_total Liquidation events received from the venue's public feed, by the side of the position liquidated. Lower bound where crypto_exporter_liquidation_feed_complete is 0.
# TYPE crypto_liquidations_total counter
crypto_liquidations_total{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 2
crypto_liquidations_total{coin="BTC",exchange="binance",market="linear",side="short",symbol="BTCUSDT"} 0
crypto_liquidations_total{coin="ETH",exchange="binance",market="linear",side="long",symbol="ETHUSDT"} 0
crypto_liquidations_total{coin="ETH",exchange="binance",market="linear",side="short",symbol="ETHUSDT"} 1
# HELP crypto_liquidation_size_usd USD notional of single liquidations received from the venue's public feed, by the side of the position liquidated.
# TYPE crypto_liquidation_size_usd histogram
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="100"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="1000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="5000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="10000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="25000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="50000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="100000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="250000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="500000"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="999999.99"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="2.5e+06"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="5e+06"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="1e+07"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="2.5e+07"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="long",le="+Inf"} 2
crypto_liquidation_size_usd_sum{exchange="binance",side="long"} 1250.5
crypto_liquidation_size_usd_count{exchange="binance",side="long"} 2
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="100"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="1000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="5000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="10000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="25000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="50000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="100000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="250000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="500000"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="999999.99"} 0
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="2.5e+06"} 1
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="5e+06"} 1
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="1e+07"} 1
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="2.5e+07"} 1
crypto_liquidation_size_usd_bucket{exchange="binance",side="short",le="+Inf"} 1
crypto_liquidation_size_usd_sum{exchange="binance",side="short"} 2e+06
crypto_liquidation_size_usd_count{exchange="binance",side="short"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"crypto_liquidations_total", "crypto_liquidation_notional_usd_total", "crypto_liquidation_size_usd"); err != nil {
		t.Fatal(err)
	}
	_ = clk
}

func largest(t *testing.T, c *Collector, inst *exchanges.Instrument, side exchanges.Side) float64 {
	t.Helper()
	c.mu.RLock()
	s := c.instruments[inst.Key()]
	c.mu.RUnlock()
	return s.sides[side].largestSince(c.now().Unix() - largestWindow + 1)
}

func TestLargestTrailingWindow(t *testing.T) {
	c, clk := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc})
	if got := largest(t, c, btc, exchanges.Long); got != 0 {
		t.Fatalf("largest before any liquidation = %v", got)
	}
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 500})
	clk.add(30 * time.Second)
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 200})
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Short, NotionalUSD: 900})
	if got := largest(t, c, btc, exchanges.Long); got != 500 {
		t.Errorf("at +30s largest long = %v, want 500", got)
	}
	if got := largest(t, c, btc, exchanges.Short); got != 900 {
		t.Errorf("at +30s largest short = %v, want 900", got)
	}
	clk.add(31 * time.Second) // the 500 is 61 s old
	if got := largest(t, c, btc, exchanges.Long); got != 200 {
		t.Errorf("at +61s largest long = %v, want 200", got)
	}
	clk.add(60 * time.Second)
	if got := largest(t, c, btc, exchanges.Long); got != 0 {
		t.Errorf("at +121s largest long = %v, want 0", got)
	}
	// A quiet window is dropped, and made anew by the next liquidation.
	c.mu.RLock()
	dropped := c.instruments[btc.Key()].sides[exchanges.Long].largest == nil
	c.mu.RUnlock()
	if !dropped {
		t.Error("the window of a side without liquidations for 60 s is kept")
	}
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 1000})
	// A bucket reused 60 s later (no scrape in between) must not keep the
	// old second's maximum.
	clk.add(60 * time.Second)
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 10})
	if got := largest(t, c, btc, exchanges.Long); got != 10 {
		t.Errorf("after bucket reuse largest long = %v, want 10", got)
	}
	want := `
# HELP crypto_liquidation_largest_usd USD notional of the largest single liquidation received in the trailing 60 seconds (0 if none).
# TYPE crypto_liquidation_largest_usd gauge
crypto_liquidation_largest_usd{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 10
crypto_liquidation_largest_usd{coin="BTC",exchange="binance",market="linear",side="short",symbol="BTCUSDT"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "crypto_liquidation_largest_usd"); err != nil {
		t.Fatal(err)
	}
}

func TestInstrumentRefreshKeepsCountsAndRemovesDelisted(t *testing.T) {
	c, _ := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 100})
	// A refresh with new instrument values (fresh pointers) keeps counts.
	btc2 := *btc
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{&btc2})
	c.Liquidation(exchanges.Liquidation{Instrument: &btc2, Side: exchanges.Long, NotionalUSD: 100})
	want := `
# HELP crypto_liquidations_total Liquidation events received from the venue's public feed, by the side of the position liquidated. Lower bound where crypto_exporter_liquidation_feed_complete is 0.
# TYPE crypto_liquidations_total counter
crypto_liquidations_total{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 2
crypto_liquidations_total{coin="BTC",exchange="binance",market="linear",side="short",symbol="BTCUSDT"} 0
# HELP crypto_market_info Instruments discovered on each venue (value is always 1).
# TYPE crypto_market_info gauge
crypto_market_info{coin="BTC",contract_type="perpetual",exchange="binance",market="linear",quote="USDT",symbol="BTCUSDT"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "crypto_liquidations_total", "crypto_market_info"); err != nil {
		t.Fatal(err)
	}
	if c.Liquidation(exchanges.Liquidation{Instrument: eth, Side: exchanges.Long, NotionalUSD: 1}) {
		t.Error("liquidation of a delisted instrument accepted")
	}
	// Another market of the same venue is independent.
	inv := &exchanges.Instrument{Exchange: "binance", Market: exchanges.Inverse, Symbol: "BTCUSD_PERP", Coin: "BTC", Quote: "USD", ContractType: exchanges.Perpetual, ContractSize: 100, Multiplier: 1}
	c.SetInstruments("binance", exchanges.Inverse, []*exchanges.Instrument{inv})
	if n := testutil.CollectAndCount(c, "crypto_liquidations_total"); n != 4 {
		t.Errorf("series after adding an inverse market: %d, want 4", n)
	}
}

func TestMarketValuesExpire(t *testing.T) {
	c, clk := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc})
	c.SetMarketValues([]exchanges.MarketValue{
		{Instrument: btc, Field: exchanges.MarkPrice, Value: 65000.5, TTL: 90 * time.Second},
		{Instrument: btc, Field: exchanges.FundingRate, Value: 0.0001, TTL: 30 * time.Second},
		{Instrument: btc, Field: exchanges.OpenInterestUSD, Value: math.NaN(), TTL: time.Minute}, // ignored
		{Instrument: eth, Field: exchanges.OpenInterestUSD, Value: 1, TTL: time.Minute},          // unknown instrument: ignored
		{Instrument: btc, Field: exchanges.NumFields, Value: 1, TTL: time.Minute},                // out of range: ignored
		{Instrument: btc, Field: exchanges.Volume24hUSD, Value: math.Inf(1), TTL: time.Minute},   // ignored
		{Instrument: btc, Field: exchanges.FundingIntervalSeconds, Value: 28800, TTL: time.Minute},
	})
	want := `
# HELP crypto_funding_interval_seconds Funding interval of the instrument, as published by the venue (cached between polls).
# TYPE crypto_funding_interval_seconds gauge
crypto_funding_interval_seconds{coin="BTC",exchange="binance",market="linear",symbol="BTCUSDT"} 28800
# HELP crypto_funding_rate_ratio Current funding rate per funding interval (0.0001 = 0.01 %), as last polled from the venue (cached between polls).
# TYPE crypto_funding_rate_ratio gauge
crypto_funding_rate_ratio{coin="BTC",exchange="binance",market="linear",symbol="BTCUSDT"} 0.0001
# HELP crypto_mark_price_usd Mark price of the instrument as quoted by the venue, as last polled (cached between polls).
# TYPE crypto_mark_price_usd gauge
crypto_mark_price_usd{coin="BTC",exchange="binance",market="linear",symbol="BTCUSDT"} 65000.5
`
	names := []string{"crypto_mark_price_usd", "crypto_funding_rate_ratio", "crypto_open_interest_usd", "crypto_funding_interval_seconds", "crypto_volume_24h_usd"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	clk.add(45 * time.Second)
	want = `
# HELP crypto_funding_interval_seconds Funding interval of the instrument, as published by the venue (cached between polls).
# TYPE crypto_funding_interval_seconds gauge
crypto_funding_interval_seconds{coin="BTC",exchange="binance",market="linear",symbol="BTCUSDT"} 28800
# HELP crypto_mark_price_usd Mark price of the instrument as quoted by the venue, as last polled (cached between polls).
# TYPE crypto_mark_price_usd gauge
crypto_mark_price_usd{coin="BTC",exchange="binance",market="linear",symbol="BTCUSDT"} 65000.5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatalf("after 45s: %v", err)
	}
	clk.add(time.Minute)
	if n := testutil.CollectAndCount(c, names...); n != 0 {
		t.Errorf("after 105s %d market series remain, want 0", n)
	}
}

func TestHealthFeedFearGreedPriceLevels(t *testing.T) {
	c, clk := newTestCollector()
	c.SetFeedComplete("binance", exchanges.Linear, false)
	c.SetFeedComplete("bybit", exchanges.Linear, true)
	s := c.Stream("binance", "usdm_force_order")
	p := c.Poll("binance", "usdm_premium_index")
	c.Poll("binance", "usdm_open_interest") // declared, never polled
	s.Connected()
	s.SetUp(true)
	s.Message()
	s.Message()
	s.DecodeError()
	p.Observe(1500*time.Millisecond, nil)
	p.Observe(250*time.Millisecond, errors.New("HTTP 500"))
	if c.Stream("binance", "usdm_force_order") != s {
		t.Error("Stream must return the same observer for the same stream")
	}
	c.SetFearGreed("alternative.me", 70, "Greed", time.Unix(1713628800, 0))
	c.SetPriceLevels(map[string][]float64{"BTC": {100000, 96000}, "ETH": {3300.5}})

	want := `
# HELP crypto_exporter_liquidation_feed_complete 1 if the venue publishes every liquidation, 0 if its public feed is a throttled sample (totals are lower bounds).
# TYPE crypto_exporter_liquidation_feed_complete gauge
crypto_exporter_liquidation_feed_complete{exchange="binance",market="linear"} 0
crypto_exporter_liquidation_feed_complete{exchange="bybit",market="linear"} 1
# HELP crypto_exporter_poll_duration_seconds Duration of the last poll of the endpoint.
# TYPE crypto_exporter_poll_duration_seconds gauge
crypto_exporter_poll_duration_seconds{endpoint="usdm_open_interest",exchange="binance"} 0
crypto_exporter_poll_duration_seconds{endpoint="usdm_premium_index",exchange="binance"} 0.25
# HELP crypto_exporter_poll_failures_total Failed polls of the endpoint (HTTP errors, rate limits, timeouts, malformed bodies).
# TYPE crypto_exporter_poll_failures_total counter
crypto_exporter_poll_failures_total{endpoint="usdm_open_interest",exchange="binance"} 0
crypto_exporter_poll_failures_total{endpoint="usdm_premium_index",exchange="binance"} 1
# HELP crypto_exporter_poll_success 1 if the last poll of the endpoint succeeded, else 0.
# TYPE crypto_exporter_poll_success gauge
crypto_exporter_poll_success{endpoint="usdm_open_interest",exchange="binance"} 0
crypto_exporter_poll_success{endpoint="usdm_premium_index",exchange="binance"} 0
# HELP crypto_exporter_stream_connects_total WebSocket connections established for the stream.
# TYPE crypto_exporter_stream_connects_total counter
crypto_exporter_stream_connects_total{exchange="binance",stream="usdm_force_order"} 1
# HELP crypto_exporter_stream_decode_errors_total Frames or events dropped because they were malformed, oversized or unusable (unknown symbol, invalid number).
# TYPE crypto_exporter_stream_decode_errors_total counter
crypto_exporter_stream_decode_errors_total{exchange="binance",stream="usdm_force_order"} 1
# HELP crypto_exporter_stream_last_message_timestamp_seconds Unix time of the last frame received on the stream (0 if none yet).
# TYPE crypto_exporter_stream_last_message_timestamp_seconds gauge
crypto_exporter_stream_last_message_timestamp_seconds{exchange="binance",stream="usdm_force_order"} 1.7e+09
# HELP crypto_exporter_stream_messages_total WebSocket frames received on the stream.
# TYPE crypto_exporter_stream_messages_total counter
crypto_exporter_stream_messages_total{exchange="binance",stream="usdm_force_order"} 2
# HELP crypto_exporter_stream_up 1 if the stream is connected and subscribed, else 0.
# TYPE crypto_exporter_stream_up gauge
crypto_exporter_stream_up{exchange="binance",stream="usdm_force_order"} 1
# HELP crypto_fear_greed_classification Classification of the current Fear & Greed reading as published by the source (value is always 1).
# TYPE crypto_fear_greed_classification gauge
crypto_fear_greed_classification{classification="Greed",source="alternative.me"} 1
# HELP crypto_fear_greed_index Crypto Fear & Greed Index (0 = extreme fear, 100 = extreme greed), last good reading.
# TYPE crypto_fear_greed_index gauge
crypto_fear_greed_index{source="alternative.me"} 70
# HELP crypto_fear_greed_updated_timestamp_seconds Unix time the source gives for the current Fear & Greed reading.
# TYPE crypto_fear_greed_updated_timestamp_seconds gauge
crypto_fear_greed_updated_timestamp_seconds{source="alternative.me"} 1.7136288e+09
# HELP crypto_price_level_usd Key price levels from the configuration, for alert rules.
# TYPE crypto_price_level_usd gauge
crypto_price_level_usd{coin="BTC",level="100000"} 100000
crypto_price_level_usd{coin="BTC",level="96000"} 96000
crypto_price_level_usd{coin="ETH",level="3300.5"} 3300.5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	_ = clk
}

func TestLint(t *testing.T) {
	c, _ := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc})
	c.SetFeedComplete("binance", exchanges.Linear, false)
	c.Stream("binance", "usdm_force_order")
	c.Poll("binance", "usdm_premium_index")
	c.SetMarketValues([]exchanges.MarketValue{{Instrument: btc, Field: exchanges.MarkPrice, Value: 1, TTL: time.Minute}})
	c.SetFearGreed("alternative.me", 50, "Neutral", time.Unix(1, 0))
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestConcurrentUse(t *testing.T) {
	c, _ := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})
	var wg sync.WaitGroup
	const perWorker = 2000
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Side(w % 2), NotionalUSD: 1})
				if i%100 == 0 {
					c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})
					testutil.CollectAndCount(c)
				}
			}
		}()
	}
	wg.Wait()
	want := `
# HELP crypto_liquidation_notional_usd_total USD notional of liquidations received from the venue's public feed, by the side of the position liquidated (stablecoins at par). Lower bound where crypto_exporter_liquidation_feed_complete is 0.
# TYPE crypto_liquidation_notional_usd_total counter
crypto_liquidation_notional_usd_total{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 4000
crypto_liquidation_notional_usd_total{coin="BTC",exchange="binance",market="linear",side="short",symbol="BTCUSDT"} 4000
crypto_liquidation_notional_usd_total{coin="ETH",exchange="binance",market="linear",side="long",symbol="ETHUSDT"} 0
crypto_liquidation_notional_usd_total{coin="ETH",exchange="binance",market="linear",side="short",symbol="ETHUSDT"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "crypto_liquidation_notional_usd_total"); err != nil {
		t.Fatal(err)
	}
}

func TestInstrumentsWithoutLiquidationFeed(t *testing.T) {
	c, _ := newTestCollector()
	hl := &exchanges.Instrument{Exchange: "hyperliquid", Market: exchanges.Linear, Symbol: "BTC", Coin: "BTC", Quote: "USDC",
		ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1, NoLiquidationFeed: true}
	c.SetInstruments("hyperliquid", exchanges.Linear, []*exchanges.Instrument{hl})
	c.SetMarketValues([]exchanges.MarketValue{{Instrument: hl, Field: exchanges.MarkPrice, Value: 90000, TTL: time.Minute}})
	if c.Liquidation(exchanges.Liquidation{Instrument: hl, Side: exchanges.Long, NotionalUSD: 5}) {
		t.Error("liquidation accepted for an instrument without a feed")
	}
	for _, name := range []string{"crypto_liquidations_total", "crypto_liquidation_notional_usd_total", "crypto_liquidation_largest_usd", "crypto_liquidation_size_usd"} {
		if n := testutil.CollectAndCount(c, name); n != 0 {
			t.Errorf("%d %s series for an instrument without a liquidation feed", n, name)
		}
	}
	if n := testutil.CollectAndCount(c, "crypto_market_info", "crypto_mark_price_usd"); n != 2 {
		t.Errorf("market info and mark price: %d series, want 2", n)
	}
}

func TestInstrumentCap(t *testing.T) {
	c, _ := newTestCollector()
	var logged strings.Builder
	c.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	c.SetInstrumentCap("binance", 3)
	mk := func(market exchanges.Market, sym string) *exchanges.Instrument {
		return &exchanges.Instrument{Exchange: "binance", Market: market, Symbol: sym, Coin: sym, Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
	}
	a, b, d := mk(exchanges.Linear, "A"), mk(exchanges.Linear, "B"), mk(exchanges.Linear, "D")
	x, y := mk(exchanges.Inverse, "X"), mk(exchanges.Inverse, "Y")

	// Within the cap: everything kept, no log, nothing over.
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{a, b})
	if logged.Len() != 0 {
		t.Errorf("logged within the cap: %s", logged.String())
	}
	// The other market gets the room that is left: X kept, Y left out.
	c.SetInstruments("binance", exchanges.Inverse, []*exchanges.Instrument{x, y})
	if !c.Liquidation(exchanges.Liquidation{Instrument: x, Side: exchanges.Long, NotionalUSD: 10}) {
		t.Error("liquidation of a kept instrument dropped")
	}
	if c.Liquidation(exchanges.Liquidation{Instrument: y, Side: exchanges.Long, NotionalUSD: 10}) {
		t.Error("liquidation of an instrument over the cap counted")
	}
	if !strings.Contains(logged.String(), "instrument cap reached") || !strings.Contains(logged.String(), "left_out=1") || !strings.Contains(logged.String(), "max_instruments=3") {
		t.Errorf("log line: %q", logged.String())
	}
	// A rediscovery listing a new instrument first keeps the old ones:
	// D is left out, A and B keep their series and counts.
	c.Liquidation(exchanges.Liquidation{Instrument: a, Side: exchanges.Short, NotionalUSD: 5})
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{d, b, a})
	if c.Liquidation(exchanges.Liquidation{Instrument: d, Side: exchanges.Long, NotionalUSD: 1}) {
		t.Error("new instrument over the cap counted")
	}
	want := `
# HELP crypto_exporter_instrument_cap_reached_total Instrument discoveries that listed more instruments than the exchange's max_instruments cap allows.
# TYPE crypto_exporter_instrument_cap_reached_total counter
crypto_exporter_instrument_cap_reached_total{exchange="binance"} 2
# HELP crypto_exporter_instruments Instruments of the market whose series the exporter keeps.
# TYPE crypto_exporter_instruments gauge
crypto_exporter_instruments{exchange="binance",market="inverse"} 1
crypto_exporter_instruments{exchange="binance",market="linear"} 2
# HELP crypto_exporter_instruments_over_cap Instruments the venue listed at the last discovery that were left out because the exchange's max_instruments cap was reached; their liquidations are dropped and counted as decode errors.
# TYPE crypto_exporter_instruments_over_cap gauge
crypto_exporter_instruments_over_cap{exchange="binance",market="inverse"} 1
crypto_exporter_instruments_over_cap{exchange="binance",market="linear"} 1
`
	if err := testutil.CollectAndCompare(c.Others(), strings.NewReader(want), "crypto_exporter_instrument_cap_reached_total", "crypto_exporter_instruments", "crypto_exporter_instruments_over_cap"); err != nil {
		t.Fatal(err)
	}
	want = `
# HELP crypto_liquidations_total Liquidation events received from the venue's public feed, by the side of the position liquidated. Lower bound where crypto_exporter_liquidation_feed_complete is 0.
# TYPE crypto_liquidations_total counter
crypto_liquidations_total{coin="A",exchange="binance",market="linear",side="long",symbol="A"} 0
crypto_liquidations_total{coin="A",exchange="binance",market="linear",side="short",symbol="A"} 1
crypto_liquidations_total{coin="B",exchange="binance",market="linear",side="long",symbol="B"} 0
crypto_liquidations_total{coin="B",exchange="binance",market="linear",side="short",symbol="B"} 0
crypto_liquidations_total{coin="X",exchange="binance",market="inverse",side="long",symbol="X"} 1
crypto_liquidations_total{coin="X",exchange="binance",market="inverse",side="short",symbol="X"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "crypto_liquidations_total"); err != nil {
		t.Fatal(err)
	}
	// Delisting makes room again; other exchanges are not capped.
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{d})
	if !c.Liquidation(exchanges.Liquidation{Instrument: d, Side: exchanges.Long, NotionalUSD: 1}) {
		t.Error("instrument within the cap after a delisting dropped")
	}
	if v := gaugeOf(t, c, descInstrumentsOverCap, "binance", "linear"); v != 0 {
		t.Errorf("over cap after delisting %v, want 0", v)
	}
	// Removing the cap: the next declaration keeps everything.
	c.SetInstrumentCap("binance", 0)
	c.SetInstruments("binance", exchanges.Inverse, []*exchanges.Instrument{x, y})
	if !c.Liquidation(exchanges.Liquidation{Instrument: y, Side: exchanges.Long, NotionalUSD: 1}) {
		t.Error("uncapped instrument dropped")
	}
}

// gaugeOf returns the value of the gauge of desc with the given label values.
func gaugeOf(t *testing.T, c *Collector, desc *prometheus.Desc, values ...string) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	c.Others().Collect(ch)
	close(ch)
	for m := range ch {
		if m.Desc() != desc {
			continue
		}
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		match := len(pb.GetLabel()) == len(values)
		for i, l := range pb.GetLabel() {
			if match && l.GetValue() != values[i] {
				match = false
			}
		}
		if match {
			return pb.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s%v", desc, values)
	return 0
}
