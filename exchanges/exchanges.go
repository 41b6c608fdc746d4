// Package exchanges holds the venue side of the exporter: the normalised
// types every venue produces and the interfaces through which they hand them
// to the collector. Nothing under exchanges/ depends on Prometheus or the
// collector except the test support that runs venues against a collector
// (venuetest, exchangetest/faultsuite); the collector never knows about a
// venue's wire format (TestVenueSideDoesNotImportPrometheus).
package exchanges

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Market is the margin style of an instrument.
type Market string

// Markets.
const (
	Linear  Market = "linear"  // USD or stablecoin margined
	Inverse Market = "inverse" // coin margined
)

// Side is the side of the position that was liquidated.
type Side uint8

// Sides.
const (
	Long Side = iota
	Short
)

// Sides lists both sides, for pre-initialising series.
var Sides = [...]Side{Long, Short}

func (s Side) String() string {
	if s == Long {
		return "long"
	}
	return "short"
}

// Contract types used in crypto_market_info.
const (
	Perpetual = "perpetual"
	Future    = "future"
)

// Instrument is one tradable contract as discovered from a venue.
type Instrument struct {
	Exchange     string
	Market       Market
	Symbol       string // the venue's own name, e.g. BTCUSDT, BTCUSD_PERP
	Coin         string // normalised underlying, e.g. PEPE for 1000PEPEUSDT
	Quote        string // quote asset, e.g. USDT, USD
	ContractType string // Perpetual or Future
	// ContractSize is the value of one contract: in USD for inverse
	// instruments, in venue base units for linear ones (1 when quantities
	// are already in base units).
	ContractSize float64
	// Multiplier is how many coins one venue base unit holds (1000 for
	// 1000PEPEUSDT, 1 otherwise).
	Multiplier float64
	// NoLiquidationFeed marks instruments of venues that publish no
	// liquidations (Hyperliquid): they get no liquidation series at all,
	// rather than counters that would read as "no liquidations happened".
	NoLiquidationFeed bool
}

// Key identifies an instrument within the exporter.
type Key struct {
	Exchange string
	Market   Market
	Symbol   string
}

// Key returns the instrument's identity.
func (i *Instrument) Key() Key { return Key{i.Exchange, i.Market, i.Symbol} }

// Liquidation is one liquidation event, normalised.
type Liquidation struct {
	Instrument  *Instrument
	Side        Side
	NotionalUSD float64
}

// Field names a market gauge that pollers fill.
type Field uint8

// Market gauge fields.
const (
	OpenInterestUSD Field = iota
	OpenInterestCoins
	FundingRate
	FundingIntervalSeconds
	FundingNextTimestamp
	MarkPrice
	Volume24hUSD
	LongShortAccountRatio
	NumFields
)

// MarketValue is one polled gauge value for one instrument. TTL says how long
// the value stays exported without a newer poll refreshing it.
type MarketValue struct {
	Instrument *Instrument
	Field      Field
	Value      float64
	TTL        time.Duration
}

// StreamObserver receives the health of one WebSocket stream.
type StreamObserver interface {
	SetUp(up bool) // connected and subscribed
	Connected()    // a connection was established
	Message()      // a frame arrived (also records its time)
	DecodeError()  // a frame or event was dropped as malformed or unusable
}

// PollObserver receives the outcome of each poll of one REST endpoint.
type PollObserver interface {
	Observe(d time.Duration, err error)
}

// Sink is where venues deliver what they observe. The collector implements it.
// Every method is safe for concurrent use.
type Sink interface {
	// SetInstruments declares the full current instrument list of one
	// (exchange, market). Series for new instruments start at 0; series of
	// instruments no longer listed are removed.
	SetInstruments(exchange string, market Market, instruments []*Instrument)
	// Liquidation records one liquidation. Its Instrument must have been
	// declared with SetInstruments and its notional must be a positive,
	// finite, plausible number; otherwise it is not counted and false is
	// returned so the venue can count and log the drop.
	Liquidation(l Liquidation) bool
	// SetMarketValues stores polled gauge values.
	SetMarketValues(values []MarketValue)
	// SetFeedComplete says whether the venue publishes every liquidation of
	// a market (true) or a throttled sample (false).
	SetFeedComplete(exchange string, market Market, complete bool)
	// Stream returns the health observer of one stream; calling it declares the stream.
	Stream(exchange, stream string) StreamObserver
	// Poll returns the observer of one polled endpoint; calling it declares the endpoint.
	Poll(exchange, endpoint string) PollObserver
	// SetFearGreed stores the latest good reading of a sentiment index.
	SetFearGreed(source string, value float64, classification string, updated time.Time)
}

// Venue is one exchange's collector: it runs until ctx is cancelled.
type Venue interface {
	Name() string
	Run(ctx context.Context, sink Sink) error
}

// Markets are the markets in the order venues declare them.
var Markets = [2]Market{Linear, Inverse}

// ByMarket splits instruments by market, in the order of Markets, each
// list sorted by symbol; nil instruments (excluded by a coin allowlist)
// are left out.
func ByMarket(insts []*Instrument) [2][]*Instrument {
	var lists [2][]*Instrument
	for _, in := range insts {
		if in == nil {
			continue
		}
		i := 0
		if in.Market == Inverse {
			i = 1
		}
		lists[i] = append(lists[i], in)
	}
	for i := range lists {
		slices.SortFunc(lists[i], func(a, b *Instrument) int { return strings.Compare(a.Symbol, b.Symbol) })
	}
	return lists
}

// SameInstruments reports whether two instrument lists hold equal
// instruments in the same order (a venue declares a list again only when
// it changed).
func SameInstruments(a, b []*Instrument) bool {
	return slices.EqualFunc(a, b, func(x, y *Instrument) bool { return *x == *y })
}
