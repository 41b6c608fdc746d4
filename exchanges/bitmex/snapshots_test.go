package bitmex

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

func activeRows(t *testing.T) []instrumentRow {
	t.Helper()
	var rows []instrumentRow
	if err := json.Unmarshal(readTestdata(t, "instrument_active.json"), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestInstrumentsFrom(t *testing.T) {
	rows := activeRows(t)
	v := New(Config{})
	list, skipped := v.instrumentsFrom(rows)
	type want struct {
		market             exchanges.Market
		coin, quote, ctype string
		kind               kind
		size               float64
	}
	wants := map[string]want{
		"XBTUSD":  {exchanges.Inverse, "BTC", "USD", exchanges.Perpetual, inverse, 1},
		"XBTUSDT": {exchanges.Linear, "BTC", "USDT", exchanges.Perpetual, linear, 1e-6},
		"ETHUSD":  {exchanges.Inverse, "ETH", "USD", exchanges.Perpetual, quanto, 1e-6},
		"XBTZ25":  {exchanges.Inverse, "BTC", "USD", exchanges.Future, inverse, 1},
		"SOLUSDT": {exchanges.Linear, "SOL", "USDT", exchanges.Perpetual, linear, 1e-4},
	}
	if len(list) != len(wants) {
		t.Fatalf("%d instruments, want %d", len(list), len(wants))
	}
	// XBTEUR (EUR quote) and the repeated XBTUSDT; the index, the spot
	// pair and the settled future are not contracts to collect.
	if skipped != 2 {
		t.Errorf("skipped %d, want 2", skipped)
	}
	for _, in := range list {
		w, ok := wants[in.symbol]
		if !ok {
			t.Errorf("unexpected %s", in.symbol)
			continue
		}
		i := in.inst
		if i.Market != w.market || i.Coin != w.coin || i.Quote != w.quote || i.ContractType != w.ctype || in.kind != w.kind ||
			math.Abs(in.size-w.size) > 1e-15 || i.Exchange != Name || i.Symbol != in.symbol || i.Multiplier != 1 {
			t.Errorf("%s = %+v %+v, want %+v", in.symbol, in, *i, w)
		}
	}
	if px, ok := btcUSDFrom(rows); !ok || px != 60000.5 {
		t.Errorf("BTC price %v %v, want XBTUSD's mark 60000.5", px, ok)
	}

	// The allowlist keeps excluded instruments known but not collected.
	v = New(Config{Coins: []string{"eth"}})
	list, _ = v.instrumentsFrom(rows)
	collected := 0
	for _, in := range list {
		if in.inst != nil {
			collected++
			if in.inst.Coin != "ETH" {
				t.Errorf("%s collected with coins [ETH]", in.symbol)
			}
		}
	}
	if collected != 1 || len(list) != len(wants) {
		t.Errorf("collected %d of %d", collected, len(list))
	}
}

func TestRowValues(t *testing.T) {
	rows := activeRows(t)
	v := New(Config{PollInterval: 10 * time.Second})
	list, _ := v.instrumentsFrom(rows)
	byID := map[string]*instrument{}
	for _, in := range list {
		byID[in.symbol] = in
	}
	v.btcUSD.Store(math.Float64bits(60000.5))
	got := map[string]map[exchanges.Field]float64{}
	for _, mv := range v.marketValues(rows, byID) {
		if mv.TTL != 30*time.Second {
			t.Errorf("TTL %v", mv.TTL)
		}
		if got[mv.Instrument.Symbol] == nil {
			got[mv.Instrument.Symbol] = map[exchanges.Field]float64{}
		}
		if _, dup := got[mv.Instrument.Symbol][mv.Field]; dup {
			t.Errorf("%s field %d twice", mv.Instrument.Symbol, mv.Field)
		}
		got[mv.Instrument.Symbol][mv.Field] = mv.Value
	}
	next := float64(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC).Unix())
	ethUSD := 200000 * 100 * 3000.25 / 1e8 * 60000.5
	want := map[string]map[exchanges.Field]float64{
		"XBTUSD": {
			exchanges.OpenInterestUSD: 3e8, exchanges.OpenInterestCoins: 3e8 / 60000.5, exchanges.MarkPrice: 60000.5,
			exchanges.Volume24hUSD: 4.5e8, exchanges.FundingRate: 0.0001, exchanges.FundingNextTimestamp: next,
			exchanges.FundingIntervalSeconds: 8 * 3600,
		},
		"XBTUSDT": {
			exchanges.OpenInterestCoins: 2500, exchanges.OpenInterestUSD: 2500 * 60010, exchanges.MarkPrice: 60010,
			exchanges.Volume24hUSD: 9e7, exchanges.FundingRate: 0.00005, exchanges.FundingNextTimestamp: next,
			exchanges.FundingIntervalSeconds: 8 * 3600,
		},
		"ETHUSD": {
			exchanges.OpenInterestUSD: ethUSD, exchanges.OpenInterestCoins: ethUSD / 3000.25, exchanges.MarkPrice: 3000.25,
			exchanges.Volume24hUSD: 3e7, exchanges.FundingRate: 0.0002, exchanges.FundingNextTimestamp: next,
			exchanges.FundingIntervalSeconds: 4 * 3600,
		},
		// A future: no funding.
		"XBTZ25": {
			exchanges.OpenInterestUSD: 2e7, exchanges.OpenInterestCoins: 2e7 / 61000.0, exchanges.MarkPrice: 61000,
			exchanges.Volume24hUSD: 1e7,
		},
		// Unusable numbers and times cost only their own gauges.
		"SOLUSDT": {exchanges.MarkPrice: 150, exchanges.FundingIntervalSeconds: 8 * 3600},
	}
	for sym, fields := range want {
		if len(got[sym]) != len(fields) {
			t.Errorf("%s: %v, want %v", sym, got[sym], fields)
			continue
		}
		for f, w := range fields {
			if g := got[sym][f]; math.Abs(g-w) > 1e-9*math.Abs(w) {
				t.Errorf("%s field %d = %v, want %v", sym, f, g, w)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("values for %d instruments, want %d", len(got), len(want))
	}
}

func TestFundingInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2000-01-01T08:00:00.000Z", 8 * time.Hour, true},
		{"2000-01-01T01:00:00.000Z", time.Hour, true},
		{"2000-01-01T00:00:00.000Z", 0, false},
		{"1999-12-31T08:00:00.000Z", 0, false},
		{"2025-01-01T08:00:00.000Z", 0, false},
		{"", 0, false},
		{"8h", 0, false},
	} {
		d, ok := fundingInterval(tc.in)
		if ok != tc.ok || (ok && d != tc.want) {
			t.Errorf("fundingInterval(%q) = %v %v, want %v %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}
