package kraken

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

func TestInstrumentsAndTickers(t *testing.T) {
	v := New(Config{Coins: nil})
	var ir instrumentsResponse
	if err := json.Unmarshal(readTestdata(t, "instruments.json"), &ir); err != nil {
		t.Fatal(err)
	}
	byMarket, excluded, skipped := v.instrumentsFrom(ir.Instruments)
	if len(excluded) != 0 || skipped != 3 {
		t.Errorf("excluded %v skipped %d", excluded, skipped)
	}
	lin, inv := byMarket[exchanges.Linear], byMarket[exchanges.Inverse]
	if len(lin) != 2 || lin[0].Symbol != "PF_ETHUSD" || lin[1].Symbol != "PF_XBTUSD" || lin[1].Coin != "BTC" || lin[0].Coin != "ETH" {
		t.Fatalf("linear %+v", lin)
	}
	if len(inv) != 2 || inv[0].Symbol != "FI_XBTUSD_991231" || inv[0].ContractType != exchanges.Future ||
		inv[1].Symbol != "PI_XBTUSD" || inv[1].ContractType != exchanges.Perpetual || inv[1].Coin != "BTC" || inv[1].Quote != "USD" {
		t.Fatalf("inverse %+v %+v", inv[0], inv[1])
	}
	m := map[string]*exchanges.Instrument{}
	for _, i := range append(lin, inv...) {
		m[i.Symbol] = i
	}
	v.instruments.Store(&m)

	var tr tickersResponse
	if err := json.Unmarshal(readTestdata(t, "tickers.json"), &tr); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 1, 1, 10, 20, 0, 0, time.UTC)
	values, bad := v.marketValues(tr.Tickers, now, time.Minute)
	if bad != 0 {
		t.Errorf("bad %d", bad)
	}
	got := map[string]map[exchanges.Field]float64{}
	for _, mv := range values {
		if got[mv.Instrument.Symbol] == nil {
			got[mv.Instrument.Symbol] = map[exchanges.Field]float64{}
		}
		got[mv.Instrument.Symbol][mv.Field] = mv.Value
	}
	next := float64(time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC).Unix())
	want := map[string]map[exchanges.Field]float64{
		"PF_XBTUSD": {exchanges.MarkPrice: 65000.5, exchanges.FundingRate: 0.00001, exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: next,
			exchanges.OpenInterestCoins: 1200.5, exchanges.OpenInterestUSD: 1200.5 * 65000.5, exchanges.Volume24hUSD: 3500.25 * 65000.5},
		"PF_ETHUSD": {exchanges.MarkPrice: 3000, exchanges.FundingRate: -0.03 / 3000, exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: next,
			exchanges.OpenInterestCoins: 2000, exchanges.OpenInterestUSD: 2000 * 3000, exchanges.Volume24hUSD: 100 * 3000},
		"PI_XBTUSD": {exchanges.MarkPrice: 65010, exchanges.FundingRate: 0.0000084, exchanges.FundingIntervalSeconds: 3600, exchanges.FundingNextTimestamp: next,
			exchanges.OpenInterestUSD: 4.5e7, exchanges.OpenInterestCoins: 4.5e7 / 65010, exchanges.Volume24hUSD: 1.2e8},
		"FI_XBTUSD_991231": {exchanges.MarkPrice: 66000, exchanges.OpenInterestUSD: 3e6, exchanges.OpenInterestCoins: 3e6 / 66000, exchanges.Volume24hUSD: 5e6},
	}
	for sym, fields := range want {
		if len(got[sym]) != len(fields) {
			t.Errorf("%s: %d fields, want %d: %v", sym, len(got[sym]), len(fields), got[sym])
		}
		for f, w := range fields {
			if g, ok := got[sym][f]; !ok || math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
				t.Errorf("%s field %d = %v, want %v", sym, f, g, w)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("symbols %v", got)
	}
	// Suspended and unusable values.
	tr.Tickers[0].Suspended = true
	tr.Tickers[1].MarkPrice = number{Bad: true}
	values, bad = v.marketValues(tr.Tickers[:2], now, time.Minute)
	if bad != 1 {
		t.Errorf("bad %d, want 1", bad)
	}
	for _, mv := range values {
		if mv.Instrument.Symbol == "PF_XBTUSD" || mv.Field == exchanges.MarkPrice || mv.Field == exchanges.FundingRate || mv.Field == exchanges.OpenInterestUSD {
			t.Errorf("unexpected %s %d %v", mv.Instrument.Symbol, mv.Field, mv.Value)
		}
	}
}
