package okx

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
)

func lsTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lsData returns the data member of a testdata answer.
func lsData(t testing.TB, name string) []byte {
	t.Helper()
	var env response
	if err := json.Unmarshal(lsTestdata(t, name), &env); err != nil {
		t.Fatal(err)
	}
	if env.Code == nil || *env.Code != "0" {
		t.Fatalf("%s: envelope %+v", name, env)
	}
	return env.Data
}

func TestDecodeLongShortDocumented(t *testing.T) {
	for _, tc := range []struct {
		file  string
		ratio float64
		ts    int64
	}{
		{"long_short_account_ratio_doc.json", 1.25, 1630502100000},
		{"long_short_account_ratio_multi.json", 1.31, 1630502700000},
	} {
		ratio, ts, ok, err := decodeLongShortData(lsData(t, tc.file))
		if err != nil || !ok || ratio != tc.ratio || ts != tc.ts {
			t.Errorf("%s: ratio %v ts %d ok %v err %v, want %v at %d", tc.file, ratio, ts, ok, err, tc.ratio, tc.ts)
		}
	}
}

func TestDecodeLongShort(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want float64 // 0 = no value
		err  bool
	}{
		{"newest first", `[["3","1.5"],["2","0.5"],["1","0.7"]]`, 1.5, false},
		{"newest by ts whatever the order", `[["1","0.7"],["3","1.5"],["2","0.5"]]`, 1.5, false},
		{"bare numbers", `[[1630502100000,1.25]]`, 1.25, false},
		{"non-numeric extra element", `[["1","2","x"]]`, 0, true},
		{"extra numeric elements", `[["1","2","3"]]`, 2, false},
		{"empty: no data yet", `[]`, 0, false},

		{"NaN", `[["1","NaN"]]`, 0, true},
		{"Infinity", `[["1","Infinity"]]`, 0, true},
		{"overflow", `[["1",1e999]]`, 0, true},
		{"empty ratio", `[["1",""]]`, 0, true},
		{"null ratio", `[["1",null]]`, 0, true},
		{"zero", `[["1","0"]]`, 0, true},
		{"negative", `[["1","-1.2"]]`, 0, true},
		{"text", `[["1","abc"]]`, 0, true},
		{"bad newest beside a good older row", `[["2","0"],["1","1.2"]]`, 0, true},
		{"no ts", `[["","1.2"]]`, 0, true},
		{"zero ts", `[["0","1.2"]]`, 0, true},
		{"negative ts", `[["-5","1.2"]]`, 0, true},
		{"huge ts", `[["1e300","1.2"]]`, 0, true},
		{"short row", `[["1"]]`, 0, true},
		{"empty row", `[[]]`, 0, true},
		{"objects, not pairs", `[{"ts":"1","ratio":"1.2"}]`, 0, true},
		{"flat array", `["1","1.2"]`, 0, true},
		{"not an array", `{}`, 0, true},
		{"truncated", `[["1","1.2"`, 0, true},
		{"empty input", ``, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok, err := decodeLongShortData([]byte(tc.in))
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

// FuzzDecodeLongShort feeds arbitrary data members to the decoder: it may
// fail, but a value it returns is a positive, finite ratio with a positive
// ts.
func FuzzDecodeLongShort(f *testing.F) {
	f.Add(lsData(f, "long_short_account_ratio_doc.json"))
	f.Add(lsData(f, "long_short_account_ratio_multi.json"))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[["1",""],["2","1"]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ratio, ts, ok, err := decodeLongShortData(data)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok && (!(ratio > 0) || math.IsInf(ratio, 0) || ts <= 0) {
			t.Fatalf("unusable ratio %v at %d from %q", ratio, ts, data)
		}
	})
}

func TestLongShortBudget(t *testing.T) {
	// Requests per rate window at the default spacing: at most half of the
	// documented limit.
	if per := int(RateWindow / LongShortRequestSpacing); 2*per > LongShortRequestsPerWindow {
		t.Errorf("%d requests per %v, documented limit %d", per, RateWindow, LongShortRequestsPerWindow)
	}
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, DefaultLongShortCoins},
		{[]string{}, []string{}},
		{[]string{"btc ", "BTC", "", "Eth"}, []string{"BTC", "ETH"}},
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

const (
	lsEvery   = 300 * time.Millisecond
	lsSpacing = 50 * time.Millisecond
	lsPath    = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
	lsMetric  = "crypto_long_short_account_ratio"
)

// runLongShort starts the venue like harness.run, with long/short rounds
// every lsEvery and requests spaced by spacing.
func (h *harness) runLongShort(t *testing.T, spacing time.Duration, mod func(*Config)) {
	t.Helper()
	h.v = New(h.config(mod))
	h.v.ls.every, h.v.ls.spacing = lsEvery, spacing
	h.Start(h.v.Run)
}

func TestVenueLongShortRatio(t *testing.T) {
	h := newHarness(t)
	// Rounds every 300 ms are far more often than a deployment polls;
	// TestVenueLongShortPacing covers the venue's limit.
	h.fake.SetRateLimit(lsPath, 0, 0)
	h.fake.SetLongShortAccountRatio("BTC", 1.25, 1.1)
	h.fake.SetLongShortAccountRatio("ETH", 0.8)
	h.fake.SetLongShortAccountRatio("PEPE", 2.5)
	h.fake.SetLongShortAccountRatio("SOL", 9)  // no SOL-USDT-SWAP listed
	h.fake.SetLongShortAccountRatio("DOGE", 9) // DOGE-USD-SWAP only
	h.runLongShort(t, lsSpacing, func(c *Config) { c.LongShortCoins = []string{"btc", "ETH", "PEPE", "SOL", "DOGE", "BNB"} })

	btc, eth, pepe := instLabels("linear", "BTC-USDT-SWAP", "BTC"), instLabels("linear", "ETH-USDT-SWAP", "ETH"), instLabels("linear", "PEPE-USDT-SWAP", "PEPE")
	ep := endpoint("long_short_ratio")
	s := h.Eventually(t, "long/short ratios", func(s collectortest.Samples) bool {
		return len(s.Names(lsMetric)) == 3 && val(s, "crypto_exporter_poll_success", ep...) == 1
	})
	for _, c := range []struct {
		labels []string
		want   float64
	}{{btc, 1.25}, {eth, 0.8}, {pepe, 2.5}} {
		if got := val(s, lsMetric, c.labels...); got != c.want {
			t.Errorf("%v = %v, want exactly %v", c.labels, got, c.want)
		}
	}
	if got := val(s, "crypto_exporter_poll_failures_total", ep...); got != 0 {
		t.Errorf("%v failed polls: unlisted coins are not failures", got)
	}
	for ccy, want := range map[string]bool{"BTC": true, "ETH": true, "PEPE": true, "SOL": false, "DOGE": false, "BNB": false} {
		if got := h.fake.Requests(lsPath+"?ccy="+ccy) > 0; got != want {
			t.Errorf("%s requested: %v, want %v", ccy, got, want)
		}
	}

	// A change reaches the gauge at the next round.
	h.fake.SetLongShortAccountRatio("BTC", 0.95)
	h.Eventually(t, "the new ratio", func(s collectortest.Samples) bool { return val(s, lsMetric, btc...) == 0.95 })

	// Bad answers are counted failures; the gauge keeps the last good
	// value or goes away, and never shows another number.
	failures := func(s collectortest.Samples) float64 { return val(s, "crypto_exporter_poll_failures_total", ep...) }
	doc := string(lsTestdata(t, "long_short_account_ratio_doc.json"))
	for _, tc := range []struct {
		name   string
		inject func()
	}{
		{"NaN served as an empty string", func() { h.fake.SetLongShortAccountRatio("BTC", math.NaN(), 1.2) }},
		{"zero ratio", func() { h.fake.FailNext(lsPath+"?ccy=BTC", 1, 200, 0, strings.Replace(doc, `"1.25"`, `"0"`, 1)) }},
		{"negative ratio", func() { h.fake.FailNext(lsPath+"?ccy=BTC", 1, 200, 0, strings.Replace(doc, `"1.25"`, `"-1.25"`, 1)) }},
		{"NaN text", func() { h.fake.FailNext(lsPath+"?ccy=BTC", 1, 200, 0, strings.Replace(doc, `"1.25"`, `"NaN"`, 1)) }},
		{"malformed body", func() { h.fake.FailNext(lsPath+"?ccy=BTC", 1, 200, 0, doc[:len(doc)/2]) }},
		{"data not an array", func() { h.fake.FailNext(lsPath+"?ccy=BTC", 1, 200, 0, `{"code":"0","msg":"","data":{}}`) }},
		{"unknown ccy reply", func() { h.fake.FailNextCode(lsPath+"?ccy=BTC", 1, "51000", "Parameter ccy error") }},
		{"HTTP 500", func() { h.fake.FailNext(lsPath+"?ccy=BTC", 1, 500, 0, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := failures(h.Samples(t))
			tc.inject()
			s := h.Eventually(t, "the failure counted", func(s collectortest.Samples) bool {
				if v, ok := s.Get(lsMetric, btc...); ok && v != 0.95 {
					t.Fatalf("ratio %v exported, want 0.95 or nothing", v)
				}
				return failures(s) > before
			})
			if got := val(s, lsMetric, eth...); got != 0.8 {
				t.Errorf("ETH ratio %v while BTC failed", got)
			}
			h.fake.SetLongShortAccountRatio("BTC", 0.95)
			h.Eventually(t, "a good round again", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", ep...) == 1 && val(s, lsMetric, btc...) == 0.95
			})
		})
	}

	// A coin whose requests keep failing goes stale after three rounds
	// (TTL), while the others stay; it comes back with the next good
	// answer. The last good answer came at most one round before failedAt.
	h.fake.FailNext(lsPath+"?ccy=BTC", 6, 502, 0, "")
	failedAt := time.Now()
	h.Eventually(t, "stale ratio removed", func(s collectortest.Samples) bool {
		_, ok := s.Get(lsMetric, btc...)
		return !ok
	})
	if d := time.Since(failedAt); d < 2*lsEvery-50*time.Millisecond || d > 3*lsEvery+time.Second {
		t.Errorf("ratio removed %v after the failures began; TTL is %v", d, 3*lsEvery)
	}
	if got := val(h.Samples(t), lsMetric, eth...); got != 0.8 {
		t.Errorf("ETH ratio %v, want it to stay", got)
	}
	h.Eventually(t, "ratio back", func(s collectortest.Samples) bool { return val(s, lsMetric, btc...) == 0.95 })
	// Only the USDT swap carries the ratio.
	s = h.Samples(t)
	for _, l := range [][]string{instLabels("linear", "BTC-USDC-SWAP", "BTC"), instLabels("inverse", "BTC-USD-SWAP", "BTC")} {
		if _, ok := s.Get(lsMetric, l...); ok {
			t.Errorf("ratio exported on %v", l)
		}
	}
}

func TestVenueLongShortRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(h *harness)
		wait   time.Duration
	}{
		{"HTTP 429 with Retry-After", func(h *harness) { h.fake.FailNext(lsPath, 1, 429, 1, "") }, time.Second},
		{"HTTP 429 without Retry-After", func(h *harness) { h.fake.FailNext(lsPath, 1, 429, 0, "") }, RateWindow},
		{"code 50011", func(h *harness) { h.fake.FailNextCode(lsPath, 1, "50011", "Too Many Requests") }, RateWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.SetRateLimit(lsPath, 0, 0)
			h.fake.SetLongShortAccountRatio("BTC", 1.25)
			h.fake.SetLongShortAccountRatio("ETH", 0.8)
			tc.inject(h)
			// The limited answer comes after start; measuring from start
			// keeps both timing checks below on the safe side however late
			// the scrape notices the failure on a loaded machine.
			start := time.Now()
			h.runLongShort(t, lsSpacing, func(c *Config) { c.InstTypes = []string{Swap}; c.LongShortCoins = []string{"BTC", "ETH"} })
			ep := endpoint("long_short_ratio")
			s := h.Eventually(t, "the rate-limited poll", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_failures_total", ep...) >= 1
			})
			if got := val(s, "crypto_exporter_poll_success", ep...); got != 0 {
				t.Errorf("poll_success %v after the rate-limit answer", got)
			}
			// The round stopped at the first answer, and nothing is asked
			// during the back-off although rounds are 300 ms apart.
			if n := h.fake.Requests(lsPath); n != 1 {
				t.Errorf("%d requests in the limited round, want 1", n)
			}
			time.Sleep(time.Until(start.Add(tc.wait - 300*time.Millisecond)))
			if n := h.fake.Requests(lsPath); n != 1 {
				t.Errorf("%d requests within the back-off", n-1)
			}
			s = h.Eventually(t, "recovery", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", ep...) == 1
			})
			if d := time.Since(start); d < tc.wait {
				t.Errorf("recovered %v after the rate-limit answer; want >= %v", d, tc.wait)
			}
			if got := val(s, lsMetric, instLabels("linear", "BTC-USDT-SWAP", "BTC")...); got != 1.25 {
				t.Errorf("ratio after recovery %v", got)
			}
		})
	}
}

// TestVenueLongShortPacing spaces requests by 400 ms, more than the 300 ms
// between rounds, against a fake that allows one request per 340 ms: the
// spacing holds within and across rounds, so the fake never answers 429.
func TestVenueLongShortPacing(t *testing.T) {
	h := newHarness(t)
	for _, c := range []string{"BTC", "ETH"} {
		h.fake.SetLongShortAccountRatio(c, 1.5)
	}
	h.fake.SetRateLimit(lsPath, 1, 340*time.Millisecond)
	h.runLongShort(t, 400*time.Millisecond, func(c *Config) {
		c.InstTypes = []string{Swap}
		c.LongShortCoins = []string{"BTC", "ETH"}
	})
	ep := endpoint("long_short_ratio")
	h.Eventually(t, "three rounds", func(s collectortest.Samples) bool { return h.fake.Requests(lsPath) >= 6 })
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_poll_failures_total", ep...); got != 0 {
		t.Errorf("%v failed rounds: requests were not spaced", got)
	}
	if n := len(s.Names(lsMetric)); n != 2 {
		t.Errorf("%d long/short series, want 2", n)
	}
}

func TestVenueLongShortOff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mod      func(*Config)
		declared bool
	}{
		{"empty coin list", func(c *Config) { c.LongShortCoins = []string{} }, false},
		{"futures only", func(c *Config) { c.InstTypes = []string{Futures} }, false},
		{"coins excluded by the allowlist", func(c *Config) { c.Coins = []string{"ETH"}; c.LongShortCoins = []string{"BTC"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.SetLongShortAccountRatio("BTC", 1.25)
			h.runLongShort(t, lsSpacing, tc.mod)
			h.Eventually(t, "tickers polled", func(s collectortest.Samples) bool {
				return val(s, "crypto_exporter_poll_success", endpoint("swap_tickers")...) == 1 ||
					val(s, "crypto_exporter_poll_success", endpoint("futures_tickers")...) == 1
			})
			time.Sleep(2 * lsEvery)
			s := h.Samples(t)
			if n := len(s.Names(lsMetric)); n != 0 {
				t.Errorf("%d long/short series", n)
			}
			if n := h.fake.Requests(lsPath); n != 0 {
				t.Errorf("%d long/short requests", n)
			}
			if _, ok := s.Get("crypto_exporter_poll_success", endpoint("long_short_ratio")...); ok != tc.declared {
				t.Errorf("poll declared %v, want %v", ok, tc.declared)
			}
		})
	}
}
