package binance

import (
	"encoding/json"
	"log/slog"
	"math"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

func TestInstrumentsFromExchangeInfo(t *testing.T) {
	v := New(Config{Logger: slog.New(slog.DiscardHandler), Coins: []string{"BTC", "PEPE"}})
	um, cm := v.markets[0], v.markets[1]
	var info exchangeInfo
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(json.Unmarshal([]byte(`{"symbols":[
		{"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT"},
		{"symbol":"BTCUSDT_261225","pair":"BTCUSDT","contractType":"CURRENT_QUARTER","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT"},
		{"symbol":"1000PEPEUSDT","pair":"1000PEPEUSDT","contractType":"PERPETUAL","status":"TRADING","baseAsset":"1000PEPE","quoteAsset":"USDT","marginAsset":"USDT"},
		{"symbol":"ETHUSDT","pair":"ETHUSDT","contractType":"PERPETUAL","status":"TRADING","baseAsset":"ETH","quoteAsset":"USDT","marginAsset":"USDT"},
		{"symbol":"XRPUSDT","pair":"XRPUSDT","contractType":"PERPETUAL","status":"PENDING_TRADING","baseAsset":"XRP","quoteAsset":"USDT","marginAsset":"USDT"}]}`), &info))
	list, filtered, skipped := um.instrumentsFrom(info)
	if len(list) != 3 || len(filtered) != 1 || filtered[0] != "ETHUSDT" || skipped != 0 {
		t.Fatalf("list=%d filtered=%v skipped=%d", len(list), filtered, skipped)
	}
	want := map[string]exchanges.Instrument{
		"1000PEPEUSDT":   {Exchange: "binance", Market: exchanges.Linear, Symbol: "1000PEPEUSDT", Coin: "PEPE", Quote: "USDT", ContractType: "perpetual", ContractSize: 1, Multiplier: 1000},
		"BTCUSDT":        {Exchange: "binance", Market: exchanges.Linear, Symbol: "BTCUSDT", Coin: "BTC", Quote: "USDT", ContractType: "perpetual", ContractSize: 1, Multiplier: 1},
		"BTCUSDT_261225": {Exchange: "binance", Market: exchanges.Linear, Symbol: "BTCUSDT_261225", Coin: "BTC", Quote: "USDT", ContractType: "future", ContractSize: 1, Multiplier: 1},
	}
	for _, inst := range list {
		if *inst != want[inst.Symbol] {
			t.Errorf("%s: %+v, want %+v", inst.Symbol, *inst, want[inst.Symbol])
		}
	}

	info = exchangeInfo{}
	must(json.Unmarshal([]byte(`{"symbols":[
		{"symbol":"BTCUSD_PERP","pair":"BTCUSD","contractType":"PERPETUAL","contractStatus":"TRADING","contractSize":100,"baseAsset":"BTC","quoteAsset":"USD","marginAsset":"BTC"},
		{"symbol":"BTCUSD_BAD","pair":"BTCUSD","contractType":"PERPETUAL","contractStatus":"TRADING","contractSize":0,"baseAsset":"BTC","quoteAsset":"USD","marginAsset":"BTC"},
		{"symbol":"BTCUSD_OLD","pair":"BTCUSD","contractType":"CURRENT_QUARTER","contractStatus":"SETTLING","contractSize":100,"baseAsset":"BTC","quoteAsset":"USD","marginAsset":"BTC"}]}`), &info))
	list, _, skipped = cm.instrumentsFrom(info)
	if len(list) != 1 || list[0].ContractSize != 100 || list[0].Market != exchanges.Inverse || skipped != 1 {
		t.Errorf("coin-m: list=%+v skipped=%d", list, skipped)
	}
}

// FuzzRESTBodies feeds arbitrary bodies to the REST decoders: decoding may
// fail, but what decodes must never produce an unusable instrument or a
// non-finite number.
func FuzzRESTBodies(f *testing.F) {
	f.Add([]byte(`{"symbols":[{"symbol":"BTCUSD_PERP","contractType":"PERPETUAL","contractStatus":"TRADING","status":"TRADING","contractSize":100,"baseAsset":"BTC","quoteAsset":"USD"}]}`))
	f.Add([]byte(`[{"symbol":"BTCUSDT","markPrice":"11793.63104562","lastFundingRate":"0.00038246","nextFundingTime":1597392000000}]`))
	f.Add([]byte(`[{"symbol":"BTCUSDT","volume":"1","quoteVolume":"2"}]`))
	f.Add([]byte(`{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}`))
	f.Add([]byte(`[{"symbol":"BLZUSDT","fundingIntervalHours":4}]`))
	v := New(Config{Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range v.markets {
			var info exchangeInfo
			if json.Unmarshal(body, &info) == nil {
				list, _, _ := m.instrumentsFrom(info)
				for _, inst := range list {
					if inst.Symbol == "" || inst.Coin == "" || !(inst.ContractSize > 0) || math.IsInf(inst.ContractSize, 0) || !(inst.Multiplier >= 1) {
						t.Fatalf("unusable instrument %+v", *inst)
					}
				}
			}
		}
		var pi []premiumIndex
		if json.Unmarshal(body, &pi) == nil {
			for _, r := range pi {
				for _, n := range []exchanges.Number{r.MarkPrice, r.LastFundingRate, r.NextFundingTime} {
					if n.Set && (math.IsNaN(n.Value) || math.IsInf(n.Value, 0)) {
						t.Fatalf("non-finite number decoded: %+v", r)
					}
				}
			}
		}
		var tk []ticker24h
		_ = json.Unmarshal(body, &tk)
		var oi openInterest
		if json.Unmarshal(body, &oi) == nil && oi.OpenInterest.Set && math.IsNaN(oi.OpenInterest.Value) {
			t.Fatal("NaN open interest decoded")
		}
	})
}
