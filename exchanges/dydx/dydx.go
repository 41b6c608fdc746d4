// Package dydx collects dYdX v4 perpetuals through the public Indexer: the
// v4_trades WebSocket channel of every active market (liquidation trades
// are counted) and one REST call, GET {REST}/v4/perpetualMarkets, that
// lists every market with its oracle price, next funding rate, open
// interest and 24 h volume. The same call is the instrument discovery, so
// listing changes are followed at every poll: new markets are subscribed and
// removed ones unsubscribed on the live connections.
//
// v4_trades is the trade feed itself, so every liquidation trade is
// published and the venue reports crypto_exporter_liquidation_feed_complete
// 1 for its one (linear, USD-settled) market.
//
// Sources and what they settle (the project's reference, section 9):
//   - Documented (dydxprotocol/v4-chain websocket-documentation.md): the
//     subscribe and unsubscribe messages, the "connected" greeting, the
//     channel_data envelope and the trade fields (id, size, price, side,
//     createdAt, liquidation), size in base asset.
//   - INFERRED from the same documentation: the liquidated account is the
//     taker, so side SELL with liquidation true is a long liquidated.
//   - Read in the Indexer's source (socks service config defaults, not in
//     the documentation; deployments may differ): at most 32 v4_trades
//     subscriptions per connection, 2 subscribe messages per second per
//     connection, server protocol pings every 30 s answered within 10 s.
//   - UNVERIFIED: the trade "type" field on the WebSocket (LIQUIDATED is
//     accepted as well as liquidation true), the channel_batch_data shape of
//     batched subscriptions, the shape of "error" messages, hourly funding
//     settled at the top of each hour, REST rate limits.
package dydx

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "dydx"

// Endpoint is the endpoint label value of crypto_exporter_poll_* for the
// perpetualMarkets poll.
const Endpoint = "perpetual_markets"

// Limits read in the Indexer's source (socks service config defaults) and
// the exporter's conservative choices.
const (
	// DefaultMarketsPerConnection is the Indexer's per-connection limit of
	// v4_trades subscriptions (V4_TRADES_CHANNEL_LIMIT, 32); more markets
	// are spread over further connections.
	DefaultMarketsPerConnection = 32
	// DefaultSubscribeInterval spaces the subscribe and unsubscribe
	// messages of one connection; the Indexer allows 2 per second per
	// connection (RATE_LIMIT_SUBSCRIBE_POINTS / _DURATION_MS).
	DefaultSubscribeInterval = 600 * time.Millisecond
	// FundingInterval: dYdX v4 funding is hourly (UNVERIFIED here; the
	// project's contract reads it so).
	FundingInterval = time.Hour
	// staleAfter is how many poll periods a gauge survives without refresh.
	staleAfter = 3
)

// Config configures the dYdX venue.
type Config struct {
	REST  string   // base URL, e.g. https://indexer.dydx.trade (the venue appends /v4/perpetualMarkets)
	WS    string   // full URL, e.g. wss://indexer.dydx.trade/v4/ws
	Coins []string // allowlist; empty = all

	// PollInterval is the period of the perpetualMarkets poll (gauges and
	// discovery); default 30 s.
	PollInterval time.Duration
	// InstrumentsInterval bounds the discovery period: the poll runs every
	// min(PollInterval, InstrumentsInterval), since discovery and gauges
	// come from the same call. Default 15 minutes.
	InstrumentsInterval time.Duration
	Client              *exchanges.Client
	Logger              *slog.Logger

	// RefreshSpacing is the minimum time between an early poll (asked for
	// by a trade of an unknown market or a subscription error) and the
	// previous one; default 1 minute.
	RefreshSpacing time.Duration

	// MarketsPerConnection caps the v4_trades subscriptions of one
	// connection; default DefaultMarketsPerConnection.
	MarketsPerConnection int
	// SubscribeInterval spaces the subscription messages of one
	// connection; default DefaultSubscribeInterval.
	SubscribeInterval time.Duration
	// Batched asks for batched trade messages ("batched": true).
	Batched bool

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the dYdX collector.
type Venue struct {
	cfg      Config
	interval time.Duration // effective poll period
	log      *slog.Logger
	coins    exchanges.CoinFilter
	now      func() time.Time

	sink exchanges.Sink
	poll exchanges.PollObserver

	// instruments maps ticker -> instrument (nil for tickers excluded by
	// the coin allowlist); replaced whole on every discovery.
	instruments atomic.Pointer[map[string]*exchanges.Instrument]
	known       []*exchanges.Instrument // last declared list (poll goroutine only)
	declared    bool
	refresh     chan struct{}
	logThrottle exchanges.LogThrottle

	shards shardSet
}

// New returns a dYdX venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.InstrumentsInterval = exchanges.Positive(cfg.InstrumentsInterval, exchanges.DefaultInstrumentsInterval)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	cfg.MarketsPerConnection = exchanges.Positive(cfg.MarketsPerConnection, DefaultMarketsPerConnection)
	cfg.SubscribeInterval = exchanges.Positive(cfg.SubscribeInterval, DefaultSubscribeInterval)
	v := &Venue{
		cfg:      cfg,
		interval: min(cfg.PollInterval, cfg.InstrumentsInterval),
		log:      cfg.Logger,
		coins:    exchanges.NewCoinFilter(cfg.Coins),
		now:      time.Now,
		refresh:  make(chan struct{}, 1),
	}
	v.shards.v = v
	empty := map[string]*exchanges.Instrument{}
	v.instruments.Store(&empty)
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Run implements exchanges.Venue. It declares the feed flag, the poll and
// the first stream at once, then polls perpetualMarkets; the trade
// connections start with the first successful discovery.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	sink.SetFeedComplete(Name, exchanges.Linear, true)
	v.poll = sink.Poll(Name, Endpoint)
	v.shards.declareFirst()

	var wg sync.WaitGroup
	v.shards.set.Start = func(sh *shard) {
		wg.Go(func() { sh.writer(ctx) })
		wg.Go(func() { wsconn.Run(ctx, sh.streamConfig()) })
	}
	exchanges.Poller{
		Interval:   v.interval,
		Observer:   v.poll,
		Logger:     v.log.With("endpoint", Endpoint),
		Poll:       v.pollOnce,
		Trigger:    v.refresh,
		MinSpacing: v.cfg.RefreshSpacing,
	}.Run(ctx)
	wg.Wait()
	return nil
}

// lookup returns the instrument of a ticker given as bytes, without
// allocating; known is true for tickers the coin allowlist excludes too
// (their instrument is nil).
func (v *Venue) lookup(ticker []byte) (inst *exchanges.Instrument, known bool) {
	inst, known = (*v.instruments.Load())[string(ticker)]
	return inst, known
}

// requestRefresh asks for an early poll (spaced by the poller).
func (v *Venue) requestRefresh() {
	select {
	case v.refresh <- struct{}{}:
	default:
	}
}
