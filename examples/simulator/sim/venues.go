package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// Exchange labels of the simulated venues.
const (
	Binance = "binance"
	Bybit   = "bybit"
	OKX     = "okx"
	Gate    = "gate"
	Dydx    = "dydx"
)

// Venues lists every venue the simulator can run, in the order it builds
// them; Config.Venues nil means all of them.
var Venues = []string{Binance, Bybit, OKX, Gate, Dydx}

// configOrder is every venue of the exporter's configuration, in the order
// ExporterConfig writes them.
var configOrder = []string{"binance", "bybit", "okx", "bitmex", "deribit", "gate", "bitget", "kraken", "dydx", "hyperliquid"}

// venueFlow is each venue's share of a coin's liquidation flow, relative to
// Binance's, roughly in the proportions of the public liquidation feeds.
var venueFlow = map[string]float64{Binance: 1, Bybit: 0.6, OKX: 0.35, Gate: 0.15, Dydx: 0.05}

// venue is one simulated exchange: its fake, how its instruments are
// served, and how a liquidation is rendered and pushed.
type venue struct {
	name string
	// rng draws everything of the venue's instruments; Binance uses the
	// market's generator, so that adding venues leaves its market as it was.
	rng *rand.Rand
	// throttled venues publish at most one liquidation per symbol and step
	// (unless Config.Unthrottled), as their public streams do.
	throttled bool
	markets   []string // one player each
	// publish writes the instruments' state into the fake.
	publish func(now time.Time, insts []*instrument)
	// render builds the frame of one fill; it may adjust the order's
	// quantity (keeping orders distinct) and sets its route.
	render func(o *order) []byte
	// ready returns, for a market, a snapshot of which routes (see
	// order.route) have a subscriber now.
	ready func(market string) func(route string) bool
	// play pushes a market's events on the fake.
	play func(market string, events []exchangetest.Event) []exchangetest.Delivered
	// wait waits until every liquidation route of the venue is subscribed.
	wait func(ctx context.Context, insts []*instrument) error
	// config is the venue's entry under exchanges: in the exporter's
	// configuration.
	config func() string
	close  func()
}

// order is one liquidation being rendered.
type order struct {
	in         *instrument
	side       string // long or short: the position liquidated
	qty, price float64
	at         time.Time
	route      string // Bybit topic, dYdX market; "" = the whole market
	id         uint64 // dYdX trade id
}

func venueRNG(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed^h.Sum64(), seed+h.Sum64()))
}

// newVenue starts the fake of a venue and lists its instruments.
func (s *Sim) newVenue(name string, states map[string]*coinState, now time.Time) (*venue, []*instrument) {
	switch name {
	case Binance:
		return s.binanceVenue(states, now)
	case Bybit:
		return s.bybitVenue(states, now)
	case OKX:
		return s.okxVenue(states, now)
	case Gate:
		return s.gateVenue(states, now)
	case Dydx:
		return s.dydxVenue(states, now)
	}
	panic("sim: unknown venue " + name)
}

// sideOf maps a liquidated position to the side of the liquidation order:
// a long is sold, a short bought.
func sideOf(position string) (sell bool) { return position == "long" }

// ---------------------------------------------------------------- Binance

func (s *Sim) binanceVenue(states map[string]*coinState, now time.Time) (*venue, []*instrument) {
	s.usdm = exchangetest.NewBinanceMarket(exchangetest.BinanceUSDM)
	s.coinm = exchangetest.NewBinanceMarket(exchangetest.BinanceCoinM)
	for _, m := range []*exchangetest.BinanceMarket{s.usdm, s.coinm} {
		m.SetWeightLimit(weightLimit)
		m.SetPlayTimeout(playTimeout)
	}
	fake := map[string]*exchangetest.BinanceMarket{USDM: s.usdm, COINM: s.coinm}
	v := &venue{name: Binance, rng: s.rng, throttled: true, markets: []string{USDM, COINM}}
	v.publish = func(now time.Time, insts []*instrument) {
		var u, c []exchangetest.BinanceSymbol
		for _, in := range insts {
			if in.market == USDM {
				u = append(u, in.fake(now))
			} else {
				c = append(c, in.fake(now))
			}
		}
		s.usdm.SetSymbols(u)
		s.coinm.SetSymbols(c)
	}
	v.render = func(o *order) []byte {
		in := o.in
		orderSide, sign := "BUY", 1.0
		if sideOf(o.side) {
			orderSide, sign = "SELL", -1
		}
		fo := exchangetest.ForceOrder{
			Symbol: in.symbol, Side: orderSide, OrderType: "LIMIT", TimeInForce: "IOC",
			Qty: o.qty, Price: roundTo(o.price*(1+sign*0.002), in.priceDP), AvgPrice: o.price, FilledQty: o.qty, LastFilledQty: o.qty,
			EventTime: o.at.UnixMilli(),
		}
		if in.market == COINM {
			fo.Pair = in.pair
		}
		return exchangetest.ForceOrderFrame(fo)
	}
	v.ready = func(market string) func(string) bool {
		ok := fake[market].Subscribed() > 0
		return func(string) bool { return ok }
	}
	v.play = func(market string, events []exchangetest.Event) []exchangetest.Delivered {
		return fake[market].Play(events)
	}
	v.wait = func(ctx context.Context, _ []*instrument) error {
		for _, m := range []*exchangetest.BinanceMarket{s.usdm, s.coinm} {
			if err := m.WaitSubscribed(ctx, 1); err != nil {
				return err
			}
		}
		return nil
	}
	v.config = func() string {
		return fmt.Sprintf(`
    endpoints:
      usdm_rest: %s
      usdm_ws: %s
      coinm_rest: %s
      coinm_ws: %s`, s.usdm.RESTURL(), s.usdm.WSURL(), s.coinm.RESTURL(), s.coinm.WSURL())
	}
	v.close = func() {
		s.usdm.Close()
		s.coinm.Close()
	}
	return v, buildInstruments(v, states, now)
}

// ---------------------------------------------------------------- Bybit

// bybitMonth is the month code of Bybit's inverse futures (BTCUSDH26).
const bybitMonth = "FGHJKMNQUVXZ"

func (s *Sim) bybitVenue(states map[string]*coinState, now time.Time) (*venue, []*instrument) {
	by := exchangetest.NewBybit()
	by.SetPlayTimeout(playTimeout)
	s.bybit = by
	v := &venue{name: Bybit, rng: venueRNG(s.cfg.Seed, Bybit), markets: []string{exchangetest.BybitLinear, exchangetest.BybitInverse}}
	q := quarterly(now, false)
	var insts []*instrument
	add := func(in *instrument) {
		in.setup(v, now)
		insts = append(insts, in)
	}
	flow := venueFlow[Bybit]
	for _, c := range coins {
		st := states[c.coin]
		mult := 1.0
		if c.prefix == "1000" {
			mult = 1000
		}
		base := c.prefix + c.coin
		add(&instrument{market: exchangetest.BybitLinear, symbol: base + "USDT", coin: st, quote: "USDT", contractType: "PERPETUAL",
			mult: mult, qtyDP: c.qtyDP, share: 0.8 * flow, fundingHours: c.fundingHours})
		switch c.coin {
		case "BTC", "ETH":
			add(&instrument{market: exchangetest.BybitLinear, symbol: c.coin + "PERP", coin: st, quote: "USDC", contractType: "PERPETUAL",
				mult: 1, qtyDP: c.qtyDP, share: 0.05 * flow})
		}
		if c.coin == "BTC" {
			add(&instrument{market: exchangetest.BybitLinear, symbol: "BTC-" + strings.ToUpper(q.Format("02Jan06")), coin: st, quote: "USDT",
				contractType: "CURRENT_QUARTER", mult: 1, qtyDP: c.qtyDP, delivery: q, share: 0.03 * flow})
		}
		switch c.coin {
		case "BTC", "ETH", "SOL", "XRP":
			add(&instrument{market: exchangetest.BybitInverse, symbol: c.coin + "USD", coin: st, quote: "USD", contractType: "PERPETUAL",
				inverse: true, contractSize: 1, share: 0.1 * flow})
		}
		if c.coin == "BTC" {
			add(&instrument{market: exchangetest.BybitInverse, symbol: "BTCUSD" + string(bybitMonth[q.Month()-1]) + q.Format("06"), coin: st,
				quote: "USD", contractType: "CURRENT_QUARTER", inverse: true, contractSize: 1, delivery: q, share: 0.02 * flow})
		}
	}
	v.publish = func(now time.Time, insts []*instrument) {
		syms := make([]exchangetest.BybitSymbol, 0, len(insts))
		for _, in := range insts {
			syms = append(syms, bybitSymbol(in, now))
		}
		by.SetSymbols(syms)
	}
	v.render = func(o *order) []byte {
		o.route = exchangetest.BybitTopicPrefix + o.in.symbol
		side := "Sell" // S is the side of the position
		if o.side == "long" {
			side = "Buy"
		}
		return exchangetest.BybitLiquidationFrame(o.in.symbol, o.at.UnixMilli(),
			exchangetest.BybitLiquidation{Side: side, Size: o.qty, Price: o.price})
	}
	v.ready = func(market string) func(string) bool {
		topics := by.Topics(market)
		return func(route string) bool { return topics[route] > 0 }
	}
	v.play = func(_ string, events []exchangetest.Event) []exchangetest.Delivered { return by.Play(events) }
	v.wait = func(ctx context.Context, insts []*instrument) error {
		topics := make([]string, len(insts))
		for i, in := range insts {
			topics[i] = exchangetest.BybitTopicPrefix + in.symbol
		}
		return by.WaitTopics(ctx, topics...)
	}
	v.config = func() string {
		return fmt.Sprintf(`
    endpoints:
      rest: %s
      linear_ws: %s
      inverse_ws: %s`, by.RESTURL(), by.LinearWSURL(), by.InverseWSURL())
	}
	v.close = by.Close
	return v, insts
}

func bybitSymbol(in *instrument, now time.Time) exchangetest.BybitSymbol {
	mark := in.mark(now)
	base := in.coin.spec.coin
	if in.mult == 1000 {
		base = "1000" + base
	}
	s := exchangetest.BybitSymbol{
		Category: in.market, Symbol: in.symbol, BaseCoin: base, QuoteCoin: in.quote, SettleCoin: in.quote, Status: "Trading",
		PriceScale: in.priceDP, FundingInterval: in.fundingHours * 60,
		MarkPrice: mark, IndexPrice: roundTo(in.coin.price*in.mult, in.priceDP), LastPrice: mark,
	}
	if in.inverse {
		s.SettleCoin = base
		s.SingleOpenInterest = in.oi // USD
		s.SingleOpenInterestValue = roundTo(in.oi/mark, 8)
		s.Volume24h = math.Round(in.volUSD)
		s.Turnover24h = roundTo(in.volUSD/mark, 8)
	} else {
		s.SingleOpenInterest = in.oi
		s.SingleOpenInterestValue = roundTo(in.oi*mark, 2)
		s.Turnover24h = math.Round(in.volUSD)
		s.Volume24h = roundTo(in.volUSD/mark, in.qtyDP)
	}
	s.OpenInterest, s.OpenInterestValue = 2*s.SingleOpenInterest, 2*s.SingleOpenInterestValue // both sides
	switch {
	case in.perpetual() && in.inverse:
		s.ContractType = "InversePerpetual"
	case in.perpetual():
		s.ContractType = "LinearPerpetual"
	case in.inverse:
		s.ContractType = "InverseFutures"
	default:
		s.ContractType = "LinearFutures"
	}
	if in.perpetual() {
		s.FundingRate = roundTo(in.funding, 8)
		_, next := in.fundingTimes(now)
		s.NextFundingTime = next.UnixMilli()
		s.FundingCap = 0.005
		if in.quote == "USDT" {
			// Crowded longs pay funding: the share of net-long accounts
			// leans with it, as on Binance.
			buy := roundTo(min(max(0.5+in.funding*300, 0.25), 0.8), 4)
			s.BuyRatio, s.SellRatio = buy, roundTo(1-buy, 4)
		}
	} else {
		s.DeliveryTime = in.delivery.UnixMilli()
	}
	return s
}

// ---------------------------------------------------------------- OKX

func (s *Sim) okxVenue(states map[string]*coinState, now time.Time) (*venue, []*instrument) {
	ox := exchangetest.NewOKX()
	ox.SetPlayTimeout(playTimeout)
	s.okx = ox
	v := &venue{name: OKX, rng: venueRNG(s.cfg.Seed, OKX), throttled: true, markets: []string{exchangetest.OKXSwap, exchangetest.OKXFutures}}
	q1, q2 := quarterly(now, false), quarterly(now, true)
	var insts []*instrument
	add := func(in *instrument) {
		in.setup(v, now)
		insts = append(insts, in)
	}
	flow := venueFlow[OKX]
	for _, c := range coins {
		st := states[c.coin]
		// ctVal: about $10-$1000 a contract, in the coin.
		ctVal := math.Pow10(int(math.Round(math.Log10(100 / c.price))))
		add(&instrument{market: exchangetest.OKXSwap, symbol: c.coin + "-USDT-SWAP", pair: c.coin + "-USDT", coin: st, quote: "USDT",
			contractType: "PERPETUAL", lot: ctVal, share: 0.8 * flow, fundingHours: c.fundingHours})
		switch c.coin {
		case "BTC", "ETH", "SOL", "DOGE", "XRP", "LTC":
			size := 10.0
			if c.coin == "BTC" {
				size = 100
			}
			add(&instrument{market: exchangetest.OKXSwap, symbol: c.coin + "-USD-SWAP", pair: c.coin + "-USD", coin: st, quote: "USD",
				contractType: "PERPETUAL", inverse: true, contractSize: size, share: 0.12 * flow})
		}
		if c.coin == "BTC" {
			add(&instrument{market: exchangetest.OKXFutures, symbol: "BTC-USDT-" + q1.Format("060102"), pair: "BTC-USDT", coin: st, quote: "USDT",
				contractType: "CURRENT_QUARTER", lot: ctVal, delivery: q1, share: 0.03 * flow})
			add(&instrument{market: exchangetest.OKXFutures, symbol: "BTC-USD-" + q1.Format("060102"), pair: "BTC-USD", coin: st, quote: "USD",
				contractType: "CURRENT_QUARTER", inverse: true, contractSize: 100, delivery: q1, share: 0.02 * flow})
			add(&instrument{market: exchangetest.OKXFutures, symbol: "BTC-USD-" + q2.Format("060102"), pair: "BTC-USD", coin: st, quote: "USD",
				contractType: "NEXT_QUARTER", inverse: true, contractSize: 100, delivery: q2, share: 0.01 * flow})
		}
	}
	v.publish = func(now time.Time, insts []*instrument) {
		list := make([]exchangetest.OKXInstrument, 0, len(insts))
		for _, in := range insts {
			list = append(list, okxInstrument(in, now))
			if in.perpetual() && in.quote == "USDT" {
				ox.SetLongShortAccountRatio(in.coin.spec.coin, roundTo(min(max(1+in.funding*2000, 0.3), 4), 4))
			}
		}
		ox.SetInstruments(list)
	}
	v.render = func(o *order) []byte {
		// OKX names an order by (instId, side, posSide, sz, bkPx, ts) and
		// the exporter counts each name once: keep the ts of an instrument's
		// orders increasing.
		ts := max(o.at.UnixMilli(), o.in.lastTS+1)
		o.in.lastTS = ts
		side := "buy"
		if sideOf(o.side) {
			side = "sell"
		}
		return exchangetest.OKXLiquidationFrame(o.in.market, o.in.symbol, o.in.pair,
			exchangetest.OKXDetail{Side: side, PosSide: o.side, Sz: o.qty, BkPx: o.price, TS: ts})
	}
	v.ready = func(market string) func(string) bool {
		ok := ox.Subscribed()[market] > 0
		return func(string) bool { return ok }
	}
	v.play = func(_ string, events []exchangetest.Event) []exchangetest.Delivered { return ox.Play(events) }
	v.wait = func(ctx context.Context, _ []*instrument) error {
		return ox.WaitInstTypes(ctx, exchangetest.OKXSwap, exchangetest.OKXFutures)
	}
	v.config = func() string {
		return fmt.Sprintf(`
    endpoints:
      rest: %s
      ws: %s`, ox.RESTURL(), ox.WSURL())
	}
	v.close = ox.Close
	return v, insts
}

func okxInstrument(in *instrument, now time.Time) exchangetest.OKXInstrument {
	mark := in.mark(now)
	o := exchangetest.OKXInstrument{
		InstType: in.market, InstID: in.symbol, InstFamily: in.pair, SettleCcy: in.quote, CtType: "linear", State: "live",
		Last: mark, MarkPx: mark, OI: in.oi, OIUsd: math.Round(in.oiUSD(mark)),
	}
	if in.inverse {
		o.SettleCcy, o.CtType, o.CtVal = in.coin.spec.coin, "inverse", in.contractSize
		o.Vol24h = math.Round(in.volUSD / in.contractSize)
	} else {
		o.CtVal = in.lot
		o.Vol24h = math.Round(in.volUSD / (mark * in.lot))
	}
	o.OICcy = roundTo(in.oiUSD(mark)/in.coin.price, 4)
	o.VolCcy24h = roundTo(in.volUSD/in.coin.price, 4)
	if in.perpetual() {
		last, next := in.fundingTimes(now)
		o.FundingRate = roundTo(in.funding, 8)
		o.FundingTime, o.NextFundingTime = next.UnixMilli(), next.Add(next.Sub(last)).UnixMilli()
	} else {
		o.ExpTime = in.delivery.UnixMilli()
		o.Alias = map[string]string{"CURRENT_QUARTER": "quarter", "NEXT_QUARTER": "next_quarter"}[in.contractType]
	}
	return o
}

// ---------------------------------------------------------------- Gate

func (s *Sim) gateVenue(states map[string]*coinState, now time.Time) (*venue, []*instrument) {
	gt := exchangetest.NewGate()
	gt.SetPlayTimeout(playTimeout)
	s.gate = gt
	v := &venue{name: Gate, rng: venueRNG(s.cfg.Seed, Gate), throttled: true, markets: []string{exchangetest.GateUSDT, exchangetest.GateBTC}}
	var insts []*instrument
	flow := venueFlow[Gate]
	for _, c := range coins {
		st := states[c.coin]
		quanto := math.Pow10(int(math.Round(math.Log10(10 / c.price))))
		in := &instrument{market: exchangetest.GateUSDT, symbol: c.coin + "_USDT", coin: st, quote: "USDT", contractType: "PERPETUAL",
			lot: quanto, share: 0.9 * flow, fundingHours: c.fundingHours}
		in.setup(v, now)
		insts = append(insts, in)
		if c.coin == "BTC" {
			in := &instrument{market: exchangetest.GateBTC, symbol: "BTC_USD", coin: st, quote: "USD", contractType: "PERPETUAL",
				inverse: true, contractSize: 1, share: 0.1 * flow}
			in.setup(v, now)
			insts = append(insts, in)
		}
	}
	v.publish = func(now time.Time, insts []*instrument) {
		list := make([]exchangetest.GateContract, 0, len(insts))
		for _, in := range insts {
			mark := in.mark(now)
			_, next := in.fundingTimes(now)
			c := exchangetest.GateContract{Settle: in.market, Name: in.symbol, Type: "direct", QuantoMultiplier: in.lot,
				MarkPrice: mark, IndexPrice: roundTo(in.coin.price, in.priceDP), FundingRate: roundTo(in.funding, 8),
				FundingInterval: int64(in.fundingHours) * 3600, FundingNextApply: next.Unix(), TotalSize: in.oi,
				Volume24hQuote: math.Round(in.volUSD)}
			if in.inverse {
				c.Type, c.QuantoMultiplier = "inverse", 0
			}
			list = append(list, c)
		}
		gt.SetContracts(list)
	}
	v.render = func(o *order) []byte {
		// Gate names an order by (contract, second, size, price) and the
		// exporter counts each name once: keep them distinct.
		size := o.qty
		if sideOf(o.side) {
			size = -size // a sell order: a long was liquidated
		}
		if o.in.used == nil {
			o.in.used = map[gateKey]struct{}{}
		}
		sec := o.at.Unix()
		for {
			k := gateKey{sec: sec, size: size, price: o.price}
			if _, dup := o.in.used[k]; !dup {
				o.in.used[k] = struct{}{}
				break
			}
			size += math.Copysign(1, size)
		}
		for k := range o.in.used {
			if k.sec < sec-60 {
				delete(o.in.used, k)
			}
		}
		o.qty = math.Abs(size)
		return exchangetest.GateLiquidationFrame(exchangetest.GateLiquidation{Contract: o.in.symbol, Size: size, Price: o.price, TimeMs: o.at.UnixMilli()})
	}
	v.ready = func(market string) func(string) bool {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a probe: answers at once
		ok := gt.WaitSubscribed(ctx, market) == nil
		return func(string) bool { return ok }
	}
	v.play = func(_ string, events []exchangetest.Event) []exchangetest.Delivered { return gt.Play(events) }
	v.wait = func(ctx context.Context, _ []*instrument) error {
		return gt.WaitSubscribed(ctx, exchangetest.GateUSDT, exchangetest.GateBTC)
	}
	v.config = func() string {
		return fmt.Sprintf(`
    endpoints:
      rest: %s
      usdt_ws: %s
      btc_ws: %s`, gt.RESTURL(), gt.WSURL(exchangetest.GateUSDT), gt.WSURL(exchangetest.GateBTC))
	}
	v.close = gt.Close
	return v, insts
}

// ---------------------------------------------------------------- dYdX

// dydxCoins are the simulated coins listed on dYdX.
var dydxCoins = map[string]bool{"BTC": true, "ETH": true, "SOL": true, "DOGE": true, "XRP": true, "AVAX": true, "LINK": true, "SUI": true, "WIF": true}

func (s *Sim) dydxVenue(states map[string]*coinState, now time.Time) (*venue, []*instrument) {
	dx := exchangetest.NewDydx()
	dx.SetPlayTimeout(playTimeout)
	s.dydx = dx
	v := &venue{name: Dydx, rng: venueRNG(s.cfg.Seed, Dydx), markets: []string{Dydx}}
	var insts []*instrument
	for _, c := range coins {
		if !dydxCoins[c.coin] {
			continue
		}
		in := &instrument{market: Dydx, symbol: c.coin + "-USD", coin: states[c.coin], quote: "USD", contractType: "PERPETUAL",
			qtyDP: c.qtyDP, share: venueFlow[Dydx], fundingHours: 1, fundingScale: 1.0 / 8} // hourly funding
		in.setup(v, now)
		insts = append(insts, in)
	}
	v.publish = func(now time.Time, insts []*instrument) {
		list := make([]exchangetest.DydxMarket, 0, len(insts))
		for _, in := range insts {
			list = append(list, exchangetest.DydxMarket{Ticker: in.symbol, OraclePrice: in.mark(now), NextFundingRate: roundTo(in.funding, 10),
				OpenInterest: in.oi, Volume24H: math.Round(in.volUSD), Trades24H: int(in.volUSD / 5000)})
		}
		dx.SetMarkets(list)
	}
	v.render = func(o *order) []byte {
		o.route = o.in.symbol
		side := "BUY" // the taker side: a short is bought back
		if sideOf(o.side) {
			side = "SELL"
		}
		return exchangetest.DydxTradesFrame(o.in.symbol, exchangetest.DydxTrade{ID: s.runID + "-" + strconv.FormatUint(o.id, 10),
			Side: side, Size: o.qty, Price: o.price, CreatedAt: o.at, Liquidation: true})
	}
	v.ready = func(string) func(string) bool {
		held := dx.Subscriptions()
		return func(route string) bool { return held[route] > 0 }
	}
	v.play = func(_ string, events []exchangetest.Event) []exchangetest.Delivered { return dx.Play(events) }
	v.wait = func(ctx context.Context, insts []*instrument) error {
		markets := make([]string, len(insts))
		for i, in := range insts {
			markets[i] = in.symbol
		}
		return dx.WaitMarkets(ctx, markets...)
	}
	v.config = func() string {
		return fmt.Sprintf(`
    endpoints:
      rest: %s
      ws: %s`, dx.RESTURL(), dx.WSURL())
	}
	v.close = dx.Close
	return v, insts
}
