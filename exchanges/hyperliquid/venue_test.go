package hyperliquid

import (
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

// fakeAssets is the fake's universe: three listed perps (one kPEPE), a
// delisted one in the middle, and a HIP-3 name, which the main universe
// does not document.
func fakeAssets() []exchangetest.HyperliquidAsset {
	a := func(name string, mark, funding, oi, vlm float64) exchangetest.HyperliquidAsset {
		return exchangetest.HyperliquidAsset{Name: name, SzDecimals: 2, MaxLeverage: 20,
			Funding: funding, OpenInterest: oi, PrevDayPx: mark * 0.99, DayNtlVlm: vlm, Premium: 0.0001,
			OraclePx: mark * 0.9999, MarkPx: mark, MidPx: mark, ImpactPxs: [2]float64{mark * 0.9998, mark * 1.0002},
			DayBaseVlm: vlm / mark}
	}
	btc := a("BTC", 96512.5, 0.0000125, 25123.45678, 2.345678901e9)
	eth := a("ETH", 3410.5, -0.0000031, 512345.6789, 9.876e8)
	luna := a("LUNA", 0.3765, 0, 0, 0)
	luna.IsDelisted, luna.Premium, luna.MidPx, luna.ImpactPxs = true, math.NaN(), math.NaN(), [2]float64{}
	pepe := a("kPEPE", 0.012345, 0.00002, 3.456789012e9, 4.56789012e7)
	hip3 := a("xyz:HOOD", 25.5, 0.00001, 1000, 5000)
	return []exchangetest.HyperliquidAsset{btc, eth, luna, pepe, hip3}
}

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Hyperliquid
}

// newHarness starts the fake with fakeAssets (weight limit off: tests poll
// far faster than the live budget allows); run starts the venue.
func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewHyperliquid()
	t.Cleanup(fake.Close)
	fake.SetAssets(fakeAssets())
	fake.SetWeightLimit(0, 0)
	return &harness{Harness: venuetest.New(t), fake: fake}
}

func (h *harness) run(mod func(*Config)) {
	cfg := Config{
		REST:         h.fake.URL(),
		PollInterval: 200 * time.Millisecond,
		Client:       exchanges.NewClient(2*time.Second, "test"),
		Logger:       slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	h.Start(New(cfg).Run)
}

func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := newHarness(t)
	h.run(mod)
	return h
}

// val reads a series, NaN when missing.
var val = venuetest.Val

func inst(symbol, coin string) []string {
	return []string{"exchange", "hyperliquid", "market", "linear", "symbol", symbol, "coin", coin}
}

var pollLabels = []string{"exchange", "hyperliquid", "endpoint", "meta_and_asset_ctxs"}

func pollSuccess(s collectortest.Samples) float64 {
	return val(s, "crypto_exporter_poll_success", pollLabels...)
}

func pollFailures(s collectortest.Samples) float64 {
	return val(s, "crypto_exporter_poll_failures_total", pollLabels...)
}

// expected computes the gauges of one fake asset by the project's rules,
// independently of the venue's code.
func expected(a exchangetest.HyperliquidAsset, mult float64, now time.Time) map[string]float64 {
	next := time.Date(now.Year(), now.Month(), now.Day(), now.UTC().Hour(), 0, 0, 0, time.UTC).Add(time.Hour)
	return map[string]float64{
		"crypto_mark_price_usd":                 a.MarkPx,
		"crypto_funding_rate_ratio":             a.Funding,
		"crypto_funding_interval_seconds":       3600,
		"crypto_funding_next_timestamp_seconds": float64(next.Unix()),
		"crypto_open_interest_coins":            a.OpenInterest * mult,
		"crypto_open_interest_usd":              a.OpenInterest * a.MarkPx,
		"crypto_volume_24h_usd":                 a.DayNtlVlm,
	}
}

func TestVenueGauges(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	s := h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	now := time.Now().UTC()

	// crypto_market_info for the listed perps only.
	info := s.Names("crypto_market_info")
	want := []string{
		collectortest.Key("crypto_market_info", append(inst("BTC", "BTC"), "quote", "USDC", "contract_type", "perpetual")...),
		collectortest.Key("crypto_market_info", append(inst("ETH", "ETH"), "quote", "USDC", "contract_type", "perpetual")...),
		collectortest.Key("crypto_market_info", append(inst("kPEPE", "PEPE"), "quote", "USDC", "contract_type", "perpetual")...),
	}
	if strings.Join(info, "\n") != strings.Join(want, "\n") {
		t.Errorf("market info:\n%s\nwant:\n%s", strings.Join(info, "\n"), strings.Join(want, "\n"))
	}

	assets := map[string]exchangetest.HyperliquidAsset{}
	for _, a := range h.fake.Assets() {
		assets[a.Name] = a
	}
	for _, tc := range []struct {
		symbol, coin string
		mult         float64
	}{{"BTC", "BTC", 1}, {"ETH", "ETH", 1}, {"kPEPE", "PEPE", 1000}} {
		// The samples were taken at most a few seconds before now, so the
		// next funding time may belong to the hour before now's.
		earlier := expected(assets[tc.symbol], tc.mult, now.Add(-5*time.Second))
		for name, x := range expected(assets[tc.symbol], tc.mult, now) {
			got := val(s, name, inst(tc.symbol, tc.coin)...)
			if !collectortest.Close(got, x) && !collectortest.Close(got, earlier[name]) {
				t.Errorf("%s{%s} = %v, want %v", name, tc.symbol, got, x)
			}
		}
	}
	for _, name := range []string{"crypto_mark_price_usd", "crypto_open_interest_usd", "crypto_market_info"} {
		for _, k := range s.Names(name) {
			if strings.Contains(k, "LUNA") || strings.Contains(k, "HOOD") {
				t.Errorf("series for a delisted or HIP-3 perp: %s", k)
			}
		}
	}

	// No liquidation feed: no feed-complete series for the venue.
	for _, k := range s.Names("crypto_exporter_liquidation_feed_complete") {
		if strings.Contains(k, `exchange="hyperliquid"`) {
			t.Errorf("feed_complete exported: %s", k)
		}
	}
	// No liquidation series at all: a permanent 0 would read as "no
	// liquidations happened" rather than "not published".
	for _, name := range []string{"crypto_liquidations_total", "crypto_liquidation_notional_usd_total", "crypto_liquidation_largest_usd"} {
		for _, k := range s.Names(name) {
			if strings.Contains(k, `exchange="hyperliquid"`) {
				t.Errorf("liquidation series exported for a venue without a feed: %s", k)
			}
		}
	}
	if got := pollFailures(s); got != 0 {
		t.Errorf("poll failures %v", got)
	}
	if got := h.fake.Requests("liquidations"); got != 0 {
		t.Errorf("%d liquidations requests", got)
	}
}

func TestVenueDeclaresPollBeforeFirstSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.FailNext(exchangetest.HyperliquidMetaAndAssetCtxs, 1000, 503, 0, "")
	h.run(nil)
	s := h.Eventually(t, "a failed poll", func(s collectortest.Samples) bool { return pollFailures(s) >= 1 })
	if got := pollSuccess(s); got != 0 {
		t.Errorf("poll_success %v, want 0", got)
	}
	if got := s.Names("crypto_market_info"); len(got) != 0 {
		t.Errorf("instruments before a good poll: %v", got)
	}
	// The poll series exists before any answer arrives.
	h2 := newHarness(t)
	h2.fake.SetLatency("", time.Hour)
	h2.run(nil)
	s = h2.Eventually(t, "the poll declared", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_exporter_poll_success", pollLabels...)
		return ok
	})
	if got := pollSuccess(s); got != 0 {
		t.Errorf("poll_success before any answer = %v", got)
	}
}

func TestVenueRateLimitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.FailNext(exchangetest.HyperliquidMetaAndAssetCtxs, 1, 429, 1, "")
	h.run(nil)
	s := h.Eventually(t, "a failed poll", func(s collectortest.Samples) bool { return pollFailures(s) >= 1 })
	if got := pollSuccess(s); got != 0 {
		t.Errorf("poll_success after 429 = %v", got)
	}
	failedAt := time.Now()
	n := h.fake.Requests("")
	// No request for the Retry-After second, although the interval is 200ms.
	time.Sleep(700 * time.Millisecond)
	if got := h.fake.Requests(""); got != n {
		t.Errorf("%d requests within Retry-After", got-n)
	}
	h.Eventually(t, "recovery after Retry-After", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	if d := time.Since(failedAt); d < 800*time.Millisecond {
		t.Errorf("recovered %v after the 429; Retry-After was 1s", d)
	}
}

func TestVenueRateLimitWithoutRetryAfterBacksOff(t *testing.T) {
	t.Parallel()
	// The fake's weight limit: two polls per 2 s window, then 429 without
	// Retry-After; the venue backs off instead of polling every 100 ms.
	h := newHarness(t)
	h.fake.SetWeightLimit(2*exchangetest.HyperliquidInfoWeight, 2*time.Second)
	h.run(func(c *Config) { c.PollInterval = 100 * time.Millisecond })
	h.Eventually(t, "a rate-limited poll", func(s collectortest.Samples) bool { return pollFailures(s) >= 1 })
	n := h.fake.Requests("")
	time.Sleep(time.Second)
	// Back-off after the first 429 is 200 ms, then 400, 800 ms: at most
	// three more requests in a second, where the interval alone would
	// allow ten.
	if got := h.fake.Requests("") - n; got > 3 {
		t.Errorf("%d requests in 1s while rate limited", got)
	}
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	t.Parallel()
	// Values live 3 x 400 ms; a failed poll (at most 400 ms + the 200 ms
	// client timeout after the last good one) is seen well before that.
	h := start(t, func(c *Config) {
		c.PollInterval = 400 * time.Millisecond
		c.Client = exchanges.NewClient(200*time.Millisecond, "test")
	})
	btc := inst("BTC", "BTC")
	h.Eventually(t, "mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 96512.5
	})
	typ := exchangetest.HyperliquidMetaAndAssetCtxs
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"500", func() { h.fake.FailNext(typ, 1, 500, 0, "") }},
		{"502 html", func() { h.fake.FailNext(typ, 1, 502, 0, "<html>bad gateway</html>") }},
		{"malformed body", func() { h.fake.FailNext(typ, 1, 200, 0, `[{"universe":[{"name":"BTC"`) }},
		{"not the documented shape", func() { h.fake.FailNext(typ, 1, 200, 0, `{"universe":[]}`) }},
		{"empty universe", func() { h.fake.FailNext(typ, 1, 200, 0, `[{"universe":[]},[]]`) }},
		{"more contexts than universe", func() { h.fake.SetContextSkew(1) }},
		{"fewer contexts than universe", func() { h.fake.SetContextSkew(-1) }},
		{"timeout", func() { h.fake.SetLatency(typ, time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := pollFailures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool { return pollFailures(s) > before })
			if got := pollSuccess(s); got != 0 {
				t.Errorf("poll_success %v after a failed poll", got)
			}
			if got := val(s, "crypto_mark_price_usd", btc...); got != 96512.5 {
				t.Errorf("mark price after a failed poll = %v, want the last good 96512.5", got)
			}
			if got := len(s.Names("crypto_market_info")); got != 3 {
				t.Errorf("%d instruments after a failed poll, want 3", got)
			}
			h.fake.SetContextSkew(0)
			h.fake.SetLatency(typ, 0)
			h.Eventually(t, "a good poll again", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
		})
	}
	// Polls that keep failing make the values go stale instead of freezing.
	h.fake.FailNext(typ, 20, 503, 0, "")
	h.Eventually(t, "stale mark price removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_mark_price_usd", btc...)
		return !ok
	})
}

func TestVenueTimeoutIsAFailedPoll(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *Config) {
		c.PollInterval = 100 * time.Millisecond
		c.Client = exchanges.NewClient(100*time.Millisecond, "test")
	})
	h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	h.fake.SetLatency("", 300*time.Millisecond)
	h.Eventually(t, "a timed-out poll", func(s collectortest.Samples) bool {
		return pollSuccess(s) == 0 && pollFailures(s) >= 1
	})
}

func TestVenueBadNumbersSkipValuesOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.UpdateAsset("kPEPE", func(a *exchangetest.HyperliquidAsset) { a.MarkPx = math.NaN() })
	h.fake.UpdateAsset("ETH", func(a *exchangetest.HyperliquidAsset) { a.OpenInterest, a.DayNtlVlm = -1, math.Inf(1) })
	h.run(nil)
	s := h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	pepe, eth := inst("kPEPE", "PEPE"), inst("ETH", "ETH")
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64 // NaN = absent
	}{
		{"crypto_mark_price_usd", pepe, math.NaN()},
		{"crypto_open_interest_usd", pepe, math.NaN()},
		{"crypto_open_interest_coins", pepe, 3.456789012e9 * 1000},
		{"crypto_funding_rate_ratio", pepe, 0.00002},
		{"crypto_mark_price_usd", eth, 3410.5},
		{"crypto_open_interest_coins", eth, math.NaN()},
		{"crypto_open_interest_usd", eth, math.NaN()},
		{"crypto_volume_24h_usd", eth, math.NaN()},
		{"crypto_funding_rate_ratio", eth, -0.0000031},
	} {
		got := val(s, tc.name, tc.labels...)
		if !(math.IsNaN(tc.want) && math.IsNaN(got)) && !collectortest.Close(got, tc.want) {
			t.Errorf("%s{%s} = %v, want %v (NaN = absent)", tc.name, tc.labels[5], got, tc.want)
		}
	}
	if got := pollFailures(s); got != 0 {
		t.Errorf("bad numbers counted as %v failed polls", got)
	}
	if got := len(s.Names("crypto_market_info")); got != 3 {
		t.Errorf("%d instruments, want 3", got)
	}
}

func TestVenueListingChange(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.Eventually(t, "three instruments", func(s collectortest.Samples) bool { return len(s.Names("crypto_market_info")) == 3 })
	// ETH is delisted (it keeps its slot), SOL is listed, LUNA stays delisted.
	h.fake.UpdateAsset("ETH", func(a *exchangetest.HyperliquidAsset) { a.IsDelisted = true })
	h.fake.UpdateAsset("SOL", func(a *exchangetest.HyperliquidAsset) {
		a.MarkPx, a.Funding, a.OpenInterest, a.DayNtlVlm = 150.25, 0.0000100, 1e6, 5e8
	})
	sol := inst("SOL", "SOL")
	s := h.Eventually(t, "the new listing", func(s collectortest.Samples) bool {
		return val(s, "crypto_open_interest_usd", sol...) == 1e6*150.25
	})
	if _, ok := s.Get("crypto_market_info", append(inst("ETH", "ETH"), "quote", "USDC", "contract_type", "perpetual")...); ok {
		t.Error("market info of the delisted ETH still exported")
	}
	if got := s.Names("crypto_mark_price_usd"); len(got) != 3 || strings.Contains(strings.Join(got, ""), `symbol="ETH"`) {
		t.Errorf("mark prices %v", got)
	}
	if _, ok := s.Get("crypto_market_info", append(sol, "quote", "USDC", "contract_type", "perpetual")...); !ok {
		t.Error("the new instrument was not declared")
	}
	// The contexts after the delisted slot still belong to their own names.
	if got := val(s, "crypto_mark_price_usd", inst("kPEPE", "PEPE")...); got != 0.012345 {
		t.Errorf("kPEPE mark %v", got)
	}
}

func TestVenueCoinAllowlist(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *Config) { c.Coins = []string{"PEPE", "ETH"} })
	// The scrape that sees the poll's success sees its instruments (status
	// is read before data).
	s := h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	got := s.Names("crypto_market_info")
	if len(got) != 2 || !strings.Contains(got[0], `symbol="ETH"`) || !strings.Contains(got[1], `symbol="kPEPE"`) {
		t.Errorf("market info %v", got)
	}
	if _, ok := s.Get("crypto_mark_price_usd", inst("BTC", "BTC")...); ok {
		t.Error("BTC exported although not allowed")
	}
}

func TestVenueSendsDocumentedRequest(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	// Every request the venue made was a well-formed metaAndAssetCtxs.
	if all, typed := h.fake.Requests(""), h.fake.Requests(exchangetest.HyperliquidMetaAndAssetCtxs); all == 0 || all != typed {
		t.Errorf("%d requests, %d of them metaAndAssetCtxs", all, typed)
	}
}

func TestVenueStopsOnCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.SetLatency("", time.Hour)
	h.run(nil)
	time.Sleep(50 * time.Millisecond)
	h.StopWithin(t, 2*time.Second) // cancelled during a request
}
