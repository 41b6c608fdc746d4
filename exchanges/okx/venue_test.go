package okx

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const pollInterval = 500 * time.Millisecond

// fakeInstruments is the fake's instrument list: the sample set (linear
// and inverse swaps, linear and inverse quarterlies), one with no oiUsd,
// one with ctMult 2, and a suspended one.
func fakeInstruments() []exchangetest.OKXInstrument {
	list := exchangetest.OKXSampleInstruments()
	for i := range list {
		if list[i].InstID == "ETH-USDT-SWAP" {
			list[i].OIUsd = math.NaN() // USD from coins x mark
		}
	}
	doge := exchangetest.OKXInstrument{InstType: exchangetest.OKXSwap, InstID: "DOGE-USD-SWAP", SettleCcy: "DOGE", CtType: "inverse",
		CtVal: 10, CtMult: 2, State: "live", Last: 0.11, MarkPx: 0.1, Vol24h: 3e5, VolCcy24h: 6e7, OI: 1e6, OICcy: 2e8, OIUsd: 2e7,
		FundingRate: -0.0002, FundingTime: 1_800_000_000_000, NextFundingTime: 1_800_000_000_000 + 3_600_000}
	old := exchangetest.OKXInstrument{InstType: exchangetest.OKXSwap, InstID: "OLD-USDT-SWAP", SettleCcy: "USDT", CtType: "linear",
		CtVal: 1, State: "suspend", MarkPx: 1}
	return append(list, doge, old)
}

type harness struct {
	*venuetest.Harness
	fake *exchangetest.OKX
	v    *Venue
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewOKX()
	t.Cleanup(fake.Close)
	fake.SetInstruments(fakeInstruments())
	return &harness{Harness: venuetest.New(t), fake: fake}
}

// config is the venue's configuration against the fake, changed by mod.
func (h *harness) config(mod func(*Config)) Config {
	cfg := Config{
		REST: h.fake.RESTURL(), WS: h.fake.WSURL(),
		PollInterval:            pollInterval,
		InstrumentsInterval:     time.Hour,
		RefreshSpacing:          100 * time.Millisecond,
		BackfillRequestInterval: 20 * time.Millisecond,
		Client:                  exchanges.NewClient(2*time.Second, "test"),
		Logger:                  slog.New(slog.DiscardHandler),
		Stream:                  venuetest.FastStream,
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

// val reads a series, NaN when missing.
var val = venuetest.Val

func instLabels(market, symbol, coin string) []string {
	return []string{"exchange", "okx", "market", market, "symbol", symbol, "coin", coin}
}

func stream(name string) []string { return []string{"exchange", "okx", "stream", name} }

func endpoint(name string) []string { return []string{"exchange", "okx", "endpoint", name} }

var (
	allStreams   = []string{"swap_liquidations", "futures_liquidations"}
	allEndpoints = []string{"swap_instruments", "swap_open_interest", "swap_mark_price", "swap_tickers", "swap_liquidation_backfill",
		"futures_instruments", "futures_open_interest", "futures_mark_price", "futures_tickers", "futures_liquidation_backfill", "funding_rate",
		"long_short_ratio"}
)

func (h *harness) waitUp(t *testing.T, streams ...string) collectortest.Samples {
	t.Helper()
	return h.WaitStreamsUp(t, "okx", streams...)
}

func (h *harness) waitPolls(t *testing.T, eps ...string) collectortest.Samples {
	t.Helper()
	return h.WaitPolled(t, "okx", eps...)
}

func marketOf(in exchangetest.OKXInstrument) string { return in.CtType }

func coinOf(instID string) string {
	base, _, _ := splitFamily("", instID)
	c, _ := exchanges.NormalizeCoin(base)
	return c
}

func TestVenueDiscovery(t *testing.T) {
	h := newHarness(t)
	h.fake.SetLatency("/api/v5/public/instruments", 300*time.Millisecond)
	h.run(t, nil)
	// Declared before the first discovery answers.
	time.Sleep(100 * time.Millisecond)
	s := h.Samples(t)
	for _, st := range allStreams {
		if got := val(s, "crypto_exporter_stream_up", stream(st)...); got != 0 {
			t.Errorf("%s up = %v before discovery", st, got)
		}
	}
	for _, ep := range allEndpoints {
		if _, ok := s.Get("crypto_exporter_poll_success", endpoint(ep)...); !ok {
			t.Errorf("poll %s not declared at start-up", ep)
		}
	}
	for _, m := range []string{"linear", "inverse"} {
		if got := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", "okx", "market", m); got != 0 {
			t.Errorf("feed_complete %s = %v, want 0", m, got)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.fake.WaitInstTypes(ctx, exchangetest.OKXSwap, exchangetest.OKXFutures); err != nil {
		t.Fatal(err)
	}
	h.waitUp(t, allStreams...)
	s = h.waitPolls(t, allEndpoints...)
	if n := len(s.Names("crypto_exporter_stream_up")); n != 2 {
		t.Errorf("%d streams, want 2", n)
	}
	if n := len(s.Names("crypto_exporter_poll_success")); n != len(allEndpoints) {
		t.Errorf("%d endpoints, want %d", n, len(allEndpoints))
	}
	if got := h.fake.Subscribed(); got[exchangetest.OKXSwap] != 1 || got[exchangetest.OKXFutures] != 1 || len(got) != 2 {
		t.Errorf("subscriptions %v", got)
	}
	live := 0
	for _, in := range h.fake.Instruments() {
		if in.State != "live" {
			continue
		}
		live++
		ct := "perpetual"
		if in.InstType == exchangetest.OKXFutures {
			ct = "future"
		}
		quote := map[string]string{"linear": in.SettleCcy, "inverse": "USD"}[in.CtType]
		want := append(instLabels(marketOf(in), in.InstID, coinOf(in.InstID)), "quote", quote, "contract_type", ct)
		if _, ok := s.Get("crypto_market_info", want...); !ok {
			t.Errorf("missing crypto_market_info%v", want)
		}
	}
	if n := len(s.Names("crypto_market_info")); n != live {
		t.Errorf("crypto_market_info has %d series, want %d (live only)", n, live)
	}
	if n := len(s.Names("crypto_liquidations_total")); n != 2*live {
		t.Errorf("crypto_liquidations_total has %d series, want %d (pre-initialised)", n, 2*live)
	}
	if n := h.fake.Requests("/api/v5/public/funding-rate"); n < 1 {
		t.Errorf("funding polled %d times", n)
	}
}

// tape builds liquidation frames and keeps the expected totals.
type tape struct {
	insts map[string]exchangetest.OKXInstrument
	n     int
}

func newTape(list []exchangetest.OKXInstrument) *tape {
	tp := &tape{insts: map[string]exchangetest.OKXInstrument{}}
	for _, in := range list {
		tp.insts[in.InstID] = in
	}
	return tp
}

// frame returns a push of one instrument with the given sides; every
// detail gets a distinct size so that no two orders share a key.
func (tp *tape) frame(instID string, sides ...string) []byte {
	in := tp.insts[instID]
	var ds []exchangetest.OKXDetail
	for _, side := range sides {
		tp.n++
		posSide := "net"
		switch side {
		case "long":
			side, posSide = "sell", "long"
		case "short":
			side, posSide = "buy", "short"
		}
		ds = append(ds, exchangetest.OKXDetail{Side: side, PosSide: posSide, Sz: float64(tp.n), BkPx: in.MarkPx * (1 + float64(tp.n)/1000)})
	}
	return exchangetest.OKXLiquidationFrame(in.InstType, instID, "", ds...)
}

type seriesKey struct{ market, symbol, coin, side string }
type want struct{ count, notional float64 }

// groundTruth computes the expected counters from every distinct order in
// the fake's history at or after since, by the project's rules.
func groundTruth(t *testing.T, insts map[string]exchangetest.OKXInstrument, history []exchangetest.OKXOrder, since int64) (map[seriesKey]want, int) {
	t.Helper()
	out := map[seriesKey]want{}
	seen := map[string]bool{}
	distinct := 0
	for _, o := range history {
		if o.TS < since {
			continue
		}
		id := fmt.Sprint(o.InstID, o.Side, o.PosSide, o.Sz, o.BkPx, o.TS)
		if seen[id] {
			continue
		}
		seen[id] = true
		distinct++
		in := insts[o.InstID]
		sz, _ := strconv.ParseFloat(o.Sz, 64)
		px, _ := strconv.ParseFloat(o.BkPx, 64)
		mult := in.CtMult
		if mult == 0 {
			mult = 1
		}
		n := sz * in.CtVal * mult * px
		if in.CtType == "inverse" {
			n = sz * in.CtVal * mult
		}
		side := "short"
		if o.PosSide == "long" || (o.PosSide != "short" && o.Side == "sell") {
			side = "long"
		}
		k := seriesKey{in.CtType, o.InstID, coinOf(o.InstID), side}
		w := out[k]
		w.count++
		w.notional += n
		out[k] = w
	}
	return out, distinct
}

func TestVenueTapeWithGapRecoveredOnce(t *testing.T) {
	h := newHarness(t)
	insts := fakeInstruments()
	tp := newTape(insts)
	futUSDT, futUSD := insts[5].InstID, insts[6].InstID
	// History from before the exporter started: replayed on the first
	// subscription, served by the first backfill, and never counted.
	before := time.Now().Add(-20 * time.Second).UnixMilli()
	h.fake.AddHistory(
		exchangetest.OKXOrder{InstType: "SWAP", InstID: "BTC-USDT-SWAP", Side: "sell", PosSide: "long", Sz: "1000", BkPx: "60000", TS: before},
		exchangetest.OKXOrder{InstType: "SWAP", InstID: "BTC-USD-SWAP", Side: "buy", PosSide: "net", Sz: "1001", BkPx: "60000", TS: before + 1},
		exchangetest.OKXOrder{InstType: "FUTURES", InstID: futUSD, Side: "sell", PosSide: "net", Sz: "1002", BkPx: "61000", TS: before + 2},
	)
	h.fake.SetReplay(6, time.Minute)
	h.run(t, nil)
	h.waitUp(t, allStreams...)
	h.waitPolls(t, "swap_liquidation_backfill", "futures_liquidation_backfill")
	epoch := h.v.epoch.UnixMilli()
	if got := h.Samples(t).Sum("crypto_liquidations_total"); got != 0 {
		t.Fatalf("history before the start counted: %v", got)
	}
	if n := h.v.stats.history.Load(); n < 3 {
		t.Errorf("%d orders skipped as history, want at least the 3 replayed", n)
	}

	// Part one, live; with a bad detail next to a good one and garbage.
	part1 := [][]byte{
		tp.frame("BTC-USDT-SWAP", "long", "short", "sell"),
		tp.frame("ETH-USDT-SWAP", "buy"),
		tp.frame("BTC-USD-SWAP", "sell", "long", "buy"),
		tp.frame("DOGE-USD-SWAP", "short"),
		tp.frame(futUSDT, "sell", "buy"),
		tp.frame(futUSD, "long", "short", "sell", "buy"),
	}
	var events []exchangetest.Event
	for _, f := range part1 {
		events = append(events, exchangetest.Event{Frame: f})
	}
	events = append(events,
		exchangetest.Event{Frame: []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"PEPE-USDT-SWAP","details":[` +
			`{"bkLoss":"0","bkPx":"0.0000123","ccy":"","posSide":"net","side":"sell","sz":"NaN","ts":"` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `"},` +
			`{"bkLoss":"0","bkPx":"0.0000124","ccy":"","posSide":"net","side":"sell","sz":"77","ts":"` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `"}]}]}`)},
		exchangetest.Event{Frame: []byte(`not json`)},
	)
	delivered := h.fake.Play(events)
	for _, d := range delivered {
		if d.Conns == 0 {
			t.Fatalf("frame %s reached no connection", d.Frame)
		}
	}
	wantErrors := 1 + float64(delivered[len(delivered)-1].Conns) // the NaN detail; garbage on every connection
	_, distinct := groundTruth(t, tp.insts, h.fake.History(""), epoch)
	h.Eventually(t, "part one counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct)
	})

	// The gap: no connection for a while; orders happen meanwhile.
	h.fake.SetRefuseConnections(true)
	h.fake.Disconnect()
	h.Eventually(t, "streams down", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_up", stream("swap_liquidations")...) == 0 &&
			val(s, "crypto_exporter_stream_up", stream("futures_liquidations")...) == 0
	})
	gap := [][]byte{
		tp.frame("BTC-USDT-SWAP", "long", "sell"),
		tp.frame("ETH-USDT-SWAP", "short", "sell", "buy"),
		tp.frame("BTC-USDC-SWAP", "sell"),
		tp.frame("PEPE-USDT-SWAP", "buy", "sell"),
		tp.frame("BTC-USD-SWAP", "long"),
		tp.frame("DOGE-USD-SWAP", "sell", "buy"),
		tp.frame("BTC-USDT-SWAP", "short"),
		tp.frame(futUSDT, "long"), // FUTURES: the replay of 6 also repeats 5 orders already counted
	}
	for _, f := range gap {
		time.Sleep(2 * time.Millisecond)
		if d := h.fake.Liquidate(f); d.Conns != 0 {
			t.Fatalf("gap frame delivered to %d connections", d.Conns)
		}
	}
	before1 := h.fake.Requests("/api/v5/public/liquidation-orders")
	replayedBefore := h.fake.Replayed()
	h.fake.SetRefuseConnections(false)
	h.waitUp(t, allStreams...)
	_, distinct = groundTruth(t, tp.insts, h.fake.History(""), epoch)
	h.Eventually(t, "the gap recovered", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct)
	})
	if h.fake.Replayed()-replayedBefore != 12 {
		t.Errorf("fake replayed %d orders, want 6 per instType", h.fake.Replayed()-replayedBefore)
	}
	if h.fake.Requests("/api/v5/public/liquidation-orders") == before1 {
		t.Error("no backfill after the reconnect")
	}

	// Part two, live.
	part2 := [][]byte{
		tp.frame("BTC-USDT-SWAP", "buy"),
		tp.frame("BTC-USD-SWAP", "short", "sell"),
		tp.frame(futUSD, "long"),
	}
	events = events[:0]
	for _, f := range part2 {
		events = append(events, exchangetest.Event{Frame: f})
	}
	h.fake.Play(events)
	truth, distinct := groundTruth(t, tp.insts, h.fake.History(""), epoch)
	h.Eventually(t, "everything counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= float64(distinct)
	})
	// Let late duplicates (replay, backfill) arrive, then compare series by series.
	time.Sleep(300 * time.Millisecond)
	s := h.Samples(t)
	for _, k := range s.Names("crypto_liquidations_total") {
		labels := k[len("crypto_liquidations_total"):]
		var w want
		for kk, ww := range truth {
			if labels == collectortest.Key("", append(instLabels(kk.market, kk.symbol, kk.coin), "side", kk.side)...) {
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
	if got := s.Sum("crypto_liquidations_total"); got != float64(distinct) {
		t.Errorf("liquidations total %v, want %v distinct orders", got, distinct)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", "okx"); got != float64(distinct) {
		t.Errorf("histogram count %v, want %v", got, distinct)
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "okx"); got != wantErrors {
		t.Errorf("decode errors %v, want %v", got, wantErrors)
	}
	for _, st := range allStreams {
		if got := val(s, "crypto_exporter_stream_connects_total", stream(st)...); got != 2 {
			t.Errorf("%s connects = %v, want 2", st, got)
		}
	}
	if n := h.v.stats.duplicates.Load(); n < 5 {
		t.Errorf("%d duplicates skipped; the FUTURES replay alone repeats 5 counted orders", n)
	}
	if n := h.v.stats.backfilled.Load(); n == 0 {
		t.Error("nothing recovered by the backfill (the replay holds only the last 6 orders per instType)")
	}
}

// checkGauges compares every polled gauge with the fake's state by the
// project's rules.
func checkGauges(t *testing.T, s collectortest.Samples, insts []exchangetest.OKXInstrument) {
	t.Helper()
	for _, in := range insts {
		labels := instLabels(in.CtType, in.InstID, coinOf(in.InstID))
		if in.State != "live" {
			if _, ok := s.Get("crypto_mark_price_usd", labels...); ok {
				t.Errorf("gauges for %s (%s)", in.InstID, in.State)
			}
			continue
		}
		mult := in.CtMult
		if mult == 0 {
			mult = 1
		}
		w := map[string]float64{
			"crypto_mark_price_usd":      in.MarkPx,
			"crypto_open_interest_coins": in.OICcy,
			"crypto_open_interest_usd":   in.OIUsd,
		}
		if math.IsNaN(in.OIUsd) {
			w["crypto_open_interest_usd"] = in.OICcy * in.MarkPx
		}
		if in.CtType == "inverse" {
			w["crypto_volume_24h_usd"] = in.Vol24h * in.CtVal * mult
		} else {
			w["crypto_volume_24h_usd"] = in.VolCcy24h * in.Last
		}
		if in.InstType == exchangetest.OKXSwap {
			w["crypto_funding_rate_ratio"] = in.FundingRate
			w["crypto_funding_next_timestamp_seconds"] = float64(in.FundingTime) / 1000
			w["crypto_funding_interval_seconds"] = float64(in.NextFundingTime-in.FundingTime) / 1000
		} else {
			for _, name := range []string{"crypto_funding_rate_ratio", "crypto_funding_interval_seconds", "crypto_funding_next_timestamp_seconds"} {
				if _, ok := s.Get(name, labels...); ok {
					t.Errorf("%s exported for future %s", name, in.InstID)
				}
			}
		}
		for name, wv := range w {
			got, ok := s.Get(name, labels...)
			if !ok || !collectortest.Close(got, wv) {
				t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, wv)
			}
		}
	}
}

func TestVenueGauges(t *testing.T) {
	h := start(t, nil)
	s := h.Eventually(t, "gauges of every live instrument", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_usd")) == 8 && len(s.Names("crypto_volume_24h_usd")) == 8 &&
			len(s.Names("crypto_funding_interval_seconds")) == 6
	})
	checkGauges(t, s, h.fake.Instruments())
}

func TestVenueRateLimitHonoured(t *testing.T) {
	h := start(t, func(c *Config) { c.InstTypes = []string{Swap} })
	path := "/api/v5/public/open-interest"
	h.waitPolls(t, "swap_open_interest")
	for _, tc := range []struct {
		name   string
		inject func()
		wait   time.Duration
	}{
		{"HTTP 429 with Retry-After", func() { h.fake.FailNext(path, 1, 429, 1, "") }, time.Second},
		{"code 50011", func() { h.fake.FailNextCode(path, 1, "50011", "Too Many Requests") }, RateWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := func(s collectortest.Samples) float64 {
				return val(s, "crypto_exporter_poll_failures_total", endpoint("swap_open_interest")...)
			}
			before := failures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure", func(s collectortest.Samples) bool { return failures(s) > before })
			if got := val(s, "crypto_exporter_poll_success", endpoint("swap_open_interest")...); got != 0 {
				t.Errorf("poll_success after a rate-limit answer = %v", got)
			}
			failedAt := time.Now()
			n := h.fake.Requests(path)
			time.Sleep(tc.wait - 300*time.Millisecond)
			if got := h.fake.Requests(path); got != n {
				t.Errorf("%d requests within the back-off", got-n)
			}
			h.waitPolls(t, "swap_open_interest")
			if d := time.Since(failedAt); d < tc.wait-200*time.Millisecond {
				t.Errorf("recovered %v after the rate-limit answer; want >= %v", d, tc.wait)
			}
		})
	}
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	h := newHarness(t)
	h.fake.SetRateLimit("/api/v5/public/mark-price", 0, 0)
	h.fake.SetRateLimit("/api/v5/public/funding-rate", 0, 0)
	h.run(t, func(c *Config) {
		c.InstTypes = []string{Swap}
		c.PollInterval = 200 * time.Millisecond
	})
	btc := instLabels("linear", "BTC-USDT-SWAP", "BTC")
	h.Eventually(t, "mark price", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 60001
	})
	path := "/api/v5/public/mark-price"
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", endpoint("swap_mark_price")...)
	}
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"500", func() { h.fake.FailNext(path, 1, 500, 0, "") }},
		{"503 html", func() { h.fake.FailNext(path, 1, 503, 0, "<html>maintenance</html>") }},
		{"malformed body", func() {
			h.fake.FailNext(path, 1, 200, 0, `{"code":"0","msg":"","data":[{"instId":"BTC-USDT-SWAP","markPx":`)
		}},
		{"NaN in body", func() {
			h.fake.FailNext(path, 1, 200, 0, `{"code":"0","msg":"","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","markPx":"NaN","ts":"1"}]}`)
		}},
		{"no envelope", func() { h.fake.FailNext(path, 1, 200, 0, `[]`) }},
		{"error code", func() { h.fake.FailNextCode(path, 1, "50001", "Service temporarily unavailable") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := failures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool { return failures(s) > before })
			if got := val(s, "crypto_mark_price_usd", btc...); got != 60001 {
				t.Errorf("mark price after a failed poll = %v, want the last good 60001", got)
			}
			h.waitPolls(t, "swap_mark_price")
		})
	}
	// Polls that keep failing make the values go stale.
	h.fake.FailNext(path, 8, 502, 0, "")
	h.Eventually(t, "stale mark price removed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_mark_price_usd", btc...)
		return !ok
	})
	h.fake.UpdateInstrument("BTC-USDT-SWAP", func(in *exchangetest.OKXInstrument) { in.MarkPx, in.FundingRate, in.OICcy = 70000, 0.0003, 123 })
	s := h.Eventually(t, "new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 70000 && val(s, "crypto_funding_rate_ratio", btc...) == 0.0003
	})
	if got := val(s, "crypto_open_interest_coins", btc...); got != 123 {
		t.Errorf("open interest %v", got)
	}
}

func TestVenueNewListing(t *testing.T) {
	h := start(t, func(c *Config) { c.InstTypes = []string{Swap} })
	h.waitUp(t, "swap_liquidations")
	h.waitPolls(t, "swap_liquidation_backfill")
	h.fake.UpdateInstrument("SOL-USDT-SWAP", func(in *exchangetest.OKXInstrument) {
		*in = exchangetest.OKXInstrument{InstType: exchangetest.OKXSwap, InstID: "SOL-USDT-SWAP", SettleCcy: "USDT", CtType: "linear",
			CtVal: 1, State: "live", Last: 150, MarkPx: 150, OI: 10, OICcy: 10, OIUsd: 1500, FundingRate: 0.0001,
			FundingTime: 1_800_000_000_000, NextFundingTime: 1_800_028_800_000}
	})
	// A liquidation of the unlisted instrument: dropped, counted as a
	// decode error, and the instrument list is refreshed early.
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.OKXLiquidationFrame("SWAP", "SOL-USDT-SWAP", "",
		exchangetest.OKXDetail{Side: "sell", PosSide: "net", Sz: 3, BkPx: 149})}})
	sol := instLabels("linear", "SOL-USDT-SWAP", "SOL")
	h.Eventually(t, "SOL listed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(sol, "side", "long")...)
		return ok && val(s, "crypto_exporter_stream_decode_errors_total", stream("swap_liquidations")...) == 1
	})
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.OKXLiquidationFrame("SWAP", "SOL-USDT-SWAP", "",
		exchangetest.OKXDetail{Side: "buy", PosSide: "net", Sz: 4, BkPx: 151})}})
	s := h.Eventually(t, "SOL liquidation counted", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", append(sol, "side", "short")...) == 4*151
	})
	if got := val(s, "crypto_liquidations_total", append(sol, "side", "long")...); got != 0 {
		t.Errorf("the dropped order counted: %v", got)
	}
	h.Eventually(t, "SOL gauges", func(s collectortest.Samples) bool {
		return val(s, "crypto_open_interest_usd", sol...) == 1500
	})
}

func TestVenueErrorEventReconnects(t *testing.T) {
	h := newHarness(t)
	h.fake.RejectNextSubscribe(1)
	h.run(t, nil)
	s := h.waitUp(t, allStreams...)
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "okx"); got != 1 {
		t.Errorf("decode errors %v, want 1 (the rejected subscription)", got)
	}
	if got := s.Sum("crypto_exporter_stream_connects_total", "exchange", "okx"); got != 3 {
		t.Errorf("connects %v, want 3 (two streams, one reconnect)", got)
	}
	// An error event on live connections: each counts it and reconnects.
	d := h.fake.Play([]exchangetest.Event{{Frame: []byte(`{"event":"error","code":"60012","msg":"Invalid request","connId":"x"}`)}})
	if d[0].Conns != 2 {
		t.Fatalf("error event reached %d connections", d[0].Conns)
	}
	h.Eventually(t, "reconnects after the error event", func(s collectortest.Samples) bool {
		return s.Sum("crypto_exporter_stream_connects_total", "exchange", "okx") == 5 &&
			val(s, "crypto_exporter_stream_up", stream("swap_liquidations")...) == 1 &&
			val(s, "crypto_exporter_stream_up", stream("futures_liquidations")...) == 1
	})
	if got := h.Samples(t).Sum("crypto_exporter_stream_decode_errors_total", "exchange", "okx"); got != 3 {
		t.Errorf("decode errors %v, want 3", got)
	}
}

func TestVenueHeartbeat(t *testing.T) {
	h := newHarness(t)
	h.fake.SetIdleTimeout(600 * time.Millisecond)
	h.run(t, func(c *Config) {
		c.InstTypes = []string{Futures}
		c.Stream = func(c *wsconn.Config) {
			venuetest.FastStream(c)
			c.PingInterval = 150 * time.Millisecond
		}
	})
	h.waitUp(t, "futures_liquidations")
	time.Sleep(1200 * time.Millisecond)
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_stream_connects_total", stream("futures_liquidations")...); got != 1 {
		t.Errorf("connects %v: the idle timeout cut a pinging connection", got)
	}
	if n := h.fake.Pings(); n < 5 {
		t.Errorf("%d pings in 1.2s at a 150ms interval", n)
	}
	// A peer that stops answering is detected by the read deadline.
	h.fake.SetAnswerPings(false)
	h.Eventually(t, "a reconnect after unanswered pings", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_connects_total", stream("futures_liquidations")...) >= 2
	})
	h.fake.SetAnswerPings(true)
	h.waitUp(t, "futures_liquidations")
}

func TestVenueStopsOnCancel(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t, allStreams...)
	h.StopWithin(t, 3*time.Second)
	venuetest.WaitClosed(t, 2*time.Second, h.fake.Connections)
}

func TestVenueBackfillPages(t *testing.T) {
	for _, tc := range []struct {
		pages, want int
	}{
		{2, 199}, // two pages of 100; the second repeats the first's oldest ts
		{5, 250}, // all of the gap
	} {
		t.Run(strconv.Itoa(tc.pages), func(t *testing.T) {
			h := newHarness(t)
			h.run(t, func(c *Config) {
				c.InstTypes = []string{Swap}
				c.Coins = []string{"ETH"}
				c.BackfillMaxPages = tc.pages
				c.BackfillRequestInterval = time.Millisecond
			})
			h.waitUp(t, "swap_liquidations")
			h.waitPolls(t, "swap_liquidation_backfill")
			time.Sleep(300 * time.Millisecond) // the orders below are after the start
			h.fake.SetRefuseConnections(true)
			h.fake.Disconnect()
			h.Eventually(t, "stream down", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_stream_up", stream("swap_liquidations")...) == 0
			})
			now := time.Now().UnixMilli()
			var orders []exchangetest.OKXOrder
			for i := range 250 {
				orders = append(orders, exchangetest.OKXOrder{InstType: "SWAP", InstID: "ETH-USDT-SWAP", Side: "sell", PosSide: "net",
					Sz: strconv.Itoa(i + 1), BkPx: "3000", TS: now - 250 + int64(i)})
			}
			h.fake.AddHistory(orders...)
			n := h.fake.Requests("/api/v5/public/liquidation-orders")
			h.fake.SetRefuseConnections(false)
			h.Eventually(t, "the backfill", func(s collectortest.Samples) bool {
				return s.Sum("crypto_liquidations_total") >= float64(tc.want) &&
					h.fake.Requests("/api/v5/public/liquidation-orders")-n >= min(tc.pages, 3)
			})
			time.Sleep(200 * time.Millisecond)
			if got := h.Samples(t).Sum("crypto_liquidations_total"); got != float64(tc.want) {
				t.Errorf("counted %v, want %v", got, tc.want)
			}
			if got := h.fake.Requests("/api/v5/public/liquidation-orders") - n; got != min(tc.pages, 3) {
				t.Errorf("%d backfill requests, want %d (one instFamily)", got, min(tc.pages, 3))
			}
		})
	}
}

// A backfill answered with a server error is retried: the gap's orders are
// counted once the venue answers again, and only once.
func TestVenueBackfillRetriedAfterServerError(t *testing.T) {
	h := newHarness(t)
	h.fake.SetReplay(0, 0) // only the backfill can recover the gap
	h.run(t, func(c *Config) {
		c.InstTypes = []string{Swap}
		c.Coins = []string{"ETH"}
		c.BackfillRequestInterval = time.Millisecond
		c.BackfillRetryInterval = 50 * time.Millisecond
	})
	h.waitUp(t, "swap_liquidations")
	h.waitPolls(t, "swap_liquidation_backfill")
	time.Sleep(300 * time.Millisecond) // the orders below are after the start
	h.fake.SetRefuseConnections(true)
	h.fake.Disconnect()
	h.Eventually(t, "stream down", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_stream_up", stream("swap_liquidations")...) == 0
	})
	now := time.Now().UnixMilli()
	var orders []exchangetest.OKXOrder
	for i := range 5 {
		orders = append(orders, exchangetest.OKXOrder{InstType: "SWAP", InstID: "ETH-USDT-SWAP", Side: "sell", PosSide: "net",
			Sz: strconv.Itoa(i + 1), BkPx: "3000", TS: now - 5 + int64(i)})
	}
	h.fake.AddHistory(orders...)
	h.fake.FailNext("/api/v5/public/liquidation-orders", 2, http.StatusServiceUnavailable, 0, "")
	h.fake.SetRefuseConnections(false)
	s := h.Eventually(t, "the gap recovered after the failed backfills", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= 5
	})
	if got := val(s, "crypto_exporter_poll_failures_total", endpoint("swap_liquidation_backfill")...); got < 2 {
		t.Errorf("backfill failures %v, want the 2 server errors counted", got)
	}
	time.Sleep(200 * time.Millisecond)
	s = h.Samples(t)
	if got := s.Sum("crypto_liquidations_total"); got != 5 {
		t.Errorf("counted %v, want 5", got)
	}
	// ETH-USDT-SWAP ctVal 0.1: 1+2+3+4+5 contracts x 0.1 x 3000.
	if got := s.Sum("crypto_liquidation_notional_usd_total"); math.Abs(got-15*0.1*3000) > 1e-6 {
		t.Errorf("notional %v, want %v", got, 15*0.1*3000)
	}
}
