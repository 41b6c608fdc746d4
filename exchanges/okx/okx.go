// Package okx collects OKX v5 perpetual swaps (SWAP) and dated futures
// (FUTURES), both linear (USDT/USDC-margined, ctType linear) and inverse
// (coin-margined, ctType inverse): the liquidation-orders WebSocket channel
// of each instrument type, and REST polls of instruments, open interest,
// mark price, tickers (24 h volume) and funding (all instruments per call).
//
// OKX documents the liquidation channel as "the recent liquidation orders"
// that "doesn't represent the total number of liquidations on OKX" (at most
// one order per contract per second), so the venue reports
// crypto_exporter_liquidation_feed_complete 0 for both markets.
//
// Counting rules (see exchanges.Dedupe and backfill.go):
//   - Every liquidation detail counts at most once, whether it arrives live,
//     in the replay OKX sends after a (re)subscribe, or from the REST
//     backfill: a bounded set of the keys (instId, side, posSide, sz, bkPx,
//     ts) counted in the last DedupeWindow decides.
//   - Only liquidations from the venue's start on count: history replayed
//     on the first subscription is not new.
//   - After a reconnect (and once after the first subscription, for the
//     start-up gap) the venue backfills from GET
//     /api/v5/public/liquidation-orders per instFamily.
//
// What rests on documentation only (the project's reference, section 3) and
// has not been checked against live traffic: the side mapping (side sell =
// long liquidated; posSide long/short when present; INFERRED from the
// documented sample), the units of sz (contracts) and ctVal, the shape of
// subscription acks, error events and the "pong" reply, instId=ANY on
// funding-rate, and oiUsd on open-interest. UNVERIFIED: that OKX replays
// recent orders after a (re)subscribe and how far back (the exporter is
// correct whether it does or not), the before/after pagination of
// liquidation-orders (taken to be by ts, "after" = earlier than), whether
// its limit counts details, and that REST details carry the same sz, bkPx
// and ts strings as the pushed ones (the dedupe key compares their values).
package okx

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "okx"

// Instrument types, as OKX names them and as used in Config.InstTypes.
const (
	Swap    = "SWAP"
	Futures = "FUTURES"
)

// Documented limits and the exporter's conservative choices.
const (
	// PingInterval is how often the exporter sends the text "ping". OKX
	// closes a connection after 30 s without pushed data and asks for a
	// ping before that (documented).
	PingInterval = 20 * time.Second
	// RateWindow is the window of OKX's REST rate limits ("20 requests
	// per 2 seconds" and the like, documented).
	RateWindow = 2 * time.Second
	// BackfillRequestsPerWindow is the documented limit of
	// /api/v5/public/liquidation-orders (40 requests per 2 s per IP); the
	// default backfill pace uses half of it.
	BackfillRequestsPerWindow = 40
)

// Defaults of the dedupe and backfill settings.
const (
	DefaultDedupeWindow            = 24 * time.Hour
	DefaultDedupeMaxKeys           = 100_000
	DefaultBackfillSlack           = 30 * time.Second
	DefaultBackfillMaxPages        = 5
	DefaultBackfillRequestInterval = 2 * RateWindow / BackfillRequestsPerWindow
)

// Config configures the OKX venue.
type Config struct {
	REST string // base URL, e.g. https://www.okx.com (the venue appends /api/v5/...)
	WS   string // full URL, e.g. wss://ws.okx.com:8443/ws/v5/public
	// InstTypes limits the instrument types to run (SWAP, FUTURES); empty = both.
	InstTypes []string
	Coins     []string // allowlist; empty = all

	PollInterval        time.Duration // open interest, mark price, tickers, funding
	InstrumentsInterval time.Duration // instruments refresh
	Client              *exchanges.Client
	Logger              *slog.Logger

	// RefreshSpacing is the minimum time between an early instrument
	// refresh (asked for by a liquidation of an unlisted instId) and the
	// previous discovery; default 1 minute.
	RefreshSpacing time.Duration

	// DedupeWindow is how long the key of a counted liquidation is kept
	// (default 24 h, the history OKX's REST serves); a liquidation whose ts
	// is older than that when it arrives is never counted. DedupeMaxKeys
	// bounds the set (default 100,000); when it is full the oldest keys go
	// and liquidations at or before their ts are no longer counted.
	DedupeWindow  time.Duration
	DedupeMaxKeys int

	// DisableBackfill turns the REST backfill off (replayed orders are
	// still deduplicated).
	DisableBackfill bool
	// BackfillSlack widens the backfill window before the last frame seen
	// on the lost connection (OKX does not push in ts order; default 30 s).
	BackfillSlack time.Duration
	// BackfillMaxPages caps the pages (of up to 100 orders) fetched per
	// instFamily and backfill (default 5).
	BackfillMaxPages int
	// BackfillRequestInterval spaces backfill requests (default 100 ms:
	// half of the documented 40 requests per 2 s).
	BackfillRequestInterval time.Duration
	// BackfillRetryInterval is the delay before a failed backfill (a 5xx,
	// a timeout) is retried, doubling up to 2 minutes, five times at most
	// (default exchanges.DefaultBackfillRetryInterval).
	BackfillRetryInterval time.Duration

	// LongShortCoins lists the coins whose long/short account ratio
	// (rubik, per currency) is polled and exported on the coin's
	// <COIN>-USDT-SWAP instrument (see longshort.go); nil =
	// DefaultLongShortCoins, empty = none.
	LongShortCoins []string

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the OKX collector.
type Venue struct {
	cfg   Config
	kinds []*kind
	coins exchanges.CoinFilter
	log   *slog.Logger

	sink  exchanges.Sink
	epoch time.Time // liquidations before it are history, not counted

	// instruments maps instId -> instrument of every instrument type (nil
	// for instruments excluded by the coin allowlist); replaced whole on
	// every discovery.
	instruments atomic.Pointer[map[string]*instrument]
	marks       atomic.Pointer[map[string]float64] // instId -> last mark price
	listMu      sync.Mutex                         // serialises instrument list updates

	fundingObs exchanges.PollObserver
	ls         longShortState
	dedupe     *exchanges.Dedupe
	stats      stats
	throttle   exchanges.LogThrottle
}

// stats counts what the dedupe decided, for logs and tests.
type stats struct {
	counted    atomic.Int64 // liquidations handed to the sink
	duplicates atomic.Int64 // skipped: already counted
	history    atomic.Int64 // skipped: before the start or older than the dedupe window
	backfilled atomic.Int64 // counted from the REST backfill
}

// instrument is an OKX instrument with what the decoders need.
type instrument struct {
	id       string                // instId, e.g. BTC-USDT-SWAP
	inst     *exchanges.Instrument // nil when excluded by the coin allowlist
	instType string
	family   string
	// size is ctVal x ctMult: base coin per contract (venue units) for
	// linear, USD per contract for inverse.
	size float64
}

// New returns an OKX venue.
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
	cfg.BackfillMaxPages = exchanges.Positive(cfg.BackfillMaxPages, DefaultBackfillMaxPages)
	v := &Venue{cfg: cfg, coins: exchanges.NewCoinFilter(cfg.Coins), log: cfg.Logger, epoch: time.Now()}
	for _, t := range []string{Swap, Futures} {
		if len(cfg.InstTypes) == 0 || slices.ContainsFunc(cfg.InstTypes, func(s string) bool { return strings.EqualFold(s, t) }) {
			v.kinds = append(v.kinds, newKind(v, t))
		}
	}
	empty := map[string]*instrument{}
	v.instruments.Store(&empty)
	noMarks := map[string]float64{}
	v.marks.Store(&noMarks)
	v.dedupe = exchanges.NewDedupe(cfg.DedupeWindow, cfg.DedupeMaxKeys, v.epoch)
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Run implements exchanges.Venue.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	v.epoch = time.Now()
	v.dedupe = exchanges.NewDedupe(v.cfg.DedupeWindow, v.cfg.DedupeMaxKeys, v.epoch)
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		sink.SetFeedComplete(Name, mk, false)
	}
	var swap *kind
	for _, k := range v.kinds {
		k.declare(sink)
		if k.name == Swap {
			swap = k
		}
	}
	if swap != nil {
		v.fundingObs = sink.Poll(Name, epFundingRate)
	}
	v.declareLongShort(sink, swap)
	var wg sync.WaitGroup
	for _, k := range v.kinds {
		wg.Go(func() { k.run(ctx) })
	}
	if swap != nil {
		wg.Go(func() {
			if swap.ready.Wait(ctx) {
				v.poller(epFundingRate, v.fundingObs, v.cfg.PollInterval, v.pollFunding, nil).Run(ctx)
			}
		})
	}
	wg.Go(func() { v.runLongShort(ctx, swap) })
	wg.Wait()
	return nil
}

// Endpoint label values of crypto_exporter_poll_*: swap_instruments,
// swap_open_interest, swap_mark_price, swap_tickers,
// swap_liquidation_backfill, the same with futures_, funding_rate and
// long_short_ratio.
const (
	epInstruments  = "instruments"
	epOpenInterest = "open_interest"
	epMarkPrice    = "mark_price"
	epTickers      = "tickers"
	epBackfill     = "liquidation_backfill"
	epFundingRate  = "funding_rate"
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

// lookup returns the instrument of an instId given as bytes, without
// allocating; known is true for instruments the coin allowlist excludes
// too (their inst is nil).
func (v *Venue) lookup(instID []byte) (in *instrument, known bool) {
	in, known = (*v.instruments.Load())[string(instID)]
	return in, known
}

// setList stores the discovery result of one instrument type and declares
// the merged instrument lists of both markets.
func (v *Venue) setList(k *kind, list []*instrument) {
	v.listMu.Lock()
	defer v.listMu.Unlock()
	k.list = list
	byID := map[string]*instrument{}
	var all []*exchanges.Instrument
	for _, kk := range v.kinds {
		for _, in := range kk.list {
			byID[in.id] = in
			all = append(all, in.inst)
		}
	}
	lists := exchanges.ByMarket(all)
	for i, mk := range exchanges.Markets {
		v.sink.SetInstruments(Name, mk, lists[i])
	}
	v.instruments.Store(&byID)
}

// families returns the instFamilies of an instrument type's allowed
// instruments, sorted.
func (v *Venue) families(k *kind) []string {
	v.listMu.Lock()
	defer v.listMu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, in := range k.list {
		if in.inst != nil && in.family != "" && !seen[in.family] {
			seen[in.family] = true
			out = append(out, in.family)
		}
	}
	sort.Strings(out)
	return out
}

// kind is one instrument type (SWAP or FUTURES): its discovery, pollers,
// liquidation stream and backfill.
type kind struct {
	v            *Venue
	name         string // SWAP or FUTURES
	label        string // swap or futures, the prefix of stream and endpoint labels
	contractType string
	log          *slog.Logger

	obs   exchanges.StreamObserver
	polls map[string]exchanges.PollObserver

	list    []*instrument    // last discovery; guarded by v.listMu
	refresh chan struct{}    // asks discovery to run early
	ready   *exchanges.Latch // open after the first successful discovery

	// Stream state, touched by the connection's runner goroutine only
	// (OnConnect and OnMessage).
	subscribedOnce bool
	lastLive       time.Time // the last frame of a subscribed connection
	frameTime      time.Time // when the frame being decoded arrived; zero between frames
	gapStart       time.Time // lastLive when the current connection started
	sessionUp      bool

	backfill backfiller
}

func newKind(v *Venue, name string) *kind {
	k := &kind{
		v: v, name: name, label: strings.ToLower(name),
		contractType: exchanges.Perpetual,
		log:          v.log.With("inst_type", name),
		refresh:      make(chan struct{}, 1),
		ready:        exchanges.NewLatch(),
	}
	if name == Futures {
		k.contractType = exchanges.Future
	}
	k.backfill.init(k)
	return k
}

// endpoint returns the endpoint label value of one of the kind's polls.
func (k *kind) endpoint(name string) string { return k.label + "_" + name }

// streamName is the stream label value: swap_liquidations or futures_liquidations.
func (k *kind) streamName() string { return k.label + "_liquidations" }

// declare makes the kind's stream and polls exist from start-up.
func (k *kind) declare(sink exchanges.Sink) {
	k.obs = sink.Stream(Name, k.streamName())
	k.obs.SetUp(false)
	k.polls = map[string]exchanges.PollObserver{}
	eps := []string{epInstruments, epOpenInterest, epMarkPrice, epTickers}
	if !k.v.cfg.DisableBackfill {
		eps = append(eps, epBackfill)
	}
	for _, ep := range eps {
		k.polls[ep] = sink.Poll(Name, k.endpoint(ep))
	}
}

func (k *kind) run(ctx context.Context) {
	v := k.v
	var wg sync.WaitGroup
	wg.Go(func() {
		v.poller(k.endpoint(epInstruments), k.polls[epInstruments], v.cfg.InstrumentsInterval, k.ready.OnSuccess(k.discover), k.refresh).Run(ctx)
	})
	if !k.ready.Wait(ctx) {
		wg.Wait()
		return
	}
	wg.Go(func() { wsconn.Run(ctx, k.streamConfig()) })
	if !v.cfg.DisableBackfill {
		wg.Go(func() { k.backfill.run(ctx) })
	}
	// Open interest falls back to the mark price for USD, so its first
	// poll waits for the first mark-price poll, successful or not.
	marksTried := exchanges.NewLatch()
	wg.Go(func() {
		v.poller(k.endpoint(epMarkPrice), k.polls[epMarkPrice], v.cfg.PollInterval, marksTried.AfterTry(k.pollMarkPrice), nil).Run(ctx)
	})
	wg.Go(func() {
		v.poller(k.endpoint(epTickers), k.polls[epTickers], v.cfg.PollInterval, k.pollTickers, nil).Run(ctx)
	})
	wg.Go(func() {
		if marksTried.Wait(ctx) {
			v.poller(k.endpoint(epOpenInterest), k.polls[epOpenInterest], v.cfg.PollInterval, k.pollOpenInterest, nil).Run(ctx)
		}
	})
	wg.Wait()
}

// requestRefresh asks discovery to run early (rate limited by the poller).
func (k *kind) requestRefresh() {
	select {
	case k.refresh <- struct{}{}:
	default:
	}
}
