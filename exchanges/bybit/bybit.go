// Package bybit collects Bybit v5 linear (USDT and USDC contracts) and
// inverse (coin-margined) futures: the allLiquidation.{symbol} stream of
// every listed symbol, and REST polls of instruments and tickers (mark
// price, funding, open interest, 24 h turnover; all symbols in one call).
//
// Bybit documents allLiquidation as "push all liquidations that occur on
// Bybit", so the venue reports crypto_exporter_liquidation_feed_complete 1
// for both markets.
//
// What rests on Bybit's documentation only (bybit-exchange/docs, see the
// project's reference, section 2) and has not been checked against live
// traffic by this package: the position-side meaning of S ("Buy" = a long
// was liquidated), the units of v (linear: base coin; inverse: USD
// contracts of 1 USD, INFERRED), the shape of subscription acks, pongs and
// error acks, the ticker units of openInterest/openInterestValue per
// category, and the absence of a maximum connection lifetime on public
// streams (UNVERIFIED).
package bybit

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "bybit"

// Market names, as used in Config.Markets and in the stream and endpoint
// label values.
const (
	MarketLinear  = "linear"
	MarketInverse = "inverse"
)

// Documented WebSocket limits and the exporter's conservative choices.
const (
	// PingInterval is how often the exporter sends {"op":"ping"}; Bybit
	// recommends every 20 seconds (documented).
	PingInterval = 20 * time.Second
	// ArgsPerSubscribe is the number of topics per subscribe or unsubscribe
	// message. Bybit documents no per-request limit for futures (10 for
	// spot); the exporter stays at the spot limit.
	ArgsPerSubscribe = 10
	// DefaultTopicsPerConnection is how many allLiquidation topics one
	// connection carries by default; more symbols are spread over further
	// connections.
	DefaultTopicsPerConnection = 200
	// MaxArgsChars is Bybit's documented limit on the total length of the
	// "args" of one public connection (21,000 characters); a connection
	// never gets topics beyond it whatever TopicsPerConnection says.
	MaxArgsChars = 21000
)

// BanWait is how long the venue stops all REST requests after an HTTP 403
// without Retry-After: Bybit documents 403 as an IP ban of at least 10
// minutes (usually 30).
var BanWait = 10 * time.Minute

// Config configures the Bybit venue.
type Config struct {
	REST      string // base URL, e.g. https://api.bybit.com (the venue appends /v5/market/...)
	LinearWS  string // full URL, e.g. wss://stream.bybit.com/v5/public/linear
	InverseWS string // full URL, e.g. wss://stream.bybit.com/v5/public/inverse
	// Markets limits the markets to run ("linear", "inverse"); empty = both.
	Markets []string
	Coins   []string // allowlist; empty = all

	PollInterval        time.Duration // tickers
	InstrumentsInterval time.Duration // instruments-info refresh
	Client              *exchanges.Client
	Logger              *slog.Logger

	// RefreshSpacing is the minimum time between an early instrument
	// refresh (asked for by a liquidation of an unlisted symbol or a
	// rejected subscription) and the previous discovery; default 1 minute.
	RefreshSpacing time.Duration

	// TopicsPerConnection caps the allLiquidation topics of one
	// connection; default DefaultTopicsPerConnection.
	TopicsPerConnection int

	// LongShortCoins lists the coins whose linear <COIN>USDT perpetual's
	// long/short account ratio is polled (see longshort.go); nil =
	// DefaultLongShortCoins, empty = none.
	LongShortCoins []string

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the Bybit collector.
type Venue struct {
	cfg     Config
	markets []*market

	bannedUntil atomic.Int64 // unix nanoseconds; Bybit's IP limits apply to every category

	lsEvery time.Duration // long/short round interval override (tests); 0 = longShortEvery's default
}

// New returns a Bybit venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.InstrumentsInterval = exchanges.Positive(cfg.InstrumentsInterval, exchanges.DefaultInstrumentsInterval)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	cfg.TopicsPerConnection = exchanges.Positive(cfg.TopicsPerConnection, DefaultTopicsPerConnection)
	v := &Venue{cfg: cfg}
	want := func(kind string) bool {
		return len(cfg.Markets) == 0 || slices.Contains(cfg.Markets, kind)
	}
	if want(MarketLinear) {
		v.markets = append(v.markets, newMarket(v, MarketLinear, exchanges.Linear, cfg.LinearWS))
	}
	if want(MarketInverse) {
		v.markets = append(v.markets, newMarket(v, MarketInverse, exchanges.Inverse, cfg.InverseWS))
	}
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Run implements exchanges.Venue.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	var wg sync.WaitGroup
	for _, m := range v.markets {
		m.declare(sink)
		wg.Go(func() { m.run(ctx) })
	}
	wg.Wait()
	return nil
}

// market is one of Bybit's two futures categories.
type market struct {
	v      *Venue
	kind   string // linear or inverse, also the REST category
	market exchanges.Market
	ws     string
	log    *slog.Logger
	coins  exchanges.CoinFilter

	sink  exchanges.Sink
	polls map[string]exchanges.PollObserver

	// instruments maps symbol -> instrument (nil for symbols excluded by the
	// coin allowlist); replaced whole on every discovery.
	instruments atomic.Pointer[map[string]*exchanges.Instrument]
	// fundingMinutes is instruments-info's fundingInterval per symbol, the
	// fallback when a ticker carries no fundingIntervalHour.
	fundingMinutes atomic.Pointer[map[string]float64]
	refresh        chan struct{} // asks discovery to run early
	logThrottle    exchanges.LogThrottle

	shards shardSet
}

func newMarket(v *Venue, kind string, mk exchanges.Market, ws string) *market {
	m := &market{
		v: v, kind: kind, market: mk, ws: ws,
		log:     v.cfg.Logger.With("market", kind),
		coins:   exchanges.NewCoinFilter(v.cfg.Coins),
		refresh: make(chan struct{}, 1),
	}
	m.shards.m = m
	empty := map[string]*exchanges.Instrument{}
	m.instruments.Store(&empty)
	noFunding := map[string]float64{}
	m.fundingMinutes.Store(&noFunding)
	return m
}

// Endpoint label values of crypto_exporter_poll_*: linear_instruments,
// linear_tickers, inverse_instruments, inverse_tickers.
func (m *market) endpoint(name string) string { return m.kind + "_" + name }

const (
	epInstruments = "instruments"
	epTickers     = "tickers"
)

// declare makes every series of this market exist from start-up: the feed
// flag, both polls and the first liquidation stream (further streams are
// declared as soon as discovery shows they are needed).
func (m *market) declare(sink exchanges.Sink) {
	m.sink = sink
	sink.SetFeedComplete(Name, m.market, true)
	m.polls = map[string]exchanges.PollObserver{}
	for _, ep := range []string{epInstruments, epTickers} {
		m.polls[ep] = sink.Poll(Name, m.endpoint(ep))
	}
	m.declareLongShort(sink)
	m.shards.declareFirst()
}

func (m *market) run(ctx context.Context) {
	var wg sync.WaitGroup
	m.shards.set.Start = func(sh *shard) {
		wg.Go(func() { wsconn.Run(ctx, sh.streamConfig()) })
	}
	discovered := exchanges.NewLatch()
	wg.Go(func() {
		m.poller(epInstruments, m.v.cfg.InstrumentsInterval, discovered.OnSuccess(m.discover), m.refresh).Run(ctx)
	})
	if !discovered.Wait(ctx) {
		wg.Wait()
		return
	}
	wg.Go(func() { m.poller(epTickers, m.v.cfg.PollInterval, m.pollTickers, nil).Run(ctx) })
	m.startLongShort(ctx, wg.Go)
	wg.Wait()
}

func (m *market) poller(ep string, interval time.Duration, poll func(context.Context) error, trigger <-chan struct{}) exchanges.Poller {
	return exchanges.Poller{
		Interval:      interval,
		RetryInterval: exchanges.RetryInterval(interval, m.v.cfg.PollInterval),
		Observer:      m.polls[ep],
		Logger:        m.log.With("endpoint", m.endpoint(ep)),
		Poll:          poll,
		Trigger:       trigger,
		MinSpacing:    m.v.cfg.RefreshSpacing,
	}
}

// lookup returns the instrument of a symbol given as bytes, without
// allocating; known is true for symbols the coin allowlist excludes too
// (their instrument is nil).
func (m *market) lookup(sym []byte) (inst *exchanges.Instrument, known bool) {
	inst, known = (*m.instruments.Load())[string(sym)]
	return inst, known
}

// requestRefresh asks discovery to run early (rate limited by the poller).
func (m *market) requestRefresh() {
	select {
	case m.refresh <- struct{}{}:
	default:
	}
}

// errBanned is the body of the synthetic answer while a ban is in force.
var errBanned = errors.New("skipped: Bybit asked to back off (HTTP 403/429, Retry-After, or retCode 10006/10009/10018)")
