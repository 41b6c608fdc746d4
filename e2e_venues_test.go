package main

import (
	"context"
	"fmt"
	"strings"
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
	ox := exchangetest.NewOKX()
	defer ox.Close()
	ox.SetInstruments(exchangetest.OKXSampleInstruments())
	bm := exchangetest.NewBitMEX()
	defer bm.Close()
	bm.SetInstruments(exchangetest.BitMEXSampleInstruments())
	gt := exchangetest.NewGate()
	defer gt.Close()
	gt.SetContracts(exchangetest.GateSampleContracts())
	hl := exchangetest.NewHyperliquid()
	defer hl.Close()
	hl.SetWeightLimit(0, 0) // polled every second here
	hl.SetAssets([]exchangetest.HyperliquidAsset{
		{Name: "BTC", SzDecimals: 5, MaxLeverage: 40, Funding: 0.0000125, OpenInterest: 25000.5, DayNtlVlm: 2.5e9, MarkPx: 97000.5, OraclePx: 97010, MidPx: 97001},
		{Name: "kPEPE", SzDecimals: 0, MaxLeverage: 10, Funding: -0.00002, OpenInterest: 3e9, DayNtlVlm: 4e7, MarkPx: 0.0187, OraclePx: 0.0187, MidPx: 0.0187},
	})

	cfg := fmt.Sprintf(`
exchanges:
  binance:
    endpoints: {usdm_rest: "%s", usdm_ws: "%s", coinm_rest: "%s", coinm_ws: "%s"}
  bybit:
    endpoints: {rest: "%s", linear_ws: "%s", inverse_ws: "%s"}
  okx:
    endpoints: {rest: "%s", ws: "%s"}
  bitmex:
    endpoints: {rest: "%s", ws: "%s"}
  gate:
    endpoints: {rest: "%s", usdt_ws: "%s", btc_ws: "%s"}
  hyperliquid:
    endpoints: {rest: "%s"}
fear_greed:
  url: %s
  interval: 1s
polling:
  interval: 1s
`, usdm.RESTURL(), usdm.WSURL(), coinm.RESTURL(), coinm.WSURL(), by.RESTURL(), by.LinearWSURL(), by.InverseWSURL(), ox.RESTURL(), ox.WSURL(), bm.RESTURL(), bm.WSURL(), gt.RESTURL(), gt.WSURL("usdt"), gt.WSURL("btc"), hl.URL(), fg.URL())
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
	// OKX: a tape through a disconnect; OKX replays recent orders on the
	// resubscribe and the exporter backfills the gap from REST: every
	// order must count exactly once.
	if err := ox.WaitSubscribed(ctx, 2); err != nil {
		t.Fatal(err)
	}
	okxOrder := func(instType, instID, side string, sz, px float64) exchangetest.Event {
		return exchangetest.Event{Delay: 10 * time.Millisecond, Frame: exchangetest.OKXLiquidationFrame(instType, instID, "",
			exchangetest.OKXDetail{Side: side, PosSide: map[string]string{"sell": "long", "buy": "short"}[side], Sz: sz, BkPx: px})}
	}
	okxEvents := []exchangetest.Event{
		okxOrder("SWAP", "BTC-USDT-SWAP", "sell", 12, 59500),
		okxOrder("SWAP", "ETH-USDT-SWAP", "buy", 30, 3050),
		okxOrder("SWAP", "BTC-USD-SWAP", "sell", 400, 59000),
		{Delay: 200 * time.Millisecond, Disconnect: true},
		okxOrder("SWAP", "BTC-USDT-SWAP", "buy", 7, 60500),
	}
	ox.Play(okxEvents)
	okxWant := map[string][2]float64{ // symbol/side -> count, USD
		"BTC-USDT-SWAP/long":  {1, 12 * 0.01 * 59500},
		"BTC-USDT-SWAP/short": {1, 7 * 0.01 * 60500},
		"ETH-USDT-SWAP/short": {1, 30 * 0.1 * 3050},
		"BTC-USD-SWAP/long":   {1, 400 * 100},
	}
	p.eventually(t, "OKX liquidations counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total", "exchange", "okx") >= 4
	})
	time.Sleep(1500 * time.Millisecond) // a replay or backfill arriving late would show now
	s, err := p.scrape(t)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range okxWant {
		sym, side, _ := strings.Cut(k, "/")
		c := s.Sum("crypto_liquidations_total", "exchange", "okx", "symbol", sym, "side", side)
		n := s.Sum("crypto_liquidation_notional_usd_total", "exchange", "okx", "symbol", sym, "side", side)
		if c != w[0] || !collectortest.Close(n, w[1]) {
			t.Errorf("okx %s: count %v notional %v, want %v %v", k, c, n, w[0], w[1])
		}
	}
	if got := s.Sum("crypto_liquidations_total", "exchange", "okx"); got != 4 {
		t.Errorf("okx total %v, want 4 (replay and backfill must not double count)", got)
	}

	// BitMEX: partial on (re)subscribe is history, each insert counts once,
	// updates and deletes are fill progress.
	if err := bm.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ins := func(id, side string, qty, px float64) exchangetest.Event {
		return exchangetest.Event{Delay: 10 * time.Millisecond, Frame: exchangetest.BitMEXLiquidationFrame("insert",
			exchangetest.BitMEXOrder{OrderID: id, Symbol: "XBTUSD", Side: side, Price: px, LeavesQty: qty})}
	}
	bm.Play([]exchangetest.Event{
		ins("a1", "Sell", 50000, 59000),
		{Frame: exchangetest.BitMEXLiquidationFrame("update", exchangetest.BitMEXOrder{OrderID: "a1", Symbol: "XBTUSD", LeavesQty: 20000})},
		{Frame: exchangetest.BitMEXLiquidationFrame("delete", exchangetest.BitMEXOrder{OrderID: "a1", Symbol: "XBTUSD"})},
		{Delay: 200 * time.Millisecond, Disconnect: true},
		ins("b2", "Buy", 12000, 61000),
	})
	// Gate: signed size, quanto multiplier; a disconnect whose gap the
	// backfill covers without double counting.
	if err := gt.WaitSubscribed(ctx, "usdt", "btc"); err != nil {
		t.Fatal(err)
	}
	gt.Play([]exchangetest.Event{
		{Delay: 10 * time.Millisecond, Frame: exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: "BTC_USDT", Size: -300, Price: 59500})},
		{Delay: 1100 * time.Millisecond, Frame: exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: "ETH_USDT", Size: 40, Price: 3050})},
		{Delay: 200 * time.Millisecond, Disconnect: true},
	})
	p.eventually(t, "BitMEX and Gate liquidations counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total", "exchange", "bitmex") >= 2 && s.Sum("crypto_liquidations_total", "exchange", "gate") >= 2
	})
	time.Sleep(1500 * time.Millisecond) // a late replay or backfill would show now
	s, err = p.scrape(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		exchange, symbol, side string
		count, usd             float64
	}{
		{"bitmex", "XBTUSD", "long", 1, 50000},  // inverse: 1 USD per contract at insert
		{"bitmex", "XBTUSD", "short", 1, 12000}, // after the reconnect; partial not counted
		{"gate", "BTC_USDT", "long", 1, 300 * 0.0001 * 59500},
		{"gate", "ETH_USDT", "short", 1, 40 * 0.01 * 3050},
	} {
		n := s.Sum("crypto_liquidations_total", "exchange", c.exchange, "symbol", c.symbol, "side", c.side)
		usd := s.Sum("crypto_liquidation_notional_usd_total", "exchange", c.exchange, "symbol", c.symbol, "side", c.side)
		if n != c.count || !collectortest.Close(usd, c.usd) {
			t.Errorf("%s %s %s: count %v notional %v, want %v %v", c.exchange, c.symbol, c.side, n, usd, c.count, c.usd)
		}
	}
	for _, ex := range []string{"bitmex", "gate"} {
		if got := s.Sum("crypto_liquidations_total", "exchange", ex); got != 2 {
			t.Errorf("%s total %v, want 2", ex, got)
		}
	}

	// Every venue's gauges in the same exporter.
	s = p.eventually(t, "gauges of every venue", func(s collectortest.Samples) bool {
		return s.Sum("crypto_open_interest_usd", "exchange", "bybit") > 0 && s.Sum("crypto_open_interest_usd", "exchange", "binance") > 0 &&
			s.Sum("crypto_open_interest_usd", "exchange", "hyperliquid") > 0 && s.Sum("crypto_open_interest_usd", "exchange", "okx") > 0 &&
			s.Sum("crypto_open_interest_usd", "exchange", "bitmex") > 0 && s.Sum("crypto_open_interest_usd", "exchange", "gate") > 0 &&
			len(s.Names("crypto_fear_greed_index")) == 1
	})
	pepe := []string{"exchange", "hyperliquid", "market", "linear", "symbol", "kPEPE", "coin", "PEPE"}
	if v, _ := s.Get("crypto_open_interest_coins", pepe...); v != 3e12 {
		t.Errorf("hyperliquid kPEPE open interest %v coins, want 3e12 (x1000)", v)
	}
	if v, _ := s.Get("crypto_funding_interval_seconds", pepe...); v != 3600 {
		t.Errorf("hyperliquid funding interval %v, want 3600", v)
	}
	if n := len(s.Names("crypto_liquidations_total")); n == 0 || s.Sum("crypto_liquidations_total", "exchange", "hyperliquid") != 0 {
		t.Error("liquidation series for hyperliquid")
	}
	for _, k := range s.Names("crypto_liquidations_total") {
		if strings.Contains(k, `exchange="hyperliquid"`) {
			t.Errorf("liquidation series exported for hyperliquid: %s", k)
		}
	}
	for _, k := range s.Names("crypto_exporter_liquidation_feed_complete") {
		if strings.Contains(k, `exchange="hyperliquid"`) {
			t.Errorf("feed_complete exported for hyperliquid: %s", k)
		}
	}
	if v, _ := s.Get("crypto_mark_price_usd", "exchange", "bybit", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC"); v != 60000.1 {
		t.Errorf("bybit BTCUSDT mark %v, want 60000.1", v)
	}
}
