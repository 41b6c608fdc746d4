package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// TestEndToEndAllVenues runs the binary with every venue of this build
// enabled against the fakes at once, and checks the liquidations of Bybit,
// OKX, BitMEX, Gate, Deribit, dYdX, Kraken and Bitget series by series
// (Binance's are checked in TestEndToEnd) through a disconnect.
func TestEndToEndAllVenues(t *testing.T) {
	usdm := exchangetest.NewBinanceMarket("usdm")
	defer usdm.Close()
	coinm := exchangetest.NewBinanceMarket("coinm")
	defer coinm.Close()
	fg := exchangetest.NewFearGreed()
	defer fg.Close()
	by := exchangetest.NewBybit()
	defer by.Close()
	// Long/short account ratios on the three venues that publish one.
	usdmSyms := append([]exchangetest.BinanceSymbol{}, e2eUSDM...)
	usdmSyms[0].LongShortAccountRatio = 1.85 // BTCUSDT
	usdm.SetSymbols(usdmSyms)
	coinm.SetSymbols(e2eCoinM)
	fg.Push(40, "Fear", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	syms := exchangetest.BybitSampleSymbols()
	for i := range syms {
		if syms[i].Symbol == "BTCUSDT" {
			syms[i].BuyRatio, syms[i].SellRatio = 0.6, 0.4 // ratio 1.5
		}
	}
	by.SetSymbols(syms)
	ox := exchangetest.NewOKX()
	defer ox.Close()
	ox.SetInstruments(exchangetest.OKXSampleInstruments())
	ox.SetLongShortAccountRatio("BTC", 0.75)
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
	dr := exchangetest.NewDeribit()
	defer dr.Close()
	dr.SetInstruments(exchangetest.DeribitSampleInstruments())
	dx := exchangetest.NewDydx()
	defer dx.Close()
	dx.SetMarkets(exchangetest.DydxSampleMarkets())
	kr := exchangetest.NewKraken()
	defer kr.Close()
	kr.SetProducts(exchangetest.KrakenSampleProducts())
	bg := exchangetest.NewBitget()
	defer bg.Close()
	bg.SetInstruments(exchangetest.BitgetSampleInstruments())
	// History sent on every (re)subscribe: dYdX "subscribed" contents and
	// Kraken trade_snapshot. Large liquidations, never counted.
	for _, m := range []string{"BTC-USD", "ETH-USD", "SOL-USD"} {
		dx.SetHistory(m, []exchangetest.DydxTrade{{ID: "hist-" + m, Side: "SELL", Size: 1000, Price: 100, Liquidation: true,
			CreatedAt: time.Now().Add(-time.Minute)}})
	}
	for _, p := range []string{"PF_XBTUSD", "PF_ETHUSD", "PI_XBTUSD", "FI_XBTUSD_991231"} {
		kr.SetHistory(p, []exchangetest.KrakenTrade{{Product: p, Side: "sell", Type: "liquidation", Qty: 1e6, Price: 100, Seq: 1,
			Time: time.Now().Add(-time.Minute).UnixMilli()}})
	}

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
  deribit:
    endpoints: {rest: "%s", ws: "%s"}
  dydx:
    endpoints: {rest: "%s", ws: "%s"}
  kraken:
    endpoints: {rest: "%s", ws: "%s"}
  bitget:
    endpoints: {rest: "%s", ws: "%s"}
fear_greed:
  url: %s
  interval: 1s
polling:
  interval: 1s
`, usdm.RESTURL(), usdm.WSURL(), coinm.RESTURL(), coinm.WSURL(), by.RESTURL(), by.LinearWSURL(), by.InverseWSURL(), ox.RESTURL(), ox.WSURL(), bm.RESTURL(), bm.WSURL(), gt.RESTURL(), gt.WSURL("usdt"), gt.WSURL("btc"), hl.URL(),
		dr.RESTURL(), dr.WSURL(), dx.RESTURL(), dx.WSURL(), kr.RESTURL(), kr.WSURL(), bg.RESTURL(), bg.WSURL(), fg.URL())
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

	newVenueTapes(t, p, dr, dx, kr, bg)

	// Every venue's gauges in the same exporter.
	s = p.eventually(t, "gauges of every venue", func(s collectortest.Samples) bool {
		for _, ex := range []string{"bybit", "binance", "hyperliquid", "okx", "bitmex", "gate", "deribit", "dydx", "kraken", "bitget"} {
			if !(s.Sum("crypto_open_interest_usd", "exchange", ex) > 0) {
				return false
			}
		}
		return len(s.Names("crypto_fear_greed_index")) == 1
	})
	ls := p.eventually(t, "long/short account ratios", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_long_short_account_ratio")) >= 3
	})
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"exchange", "binance", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC"}, 1.85},
		{[]string{"exchange", "bybit", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC"}, 0.6 / 0.4},
		{[]string{"exchange", "okx", "market", "linear", "symbol", "BTC-USDT-SWAP", "coin", "BTC"}, 0.75},
	} {
		if v, ok := ls.Get("crypto_long_short_account_ratio", c.labels...); !ok || !collectortest.Close(v, c.want) {
			t.Errorf("crypto_long_short_account_ratio%v = %v (present %v), want %v", c.labels, v, ok, c.want)
		}
	}
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

// liqKey is one liquidation series: (market, symbol, coin, side).
type liqKey struct{ market, symbol, coin, side string }

// liqTally is what a tape must leave in the liquidation counters of one
// exchange: count and USD notional per series.
type liqTally map[liqKey][2]float64

// add counts one liquidated position of usd notional.
func (l liqTally) add(market, symbol, coin, side string, usd float64) {
	k := liqKey{market, symbol, coin, side}
	e := l[k]
	l[k] = [2]float64{e[0] + 1, e[1] + usd}
}

// totals returns the count and notional over every series.
func (l liqTally) totals() (n, usd float64) {
	for _, e := range l {
		n += e[0]
		usd += e[1]
	}
	return n, usd
}

// sellIsLong maps the side of a liquidated taker's order to the side of
// its position: a sell closes a long.
func sellIsLong(side string) string {
	switch strings.ToLower(side) {
	case "sell":
		return "long"
	case "buy":
		return "short"
	}
	panic("unknown side " + side)
}

// deribitLiquidated returns the positions a Deribit liquidation trade
// closed: T with a taker sell or M with a taker buy is a long, T+buy or
// M+sell a short, MT one of each.
func deribitLiquidated(liquidation, direction string) []string {
	taker := sellIsLong(direction)
	maker := map[string]string{"long": "short", "short": "long"}[taker]
	switch liquidation {
	case "T":
		return []string{taker}
	case "M":
		return []string{maker}
	case "MT":
		return []string{"long", "short"}
	}
	return nil // an ordinary trade
}

// checkLiquidations compares the liquidation counters of exchange with a
// tape's tally: every series of the tally on both sides (zero when the
// tape has none, which the pre-initialised series must show), and the
// exchange's totals, so that nothing was counted on other series.
func checkLiquidations(t *testing.T, s collectortest.Samples, exchange string, want liqTally) {
	t.Helper()
	seen := map[liqKey]bool{}
	for k := range want {
		for _, side := range []string{"long", "short"} {
			k.side = side
			if seen[k] {
				continue
			}
			seen[k] = true
			labels := []string{"exchange", exchange, "market", k.market, "symbol", k.symbol, "coin", k.coin, "side", side}
			c, ok := s.Get("crypto_liquidations_total", labels...)
			if !ok {
				t.Errorf("crypto_liquidations_total%v missing", labels)
				continue
			}
			n, ok := s.Get("crypto_liquidation_notional_usd_total", labels...)
			if !ok {
				t.Errorf("crypto_liquidation_notional_usd_total%v missing", labels)
			}
			e := want[k]
			if c != e[0] || !collectortest.Close(n, e[1]) {
				t.Errorf("%s %s %s %s: count %v notional %v, tape says %v %v", exchange, k.market, k.symbol, side, c, n, e[0], e[1])
			}
		}
	}
	wn, wusd := want.totals()
	gn := s.Sum("crypto_liquidations_total", "exchange", exchange)
	gusd := s.Sum("crypto_liquidation_notional_usd_total", "exchange", exchange)
	if gn != wn || !collectortest.Close(gusd, wusd) {
		t.Errorf("%s totals: count %v notional %v, tape says %v %v", exchange, gn, gusd, wn, wusd)
	}
}

// deribitTape returns a Deribit tape and its tally: inverse (amount in USD)
// and linear (amount x price) liquidation trades with T, M and MT, an
// ordinary trade, a trade with a bad direction, a disconnect, and after
// the reconnect more liquidations and a repeat of a counted trade.
func deribitTape() ([]exchangetest.Event, liqTally) {
	want := liqTally{}
	var quarterly string
	for _, in := range exchangetest.DeribitSampleInstruments() {
		if in.SettlementPeriod != "perpetual" {
			quarterly = in.Name
		}
	}
	type inst struct{ currency, market, coin string }
	insts := map[string]inst{
		"BTC-PERPETUAL":      {"BTC", "inverse", "BTC"},
		"ETH-PERPETUAL":      {"ETH", "inverse", "ETH"},
		quarterly:            {"BTC", "inverse", "BTC"},
		"BTC_USDC-PERPETUAL": {"USDC", "linear", "BTC"},
		"ETH_USDC-PERPETUAL": {"USDC", "linear", "ETH"},
	}
	trade := func(name, liq, dir string, amount, price float64) exchangetest.Event {
		in := insts[name]
		f := exchangetest.DeribitTradesFrame(exchangetest.DeribitTradesChannel("future", in.currency),
			exchangetest.DeribitTrade{InstrumentName: name, Direction: dir, Amount: amount, Price: price, Liquidation: liq})
		usd := amount // inverse: amount is USD
		if in.market == "linear" {
			usd = amount * price // linear: amount in base coin
		}
		for _, side := range deribitLiquidated(liq, dir) {
			want.add(in.market, name, in.coin, side, usd)
		}
		return exchangetest.Event{Delay: 10 * time.Millisecond, Frame: f}
	}
	first := trade("BTC-PERPETUAL", "T", "sell", 25000, 60000)
	events := []exchangetest.Event{
		first,
		trade("ETH-PERPETUAL", "M", "sell", 3000, 2990),
		trade("BTC_USDC-PERPETUAL", "T", "buy", 0.5, 60010),
		trade("BTC-PERPETUAL", "MT", "buy", 10000, 60100),
		trade("ETH_USDC-PERPETUAL", "M", "buy", 2, 3001),
		trade(quarterly, "T", "sell", 4000, 61000),
		trade("BTC-PERPETUAL", "", "buy", 99000, 60000), // ordinary trade
		{Frame: exchangetest.DeribitTradesFrame(exchangetest.DeribitTradesChannel("future", "BTC"),
			exchangetest.DeribitTrade{InstrumentName: "BTC-PERPETUAL", Direction: "sideways", Amount: 10, Price: 60000, Liquidation: "T"})},
		{Delay: 200 * time.Millisecond, Disconnect: true},
		trade("BTC-PERPETUAL", "T", "buy", 7000, 60200),
		{Delay: 10 * time.Millisecond, Frame: first.Frame}, // same trade_id: counted once
		trade("BTC_USDC-PERPETUAL", "M", "sell", 0.25, 59990),
		trade("ETH-PERPETUAL", "MT", "sell", 1500, 2980),
	}
	return events, want
}

// dydxTape returns a dYdX tape and its tally: liquidation trades
// (liquidation true, or type LIQUIDATED) of both sides, ordinary and
// deleveraging trades, a trade with a bad side, a disconnect, and after the
// reconnect one liquidation on every market, each after that market's
// "subscribed" history.
func dydxTape() ([]exchangetest.Event, liqTally) {
	want := liqTally{}
	n := 0
	liq := func(market, side string, size, price float64, typ string) exchangetest.DydxTrade {
		n++
		t := exchangetest.DydxTrade{ID: fmt.Sprintf("e2e-%d", n), Side: side, Size: size, Price: price, Type: typ, Liquidation: typ == ""}
		want.add("linear", market, strings.TrimSuffix(market, "-USD"), sellIsLong(side), size*price)
		return t
	}
	frame := func(market string, trades ...exchangetest.DydxTrade) exchangetest.Event {
		return exchangetest.Event{Delay: 10 * time.Millisecond, Frame: exchangetest.DydxTradesFrame(market, trades...)}
	}
	events := []exchangetest.Event{
		frame("BTC-USD", liq("BTC-USD", "SELL", 0.5, 65000, ""),
			exchangetest.DydxTrade{ID: "plain-1", Side: "BUY", Size: 3, Price: 65010, Type: "LIMIT"}),
		frame("ETH-USD", liq("ETH-USD", "BUY", 10, 3000.5, "")),
		frame("SOL-USD", liq("SOL-USD", "SELL", 100, 150.25, "LIQUIDATED")),
		frame("BTC-USD", exchangetest.DydxTrade{ID: "delev-1", Side: "SELL", Size: 2, Price: 64000, Type: "DELEVERAGED"}),
		frame("ETH-USD", exchangetest.DydxTrade{ID: "bad-1", Side: "SIDEWAYS", Size: 1, Price: 3000, Liquidation: true}),
		{Delay: 200 * time.Millisecond, Disconnect: true},
		frame("BTC-USD", liq("BTC-USD", "BUY", 0.2, 64000, "")),
		frame("ETH-USD", liq("ETH-USD", "SELL", 3, 2990, "")),
		frame("SOL-USD", liq("SOL-USD", "BUY", 50, 151, "")),
	}
	return events, want
}

// krakenTape returns a Kraken Futures tape and its tally: liquidations of
// PF_ (qty x price) and PI_/FI_ (qty USD) products on both sides, a fill,
// a malformed frame, a disconnect, and after the reconnect (with its
// trade_snapshot history) more liquidations on every product.
func krakenTape() ([]exchangetest.Event, liqTally) {
	want := liqTally{}
	seq := int64(100)
	products := map[string][2]string{ // market, coin (XBT is BTC)
		"PF_XBTUSD":        {"linear", "BTC"},
		"PF_ETHUSD":        {"linear", "ETH"},
		"PI_XBTUSD":        {"inverse", "BTC"},
		"FI_XBTUSD_991231": {"inverse", "BTC"},
	}
	trade := func(product, side, typ string, qty, price float64) exchangetest.Event {
		seq++
		if typ == "liquidation" {
			market, coin := products[product][0], products[product][1]
			usd := qty * price // PF_: qty in base units
			if market == "inverse" {
				usd = qty // PI_, FI_: qty in USD contracts
			}
			want.add(market, product, coin, sellIsLong(side), usd)
		}
		return exchangetest.Event{Delay: 10 * time.Millisecond, Frame: exchangetest.KrakenTradeFrame(exchangetest.KrakenTrade{
			Product: product, Side: side, Type: typ, Qty: qty, Price: price, Seq: seq})}
	}
	events := []exchangetest.Event{
		trade("PF_XBTUSD", "sell", "liquidation", 0.3, 65000),
		trade("PI_XBTUSD", "buy", "liquidation", 20000, 65010),
		trade("PF_ETHUSD", "buy", "liquidation", 5, 3000.5),
		trade("FI_XBTUSD_991231", "sell", "liquidation", 5000, 66000),
		trade("PF_XBTUSD", "buy", "fill", 9, 65000),
		{Delay: 10 * time.Millisecond, Frame: []byte(`{"feed":"trade","product_id":`)},
		{Delay: 200 * time.Millisecond, Disconnect: true},
		trade("PF_XBTUSD", "buy", "liquidation", 0.1, 64000),
		trade("PI_XBTUSD", "sell", "liquidation", 15000, 64900),
		trade("PF_ETHUSD", "sell", "liquidation", 2, 3010),
		trade("FI_XBTUSD_991231", "buy", "liquidation", 2500, 65900),
	}
	return events, want
}

// bitgetTape returns a Bitget tape and its tally (amount in base coin for
// every product type, notional amount x price, sell = long, as the package
// documents): usdt-, usdc- and coin-futures of both sides, a frame that is
// not JSON, a disconnect, and after the reconnect more liquidations and a
// repeat of a counted one.
func bitgetTape() ([]exchangetest.Event, liqTally) {
	want := liqTally{}
	liq := func(productType, symbol, coin, side string, amount, price float64) exchangetest.Event {
		market := "linear"
		if productType == exchangetest.BitgetCoinFutures {
			market = "inverse"
		}
		want.add(market, symbol, coin, sellIsLong(side), amount*price)
		return exchangetest.Event{Delay: 10 * time.Millisecond, Frame: exchangetest.BitgetLiquidationFrame(productType,
			exchangetest.BitgetLiquidation{Symbol: symbol, Side: side, Amount: amount, Price: price})}
	}
	first := liq(exchangetest.BitgetUSDTFutures, "BTCUSDT", "BTC", "sell", 0.5, 60000)
	events := []exchangetest.Event{
		first,
		liq(exchangetest.BitgetCoinFutures, "BTCUSD", "BTC", "buy", 0.2, 59000),
		liq(exchangetest.BitgetUSDCFutures, "BTCPERP", "BTC", "sell", 0.1, 61000),
		liq(exchangetest.BitgetCoinFutures, "ETHUSD_231229", "ETH", "sell", 2, 3000),
		liq(exchangetest.BitgetUSDTFutures, "ETHUSDT", "ETH", "buy", 4, 3005),
		{Delay: 10 * time.Millisecond, Frame: []byte(`not json`)},
		{Delay: 200 * time.Millisecond, Disconnect: true},
		liq(exchangetest.BitgetUSDTFutures, "BTCUSDT", "BTC", "buy", 1, 59000),
		{Delay: 10 * time.Millisecond, Frame: first.Frame}, // a replay: counted once
		liq(exchangetest.BitgetCoinFutures, "BTCUSD", "BTC", "sell", 0.3, 60500),
		liq(exchangetest.BitgetUSDCFutures, "BTCPERP", "BTC", "buy", 0.05, 60900),
	}
	return events, want
}

// newVenueTapes plays a tape through Deribit, dYdX, Kraken and Bitget at
// once and compares the exporter's liquidation counters, decode errors and
// feed_complete flags with what the tapes and the venues' rules say.
func newVenueTapes(t *testing.T, p *exporterProcess, dr *exchangetest.Deribit, dx *exchangetest.Dydx, kr *exchangetest.Kraken, bg *exchangetest.Bitget) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dr.WaitSubscribed(ctx, exchangetest.DeribitTradesChannel("future", "BTC"), exchangetest.DeribitTradesChannel("future", "ETH"),
		exchangetest.DeribitTradesChannel("future", "USDC")); err != nil {
		t.Fatal(err)
	}
	if err := dx.WaitMarkets(ctx, "BTC-USD", "ETH-USD", "SOL-USD"); err != nil {
		t.Fatal(err)
	}
	if err := kr.WaitSubscribed(ctx, "PF_XBTUSD", "PF_ETHUSD", "PI_XBTUSD", "FI_XBTUSD_991231"); err != nil {
		t.Fatal(err)
	}
	if err := bg.WaitSubscribed(ctx, 3); err != nil { // usdt-, coin- and usdc-futures
		t.Fatal(err)
	}
	// The four tapes play at the same time.
	type tape struct {
		name   string
		events []exchangetest.Event
		want   liqTally
		played <-chan []exchangetest.Delivered
	}
	var venues []*tape
	for _, v := range []struct {
		name string
		tape func() ([]exchangetest.Event, liqTally)
		play func([]exchangetest.Event) <-chan []exchangetest.Delivered
	}{
		{"deribit", deribitTape, dr.PlayAsync},
		{"dydx", dydxTape, dx.PlayAsync},
		{"kraken", krakenTape, kr.PlayAsync},
		{"bitget", bitgetTape, bg.PlayAsync},
	} {
		events, want := v.tape()
		venues = append(venues, &tape{name: v.name, events: events, want: want, played: v.play(events)})
	}
	for _, v := range venues {
		frames := 0
		for _, ev := range v.events {
			if ev.Frame != nil {
				frames++
			}
		}
		got := <-v.played
		if len(got) != frames {
			t.Fatalf("%s: %d of %d frames played", v.name, len(got), frames)
		}
		for _, d := range got {
			if d.Conns < 1 {
				t.Fatalf("%s: frame %s was not delivered", v.name, d.Frame)
			}
		}
	}
	p.eventually(t, "Deribit, dYdX, Kraken and Bitget liquidations counted", func(s collectortest.Samples) bool {
		for _, v := range venues {
			n, _ := v.want.totals()
			if s.Sum("crypto_liquidations_total", "exchange", v.name) < n {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // a late replay would show now
	s, err := p.scrape(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range venues {
		checkLiquidations(t, s, v.name, v.want)
		if got := s.Sum("crypto_exporter_stream_decode_errors_total", "exchange", v.name); got != 1 {
			t.Errorf("%s decode errors %v, want 1 (the one malformed frame)", v.name, got)
		}
	}
	// Deribit, dYdX and Kraken publish every trade; Bitget's topic is not
	// known to be complete (package docs).
	for _, c := range []struct {
		exchange string
		markets  []string
		want     float64
	}{
		{"deribit", []string{"linear", "inverse"}, 1},
		{"dydx", []string{"linear"}, 1},
		{"kraken", []string{"linear", "inverse"}, 1},
		{"bitget", []string{"linear", "inverse"}, 0},
	} {
		for _, m := range c.markets {
			if v, ok := s.Get("crypto_exporter_liquidation_feed_complete", "exchange", c.exchange, "market", m); !ok || v != c.want {
				t.Errorf("%s feed_complete %s = %v (present %v), want %v", c.exchange, m, v, ok, c.want)
			}
		}
	}

	checkREADMELabelTable(t, s)
}

// checkREADMELabelTable checks that every stream and endpoint label value the
// exporter exported is listed in the README's table of health label values,
// in the row of its exchange: literally, as `name_N` for numbered streams,
// or as "the same with `prefix_`" of a listed value.
func checkREADMELabelTable(t *testing.T, s collectortest.Samples) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{} // exchange -> backticked tokens of its row
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || strings.TrimSpace(cells[0]) != "" {
			continue
		}
		ex := strings.TrimSpace(cells[1])
		if ex == "" || strings.Contains(ex, " ") {
			continue
		}
		parts := strings.Split(cells[2]+cells[3], "`")
		for i := 1; i < len(parts); i += 2 {
			rows[ex] = append(rows[ex], parts[i])
		}
	}
	documented := func(ex, v string) bool {
		toks := rows[ex]
		numbered := regexp.MustCompile(`_[0-9]+$`).ReplaceAllString(v, "_N")
		for _, tok := range toks {
			if tok == v || tok == numbered {
				return true
			}
		}
		for _, p := range toks { // "the same with `p_`"
			if !strings.HasSuffix(p, "_") || !strings.HasPrefix(v, p) {
				continue
			}
			rest := v[len(p):]
			for _, tok := range toks {
				if tok != v && strings.HasSuffix(tok, "_"+rest) {
					return true
				}
			}
		}
		return false
	}
	exchange := regexp.MustCompile(`exchange="([^"]+)"`)
	seen := 0
	for name, kind := range map[string]string{"crypto_exporter_stream_up": "stream", "crypto_exporter_poll_success": "endpoint"} {
		value := regexp.MustCompile(kind + `="([^"]+)"`)
		for _, k := range s.Names(name) {
			ex, v := exchange.FindStringSubmatch(k), value.FindStringSubmatch(k)
			if ex == nil || v == nil {
				t.Errorf("cannot read the labels of %s", k)
				continue
			}
			seen++
			if !documented(ex[1], v[1]) {
				t.Errorf("README's label table does not list %s %q of %s", kind, v[1], ex[1])
			}
		}
	}
	if seen < 40 {
		t.Errorf("only %d stream and endpoint series checked against the README", seen)
	}
}
