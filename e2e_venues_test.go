package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// TestEndToEndAllVenues runs the binary with every venue of this build
// enabled against the fakes at once, and checks Bybit's liquidations series
// by series (Binance's are checked in TestEndToEnd) through a disconnect.
func TestEndToEndAllVenues(t *testing.T) {
	usdm := exchangetest.NewBinanceMarket("usdm")
	defer usdm.Close()
	coinm := exchangetest.NewBinanceMarket("coinm")
	defer coinm.Close()
	fg := exchangetest.NewFearGreed()
	defer fg.Close()
	by := exchangetest.NewBybit()
	defer by.Close()
	usdm.SetSymbols(e2eUSDM)
	coinm.SetSymbols(e2eCoinM)
	fg.Push(40, "Fear", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	syms := exchangetest.BybitSampleSymbols()
	by.SetSymbols(syms)

	cfg := fmt.Sprintf(`
exchanges:
  binance:
    endpoints: {usdm_rest: "%s", usdm_ws: "%s", coinm_rest: "%s", coinm_ws: "%s"}
  bybit:
    endpoints: {rest: "%s", linear_ws: "%s", inverse_ws: "%s"}
fear_greed:
  url: %s
  interval: 1s
polling:
  interval: 1s
`, usdm.RESTURL(), usdm.WSURL(), coinm.RESTURL(), coinm.WSURL(), by.RESTURL(), by.LinearWSURL(), by.InverseWSURL(), fg.URL())
	p := startExporter(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topics := []string{}
	for _, s := range syms {
		topics = append(topics, exchangetest.BybitTopicPrefix+s.Symbol)
	}
	if err := by.WaitTopics(ctx, topics...); err != nil {
		t.Fatal(err)
	}
	if err := usdm.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}

	type key struct{ market, symbol, coin, side string }
	expected := map[key][2]float64{}
	var events []exchangetest.Event
	push := func(market, symbol, coin, side string, size, price float64) {
		events = append(events, exchangetest.Event{Delay: 10 * time.Millisecond,
			Frame: exchangetest.BybitLiquidationFrame(symbol, 0, exchangetest.BybitLiquidation{Side: side, Size: size, Price: price})})
		pos := map[string]string{"Buy": "long", "Sell": "short"}[side]
		n := size * price // linear: v x p
		if market == "inverse" {
			n = size // inverse: v USD contracts
		}
		k := key{market, symbol, coin, pos}
		e := expected[k]
		expected[k] = [2]float64{e[0] + 1, e[1] + n}
	}
	push("linear", "BTCUSDT", "BTC", "Buy", 0.5, 59000)
	push("linear", "ETHUSDT", "ETH", "Sell", 10, 3100)
	push("linear", "1000PEPEUSDT", "PEPE", "Buy", 2e6, 0.0121)
	push("inverse", "BTCUSD", "BTC", "Sell", 25000, 61000)
	events = append(events, exchangetest.Event{Frame: []byte(`{"topic":"allLiquidation.BTCUSDT","type":"snapshot","data":[{"s":"BTCUSDT","S":"Buy","v":"NaN","p":"1"}]}`)})
	events = append(events, exchangetest.Event{Delay: 200 * time.Millisecond, Disconnect: true})
	push("linear", "BTCUSDT", "BTC", "Sell", 1.5, 61000)
	push("inverse", "ETHUSD", "ETH", "Buy", 9000, 2900)
	for _, d := range by.Play(events) {
		if d.Frame != nil && d.Conns < 1 {
			t.Fatalf("frame %s was not delivered", d.Frame)
		}
	}

	var want float64
	for _, e := range expected {
		want += e[0]
	}
	s := p.eventually(t, "Bybit liquidations counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total", "exchange", "bybit") >= want
	})
	for _, sym := range syms {
		market := map[string]string{exchangetest.BybitLinear: "linear", exchangetest.BybitInverse: "inverse"}[sym.Category]
		coin := sym.BaseCoin
		if coin == "1000PEPE" {
			coin = "PEPE"
		}
		for _, side := range []string{"long", "short"} {
			labels := []string{"exchange", "bybit", "market", market, "symbol", sym.Symbol, "coin", coin, "side", side}
			c, ok := s.Get("crypto_liquidations_total", labels...)
			if !ok {
				t.Errorf("crypto_liquidations_total%v missing (not pre-initialised)", labels)
				continue
			}
			n, _ := s.Get("crypto_liquidation_notional_usd_total", labels...)
			e := expected[key{market, sym.Symbol, coin, side}]
			if c != e[0] || !collectortest.Close(n, e[1]) {
				t.Errorf("%s %s %s: count %v notional %v, tape says %v %v", market, sym.Symbol, side, c, n, e[0], e[1])
			}
		}
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", "bybit"); got != 1 {
		t.Errorf("bybit decode errors %v, want 1", got)
	}
	for _, m := range []string{"linear", "inverse"} {
		if v, _ := s.Get("crypto_exporter_liquidation_feed_complete", "exchange", "bybit", "market", m); v != 1 {
			t.Errorf("bybit feed_complete %s = %v, want 1", m, v)
		}
	}
	// Both venues' gauges in the same exporter.
	s = p.eventually(t, "gauges of both venues", func(s collectortest.Samples) bool {
		return s.Sum("crypto_open_interest_usd", "exchange", "bybit") > 0 && s.Sum("crypto_open_interest_usd", "exchange", "binance") > 0 &&
			len(s.Names("crypto_fear_greed_index")) == 1
	})
	if v, _ := s.Get("crypto_mark_price_usd", "exchange", "bybit", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC"); v != 60000.1 {
		t.Errorf("bybit BTCUSDT mark %v, want 60000.1", v)
	}
}
