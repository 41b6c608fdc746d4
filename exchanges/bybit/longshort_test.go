package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

func lsTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// div divides at run time (a constant expression would be exact).
func div(a, b float64) float64 { return a / b }

func TestDecodeAccountRatioDocumented(t *testing.T) {
	var env response[json.RawMessage]
	if err := json.Unmarshal(lsTestdata(t, "account_ratio_doc.json"), &env); err != nil {
		t.Fatal(err)
	}
	if env.RetCode == nil || *env.RetCode != 0 {
		t.Fatalf("envelope %+v", env)
	}
	got, ok, err := decodeAccountRatio(env.Result, "BTCUSDT")
	if err != nil || !ok {
		t.Fatalf("documented sample: ok=%v err=%v", ok, err)
	}
	if want := div(0.5777, 0.4223); got != want {
		t.Errorf("ratio %v, want buyRatio/sellRatio = %v", got, want)
	}
}

func TestDecodeAccountRatio(t *testing.T) {
	row := func(sym, buy, sell, ts string) string {
		return `{"symbol":"` + sym + `","buyRatio":` + buy + `,"sellRatio":` + sell + `,"timestamp":` + ts + `}`
	}
	list := func(rows ...string) []byte { return []byte(`{"list":[` + strings.Join(rows, ",") + `]}`) }
	for _, tc := range []struct {
		name string
		in   []byte
		want float64 // 0 = no value
		err  bool
	}{
		{"one row", list(row("BTCUSDT", `"0.75"`, `"0.25"`, `"1695772800000"`)), 3, false},
		{"bare numbers", list(row("BTCUSDT", `0.6`, `0.4`, `1695772800000`)), div(0.6, 0.4), false},
		{"newest of several rows, in any order", list(
			row("BTCUSDT", `"0.5"`, `"0.5"`, `"1695772500000"`),
			row("BTCUSDT", `"0.8"`, `"0.2"`, `"1695772800000"`),
			row("BTCUSDT", `"0.1"`, `"0.9"`, `"1695772200000"`)), 4, false},
		{"no symbol in the row", list(row("", `"0.75"`, `"0.25"`, `"1"`)), 3, false},
		{"a share of 1", list(row("BTCUSDT", `"1"`, `"0.5"`, `"1"`)), 2, false},
		{"empty list: no data yet", list(), 0, false},

		{"NaN", list(row("BTCUSDT", `"NaN"`, `"0.4"`, `"1"`)), 0, true},
		{"Infinity", list(row("BTCUSDT", `"0.6"`, `"Infinity"`, `"1"`)), 0, true},
		{"overflow", list(row("BTCUSDT", `"0.6"`, `1e999`, `"1"`)), 0, true},
		{"empty string", list(row("BTCUSDT", `""`, `"0.4"`, `"1"`)), 0, true},
		{"null", list(row("BTCUSDT", `"0.6"`, `null`, `"1"`)), 0, true},
		{"zero sellRatio", list(row("BTCUSDT", `"1"`, `"0"`, `"1"`)), 0, true},
		{"zero buyRatio", list(row("BTCUSDT", `"0"`, `"1"`, `"1"`)), 0, true},
		{"negative", list(row("BTCUSDT", `"-0.6"`, `"0.4"`, `"1"`)), 0, true},
		{"percent, not a share", list(row("BTCUSDT", `"57.77"`, `"42.23"`, `"1"`)), 0, true},
		{"text", list(row("BTCUSDT", `"abc"`, `"0.4"`, `"1"`)), 0, true},
		{"hex float", list(row("BTCUSDT", `"0x1p-1"`, `"0.5"`, `"1"`)), 0, true},
		{"another symbol", list(row("ETHUSDT", `"0.6"`, `"0.4"`, `"1"`)), 0, true},
		{"no timestamp", []byte(`{"list":[{"symbol":"BTCUSDT","buyRatio":"0.6","sellRatio":"0.4"}]}`), 0, true},
		{"zero timestamp", list(row("BTCUSDT", `"0.6"`, `"0.4"`, `"0"`)), 0, true},
		{"bad newest row beside a good older one", list(
			row("BTCUSDT", `"0.6"`, `"0.4"`, `"1"`),
			row("BTCUSDT", `"0.6"`, `"0"`, `"2"`)), 0, true},
		{"list is not an array", []byte(`{"list":{}}`), 0, true},
		{"row is not an object", []byte(`{"list":[1]}`), 0, true},
		{"truncated", []byte(`{"list":[{"symbol":"BTCUSDT","buyRatio":"0.6"`), 0, true},
		{"not JSON", []byte(`<html>`), 0, true},
		{"empty", nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := decodeAccountRatio(tc.in, "BTCUSDT")
			switch {
			case tc.err:
				if err == nil || ok {
					t.Errorf("want an error, got %v ok=%v", got, ok)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case tc.want == 0 && ok:
				t.Errorf("value %v, want none", got)
			case tc.want != 0 && (!ok || got != tc.want):
				t.Errorf("%v ok=%v, want %v", got, ok, tc.want)
			}
		})
	}
}

// FuzzDecodeAccountRatio feeds arbitrary result members to the decoder: it
// may fail, but a value it returns is a positive, finite ratio of two
// shares in (0, 1].
func FuzzDecodeAccountRatio(f *testing.F) {
	var env response[json.RawMessage]
	if err := json.Unmarshal(lsTestdata(f, "account_ratio_doc.json"), &env); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(env.Result))
	f.Add([]byte(`{"list":[]}`))
	f.Add([]byte(`{"list":[{"symbol":"BTCUSDT","buyRatio":"1","sellRatio":"1e-300","timestamp":"1"}]}`))
	f.Add([]byte(`{"list":[{"buyRatio":0.2,"sellRatio":0.8,"timestamp":2},{"buyRatio":"","sellRatio":"0.8","timestamp":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok, err := decodeAccountRatio(data, "BTCUSDT")
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok && (!(got > 0) || math.IsInf(got, 0) || math.IsNaN(got)) {
			t.Fatalf("unusable ratio %v from %q", got, data)
		}
	})
}

func TestLongShortCoins(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, DefaultLongShortCoins},
		{[]string{}, []string{}},
		{[]string{" btc", "BTC", "eth ", ""}, []string{"BTC", "ETH"}},
	} {
		v := New(Config{LongShortCoins: tc.in})
		if got := v.longShortCoins(); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
	if !slices.Equal(DefaultLongShortCoins, []string{"BTC", "ETH", "SOL", "XRP", "DOGE", "BNB"}) {
		t.Errorf("DefaultLongShortCoins %v", DefaultLongShortCoins)
	}
}

// lsEvery is the long/short round interval of the venue tests: TTL is three
// of them.
const lsEvery = 300 * time.Millisecond

// runLongShort starts the venue like harness.run, with long/short rounds
// every lsEvery.
func (h *harness) runLongShort(t *testing.T, mod func(*Config)) {
	t.Helper()
	h.v = New(h.config(mod))
	h.v.lsEvery = lsEvery
	h.Start(h.v.Run)
}

const lsMetric = "crypto_long_short_account_ratio"

var lsEndpoint = []string{"exchange", "bybit", "endpoint", "linear_long_short_ratio"}

func setRatio(h *harness, sym string, buy, sell float64) {
	h.fake.UpdateSymbol(exchangetest.BybitLinear, sym, func(s *exchangetest.BybitSymbol) { s.BuyRatio, s.SellRatio = buy, sell })
}

func TestVenueLongShortRatio(t *testing.T) {
	h := newHarness(t)
	setRatio(h, "BTCUSDT", 0.5777, 0.4223)
	setRatio(h, "ETHUSDT", 0.75, 0.25)
	setRatio(h, "1000PEPEUSDT", 0.4, 0.6)
	setRatio(h, "BTCPERP", 0.9, 0.1) // USDC perpetual: never asked for
	// SOLUSDT has no data yet; BNB is not listed.
	h.runLongShort(t, func(c *Config) { c.LongShortCoins = []string{"btc", "ETH", "SOL", "PEPE", "BNB"} })

	btc, eth, pepe := inst("linear", "BTCUSDT", "BTC"), inst("linear", "ETHUSDT", "ETH"), inst("linear", "1000PEPEUSDT", "PEPE")
	wantBTC := div(0.5777, 0.4223)
	s := h.Eventually(t, "long/short ratios", func(s collectortest.Samples) bool {
		return len(s.Names(lsMetric)) == 3 && val(s, "crypto_exporter_poll_success", lsEndpoint...) == 1
	})
	for _, c := range []struct {
		labels []string
		want   float64
	}{{btc, wantBTC}, {eth, 3}, {pepe, div(0.4, 0.6)}} {
		if got := val(s, lsMetric, c.labels...); got != c.want {
			t.Errorf("%v = %v, want exactly %v", c.labels, got, c.want)
		}
	}
	if got := val(s, "crypto_exporter_poll_failures_total", lsEndpoint...); got != 0 {
		t.Errorf("%v failed polls: unlisted coins and missing data are not failures", got)
	}
	// Only the linear market has the poll.
	for _, ep := range []string{"inverse_long_short_ratio", "long_short_ratio"} {
		if _, ok := s.Get("crypto_exporter_poll_success", "exchange", "bybit", "endpoint", ep); ok {
			t.Errorf("endpoint %s declared", ep)
		}
	}
	path := "/v5/market/account-ratio?category=linear&symbol="
	for sym, want := range map[string]bool{"BTCUSDT": true, "ETHUSDT": true, "SOLUSDT": true, "1000PEPEUSDT": true, "BNBUSDT": false, "BTCPERP": false} {
		if got := h.fake.Requests(path+sym) > 0; got != want {
			t.Errorf("%s requested: %v, want %v", sym, got, want)
		}
	}
	if n := h.fake.Requests("/v5/market/account-ratio?category=inverse"); n != 0 {
		t.Errorf("%d inverse account-ratio requests", n)
	}

	// A change reaches the gauge at the next round.
	setRatio(h, "BTCUSDT", 0.6, 0.4)
	wantBTC = div(0.6, 0.4)
	h.Eventually(t, "the new ratio", func(s collectortest.Samples) bool { return val(s, lsMetric, btc...) == wantBTC })

	// Bad answers are counted failures; the gauge keeps the last good
	// value or goes away, and never shows another number.
	failures := func(s collectortest.Samples) float64 {
		return val(s, "crypto_exporter_poll_failures_total", lsEndpoint...)
	}
	doc := string(lsTestdata(t, "account_ratio_doc.json"))
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"NaN served as an empty string", func() { setRatio(h, "BTCUSDT", math.NaN(), 0.4) }},
		{"zero sellRatio", func() { h.fake.FailNext(path+"BTCUSDT", 1, 200, 0, strings.Replace(doc, `"0.4223"`, `"0"`, 1)) }},
		{"negative buyRatio", func() { h.fake.FailNext(path+"BTCUSDT", 1, 200, 0, strings.Replace(doc, `"0.5777"`, `"-0.5777"`, 1)) }},
		{"NaN text", func() { h.fake.FailNext(path+"BTCUSDT", 1, 200, 0, strings.Replace(doc, `"0.5777"`, `"NaN"`, 1)) }},
		{"malformed body", func() { h.fake.FailNext(path+"BTCUSDT", 1, 200, 0, doc[:len(doc)/2]) }},
		{"another symbol's row", func() { h.fake.FailNext(path+"BTCUSDT", 1, 200, 0, strings.Replace(doc, `"BTCUSDT"`, `"ETHUSDT"`, 1)) }},
		{"unknown symbol reply", func() { h.fake.FailNextRetCode(path+"BTCUSDT", 1, 10001, "params error: Symbol Is Invalid") }},
		{"HTTP 500", func() { h.fake.FailNext(path+"BTCUSDT", 1, 500, 0, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := failures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool {
				if v, ok := s.Get(lsMetric, btc...); ok && v != wantBTC {
					t.Fatalf("ratio %v exported, want %v or nothing", v, wantBTC)
				}
				return failures(s) > before
			})
			if got := val(s, lsMetric, eth...); got != 3 {
				t.Errorf("ETHUSDT ratio %v while BTCUSDT failed", got)
			}
			setRatio(h, "BTCUSDT", 0.6, 0.4)
			h.Eventually(t, "a good round again", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", lsEndpoint...) == 1 && val(s, lsMetric, btc...) == wantBTC
			})
		})
	}

	// A coin whose requests keep failing goes stale after three rounds
	// (TTL), while the others stay; it comes back with the next good answer.
	// The last good answer came at most one round before failedAt, so the
	// value lives at least 2*lsEvery after it and at most TTL plus a round.
	h.fake.FailNext(path+"BTCUSDT", 6, 502, 0, "")
	failedAt := time.Now()
	h.Eventually(t, "stale ratio removed", func(s collectortest.Samples) bool {
		_, ok := s.Get(lsMetric, btc...)
		return !ok
	})
	if d := time.Since(failedAt); d < 2*lsEvery-50*time.Millisecond || d > 3*lsEvery+time.Second {
		t.Errorf("ratio removed %v after the failures began; TTL is %v", d, 3*lsEvery)
	}
	if got := val(h.Samples(t), lsMetric, eth...); got != 3 {
		t.Errorf("ETHUSDT ratio %v, want it to stay", got)
	}
	h.Eventually(t, "ratio back", func(s collectortest.Samples) bool { return val(s, lsMetric, btc...) == wantBTC })
}

func TestVenueLongShortRateLimit(t *testing.T) {
	defer func(d time.Duration) { BanWait = d }(BanWait)
	BanWait = time.Second
	path := "/v5/market/account-ratio"
	for _, tc := range []struct {
		name   string
		inject func(h *harness)
		wait   time.Duration
	}{
		{"429 with Retry-After", func(h *harness) { h.fake.FailNext(path, 1, 429, 1, "") }, time.Second},
		{"retCode 10006", func(h *harness) { h.fake.FailNextRetCode(path, 1, 10006, "Too many visits!") }, time.Second},
		{"403 ban", func(h *harness) { h.fake.FailNext(path, 1, 403, 0, "") }, BanWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			setRatio(h, "BTCUSDT", 0.75, 0.25)
			setRatio(h, "ETHUSDT", 0.5, 0.5)
			tc.inject(h)
			// The limited answer comes after start; measuring from start
			// keeps both timing checks below on the safe side however late
			// the scrape notices the failure on a loaded machine.
			start := time.Now()
			h.runLongShort(t, func(c *Config) { c.Markets = []string{MarketLinear} })
			s := h.Eventually(t, "the rate-limited poll", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_failures_total", lsEndpoint...) >= 1
			})
			if got := val(s, "crypto_exporter_poll_success", lsEndpoint...); got != 0 {
				t.Errorf("poll_success %v after the rate-limit answer", got)
			}
			// The round stopped at the first answer: the other coins were
			// not asked, and nothing is asked during the back-off although
			// rounds are 300 ms apart.
			if n := h.fake.Requests(path); n != 1 {
				t.Errorf("%d account-ratio requests in the limited round, want 1", n)
			}
			time.Sleep(time.Until(start.Add(tc.wait * 6 / 10)))
			if n := h.fake.Requests(path); n != 1 {
				t.Errorf("%d account-ratio requests within the back-off", n-1)
			}
			s = h.Eventually(t, "recovery", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", lsEndpoint...) == 1
			})
			if d := time.Since(start); d < tc.wait {
				t.Errorf("recovered %v after the rate-limit answer; the venue asked for %v", d, tc.wait)
			}
			if got := val(s, lsMetric, inst("linear", "BTCUSDT", "BTC")...); got != 3 {
				t.Errorf("ratio after recovery %v", got)
			}
		})
	}
}

func TestVenueLongShortOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"empty coin list", func(c *Config) { c.LongShortCoins = []string{} }},
		{"inverse market only", func(c *Config) { c.Markets = []string{MarketInverse} }},
		{"coins excluded by the allowlist", func(c *Config) { c.Coins = []string{"ETH"}; c.LongShortCoins = []string{"BTC"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			setRatio(h, "BTCUSDT", 0.75, 0.25)
			h.runLongShort(t, tc.mod)
			h.Eventually(t, "tickers polled", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "linear_tickers") == 1 ||
					val(s, "crypto_exporter_poll_success", "exchange", "bybit", "endpoint", "inverse_tickers") == 1
			})
			time.Sleep(2 * lsEvery)
			s := h.Samples(t)
			if n := len(s.Names(lsMetric)); n != 0 {
				t.Errorf("%d long/short series", n)
			}
			if n := h.fake.Requests("/v5/market/account-ratio"); n != 0 {
				t.Errorf("%d account-ratio requests", n)
			}
			_, declared := s.Get("crypto_exporter_poll_success", lsEndpoint...)
			if want := tc.name == "coins excluded by the allowlist"; declared != want {
				t.Errorf("poll declared %v, want %v", declared, want)
			}
		})
	}
}

// TestLongShortRoundStopsAtRateLimit checks the round's error: the
// rate-limit answer is what the poller sees, so it honours Retry-After.
func TestLongShortRoundStopsAtRateLimit(t *testing.T) {
	h := newHarness(t)
	setRatio(h, "BTCUSDT", 0.75, 0.25)
	h.fake.FailNext("/v5/market/account-ratio?category=linear&symbol=ETHUSDT", 1, 429, 3, "")
	h.fake.FailNext("/v5/market/account-ratio?category=linear&symbol=BTCUSDT", 1, 500, 0, "")
	v := New(Config{REST: h.fake.RESTURL(), Client: exchanges.NewClient(2*time.Second, "test"), LongShortCoins: []string{"BTC", "ETH", "SOL"}})
	m := v.markets[0]
	m.declare(h.Coll)
	ctx := context.Background()
	if err := m.discover(ctx); err != nil {
		t.Fatal(err)
	}
	err := m.pollLongShort(ctx)
	var herr *exchanges.HTTPError
	if !errors.As(err, &herr) || !herr.RateLimited() || herr.RetryAfter != 3*time.Second {
		t.Fatalf("round error %v, want the 429 with Retry-After 3s", err)
	}
	if n := h.fake.Requests("/v5/market/account-ratio?category=linear&symbol=SOLUSDT"); n != 0 {
		t.Errorf("SOLUSDT asked after the 429")
	}
}
