package hyperliquid

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// decode is how the venue reads an answer body (Client.Do unmarshals into
// a *metaAndAssetCtxs).
func decode(b []byte) (*metaAndAssetCtxs, error) {
	var r metaAndAssetCtxs
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// shapeError reports whether err is what decoding should fail with:
// invalid JSON (found by encoding/json before the decoder runs) or a
// structure other than the documented one.
func shapeError(err error) bool {
	var syntax *json.SyntaxError
	return errors.Is(err, errShape) || errors.As(err, &syntax)
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pollTime is a fixed clock: 12:34:56 UTC, so the next funding is 13:00.
var pollTime = time.Date(2026, 3, 14, 12, 34, 56, 0, time.UTC)

var nextFunding = float64(time.Date(2026, 3, 14, 13, 0, 0, 0, time.UTC).Unix())

// want is the expected gauges of one symbol; absent fields are not exported.
type want map[exchanges.Field]float64

func gauges(values []exchanges.MarketValue) map[string]want {
	out := map[string]want{}
	for _, v := range values {
		w := out[v.Instrument.Symbol]
		if w == nil {
			w = want{}
			out[v.Instrument.Symbol] = w
		}
		if _, dup := w[v.Field]; dup {
			panic("field exported twice for " + v.Instrument.Symbol)
		}
		w[v.Field] = v.Value
	}
	return out
}

func approxEqual(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

func TestDecodeAndValues(t *testing.T) {
	type inst struct {
		symbol, coin string
		mult         float64
	}
	for _, tc := range []struct {
		file    string
		coins   []string
		insts   []inst
		skipped int
		bad     int
		gauges  map[string]want
	}{
		{
			// The documented shape: a delisted perp keeps its context slot
			// and is skipped; kPEPE counts PEPE in units of 1000.
			file:  "meta_and_asset_ctxs.json",
			insts: []inst{{"BTC", "BTC", 1}, {"ETH", "ETH", 1}, {"kPEPE", "PEPE", 1000}},
			gauges: map[string]want{
				"BTC": {
					exchanges.MarkPrice: 96512, exchanges.FundingRate: 0.0000125,
					exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: nextFunding,
					exchanges.OpenInterestCoins: 25123.45678, exchanges.OpenInterestUSD: 25123.45678 * 96512,
					exchanges.Volume24hUSD: 2345678901.123,
				},
				"ETH": {
					exchanges.MarkPrice: 3410.5, exchanges.FundingRate: -0.0000031,
					exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: nextFunding,
					exchanges.OpenInterestCoins: 512345.6789, exchanges.OpenInterestUSD: 512345.6789 * 3410.5,
					exchanges.Volume24hUSD: 987654321.5,
				},
				"kPEPE": {
					exchanges.MarkPrice: 0.012345, exchanges.FundingRate: 0.00002,
					exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: nextFunding,
					exchanges.OpenInterestCoins: 3456789012 * 1000.0, exchanges.OpenInterestUSD: 3456789012 * 0.012345,
					exchanges.Volume24hUSD: 45678901.2,
				},
			},
		},
		{
			file:  "meta_and_asset_ctxs.json",
			coins: []string{"pepe"},
			insts: []inst{{"kPEPE", "PEPE", 1000}},
			gauges: map[string]want{"kPEPE": {
				exchanges.MarkPrice: 0.012345, exchanges.FundingRate: 0.00002,
				exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: nextFunding,
				exchanges.OpenInterestCoins: 3456789012 * 1000.0, exchanges.OpenInterestUSD: 3456789012 * 0.012345,
				exchanges.Volume24hUSD: 45678901.2,
			}},
		},
		{
			// NaN, negative, non-numeric, out-of-range and zero-price
			// values cost only their own gauges; "" is absent, not bad.
			file:  "bad_numbers.json",
			insts: []inst{{"BTC", "BTC", 1}, {"ETH", "ETH", 1}, {"SOL", "SOL", 1}, {"kPEPE", "PEPE", 1000}},
			bad:   8,
			gauges: map[string]want{
				"BTC": {exchanges.MarkPrice: 96512, exchanges.Volume24hUSD: 2345678901.123},
				"ETH": {
					exchanges.FundingRate: -0.0000031, exchanges.FundingIntervalSeconds: 3600,
					exchanges.FundingNextTimestamp: nextFunding, exchanges.OpenInterestCoins: 512345.6789,
				},
				"kPEPE": {
					exchanges.FundingRate: 0.00002, exchanges.FundingIntervalSeconds: 3600,
					exchanges.FundingNextTimestamp: nextFunding, exchanges.OpenInterestCoins: 1e6,
					exchanges.Volume24hUSD: 45678901.2,
				},
			},
		},
		{
			// HIP-3 builder-dex names, repeats and empty names are skipped;
			// each kept entry takes its own index's context.
			file:    "hip3_and_duplicates.json",
			insts:   []inst{{"BTC", "BTC", 1}, {"kBONK", "BONK", 1000}},
			skipped: 3,
			gauges: map[string]want{
				"BTC": {
					exchanges.MarkPrice: 96000, exchanges.FundingRate: 0.0000125,
					exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: nextFunding,
					exchanges.OpenInterestCoins: 10, exchanges.OpenInterestUSD: 960000, exchanges.Volume24hUSD: 100,
				},
				"kBONK": {
					exchanges.MarkPrice: 0.025, exchanges.FundingRate: 0.00001,
					exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: nextFunding,
					exchanges.OpenInterestCoins: 2e9, exchanges.OpenInterestUSD: 50000, exchanges.Volume24hUSD: 500,
				},
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := decode(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			v := New(Config{Coins: tc.coins})
			assets, skipped := v.instrumentsFrom(r)
			if skipped != tc.skipped {
				t.Errorf("skipped %d, want %d", skipped, tc.skipped)
			}
			if len(assets) != len(tc.insts) {
				t.Fatalf("%d instruments, want %d", len(assets), len(tc.insts))
			}
			for i, a := range assets {
				w := tc.insts[i]
				got := *a.inst
				exp := exchanges.Instrument{Exchange: "hyperliquid", Market: exchanges.Linear, Symbol: w.symbol, Coin: w.coin, NoLiquidationFeed: true,
					Quote: "USDC", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: w.mult}
				if got != exp {
					t.Errorf("instrument %d = %+v, want %+v", i, got, exp)
				}
			}
			values, bad := marketValues(assets, pollTime, 90*time.Second)
			if bad != tc.bad {
				t.Errorf("bad values %d, want %d", bad, tc.bad)
			}
			for _, v := range values {
				if v.TTL != 90*time.Second {
					t.Errorf("TTL %v", v.TTL)
				}
			}
			got := gauges(values)
			for sym, w := range tc.gauges {
				g := got[sym]
				for f, x := range w {
					if y, ok := g[f]; !ok || !approxEqual(x, y) {
						t.Errorf("%s field %d = %v (exported %v), want %v", sym, f, y, ok, x)
					}
				}
				for f, y := range g {
					if _, ok := w[f]; !ok {
						t.Errorf("%s field %d exported as %v, want absent", sym, f, y)
					}
				}
			}
			for sym := range got {
				if _, ok := tc.gauges[sym]; !ok {
					t.Errorf("gauges exported for %s", sym)
				}
			}
		})
	}
}

func TestDecodeShapeErrors(t *testing.T) {
	ctx := `{"funding":"0.0001","openInterest":"1","prevDayPx":"1","dayNtlVlm":"1","premium":null,"oraclePx":"1","markPx":"1","midPx":null,"impactPxs":null,"dayBaseVlm":"1"}`
	btc := `{"universe":[{"name":"BTC","szDecimals":5,"maxLeverage":40,"onlyIsolated":false}]}`
	for name, body := range map[string]string{
		"mismatched lengths (testdata)": string(readTestdata(t, "mismatched_lengths.json")),
		"more contexts than universe":   `[` + btc + `,[` + ctx + `,` + ctx + `]]`,
		"no contexts":                   `[` + btc + `,[]]`,
		"null contexts":                 `[` + btc + `,null]`,
		"contexts not a list":           `[` + btc + `,{}]`,
		"context not an object":         `[` + btc + `,["x"]]`,
		"empty universe":                `[{"universe":[]},[]]`,
		"no universe":                   `[{"marginTables":[]},[]]`,
		"null universe":                 `[{"universe":null},[]]`,
		"name not a string":             `[{"universe":[{"name":1}]},[` + ctx + `]]`,
		"isDelisted not a bool":         `[{"universe":[{"name":"BTC","isDelisted":"yes"}]},[` + ctx + `]]`,
		"one element":                   `[` + btc + `]`,
		"three elements":                `[` + btc + `,[` + ctx + `],[]]`,
		"empty array":                   `[]`,
		"object":                        `{"universe":[]}`,
		"null":                          `null`,
		"truncated":                     `[` + btc + `,[{"funding":"0.0001","openInterest":`,
		"error text":                    `"Failed to deserialize the JSON body into the target type"`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decode([]byte(body))
			if err == nil {
				t.Fatal("decoded")
			}
			if !shapeError(err) {
				t.Errorf("error %v is neither a syntax error nor wraps errShape", err)
			}
		})
	}
}

func TestDecodeMissingDelistedFlag(t *testing.T) {
	// isDelisted absent = listed; false = listed; true = skipped.
	body := `[{"universe":[{"name":"BTC"},{"name":"ETH","isDelisted":false},{"name":"LUNA","isDelisted":true}]},[{},{},{}]]`
	r, err := decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	assets, skipped := New(Config{}).instrumentsFrom(r)
	if len(assets) != 2 || assets[0].inst.Symbol != "BTC" || assets[1].inst.Symbol != "ETH" || skipped != 0 {
		t.Fatalf("assets %+v skipped %d", assets, skipped)
	}
	// Contexts without fields export nothing and count nothing as bad.
	if values, bad := marketValues(assets, pollTime, time.Minute); len(values) != 0 || bad != 0 {
		t.Errorf("values %v bad %d", values, bad)
	}
}

func TestNextFundingAt(t *testing.T) {
	for _, tc := range []struct {
		now  time.Time
		want time.Time
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 23, 59, 59, 999, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		// A zone with a half-hour offset still gets the next UTC hour.
		{time.Date(2026, 1, 1, 10, 10, 0, 0, time.FixedZone("IST", 5*3600+1800)), time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC)},
	} {
		if got := exchanges.NextBoundary(tc.now, FundingInterval); got != float64(tc.want.Unix()) {
			t.Errorf("NextBoundary(%v, 1h) = %v, want %v", tc.now, time.Unix(int64(got), 0).UTC(), tc.want)
		}
	}
}

func TestWeightPerMinute(t *testing.T) {
	// The default 30 s interval spends 40 of the documented 1200 per minute.
	if got := WeightPerMinuteAt(30 * time.Second); got != 40 {
		t.Errorf("30s: %v", got)
	}
	if got := WeightPerMinuteAt(time.Second); got != WeightPerMinute {
		t.Errorf("1s: %v", got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"meta_and_asset_ctxs.json", "mismatched_lengths.json", "bad_numbers.json", "hip3_and_duplicates.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`[{"universe":[{"name":"kPEPE"}]},[{"markPx":"1e308","openInterest":"1e308"}]]`))
	f.Add([]byte(`null`))
	v := New(Config{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			if !shapeError(err) {
				t.Fatalf("error %v is neither a syntax error nor wraps errShape", err)
			}
			return
		}
		if len(r.Universe) == 0 || len(r.Universe) != len(r.Ctxs) {
			t.Fatalf("decoded %d universe entries and %d contexts", len(r.Universe), len(r.Ctxs))
		}
		assets, _ := v.instrumentsFrom(r)
		seen := map[string]bool{}
		for _, a := range assets {
			if seen[a.inst.Symbol] || a.inst.Symbol == "" || a.inst.Coin == "" || a.inst.Multiplier < 1 {
				t.Fatalf("bad instrument %+v", *a.inst)
			}
			seen[a.inst.Symbol] = true
		}
		values, _ := marketValues(assets, pollTime, time.Minute)
		for _, mv := range values {
			if math.IsNaN(mv.Value) || math.IsInf(mv.Value, 0) || (mv.Field != exchanges.FundingRate && mv.Value < 0) {
				t.Fatalf("value %v for field %d of %s", mv.Value, mv.Field, mv.Instrument.Symbol)
			}
		}
	})
}
