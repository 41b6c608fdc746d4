// Package bitmex collects BitMEX perpetual swaps (typ FFWCSX) and dated
// futures (typ FFCCSX): the public "liquidation" table over WebSocket, and
// one REST poll of GET /api/v1/instrument/active, which carries instrument
// discovery and every market gauge (open interest, funding, mark price,
// 24 h volume) of all instruments in one answer.
//
// Contracts come in three kinds, told apart by isInverse and isQuanto:
//   - inverse (XBTUSD): a contract is worth |multiplier| settlement minor
//     units per USD of price, i.e. |multiplier| / scale USD (1 USD for
//     XBTUSD, multiplier -100000000 in XBt = satoshi);
//   - linear (XBTUSDT): leavesQty / underlyingToPositionMultiplier coins,
//     worth that many coins x price USD (USDT at par);
//   - quanto (ETHUSD): a contract is worth multiplier settlement minor
//     units per USD of price: qty x multiplier x price / scale settlement
//     coins, converted to USD with the mark price of the venue's BTC/USD
//     perpetual for XBt-settled contracts (USDt counts at par).
//
// The market label follows the margin: XBt-settled contracts (inverse and
// quanto) are "inverse" (coin-margined), USDt/USDC-settled ones "linear".
// Instruments whose quote is not USD, USDT or USDC (e.g. XBTEUR) or whose
// settlement currency is unknown cannot be valued in USD and are not
// collected.
//
// Counting rules: every "insert" of the liquidation table is one
// liquidation of leavesQty contracts at price; "partial" (the orders
// resting when the subscription starts) is history and never counts, and
// "update"/"delete" are the fill progress of orders already counted. The
// venue keeps the orderIDs of the resting orders (reset by every partial,
// grown by inserts, shrunk by deletes) so that an insert of an order it
// already holds is not counted twice. Side: the side of the engine's
// order, Sell = a long was liquidated, Buy = a short.
//
// Feed completeness: the liquidation table shows every liquidation order
// that enters the book, so the venue reports
// crypto_exporter_liquidation_feed_complete 1 for both markets. An order
// filled in full before it rests may never appear in the table; the
// reference does not say, so this is UNVERIFIED. A gap while disconnected
// cannot be backfilled (GET /api/v1/liquidation serves active orders only).
//
// What rests on documentation only (the project's reference, section 4):
// the subscribe request and its URL, the table actions, the field names of
// Liquidation and Instrument, and the text ping/pong heartbeat. INFERRED:
// Sell = long liquidated. UNVERIFIED: counting each insert once with its
// leavesQty (community practice, not documented), the linear and quanto
// notional formulas above, the shape of the subscribe acknowledgement
// ({"success":true,"subscribe":"liquidation"}) and of errors
// ({"status":400,"error":"..."}), fundingInterval served as an offset from
// 2000-01-01T00:00:00Z (e.g. "2000-01-01T08:00:00.000Z" = 8 h), settlement
// minor units (XBt = 1e-8 XBT, USDt = 1e-6 USDT), and the unauthenticated
// REST limit of 30 requests per minute.
package bitmex

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "bitmex"

// Label values of crypto_exporter_stream_* and crypto_exporter_poll_*.
const (
	StreamLiquidation        = "liquidation"
	EndpointInstrumentActive = "instrument_active"
)

// Documented and chosen limits.
const (
	// PingInterval is how often the exporter sends the text "ping" (the
	// official node connector pings every 30 s; BitMEX answers "pong").
	PingInterval = 20 * time.Second
	// RequestsPerMinute is the unauthenticated REST limit (UNVERIFIED,
	// from ccxt's comments); one poll every 30 s spends 2 of them.
	RequestsPerMinute = 30
	// maxActive bounds the set of resting orderIDs; a set that would
	// grow past it is cleared (a later duplicate insert would then count).
	maxActive = 10_000
	// staleAfter is how many poll periods a value survives without a refresh.
	staleAfter = 3
)

// Config configures the BitMEX venue.
type Config struct {
	REST  string   // base URL, e.g. https://www.bitmex.com (the venue appends /api/v1/...)
	WS    string   // full URL, e.g. wss://ws.bitmex.com/realtime
	Coins []string // allowlist (XBT counts as BTC); empty = all

	// PollInterval is the period of GET /api/v1/instrument/active, which
	// serves the instrument list together with the market data, so there is
	// no separate instrument refresh interval.
	PollInterval time.Duration
	Client       *exchanges.Client
	Logger       *slog.Logger
	// RefreshSpacing is the minimum time between an early poll (asked for
	// by a liquidation of an unlisted symbol) and the previous poll;
	// default 1 minute.
	RefreshSpacing time.Duration
	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the BitMEX collector.
type Venue struct {
	cfg   Config
	coins exchanges.CoinFilter
	log   *slog.Logger

	sink exchanges.Sink
	obs  exchanges.StreamObserver
	poll exchanges.PollObserver

	// instruments maps symbol -> instrument of every listed contract (inst
	// nil for those not collected); replaced whole on every poll.
	instruments atomic.Pointer[map[string]*instrument]
	btcUSD      atomic.Uint64 // math.Float64bits of the BTC/USD mark; 0 = unknown
	known       [2][]*exchanges.Instrument
	declared    bool

	refresh chan struct{}
	ready   *exchanges.Latch // open after the first successful poll

	// active holds the orderIDs of resting liquidation orders as 64-bit
	// hashes (orderKey), so that recording one allocates nothing; only the
	// stream's reader touches it.
	active map[uint64]struct{}
	seed   maphash.Seed // of orderKey

	counted  atomic.Int64 // liquidations handed to the sink
	throttle exchanges.LogThrottle
}

// New returns a BitMEX venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	v := &Venue{
		cfg: cfg, coins: exchanges.NewCoinFilter(cfg.Coins), log: cfg.Logger,
		refresh: make(chan struct{}, 1), ready: exchanges.NewLatch(),
		active: map[uint64]struct{}{}, seed: maphash.MakeSeed(),
	}
	empty := map[string]*instrument{}
	v.instruments.Store(&empty)
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Run implements exchanges.Venue. It declares the stream and the poll, polls
// instrument/active at once and every PollInterval, and opens the
// liquidation stream after the first successful poll.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	v.obs = sink.Stream(Name, StreamLiquidation)
	v.obs.SetUp(false)
	v.poll = sink.Poll(Name, EndpointInstrumentActive)
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		sink.SetFeedComplete(Name, mk, true)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		exchanges.Poller{
			Interval:      v.cfg.PollInterval,
			RetryInterval: min(v.cfg.PollInterval, 5*time.Second),
			Observer:      v.poll,
			Logger:        v.log.With("endpoint", EndpointInstrumentActive),
			Poll:          v.ready.OnSuccess(v.pollOnce),
			Trigger:       v.refresh,
			MinSpacing:    v.cfg.RefreshSpacing,
		}.Run(ctx)
	})
	if v.ready.Wait(ctx) {
		wg.Go(func() { wsconn.Run(ctx, v.streamConfig()) })
	}
	wg.Wait()
	return nil
}

// requestRefresh asks for an early poll (spaced by the poller).
func (v *Venue) requestRefresh() {
	select {
	case v.refresh <- struct{}{}:
	default:
	}
}

func (v *Venue) btcPrice() float64 { return math.Float64frombits(v.btcUSD.Load()) }

func (v *Venue) ttl() time.Duration { return staleAfter * v.cfg.PollInterval }
