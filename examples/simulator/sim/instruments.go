package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// Market names of the two fake Binance futures markets (Instrument.Market).
const (
	USDM  = "usdm"  // USDⓈ-M: linear, quantities in the base asset
	COINM = "coinm" // COIN-M: inverse, quantities in USD contracts
)

// coinSpec describes one underlying of the synthetic market.
type coinSpec struct {
	coin   string
	price  float64 // start price of one coin in USD
	beta   float64 // sensitivity to the market factor
	idio   float64 // idiosyncratic volatility per second
	weight float64 // share of the market-wide liquidation flow
	median float64 // median liquidation size in USD
	oiUSD  float64 // open interest of the USDⓈ-M USDT perpetual at start
	volUSD float64 // 24 h turnover of the USDⓈ-M USDT perpetual
	// funding is the long-run funding rate per interval of the perpetuals;
	// fundingHours is the USDⓈ-M perpetual's funding interval (0 = 8 h).
	funding      float64
	fundingHours int
	prefix       string  // multiplier prefix of the USDⓈ-M symbol ("1000")
	qtyDP        int     // USDⓈ-M quantity precision
	coinm        float64 // COIN-M contract size (0 = no COIN-M perpetual)
}

// coins is the synthetic market: large caps, majors and a few memecoins
// with extreme funding, roughly in the proportions of Binance's
// liquidation flow.
var coins = []coinSpec{
	{coin: "BTC", price: 97000, beta: 1, idio: 0, weight: 24, median: 6000, oiUSD: 9.5e9, volUSD: 1.6e10, funding: 0.0001, qtyDP: 3, coinm: 100},
	{coin: "ETH", price: 3400, beta: 1.2, idio: 8e-5, weight: 17, median: 4000, oiUSD: 6.8e9, volUSD: 1.2e10, funding: 0.0001, qtyDP: 3, coinm: 10},
	{coin: "SOL", price: 210, beta: 1.5, idio: 1.5e-4, weight: 9, median: 2500, oiUSD: 2.9e9, volUSD: 4.5e9, funding: 0.00012, qtyDP: 0, coinm: 10},
	{coin: "XRP", price: 2.3, beta: 1.4, idio: 1.5e-4, weight: 6, median: 2000, oiUSD: 1.4e9, volUSD: 2.8e9, funding: 0.0001, qtyDP: 1, coinm: 10},
	{coin: "DOGE", price: 0.38, beta: 1.7, idio: 2e-4, weight: 5, median: 1500, oiUSD: 1.1e9, volUSD: 2.2e9, funding: 0.00015, qtyDP: 0, coinm: 10},
	{coin: "BNB", price: 650, beta: 0.8, idio: 8e-5, weight: 3, median: 2000, oiUSD: 7e8, volUSD: 6e8, funding: 0.0001, qtyDP: 2, coinm: 10},
	{coin: "ADA", price: 0.95, beta: 1.4, idio: 1.5e-4, weight: 2, median: 1200, oiUSD: 5e8, volUSD: 7e8, funding: 0.0001, qtyDP: 0, coinm: 10},
	{coin: "AVAX", price: 38, beta: 1.5, idio: 1.8e-4, weight: 2, median: 1200, oiUSD: 4e8, volUSD: 5e8, funding: 0.0001, qtyDP: 0},
	{coin: "LINK", price: 22, beta: 1.4, idio: 1.6e-4, weight: 2, median: 1200, oiUSD: 5e8, volUSD: 6e8, funding: 0.0001, qtyDP: 2, coinm: 10},
	{coin: "DOT", price: 7.5, beta: 1.3, idio: 1.5e-4, weight: 1, median: 900, oiUSD: 2.5e8, volUSD: 3e8, funding: 0.0001, qtyDP: 1, coinm: 10},
	{coin: "LTC", price: 105, beta: 1.1, idio: 1.2e-4, weight: 1, median: 1000, oiUSD: 3e8, volUSD: 4e8, funding: 0.0001, qtyDP: 3, coinm: 10},
	{coin: "BCH", price: 470, beta: 1.1, idio: 1.2e-4, weight: 1, median: 1100, oiUSD: 2.5e8, volUSD: 3e8, funding: 0.0001, qtyDP: 3},
	{coin: "TRX", price: 0.25, beta: 0.6, idio: 8e-5, weight: 0.5, median: 800, oiUSD: 2e8, volUSD: 2e8, funding: 0.0001, qtyDP: 0},
	{coin: "TON", price: 5.5, beta: 1.1, idio: 1.5e-4, weight: 0.8, median: 900, oiUSD: 2e8, volUSD: 2.5e8, funding: 0.0001, qtyDP: 1},
	{coin: "SUI", price: 4.2, beta: 1.8, idio: 2.2e-4, weight: 2.5, median: 1500, oiUSD: 9e8, volUSD: 1.3e9, funding: 0.0002, qtyDP: 1},
	{coin: "APT", price: 11, beta: 1.6, idio: 1.8e-4, weight: 0.8, median: 900, oiUSD: 2e8, volUSD: 2.5e8, funding: 0.0001, qtyDP: 1},
	{coin: "ARB", price: 0.8, beta: 1.6, idio: 1.8e-4, weight: 0.8, median: 800, oiUSD: 2e8, volUSD: 2.5e8, funding: 0.0001, qtyDP: 1},
	{coin: "OP", price: 2.0, beta: 1.6, idio: 1.8e-4, weight: 0.7, median: 800, oiUSD: 1.5e8, volUSD: 2e8, funding: 0.0001, qtyDP: 1},
	{coin: "NEAR", price: 5.5, beta: 1.6, idio: 1.8e-4, weight: 0.8, median: 800, oiUSD: 2e8, volUSD: 2.5e8, funding: 0.0001, qtyDP: 0},
	{coin: "FIL", price: 5.2, beta: 1.4, idio: 1.6e-4, weight: 0.5, median: 700, oiUSD: 1.5e8, volUSD: 1.5e8, funding: 0.0001, qtyDP: 1},
	{coin: "ATOM", price: 7, beta: 1.3, idio: 1.5e-4, weight: 0.5, median: 700, oiUSD: 1.5e8, volUSD: 1.5e8, funding: 0.0001, qtyDP: 2},
	{coin: "INJ", price: 24, beta: 1.7, idio: 2e-4, weight: 0.6, median: 800, oiUSD: 1.5e8, volUSD: 2e8, funding: 0.0001, qtyDP: 1},
	{coin: "TIA", price: 6.5, beta: 1.8, idio: 2.2e-4, weight: 0.5, median: 800, oiUSD: 1.2e8, volUSD: 1.5e8, funding: 0.0001, qtyDP: 0},
	{coin: "SEI", price: 0.45, beta: 1.8, idio: 2.2e-4, weight: 0.4, median: 700, oiUSD: 1e8, volUSD: 1.2e8, funding: 0.0001, qtyDP: 0},
	{coin: "FET", price: 1.4, beta: 1.8, idio: 2.2e-4, weight: 0.6, median: 800, oiUSD: 1.5e8, volUSD: 2e8, funding: 0.0001, qtyDP: 0},
	{coin: "ENA", price: 1.1, beta: 1.9, idio: 2.4e-4, weight: 1, median: 900, oiUSD: 3e8, volUSD: 4e8, funding: 0.0003, qtyDP: 0},
	{coin: "WLD", price: 2.4, beta: 1.9, idio: 2.4e-4, weight: 0.7, median: 800, oiUSD: 2e8, volUSD: 3e8, funding: 0.0001, qtyDP: 0},
	{coin: "AAVE", price: 350, beta: 1.4, idio: 1.6e-4, weight: 0.8, median: 1200, oiUSD: 2.5e8, volUSD: 3e8, funding: 0.0001, qtyDP: 1},
	{coin: "UNI", price: 14, beta: 1.4, idio: 1.6e-4, weight: 0.6, median: 900, oiUSD: 2e8, volUSD: 2e8, funding: 0.0001, qtyDP: 0},
	{coin: "ETC", price: 28, beta: 1.2, idio: 1.4e-4, weight: 0.4, median: 700, oiUSD: 1e8, volUSD: 1e8, funding: 0.0001, qtyDP: 2},
	{coin: "ORDI", price: 40, beta: 2, idio: 2.6e-4, weight: 0.6, median: 700, oiUSD: 1.2e8, volUSD: 2e8, funding: 0.0002, fundingHours: 4, qtyDP: 1},
	// Memecoins: quoted per 1000 coins, 4-hourly funding, some far from
	// neutral, which the "extreme funding" panels and alerts look for.
	{coin: "PEPE", price: 2.05e-5, beta: 2.2, idio: 3e-4, weight: 4, median: 1200, oiUSD: 8e8, volUSD: 1.6e9, funding: 0.0004, fundingHours: 4, prefix: "1000", qtyDP: 0},
	{coin: "SHIB", price: 2.4e-5, beta: 1.8, idio: 2.2e-4, weight: 1, median: 800, oiUSD: 2e8, volUSD: 3e8, funding: 0.0001, prefix: "1000", qtyDP: 0},
	{coin: "BONK", price: 3.5e-5, beta: 2.4, idio: 3.2e-4, weight: 1.5, median: 900, oiUSD: 2.5e8, volUSD: 5e8, funding: 0.0015, fundingHours: 4, prefix: "1000", qtyDP: 0},
	{coin: "WIF", price: 2.6, beta: 2.4, idio: 3.2e-4, weight: 2, median: 1000, oiUSD: 4e8, volUSD: 8e8, funding: -0.001, fundingHours: 4, qtyDP: 1},
}

// instrument is one simulated contract and its evolving state.
type instrument struct {
	venue        *venue
	market       string // the fake's market: USDM or COINM (Binance), a Bybit category, an OKX instType, a Gate settle currency, dYdX
	symbol       string
	pair         string // Binance pair, OKX instFamily
	coin         *coinState
	quote        string
	contractType string  // PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER
	inverse      bool    // coin-margined: quantities are contracts of contractSize USD
	mult         float64 // coins per quoted unit (1000 for 1000PEPEUSDT)
	lot          float64 // linear: quoted units per unit of quantity (OKX ctVal, Gate quanto multiplier; 1 elsewhere)
	contractSize float64 // inverse: USD per contract
	qtyDP        int
	priceDP      int
	delivery     time.Time // dated contracts
	share        float64   // share of the coin's liquidation flow (Binance's instruments add up to about 1)
	fundingHours int       // perpetuals: funding interval
	fundingScale float64   // funding per interval relative to an 8 h interval's; 0 = 1

	// State, changed by the market loop only.
	oi      float64 // in units of quantity: linear lots, inverse contracts
	funding float64 // per interval, perpetuals only
	volUSD  float64 // rolling 24 h turnover
	lastTS  int64   // OKX: ms of the last order, kept increasing so that orders stay distinct
	used    map[gateKey]struct{}
}

// gateKey is what Gate's dedupe compares (contract, second, signed size,
// price); the simulator keeps its orders distinct on it.
type gateKey struct {
	sec         int64
	size, price float64
}

// perpetual reports whether the instrument pays funding.
func (in *instrument) perpetual() bool { return in.contractType == "PERPETUAL" }

// mark is the mark price of one quoted unit (1000 PEPE for 1000PEPEUSDT):
// the coin price times the multiplier, with a contango premium on dated
// contracts.
func (in *instrument) mark(now time.Time) float64 {
	p := in.coin.price * in.mult
	if !in.delivery.IsZero() {
		days := in.delivery.Sub(now).Hours() / 24
		p *= 1 + 0.08*max(days, 0)/365
	}
	return roundTo(p, in.priceDP)
}

// notionalUSD is what the project's notional rules make of a fill: linear
// quantity x lot x price (USDⓈ-M filled quantity x average price, OKX sz x
// ctVal x bkPx, Gate size x quanto multiplier x price, Bybit and dYdX size
// x price), inverse contracts x contract size.
func (in *instrument) notionalUSD(qty, price float64) float64 {
	if in.inverse {
		return qty * in.contractSize
	}
	return qty * in.lot * price
}

// quantity is the size of a fill of about usd at price: whole contracts for
// inverse contracts, the contract's quantity precision for linear ones, at
// least one unit.
func (in *instrument) quantity(usd, price float64) float64 {
	if in.inverse {
		return math.Max(1, math.Round(usd/in.contractSize))
	}
	step := math.Pow10(-in.qtyDP)
	return math.Max(step, roundTo(usd/(price*in.lot), in.qtyDP))
}

// oiUSD is the open interest in USD at mark.
func (in *instrument) oiUSD(mark float64) float64 {
	if in.inverse {
		return in.oi * in.contractSize
	}
	return in.oi * in.lot * mark
}

// fundingTimes returns the current funding period's start and the next
// funding time.
func (in *instrument) fundingTimes(now time.Time) (last, next time.Time) {
	step := time.Duration(in.fundingHours) * time.Hour
	last = now.UTC().Truncate(step)
	return last, last.Add(step)
}

// fake renders a Binance instrument as the fake venue serves it.
func (in *instrument) fake(now time.Time) exchangetest.BinanceSymbol {
	mark := in.mark(now)
	index := roundTo(in.coin.price*in.mult, in.priceDP)
	s := exchangetest.BinanceSymbol{
		Symbol: in.symbol, Pair: in.pair, BaseAsset: baseAsset(in), QuoteAsset: in.quote,
		ContractType: in.contractType, Status: "TRADING",
		PricePrecision: in.priceDP, QuantityPrecision: in.qtyDP,
		MarkPrice: mark, IndexPrice: index, LastPrice: mark,
		OpenInterest: in.oi,
	}
	if !in.delivery.IsZero() {
		s.DeliveryDate = in.delivery.UnixMilli()
	}
	switch in.market {
	case USDM:
		s.MarginAsset = in.quote
		s.QuoteVolume = math.Round(in.volUSD)
		s.Volume = roundTo(in.volUSD/mark, in.qtyDP)
	case COINM:
		s.MarginAsset = in.coin.spec.coin
		s.ContractSize = in.contractSize
		s.Volume = math.Round(in.volUSD / in.contractSize)
		s.BaseVolume = roundTo(in.volUSD/mark, 4)
	}
	if in.perpetual() && in.market == USDM {
		// Crowded longs pay funding: the account ratio leans with it.
		s.LongShortAccountRatio = roundTo(min(max(1+in.funding*2000, 0.3), 4), 4)
	}
	if in.perpetual() {
		s.LastFundingRate = roundTo(in.funding, 8)
		step := time.Duration(in.fundingHours) * time.Hour
		s.NextFundingTime = now.UTC().Truncate(step).Add(step).UnixMilli()
		if in.fundingHours != 8 {
			s.FundingIntervalHours = in.fundingHours
		}
	} else {
		s.LastFundingRate = math.NaN() // Binance serves "" for delivery contracts
	}
	return s
}

func baseAsset(in *instrument) string {
	if in.mult == 1000 {
		return "1000" + in.coin.spec.coin
	}
	return in.coin.spec.coin
}

// pricePrecision gives about six significant digits at a price.
func pricePrecision(p float64) int {
	dp := 6 - int(math.Floor(math.Log10(p))) - 1
	return min(max(dp, 1), 8)
}

func roundTo(v float64, dp int) float64 {
	f := math.Pow10(dp)
	return math.Round(v*f) / f
}

// quarterly returns the quarterly delivery after now: the last Friday of
// March, June, September or December at 08:00 UTC; next = the one after.
func quarterly(now time.Time, next bool) time.Time {
	found := false
	for y := now.UTC().Year(); ; y++ {
		for _, mo := range []time.Month{time.March, time.June, time.September, time.December} {
			d := time.Date(y, mo+1, 0, 8, 0, 0, 0, time.UTC)
			for d.Weekday() != time.Friday {
				d = d.AddDate(0, 0, -1)
			}
			if !d.After(now) {
				continue
			}
			if !next || found {
				return d
			}
			found = true
		}
	}
}

// setup completes a new instrument: price precision, funding, and open
// interest and turnover in proportion to its flow share.
func (in *instrument) setup(v *venue, now time.Time) {
	in.venue = v
	if in.mult == 0 {
		in.mult = 1
	}
	if in.lot == 0 {
		in.lot = 1
	}
	in.priceDP = pricePrecision(in.coin.price * in.mult)
	if in.fundingHours == 0 {
		in.fundingHours = 8
	}
	if in.fundingScale == 0 {
		in.fundingScale = 1
	}
	if in.perpetual() {
		in.funding = in.coin.spec.funding * in.fundingScale
	}
	oiUSD := in.coin.spec.oiUSD * in.share / 0.7
	in.volUSD = in.coin.spec.volUSD * in.share / 0.7
	if in.inverse {
		in.oi = math.Round(oiUSD / in.contractSize)
	} else {
		in.oi = roundTo(oiUSD/(in.mark(now)*in.lot), in.qtyDP)
	}
}

// buildInstruments lists Binance's side of the synthetic market: a USDT
// perpetual for every coin, USDC perpetuals and quarterlies for the majors
// on USDⓈ-M, and COIN-M perpetuals and quarterlies.
func buildInstruments(v *venue, states map[string]*coinState, now time.Time) []*instrument {
	q1, q2 := quarterly(now, false), quarterly(now, true)
	var out []*instrument
	add := func(in *instrument) {
		in.setup(v, now)
		out = append(out, in)
	}
	for _, c := range coins {
		st := states[c.coin]
		mult := 1.0
		if c.prefix == "1000" {
			mult = 1000
		}
		base := c.prefix + c.coin
		usdt := 0.7
		if c.coinm == 0 {
			usdt = 0.9
		}
		add(&instrument{market: USDM, symbol: base + "USDT", pair: base + "USDT", coin: st, quote: "USDT",
			contractType: "PERPETUAL", mult: mult, qtyDP: c.qtyDP, share: usdt, fundingHours: c.fundingHours})
		switch c.coin {
		case "BTC", "ETH", "SOL", "DOGE":
			add(&instrument{market: USDM, symbol: base + "USDC", pair: base + "USDC", coin: st, quote: "USDC",
				contractType: "PERPETUAL", mult: mult, qtyDP: c.qtyDP, share: 0.06})
		}
		switch c.coin {
		case "BTC", "ETH":
			add(&instrument{market: USDM, symbol: base + "USDT_" + q1.Format("060102"), pair: base + "USDT", coin: st, quote: "USDT",
				contractType: "CURRENT_QUARTER", mult: mult, qtyDP: c.qtyDP, delivery: q1, share: 0.04})
		}
		if c.coin == "BTC" {
			add(&instrument{market: USDM, symbol: base + "USDT_" + q2.Format("060102"), pair: base + "USDT", coin: st, quote: "USDT",
				contractType: "NEXT_QUARTER", mult: mult, qtyDP: c.qtyDP, delivery: q2, share: 0.02})
		}
		if c.coinm == 0 {
			continue
		}
		pair := c.coin + "USD"
		add(&instrument{market: COINM, symbol: pair + "_PERP", pair: pair, coin: st, quote: "USD", inverse: true,
			contractType: "PERPETUAL", mult: 1, contractSize: c.coinm, share: 0.12})
		switch c.coin {
		case "BTC", "ETH":
			add(&instrument{market: COINM, symbol: pair + "_" + q1.Format("060102"), pair: pair, coin: st, quote: "USD", inverse: true,
				contractType: "CURRENT_QUARTER", mult: 1, contractSize: c.coinm, delivery: q1, share: 0.03})
		}
		if c.coin == "BTC" {
			add(&instrument{market: COINM, symbol: pair + "_" + q2.Format("060102"), pair: pair, coin: st, quote: "USD", inverse: true,
				contractType: "NEXT_QUARTER", mult: 1, contractSize: c.coinm, delivery: q2, share: 0.02})
		}
	}
	return out
}

func (in *instrument) String() string {
	return fmt.Sprintf("%s %s %s", in.venue.name, in.market, in.symbol)
}
