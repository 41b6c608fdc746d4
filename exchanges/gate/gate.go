// Package gate collects Gate.io futures: USDT-settled contracts (linear,
// type direct) and BTC-settled contracts (inverse), each settle currency with
// its own liquidation WebSocket (futures.public_liquidates with "!all") and
// REST polls of contracts (instrument discovery, funding interval and next
// funding time) and tickers (open interest, funding rate, mark price, 24 h
// volume), all contracts per call.
//
// Gate pushes "up to one liquidate order data every 1 second" per contract,
// so the venue reports crypto_exporter_liquidation_feed_complete 0 for both
// markets.
//
// Counting rules (see exchanges.Dedupe and backfill.go):
//   - Every liquidation counts at most once, whether it arrives live or from
//     the REST backfill: a bounded, age-evicted set of the keys (contract,
//     second, signed order size, order price) counted in the last
//     DedupeWindow decides.
//   - Only liquidations after the venue's start count.
//   - After a reconnect (and once after the first subscription, for the
//     start-up gap) the venue backfills the gap from GET
//     /api/v4/futures/{settle}/liq_orders in windows of at most 3600 s.
//
// Verified against documentation only (the project's reference, section 7):
// the channel, subscribe request and ack, the update frame, futures.ping /
// futures.pong, the liq_orders window limit and sample, the contracts and
// tickers fields, and the 200 requests / 10 s public limit. INFERRED: a
// negative size is a sell order, so a long was liquidated. UNVERIFIED: that
// a BTC-settled contract is worth 1 USD; that liq_orders needs no contract
// parameter (the reference's example passes one; Gate's SDK request types
// mark it optional); that its order_size and order_price equal the pushed
// size and price and its time the pushed time_ms in seconds (the dedupe key
// relies on it); the shape of subscription error answers; and that
// liq_orders serves a window's orders in one page of up to 1000 (a full page
// is split and fetched again).
package gate

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "gate"

// Settle currencies, as Gate names them in paths and stream labels.
const (
	SettleUSDT = "usdt"
	SettleBTC  = "btc"
)

// Documented limits and the exporter's conservative choices.
const (
	// PingInterval is how often the exporter sends futures.ping. Gate also
	// sends protocol pings; its idle timeout is not documented.
	PingInterval = 15 * time.Second
	// RateWindow and RequestsPerWindow are Gate's public REST limit: 200
	// requests per 10 s per endpoint (documented).
	RateWindow        = 10 * time.Second
	RequestsPerWindow = 200
	// MaxBackfillWindow is the longest from..to span liq_orders accepts
	// ("The time interval between from and to is maximum 3600").
	MaxBackfillWindow = 3600 * time.Second
)

// Defaults of the dedupe and backfill settings.
const (
	DefaultDedupeWindow            = 6 * time.Hour
	DefaultDedupeMaxKeys           = 100_000
	DefaultBackfillSlack           = 10 * time.Second
	DefaultBackfillRequestInterval = 2 * RateWindow / RequestsPerWindow // half the limit: 100 ms
)

// Config configures the Gate venue.
type Config struct {
	REST   string // base URL, e.g. https://api.gateio.ws (the venue appends /api/v4/...)
	USDTWS string // full URL, e.g. wss://fx-ws.gateio.ws/v4/ws/usdt
	BTCWS  string // full URL, e.g. wss://fx-ws.gateio.ws/v4/ws/btc
	// Settles limits the settle currencies to run (usdt, btc); empty = both.
	Settles []string
	Coins   []string // allowlist; empty = all

	PollInterval        time.Duration // tickers
	InstrumentsInterval time.Duration // contracts
	Client              *exchanges.Client
	Logger              *slog.Logger

	// RefreshSpacing is the minimum time between an early contracts refresh
	// (asked for by a liquidation of an unknown contract) and the previous
	// discovery; default 1 minute.
	RefreshSpacing time.Duration

	// DedupeWindow is how long the key of a counted liquidation is kept
	// (default 6 h); a liquidation older than that when it arrives is never
	// counted, so it also bounds how far back a backfill reaches.
	// DedupeMaxKeys bounds the set (default 100,000); when it is full the
	// oldest keys go and liquidations at or before their second no longer
	// count.
	DedupeWindow  time.Duration
	DedupeMaxKeys int

	// DisableBackfill turns the REST backfill off.
	DisableBackfill bool
	// BackfillSlack widens the backfill window before the last frame seen
	// on the lost connection (default 10 s).
	BackfillSlack time.Duration
	// BackfillRequestInterval spaces backfill requests (default 100 ms:
	// half of the documented 200 requests per 10 s).
	BackfillRequestInterval time.Duration
	// BackfillRetryInterval is the delay before a failed backfill (a 5xx,
	// a timeout) is retried, doubling up to 2 minutes, five times at most
	// (default exchanges.DefaultBackfillRetryInterval).
	BackfillRetryInterval time.Duration

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the Gate collector.
type Venue struct {
	cfg     Config
	settles []*settle
	coins   exchanges.CoinFilter
	log     *slog.Logger

	sink  exchanges.Sink
	epoch time.Time // liquidations at or before it are history, not counted

	// contracts maps contract name -> contract of every settle (nil inst
	// for contracts excluded by the coin allowlist); replaced whole on
	// every discovery.
	contracts atomic.Pointer[map[string]*contract]
	listMu    sync.Mutex // serialises list updates

	dedupe   *dedupe
	stats    stats
	throttle exchanges.LogThrottle
}

// stats counts what the dedupe decided, for logs and tests.
type stats struct {
	counted    atomic.Int64 // liquidations handed to the sink
	duplicates atomic.Int64 // skipped: already counted
	history    atomic.Int64 // skipped: before the start or older than the dedupe window
	backfilled atomic.Int64 // counted from the REST backfill
}

// contract is a Gate futures contract with what the decoders need.
type contract struct {
	name   string
	settle string
	inst   *exchanges.Instrument // nil when excluded by the coin allowlist
	// size is the value of one contract: base coin (venue units) for
	// linear (quanto_multiplier), USD for inverse (1, assumed).
	size            float64
	fundingInterval float64 // s, 0 if unknown
	fundingNext     float64 // unix s, 0 if unknown
}

// New returns a Gate venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.InstrumentsInterval = exchanges.Positive(cfg.InstrumentsInterval, exchanges.DefaultInstrumentsInterval)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	cfg.DedupeWindow = exchanges.Positive(cfg.DedupeWindow, DefaultDedupeWindow)
	cfg.BackfillSlack = exchanges.Positive(cfg.BackfillSlack, DefaultBackfillSlack)
	cfg.BackfillRequestInterval = exchanges.Positive(cfg.BackfillRequestInterval, DefaultBackfillRequestInterval)
	cfg.DedupeMaxKeys = exchanges.Positive(cfg.DedupeMaxKeys, DefaultDedupeMaxKeys)
	v := &Venue{cfg: cfg, coins: exchanges.NewCoinFilter(cfg.Coins), log: cfg.Logger, epoch: time.Now()}
	for _, s := range []string{SettleUSDT, SettleBTC} {
		if len(cfg.Settles) == 0 || slices.ContainsFunc(cfg.Settles, func(x string) bool { return strings.EqualFold(x, s) }) {
			v.settles = append(v.settles, newSettle(v, s))
		}
	}
	empty := map[string]*contract{}
	v.contracts.Store(&empty)
	v.dedupe = newDedupe(cfg.DedupeWindow, cfg.DedupeMaxKeys, v.epoch)
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Run implements exchanges.Venue.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	v.epoch = time.Now()
	v.dedupe = newDedupe(v.cfg.DedupeWindow, v.cfg.DedupeMaxKeys, v.epoch)
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		sink.SetFeedComplete(Name, mk, false)
	}
	for _, s := range v.settles {
		s.declare(sink)
	}
	var wg sync.WaitGroup
	for _, s := range v.settles {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	return nil
}

// Endpoint label values of crypto_exporter_poll_*: usdt_contracts,
// usdt_tickers, usdt_liq_orders, and the same with btc_.
const (
	epContracts = "contracts"
	epTickers   = "tickers"
	epLiqOrders = "liq_orders"
)

func (v *Venue) poller(ep string, obs exchanges.PollObserver, interval time.Duration, poll func(context.Context) error, trigger <-chan struct{}) exchanges.Poller {
	return exchanges.Poller{
		Interval:      interval,
		RetryInterval: exchanges.RetryInterval(interval, v.cfg.PollInterval),
		Observer:      obs,
		Logger:        v.log.With("endpoint", ep),
		Poll:          poll,
		Trigger:       trigger,
		MinSpacing:    v.cfg.RefreshSpacing,
	}
}

// lookup returns the contract of a name given as bytes, without allocating.
func (v *Venue) lookup(name []byte) *contract {
	return (*v.contracts.Load())[string(name)]
}

// setList stores the discovery result of one settle and declares the merged
// instrument lists of both markets.
func (v *Venue) setList(s *settle, list []*contract) {
	v.listMu.Lock()
	defer v.listMu.Unlock()
	s.list = list
	byName := map[string]*contract{}
	var all []*exchanges.Instrument
	for _, ss := range v.settles {
		for _, c := range ss.list {
			byName[c.name] = c
			all = append(all, c.inst)
		}
	}
	lists := exchanges.ByMarket(all)
	for i, mk := range exchanges.Markets {
		v.sink.SetInstruments(Name, mk, lists[i])
	}
	v.contracts.Store(&byName)
}

// settle is one settle currency: its discovery, ticker poll, liquidation
// stream and backfill.
type settle struct {
	v    *Venue
	name string // usdt or btc, the prefix of stream and endpoint labels
	log  *slog.Logger

	obs   exchanges.StreamObserver
	polls map[string]exchanges.PollObserver

	list    []*contract      // last discovery; guarded by v.listMu
	refresh chan struct{}    // asks discovery to run early
	ready   *exchanges.Latch // open after the first successful discovery

	// Stream state, touched by the connection's runner goroutine only.
	subscribedOnce bool
	lastLive       time.Time // the last frame of a subscribed connection
	gapStart       time.Time // lastLive when the current connection started
	sessionUp      bool

	backfill backfiller
}

func newSettle(v *Venue, name string) *settle {
	s := &settle{
		v: v, name: name,
		log:     v.log.With("settle", name),
		refresh: make(chan struct{}, 1),
		ready:   exchanges.NewLatch(),
	}
	s.backfill.init(s)
	return s
}

// endpoint returns the endpoint label value of one of the settle's polls.
func (s *settle) endpoint(name string) string { return s.name + "_" + name }

// streamName is the stream label value: usdt_liquidations or btc_liquidations.
func (s *settle) streamName() string { return s.name + "_liquidations" }

// wsURL is the settle's WebSocket URL.
func (s *settle) wsURL() string {
	if s.name == SettleBTC {
		return s.v.cfg.BTCWS
	}
	return s.v.cfg.USDTWS
}

// declare makes the settle's stream and polls exist from start-up.
func (s *settle) declare(sink exchanges.Sink) {
	s.obs = sink.Stream(Name, s.streamName())
	s.obs.SetUp(false)
	s.polls = map[string]exchanges.PollObserver{}
	eps := []string{epContracts, epTickers}
	if !s.v.cfg.DisableBackfill {
		eps = append(eps, epLiqOrders)
	}
	for _, ep := range eps {
		s.polls[ep] = sink.Poll(Name, s.endpoint(ep))
	}
}

func (s *settle) run(ctx context.Context) {
	v := s.v
	var wg sync.WaitGroup
	wg.Go(func() {
		v.poller(s.endpoint(epContracts), s.polls[epContracts], v.cfg.InstrumentsInterval, s.ready.OnSuccess(s.discover), s.refresh).Run(ctx)
	})
	if !s.ready.Wait(ctx) {
		wg.Wait()
		return
	}
	wg.Go(func() { wsconn.Run(ctx, s.streamConfig()) })
	if !v.cfg.DisableBackfill {
		wg.Go(func() { s.backfill.run(ctx) })
	}
	wg.Go(func() {
		v.poller(s.endpoint(epTickers), s.polls[epTickers], v.cfg.PollInterval, s.pollTickers, nil).Run(ctx)
	})
	wg.Wait()
}

// requestRefresh asks discovery to run early (rate limited by the poller).
func (s *settle) requestRefresh() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}
