package bybit

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const next = 1_800_000_000_000 // a nextFundingTime in ms

// fakeSymbols is the fake's instrument list: eight trading linear symbols
// (perpetuals with 8 h, 4 h and 2 h funding, a 1000x symbol, a USDC
// perpetual, a dated future, a ticker in the older shape without
// singleOpenInterest), two that are not trading, and three inverse ones.
func fakeSymbols() []exchangetest.BybitSymbol {
	lin := func(sym, base string, mark, single, singleValue, turnover, funding float64) exchangetest.BybitSymbol {
		return exchangetest.BybitSymbol{Category: exchangetest.BybitLinear, Symbol: sym, BaseCoin: base, QuoteCoin: "USDT", SettleCoin: "USDT",
			ContractType: "LinearPerpetual", Status: "Trading", MarkPrice: mark,
			OpenInterest: 2 * single, OpenInterestValue: 2 * singleValue, SingleOpenInterest: single, SingleOpenInterestValue: singleValue,
			Turnover24h: turnover, Volume24h: turnover / mark, FundingRate: funding, NextFundingTime: next}
	}
	btc := lin("BTCUSDT", "BTC", 65000.5, 50000.5, 3.25e9, 4.5e9, 0.0001)
	eth := lin("ETHUSDT", "ETH", 3000.25, 1e6, 3.0002e9, 3e9, -0.00025)
	eth.FundingInterval = 240
	pepe := lin("1000PEPEUSDT", "1000PEPE", 0.0125, 4e9, 5e7, 1.2e9, 0.0005)
	sol := lin("SOLUSDT", "SOL", 150.5, 0, 0, 8e8, 0.0002)
	sol.OpenInterest, sol.OpenInterestValue = 3e6, 4.515e8
	sol.FundingInterval = 120
	sol.LegacyTicker = true
	usdc := lin("BTCPERP", "BTC", 65010, 1000, 6.501e7, 3e8, 0.00012)
	usdc.QuoteCoin, usdc.SettleCoin = "USDC", "USDC"
	fut := lin("BTC-26DEC25", "BTC", 66000, 150, 9.9e6, 1.22e8, math.NaN())
	fut.ContractType, fut.DeliveryTime, fut.NextFundingTime = "LinearFutures", 1_766_736_000_000, 0
	xrp := lin("XRPUSDT", "XRP", 0.5, 1e8, 5e7, 2e8, 0.0001)
	doge := lin("DOGEUSDT", "DOGE", 0.1, 2e9, 2e8, 3e8, 0.0001)
	closed := lin("OLDUSDT", "OLD", 1, 1, 1, 1, 0)
	closed.Status = "Closed"
	pre := lin("PREUSDT", "PRE", 1, 1, 1, 1, 0)
	pre.Status = "PreLaunch"

	inv := func(sym, base, ct string, mark, single, singleValue, volume, funding float64) exchangetest.BybitSymbol {
		return exchangetest.BybitSymbol{Category: exchangetest.BybitInverse, Symbol: sym, BaseCoin: base, QuoteCoin: "USD", SettleCoin: base,
			ContractType: ct, Status: "Trading", MarkPrice: mark,
			OpenInterest: 2 * single, OpenInterestValue: 2 * singleValue, SingleOpenInterest: single, SingleOpenInterestValue: singleValue,
			Turnover24h: volume / mark, Volume24h: volume, FundingRate: funding, NextFundingTime: next}
	}
	ibtc := inv("BTCUSD", "BTC", "InversePerpetual", 65010, 2.4e8, 3691.7, 1.3e7, 0.0001)
	ieth := inv("ETHUSD", "ETH", "InversePerpetual", 3001, 3e7, 9996.67, 4e6, 0.0002)
	ifut := inv("BTCUSDZ25", "BTC", "InverseFutures", 66500, 1e7, 150.37, 4e5, math.NaN())
	ifut.DeliveryTime, ifut.NextFundingTime = 1_766_736_000_000, 0
	return []exchangetest.BybitSymbol{btc, eth, pepe, sol, usdc, fut, xrp, doge, closed, pre, ibtc, ieth, ifut}
}

// Trading symbols of the fake, sorted.
var (
	linearTrading  = []string{"1000PEPEUSDT", "BTC-26DEC25", "BTCPERP", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}
	inverseTrading = []string{"BTCUSD", "BTCUSDZ25", "ETHUSD"}
)

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Bybit
	v    *Venue
}

// newHarness starts the fake with fakeSymbols and three instruments per
// instruments-info page; run starts the venue.
func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewBybit()
	t.Cleanup(fake.Close)
	fake.SetSymbols(fakeSymbols())
	fake.SetPageSize(3)
	fake.SetMaxArgs(ArgsPerSubscribe)
	return &harness{Harness: venuetest.New(t), fake: fake}
}

// config is the venue's configuration against the fake, changed by mod.
func (h *harness) config(mod func(*Config)) Config {
	cfg := Config{
		REST: h.fake.RESTURL(), LinearWS: h.fake.LinearWSURL(), InverseWS: h.fake.InverseWSURL(),
		PollInterval:        200 * time.Millisecond,
		InstrumentsInterval: time.Hour,
		Client:              exchanges.NewClient(2*time.Second, "test"),
		Logger:              slog.New(slog.DiscardHandler),
		TopicsPerConnection: 3,
		Stream:              venuetest.FastStream,
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func (h *harness) run(t *testing.T, mod func(*Config)) {
	t.Helper()
	h.v = New(h.config(mod))
	h.Start(h.v.Run)
}

func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := newHarness(t)
	h.run(t, mod)
	return h
}

func topics(symbols ...string) []string {
	out := make([]string, len(symbols))
	for i, s := range symbols {
		out[i] = Topic(s)
	}
	return out
}

// waitTopics waits until the fake holds the liquidation topic of every symbol.
func (h *harness) waitTopics(t *testing.T, symbols ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.fake.WaitTopics(ctx, topics(symbols...)...); err != nil {
		t.Fatal(err)
	}
}

// waitAllUp waits until every stream of the venue is up.
func (h *harness) waitAllUp(t *testing.T, streams ...string) collectortest.Samples {
	t.Helper()
	return h.WaitStreamsUp(t, "bybit", streams...)
}

var allStreams = []string{"linear_liquidations_0", "linear_liquidations_1", "linear_liquidations_2", "inverse_liquidations_0"}

// val reads a series, NaN when missing.
var val = venuetest.Val

func inst(market, symbol, coin string) []string {
	return []string{"exchange", "bybit", "market", market, "symbol", symbol, "coin", coin}
}

func stream(name string) []string { return []string{"exchange", "bybit", "stream", name} }

// sumStreams adds a stream metric over the venue's streams.
func sumStreams(s collectortest.Samples, name string) float64 {
	return s.Sum(name, "exchange", "bybit")
}

func TestVenueDiscoveryAndSubscriptions(t *testing.T) {
	h := start(t, nil)
	h.waitTopics(t, append(slices.Clone(linearTrading), inverseTrading...)...)
	s := h.waitAllUp(t, allStreams...)

	// Pagination: three pages of three linear instruments, two inverse pages.
	if n := h.fake.Requests("/v5/market/instruments-info?category=linear"); n != 3 {
		t.Errorf("%d linear instruments-info requests, want 3 pages", n)
	}
	if n := h.fake.Requests("/v5/market/instruments-info?category=inverse"); n != 1 {
		t.Errorf("%d inverse instruments-info requests, want 1 page", n)
	}
	// Every trading symbol once, across several connections of at most
	// TopicsPerConnection topics; nothing else.
	for cat, want := range map[string][]string{exchangetest.BybitLinear: linearTrading, exchangetest.BybitInverse: inverseTrading} {
		held := h.fake.Topics(cat)
		if len(held) != len(want) {
			t.Errorf("%s: %d topics held, want %d: %v", cat, len(held), len(want), held)
		}
		for _, topic := range topics(want...) {
			if held[topic] != 1 {
				t.Errorf("%s held by %d connections", topic, held[topic])
			}
		}
	}
	conns := h.fake.ConnTopics(exchangetest.BybitLinear)
	if len(conns) != 3 {
		t.Errorf("%d linear connections, want 3: %v", len(conns), conns)
	}
	for _, c := range conns {
		if len(c) > 3 {
			t.Errorf("a connection holds %d topics, more than TopicsPerConnection", len(c))
		}
	}
	// Round robin over the sorted symbols.
	if got := h.v.markets[0].shards.snapshot(); !slices.Equal(got[0], []string{"1000PEPEUSDT", "BTCUSDT", "SOLUSDT"}) ||
		!slices.Equal(got[1], []string{"BTC-26DEC25", "DOGEUSDT", "XRPUSDT"}) || !slices.Equal(got[2], []string{"BTCPERP", "ETHUSDT"}) {
		t.Errorf("shards %v", got)
	}
	for _, st := range allStreams {
		if got := val(s, "crypto_exporter_stream_connects_total", stream(st)...); got != 1 {
			t.Errorf("%s connects %v", st, got)
		}
		if got := val(s, "crypto_exporter_stream_decode_errors_total", stream(st)...); got != 0 {
			t.Errorf("%s decode errors %v", st, got)
		}
	}
	if n := len(s.Names("crypto_exporter_stream_up")); n != 4 {
		t.Errorf("%d streams, want 4", n)
	}

	// Instruments: trading only; coin, quote and contract type.
	if n := len(s.Names("crypto_market_info")); n != 11 {
		t.Errorf("crypto_market_info has %d series, want 11", n)
	}
	if n := len(s.Names("crypto_liquidations_total")); n != 22 {
		t.Errorf("crypto_liquidations_total has %d series, want 22 (pre-initialised)", n)
	}
	for _, want := range [][]string{
		append(inst("linear", "1000PEPEUSDT", "PEPE"), "quote", "USDT", "contract_type", "perpetual"),
		append(inst("linear", "BTCPERP", "BTC"), "quote", "USDC", "contract_type", "perpetual"),
		append(inst("linear", "BTC-26DEC25", "BTC"), "quote", "USDT", "contract_type", "future"),
		append(inst("inverse", "BTCUSD", "BTC"), "quote", "USD", "contract_type", "perpetual"),
		append(inst("inverse", "BTCUSDZ25", "BTC"), "quote", "USD", "contract_type", "future"),
	} {
		if _, ok := s.Get("crypto_market_info", want...); !ok {
			t.Errorf("missing crypto_market_info%v", want)
		}
	}
	for _, m := range []string{"linear", "inverse"} {
		if v := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", "bybit", "market", m); v != 1 {
			t.Errorf("feed_complete %s = %v, want 1", m, v)
		}
	}
	s = h.Eventually(t, "every poll succeeded", func(s collectortest.Samples) bool {
		for _, ep := range []string{"linear_instruments", "linear_tickers", "inverse_instruments", "inverse_tickers", "linear_long_short_ratio"} {
			if val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", ep) != 1 {
				return false
			}
		}
		return true
	})
	if n := len(s.Names("crypto_exporter_poll_success")); n != 5 {
		t.Errorf("%d poll endpoints, want 5", n)
	}
}

func TestVenueDeclaresBeforeDiscovery(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext("/v5/market/instruments-info", 1000, 503, 0, "")
	h.run(t, nil)
	s := h.Eventually(t, "failed discovery", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "bybit", "endpoint", "linear_instruments") >= 1
	})
	for _, st := range []string{"linear_liquidations_0", "inverse_liquidations_0"} {
		if got := val(s, "crypto_exporter_stream_up", stream(st)...); got != 0 {
			t.Errorf("%s up = %v, want 0 before discovery", st, got)
		}
	}
	for _, ep := range []string{"linear_instruments", "linear_tickers", "inverse_instruments", "inverse_tickers"} {
		if _, ok := s.Get("crypto_exporter_poll_success", "exchange", "bybit", "endpoint", ep); !ok {
			t.Errorf("poll %s not declared", ep)
		}
	}
}

func TestVenueSubscribeBatches(t *testing.T) {
	h := newHarness(t)
	var syms []exchangetest.BybitSymbol
	var names []string
	for i := range 24 {
		sym := "C" + string(rune('A'+i)) + "USDT"
		names = append(names, sym)
		syms = append(syms, exchangetest.BybitSymbol{Category: exchangetest.BybitLinear, Symbol: sym, BaseCoin: "C" + string(rune('A'+i)),
			QuoteCoin: "USDT", SettleCoin: "USDT", ContractType: "LinearPerpetual", Status: "Trading", MarkPrice: 1})
	}
	h.fake.SetSymbols(syms)
	h.run(t, func(c *Config) {
		c.Markets = []string{MarketLinear}
		c.TopicsPerConnection = 30
	})
	h.waitTopics(t, names...)
	h.waitAllUp(t, "linear_liquidations_0")
	if n := h.fake.SubscribeRequests(); n != 3 {
		t.Errorf("%d subscribe requests for 24 topics, want 3", n)
	}
	if n := h.fake.MaxArgsSeen(); n != ArgsPerSubscribe {
		t.Errorf("largest subscribe request has %d args, want %d", n, ArgsPerSubscribe)
	}
	if n := h.fake.Connections(""); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// tapeEvent is one liquidation of the scripted tape.
type tapeEvent struct {
	side        string // Bybit's S: "Buy" = long liquidated
	size, price float64
}

func TestVenueLiquidationsAndGauges(t *testing.T) {
	h := start(t, nil)
	h.waitTopics(t, append(slices.Clone(linearTrading), inverseTrading...)...)
	h.waitAllUp(t, allStreams...)

	coins := map[string]string{}
	for _, s := range fakeSymbols() {
		c, _ := NormalizeCoin(s.BaseCoin)
		coins[s.Symbol] = c
	}
	marketOf := func(sym string) string {
		if slices.Contains(inverseTrading, sym) {
			return "inverse"
		}
		return "linear"
	}
	type key struct{ market, symbol, coin, side string }
	type want struct{ count, notional float64 }
	expected := map[key]want{}
	frame := func(sym string, evs ...tapeEvent) exchangetest.Event {
		var liqs []exchangetest.BybitLiquidation
		for _, e := range evs {
			liqs = append(liqs, exchangetest.BybitLiquidation{Side: e.side, Size: e.size, Price: e.price})
			side := "short"
			if e.side == "Buy" {
				side = "long"
			}
			n := e.size * e.price // linear: v x p
			if marketOf(sym) == "inverse" {
				n = e.size // inverse: v USD contracts
			}
			k := key{marketOf(sym), sym, coins[sym], side}
			w := expected[k]
			w.count++
			w.notional += n
			expected[k] = w
		}
		return exchangetest.Event{Frame: exchangetest.BybitLiquidationFrame(sym, 0, liqs...)}
	}
	ev := func(side string, size, price float64) tapeEvent {
		return tapeEvent{side: side, size: size, price: price}
	}

	// Part one, then a disconnect of every connection, then part two.
	part1 := []exchangetest.Event{
		frame("BTCUSDT", ev("Buy", 0.5, 64100.5)),
		frame("BTCUSDT", ev("Sell", 1.25, 65950), ev("Sell", 0.003, 43511.7)),
		frame("1000PEPEUSDT", ev("Buy", 1e6, 0.0121)),
		frame("BTC-26DEC25", ev("Sell", 0.1, 66400)),
		frame("BTCUSD", ev("Buy", 12000, 64050), ev("Sell", 350, 64060), ev("Buy", 1, 64070)),
		frame("ETHUSD", ev("Sell", 7000, 3099)),
	}
	// Garbage: a bad event next to a good one (the good one counts), and
	// frames no decoder can use. Frames without a readable topic go to every
	// subscribed connection, each of which counts one decode error.
	badEvent := `{"topic":"allLiquidation.ETHUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"ETHUSDT","S":"Buy","v":"NaN","p":"3000"},{"T":1,"s":"ETHUSDT","S":"Sell","v":"2","p":"3001"}]}`
	expected[key{"linear", "ETHUSDT", "ETH", "short"}] = want{1, 6002}
	garbage := []exchangetest.Event{
		{Frame: []byte(badEvent)},
		{Frame: []byte(`{"topic":"allLiquidation.XRPUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"XRPUSDT","S":"sell","v":"1","p":"1"}]}`)},
		{Frame: []byte(`{"topic":"allLiquidation.DOGEUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"DOGEUSDT","S":"Buy","v":"-5","p":"0.1"}]}`)},
		{Frame: []byte(`not json`)},
	}
	total := func() float64 {
		n := 0.0
		for _, w := range expected {
			n += w.count
		}
		return n
	}
	part1Total := total()
	part2 := []exchangetest.Event{
		frame("SOLUSDT", ev("Buy", 10, 150.25)),
		frame("BTCPERP", ev("Sell", 0.2, 65000)),
		frame("BTCUSDT", ev("Buy", 0.75, 64000)),
		frame("BTCUSDZ25", ev("Buy", 5000, 66400)),
		frame("XRPUSDT", ev("Sell", 1000, 0.51), ev("Buy", 2000, 0.49)),
	}

	var delivered []exchangetest.Delivered
	delivered = append(delivered, h.fake.Play(append(part1, garbage...))...)
	wantErrors := 0.0
	for _, d := range delivered {
		if d.Conns == 0 {
			t.Fatalf("frame %s reached no connection", d.Frame)
		}
	}
	wantErrors = 3 + float64(delivered[len(delivered)-1].Conns) // bad event, bad side, negative size; not json on every connection
	h.Eventually(t, "part one counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= part1Total && sumStreams(s, "crypto_exporter_stream_decode_errors_total") >= wantErrors
	})
	h.fake.Play([]exchangetest.Event{{Disconnect: true}})
	for _, d := range h.fake.Play(part2) {
		if d.Conns != 1 {
			t.Fatalf("frame %s delivered to %d connections", d.Frame, d.Conns)
		}
	}
	s := h.Eventually(t, "all liquidations counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= total()
	})

	// Series by series: every counter equals the tape's ground truth.
	for _, k := range s.Names("crypto_liquidations_total") {
		labels := k[len("crypto_liquidations_total"):]
		var w want
		for kk, ww := range expected {
			if labels == collectortest.Key("", append(inst(kk.market, kk.symbol, kk.coin), "side", kk.side)...) {
				w = ww
			}
		}
		if got := s[k]; got != w.count {
			t.Errorf("%s = %v, want %v", k, got, w.count)
		}
		nk := "crypto_liquidation_notional_usd_total" + labels
		if got := s[nk]; !collectortest.Close(got, w.notional) {
			t.Errorf("%s = %v, want %v", nk, got, w.notional)
		}
	}
	if got := s.Sum("crypto_liquidations_total"); got != total() {
		t.Errorf("liquidations total %v, want %v", got, total())
	}
	if got := sumStreams(s, "crypto_exporter_stream_decode_errors_total"); got != wantErrors {
		t.Errorf("decode errors %v, want %v", got, wantErrors)
	}
	for _, st := range allStreams {
		if got := val(s, "crypto_exporter_stream_connects_total", stream(st)...); got != 2 {
			t.Errorf("%s connects = %v, want 2 (one disconnect)", st, got)
		}
	}
	s = h.waitAllUp(t, allStreams...)
	if got := val(s, "crypto_liquidation_largest_usd", append(inst("inverse", "BTCUSD", "BTC"), "side", "long")...); got != 12000 {
		t.Errorf("largest BTCUSD long = %v, want 12000", got)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", "bybit"); got != total() {
		t.Errorf("histogram count %v, want %v", got, total())
	}

	// Polled gauges, computed from the fake's state by the project's rules.
	s = h.Eventually(t, "gauges of every instrument", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_usd")) == 11 && len(s.Names("crypto_volume_24h_usd")) == 11
	})
	checkGauges(t, s, h.fake.Symbols())
}

// checkGauges compares every polled gauge with the value the project's
// rules give for the fake's state.
func checkGauges(t *testing.T, s collectortest.Samples, syms []exchangetest.BybitSymbol) {
	t.Helper()
	for _, sym := range syms {
		if sym.Status != "Trading" {
			continue
		}
		coin, mult := NormalizeCoin(sym.BaseCoin)
		labels := inst(sym.Category, sym.Symbol, coin)
		want := map[string]float64{"crypto_mark_price_usd": sym.MarkPrice}
		oi, oiValue := sym.SingleOpenInterest, sym.SingleOpenInterestValue
		if sym.LegacyTicker {
			oi, oiValue = sym.OpenInterest, sym.OpenInterestValue
		}
		if sym.Category == exchangetest.BybitLinear {
			want["crypto_open_interest_coins"] = oi * mult
			want["crypto_open_interest_usd"] = oiValue
			want["crypto_volume_24h_usd"] = sym.Turnover24h
		} else {
			want["crypto_open_interest_usd"] = oi
			want["crypto_open_interest_coins"] = oiValue
			want["crypto_volume_24h_usd"] = sym.Volume24h
		}
		perpetual := strings.HasSuffix(sym.ContractType, "Perpetual")
		if perpetual {
			minutes := sym.FundingInterval
			if minutes == 0 {
				minutes = 480
			}
			want["crypto_funding_rate_ratio"] = sym.FundingRate
			want["crypto_funding_interval_seconds"] = float64(minutes) * 60
			want["crypto_funding_next_timestamp_seconds"] = float64(sym.NextFundingTime) / 1000
		}
		for name, w := range want {
			got, ok := s.Get(name, labels...)
			if !ok || !collectortest.Close(got, w) {
				t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, w)
			}
		}
		if !perpetual {
			for _, name := range []string{"crypto_funding_rate_ratio", "crypto_funding_interval_seconds", "crypto_funding_next_timestamp_seconds"} {
				if _, ok := s.Get(name, labels...); ok {
					t.Errorf("%s exported for dated future %s", name, sym.Symbol)
				}
			}
		}
	}
}

func TestVenueRateLimitHonoursRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext("/v5/market/tickers?category=linear", 1, 429, 1, "")
	h.run(t, func(c *Config) { c.Markets = []string{MarketLinear} })
	s := h.Eventually(t, "a failed tickers poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "bybit", "endpoint", "linear_tickers") >= 1
	})
	if got := val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers"); got != 0 {
		t.Errorf("poll_success after 429 = %v", got)
	}
	failedAt := time.Now()
	n := h.fake.Requests("/v5/market/tickers")
	// No request for the Retry-After second, although the interval is 200ms.
	time.Sleep(700 * time.Millisecond)
	if got := h.fake.Requests("/v5/market/tickers"); got != n {
		t.Errorf("%d tickers requests within Retry-After", got-n)
	}
	h.Eventually(t, "recovery after Retry-After", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers") == 1
	})
	if d := time.Since(failedAt); d < 800*time.Millisecond {
		t.Errorf("recovered %v after the 429; Retry-After was 1s", d)
	}
}

func TestVenueBanAndRetCodeRateLimit(t *testing.T) {
	defer func(d time.Duration) { BanWait = d }(BanWait)
	BanWait = time.Second
	h := newHarness(t)
	h.run(t, nil)
	h.Eventually(t, "first good tickers polls", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers") == 1 &&
			val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "inverse_tickers") == 1
	})
	requests := func() int {
		return h.fake.Requests("/v5/market/tickers") + h.fake.Requests("/v5/market/instruments-info")
	}
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		// HTTP 403 is Bybit's IP ban: no request at all (any category)
		// for BanWait.
		{"403", func() { h.fake.FailNext("/v5/market/tickers?category=linear", 1, 403, 0, "") }},
		// retCode 10006 "Too many visits!": back off at least a second.
		{"retCode 10006", func() { h.fake.FailNextRetCode("/v5/market/tickers?category=linear", 1, 10006, "Too many visits!") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := val(h.Samples(t), "crypto_exporter_poll_failures_total", "exchange", "bybit", "endpoint", "linear_tickers")
			tc.inject()
			h.Eventually(t, "the failure", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_failures_total", "exchange", "bybit", "endpoint", "linear_tickers") > before
			})
			n := requests()
			failedAt := time.Now()
			time.Sleep(600 * time.Millisecond)
			if got := requests(); got != n {
				t.Errorf("%d requests while banned", got-n)
			}
			h.Eventually(t, "recovery", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers") == 1
			})
			if d := time.Since(failedAt); d < 700*time.Millisecond {
				t.Errorf("recovered after %v", d)
			}
		})
	}
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	h := start(t, func(c *Config) { c.Markets = []string{MarketLinear} })
	btc := inst("linear", "BTCUSDT", "BTC")
	h.Eventually(t, "mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 65000.5
	})
	path := "/v5/market/tickers"
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "bybit", "endpoint", "linear_tickers")
	}
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"500", func() { h.fake.FailNext(path, 1, 500, 0, "") }},
		{"503 maintenance", func() { h.fake.FailNext(path, 1, 503, 0, "<html>maintenance</html>") }},
		{"malformed body", func() {
			h.fake.FailNext(path, 1, 200, 0, `{"retCode":0,"retMsg":"OK","result":{"list":[{"symbol":"BTCUSDT","markPrice":`)
		}},
		{"NaN in body", func() {
			h.fake.FailNext(path, 1, 200, 0, `{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT","markPrice":"NaN"}]},"time":1}`)
		}},
		{"no envelope", func() { h.fake.FailNext(path, 1, 200, 0, `{"list":[]}`) }},
		{"retCode error", func() { h.fake.FailNextRetCode(path, 1, 10016, "Internal system error.") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := failures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool { return failures(s) > before })
			if got := val(s, "crypto_mark_price_usd", btc...); got != 65000.5 {
				t.Errorf("mark price after a failed poll = %v, want the last good 65000.5", got)
			}
			h.Eventually(t, "a good poll again", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers") == 1
			})
		})
	}
	// Polls that keep failing make the values go stale instead of freezing.
	h.fake.FailNext(path, 6, 502, 0, "")
	h.Eventually(t, "stale mark price removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_mark_price_usd", btc...)
		return !ok
	})
	// A change reaches the gauges at the next good poll.
	h.fake.UpdateSymbol(exchangetest.BybitLinear, "BTCUSDT", func(s *exchangetest.BybitSymbol) {
		s.MarkPrice, s.FundingRate, s.SingleOpenInterest = 70000, 0.0003, 123
	})
	s := h.Eventually(t, "new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 70000
	})
	if got := val(s, "crypto_funding_rate_ratio", btc...); got != 0.0003 {
		t.Errorf("funding rate %v", got)
	}
	if got := val(s, "crypto_open_interest_coins", btc...); got != 123 {
		t.Errorf("open interest %v", got)
	}
}

func TestVenueTimeoutIsAFailedPoll(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Markets = []string{MarketInverse}
		c.Client = exchanges.NewClient(100*time.Millisecond, "test")
	})
	h.Eventually(t, "first good tickers poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "inverse_tickers") == 1
	})
	h.fake.SetLatency("/v5/market/tickers?category=inverse", 300*time.Millisecond)
	h.Eventually(t, "a timed-out tickers poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "inverse_tickers") == 0 &&
			val(s, "crypto_exporter_poll_failures_total", "exchange", "bybit", "endpoint", "inverse_tickers") >= 1
	})
}

func TestVenueSubscriptionRejected(t *testing.T) {
	h := newHarness(t)
	h.fake.RejectNextSubscribe(1)
	h.run(t, nil)
	h.waitTopics(t, append(slices.Clone(linearTrading), inverseTrading...)...)
	s := h.waitAllUp(t, allStreams...)
	if got := sumStreams(s, "crypto_exporter_stream_decode_errors_total"); got != 1 {
		t.Errorf("decode errors %v, want 1 (the rejection)", got)
	}
	if got := sumStreams(s, "crypto_exporter_stream_connects_total"); got != 5 {
		t.Errorf("connects %v, want 5 (four streams, one reconnect after the rejection)", got)
	}
	for cat, want := range map[string]int{exchangetest.BybitLinear: len(linearTrading), exchangetest.BybitInverse: len(inverseTrading)} {
		held := h.fake.Topics(cat)
		for topic, n := range held {
			if n != 1 {
				t.Errorf("%s held by %d connections", topic, n)
			}
		}
		if len(held) != want {
			t.Errorf("%s: %d topics, want %d", cat, len(held), want)
		}
	}
}

func TestVenueListingChangesFollowLive(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Markets = []string{MarketLinear}
		c.InstrumentsInterval = 200 * time.Millisecond
	})
	h.waitTopics(t, linearTrading...)
	h.waitAllUp(t, allStreams[:3]...)
	conns := h.fake.TotalConnections("")

	add := func(sym string) {
		h.fake.UpdateSymbol(exchangetest.BybitLinear, sym, func(s *exchangetest.BybitSymbol) {
			*s = exchangetest.BybitSymbol{Category: exchangetest.BybitLinear, Symbol: sym, BaseCoin: strings.TrimSuffix(sym, "USDT"), QuoteCoin: "USDT",
				SettleCoin: "USDT", ContractType: "LinearPerpetual", Status: "Trading", MarkPrice: 2, SingleOpenInterest: 10, SingleOpenInterestValue: 20,
				FundingRate: 0.0001, NextFundingTime: next}
		})
	}
	// A new listing joins the least loaded connection without a reconnect.
	add("NEWUSDT")
	h.waitTopics(t, "NEWUSDT")
	if got := h.v.markets[0].shards.snapshot()[2]; !slices.Contains(got, "NEWUSDT") {
		t.Errorf("NEWUSDT not on the least loaded shard: %v", got)
	}
	newInst := inst("linear", "NEWUSDT", "NEW")
	h.Eventually(t, "NEWUSDT series", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(newInst, "side", "long")...)
		return ok
	})
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.BybitLiquidationFrame("NEWUSDT", 0, exchangetest.BybitLiquidation{Side: "Buy", Size: 100, Price: 2})}})
	h.Eventually(t, "NEWUSDT liquidation counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", append(newInst, "side", "long")...) == 200
	})
	// All connections full: a new one, with its own stream.
	add("NEXTUSDT")
	h.waitTopics(t, "NEXTUSDT")
	h.waitAllUp(t, "linear_liquidations_3")
	if got := h.fake.TotalConnections(""); got != conns+1 {
		t.Errorf("%d connections opened, want %d (one new shard, no reconnects)", got, conns+1)
	}
	// Delisting: unsubscribed live, series removed.
	h.fake.UpdateSymbol(exchangetest.BybitLinear, "NEWUSDT", func(s *exchangetest.BybitSymbol) { s.Status = "Closed" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.fake.WaitNoTopic(ctx, Topic("NEWUSDT")); err != nil {
		t.Fatal(err)
	}
	s := h.Eventually(t, "NEWUSDT removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(newInst, "side", "long")...)
		return !ok
	})
	if got := sumStreams(s, "crypto_exporter_stream_decode_errors_total"); got != 0 {
		t.Errorf("decode errors %v (a rejected subscribe or unsubscribe?)", got)
	}
	if got := h.fake.TotalConnections(""); got != conns+1 {
		t.Errorf("%d connections opened, want %d", got, conns+1)
	}
	for topic, n := range h.fake.Topics(exchangetest.BybitLinear) {
		if n != 1 {
			t.Errorf("%s held by %d connections", topic, n)
		}
	}
}

func TestVenueHeartbeat(t *testing.T) {
	h := newHarness(t)
	h.fake.SetIdleTimeout(600 * time.Millisecond)
	h.run(t, func(c *Config) {
		c.Markets = []string{MarketInverse}
		c.Stream = func(c *wsconn.Config) {
			venuetest.FastStream(c)
			c.PingInterval = 150 * time.Millisecond
		}
	})
	h.waitAllUp(t, "inverse_liquidations_0")
	time.Sleep(1200 * time.Millisecond)
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_stream_connects_total", stream("inverse_liquidations_0")...); got != 1 {
		t.Errorf("connects %v: the idle timeout cut a pinging connection", got)
	}
	if n := h.fake.Pings(); n < 5 {
		t.Errorf("%d pings in 1.2s at a 150ms interval", n)
	}
	// A peer that stops answering pings is detected by the read deadline.
	h.fake.SetAnswerPings(false)
	h.Eventually(t, "a reconnect after unanswered pings", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_connects_total", stream("inverse_liquidations_0")...) >= 2
	})
	h.fake.SetAnswerPings(true)
	h.waitAllUp(t, "inverse_liquidations_0")
}

func TestVenueCoinAllowlist(t *testing.T) {
	h := start(t, func(c *Config) { c.Coins = []string{"eth", "PEPE"} })
	h.waitTopics(t, "ETHUSDT", "1000PEPEUSDT", "ETHUSD")
	s := h.waitAllUp(t, "linear_liquidations_0", "inverse_liquidations_0")
	if held := h.fake.Topics(""); len(held) != 3 {
		t.Errorf("topics %v, want only ETH and PEPE", held)
	}
	if n := len(s.Names("crypto_market_info")); n != 3 {
		t.Errorf("%d instruments with coins [ETH PEPE], want 3", n)
	}
	if n := len(s.Names("crypto_exporter_stream_up")); n != 2 {
		t.Errorf("%d streams, want 2", n)
	}
}

func TestVenueEmptyMarketStaysUp(t *testing.T) {
	// No inverse instrument passes the allowlist: the connection has no
	// topics and is up at once.
	h := start(t, func(c *Config) { c.Coins = []string{"PEPE"} })
	h.waitTopics(t, "1000PEPEUSDT")
	h.waitAllUp(t, "linear_liquidations_0", "inverse_liquidations_0")
	if held := h.fake.Topics(exchangetest.BybitInverse); len(held) != 0 {
		t.Errorf("inverse topics %v", held)
	}
}

func TestVenueStopsOnCancel(t *testing.T) {
	h := start(t, nil)
	h.waitAllUp(t, allStreams...)
	begin := time.Now()
	h.StopWithin(t, 3*time.Second)
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("stop took %v", d)
	}
	venuetest.WaitClosed(t, 2*time.Second, func() int { return h.fake.Connections("") })
}
