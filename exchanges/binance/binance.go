// Package binance collects Binance USDⓈ-M (linear) and COIN-M (inverse)
// futures: the !forceOrder@arr liquidation stream of both markets, and REST
// polls of instruments, mark price and funding, 24 h volume and open
// interest within a request-weight budget.
//
// Binance pushes at most one liquidation per symbol per second on its public
// stream, so the liquidation totals are lower bounds; the venue reports
// crypto_exporter_liquidation_feed_complete 0 for both markets.
package binance

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
const Name = "binance"

// Weights of the REST requests, from Binance's documentation.
const (
	weightExchangeInfo    = 1
	weightPremiumIndexAll = 10
	weightTicker24hAll    = 40
	weightOpenInterest    = 1
	// WeightLimitPerMinute is Binance's documented IP limit per market.
	WeightLimitPerMinute = 2400
	// weightHighWater: above this used weight (from X-MBX-USED-WEIGHT-1M)
	// the open interest poller skips its round to leave room for others.
	weightHighWater = WeightLimitPerMinute * 3 / 4
)

// DefaultLongShortCoins are the coins whose long/short account ratio is
// polled by default.
var DefaultLongShortCoins = []string{"BTC", "ETH", "SOL", "XRP", "DOGE", "BNB"}

// MaxConnectionLifetime is when the exporter replaces a stream connection
// proactively; Binance closes every connection at 24 h.
const MaxConnectionLifetime = 23 * time.Hour

// Config configures the Binance venue.
type Config struct {
	USDMREST, USDMWS   string // base URLs, e.g. https://fapi.binance.com, wss://fstream.binance.com/market
	CoinMREST, CoinMWS string // e.g. https://dapi.binance.com, wss://dstream.binance.com
	// Markets limits the markets to run ("usdm", "coinm"); empty = both.
	Markets []string
	Coins   []string // allowlist; empty = all

	PollInterval                time.Duration // premium index, ticker, open interest rounds
	InstrumentsInterval         time.Duration // exchangeInfo and fundingInfo refresh
	OpenInterestWeightPerMinute int           // per market
	Client                      *exchanges.Client
	Logger                      *slog.Logger

	// LongShortCoins lists the coins whose USDⓈ-M <COIN>USDT perpetual's
	// global long/short account ratio is polled; nil = DefaultLongShortCoins,
	// empty = none.
	LongShortCoins []string

	// RefreshSpacing is the minimum time between an early instrument
	// refresh (asked for by a liquidation of an unlisted symbol) and the
	// previous discovery; default 1 minute.
	RefreshSpacing time.Duration

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the Binance collector.
type Venue struct {
	cfg     Config
	markets []*market
}

// New returns a Binance venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.InstrumentsInterval = exchanges.Positive(cfg.InstrumentsInterval, exchanges.DefaultInstrumentsInterval)
	cfg.OpenInterestWeightPerMinute = exchanges.Positive(cfg.OpenInterestWeightPerMinute, 500)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	if cfg.LongShortCoins == nil {
		cfg.LongShortCoins = DefaultLongShortCoins
	}
	v := &Venue{cfg: cfg}
	want := func(kind string) bool {
		if len(cfg.Markets) == 0 {
			return true
		}
		for _, m := range cfg.Markets {
			if m == kind {
				return true
			}
		}
		return false
	}
	if want(usdm) {
		v.markets = append(v.markets, newMarket(v, usdm, exchanges.Linear, cfg.USDMREST, cfg.USDMWS, "/fapi/v1"))
	}
	if want(coinm) {
		v.markets = append(v.markets, newMarket(v, coinm, exchanges.Inverse, cfg.CoinMREST, cfg.CoinMWS, "/dapi/v1"))
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

const (
	usdm  = "usdm"
	coinm = "coinm"
)

// market is one of Binance's two futures markets.
type market struct {
	v         *Venue
	kind      string // usdm or coinm
	market    exchanges.Market
	rest, ws  string
	apiPrefix string
	log       *slog.Logger
	coins     exchanges.CoinFilter

	sink   exchanges.Sink
	stream exchanges.StreamObserver
	polls  map[string]exchanges.PollObserver

	// instruments maps symbol -> instrument (nil for symbols excluded by the
	// coin allowlist); replaced whole on every discovery.
	instruments atomic.Pointer[map[string]*exchanges.Instrument]
	refresh     chan struct{} // asks discovery to run early
	logThrottle exchanges.LogThrottle

	mu           sync.Mutex
	marks        map[string]float64 // latest mark price per symbol
	fundingHours map[string]int     // symbols with a non-default funding interval
	oiCursor     int

	bannedUntil atomic.Int64 // unix nanoseconds; set by 418/429 answers
	usedWeight  atomic.Int64 // last X-MBX-USED-WEIGHT-1M seen

	emit func(forceOrder) // bound once to avoid a closure per frame
}

func newMarket(v *Venue, kind string, mk exchanges.Market, rest, ws, prefix string) *market {
	m := &market{
		v: v, kind: kind, market: mk, rest: rest, ws: ws, apiPrefix: prefix,
		log:          v.cfg.Logger.With("market", kind),
		coins:        exchanges.NewCoinFilter(v.cfg.Coins),
		refresh:      make(chan struct{}, 1),
		marks:        map[string]float64{},
		fundingHours: map[string]int{},
	}
	m.emit = m.handleForceOrder
	empty := map[string]*exchanges.Instrument{}
	m.instruments.Store(&empty)
	return m
}

// Endpoint label values of crypto_exporter_poll_*.
func (m *market) endpoint(name string) string { return m.kind + "_" + name }

const (
	epExchangeInfo = "exchange_info"
	epFundingInfo  = "funding_info"
	epPremiumIndex = "premium_index"
	epTicker24h    = "ticker_24hr"
	epOpenInterest = "open_interest"
	epLongShort    = "long_short_ratio"
	streamSuffix   = "_force_order"
)

// declare makes every series of this market exist from start-up.
func (m *market) declare(sink exchanges.Sink) {
	m.sink = sink
	sink.SetFeedComplete(Name, m.market, false)
	m.stream = sink.Stream(Name, m.kind+streamSuffix)
	m.stream.SetUp(false)
	m.polls = map[string]exchanges.PollObserver{}
	for _, ep := range []string{epExchangeInfo, epFundingInfo, epPremiumIndex, epTicker24h, epOpenInterest} {
		m.polls[ep] = sink.Poll(Name, m.endpoint(ep))
	}
	if m.longShort() {
		m.polls[epLongShort] = sink.Poll(Name, m.endpoint(epLongShort))
	}
}

func (m *market) run(ctx context.Context) {
	interval := m.v.cfg.PollInterval
	var wg sync.WaitGroup
	discovered := exchanges.NewLatch()
	wg.Go(func() {
		m.poller(epExchangeInfo, m.v.cfg.InstrumentsInterval, discovered.OnSuccess(m.discover), m.refresh).Run(ctx)
	})
	// Funding intervals come from fundingInfo; premiumIndex waits for its
	// first answer so that no poll exports the default interval by mistake.
	fundingTried := exchanges.NewLatch()
	wg.Go(func() {
		m.poller(epFundingInfo, m.v.cfg.InstrumentsInterval, fundingTried.AfterTry(m.pollFundingInfo), nil).Run(ctx)
	})

	if !discovered.Wait(ctx) {
		wg.Wait()
		return
	}
	wg.Go(func() { wsconn.Run(ctx, m.streamConfig()) })
	if !fundingTried.Wait(ctx) {
		wg.Wait()
		return
	}
	// Open interest in USD (USDⓈ-M) and in coins (COIN-M) needs the mark
	// price, so the first open interest round waits for the first
	// premiumIndex poll, successful or not.
	marksTried := exchanges.NewLatch()
	wg.Go(func() { m.poller(epPremiumIndex, interval, marksTried.AfterTry(m.pollPremiumIndex), nil).Run(ctx) })
	wg.Go(func() { m.poller(epTicker24h, interval, m.pollTicker24h, nil).Run(ctx) })
	if m.longShort() {
		wg.Go(func() { m.poller(epLongShort, max(interval, LongShortInterval), m.pollLongShort, nil).Run(ctx) })
	}
	wg.Go(func() {
		if marksTried.Wait(ctx) {
			m.poller(epOpenInterest, interval, m.pollOpenInterest, nil).Run(ctx)
		}
	})
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

func (m *market) streamConfig() wsconn.Config {
	c := wsconn.Config{
		Name:        m.kind + streamSuffix,
		URL:         func() string { return m.ws + "/ws" },
		MaxLifetime: MaxConnectionLifetime,
		OnConnect:   m.subscribe,
		OnMessage:   m.onMessage,
		Observer:    m.stream,
		Logger:      m.log,
	}
	if m.v.cfg.Stream != nil {
		m.v.cfg.Stream(&c)
	}
	return c
}

// longShort reports whether this market polls long/short account ratios
// (USDⓈ-M only: the endpoint lives under the fapi host's /futures/data).
func (m *market) longShort() bool { return m.kind == usdm && len(m.v.cfg.LongShortCoins) > 0 }

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
