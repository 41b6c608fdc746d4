// Package bitget collects Bitget futures: USDT-FUTURES and USDC-FUTURES
// (linear) and COIN-FUTURES (inverse), perpetual and delivery contracts.
//
// REST (v2 "mix" API, base https://api.bitget.com): contracts per product
// type for discovery; tickers per product type (all symbols per call) for
// mark price, funding rate, open interest (holdingAmount, in base coin) and
// 24 h volume; funding-time per symbol (perpetuals only) for the funding
// interval and the next funding time, polled round robin (see snapshots.go).
// Bitget documents 20 requests per second per IP for each of these
// endpoints; the exporter stays far below that.
//
// WebSocket (UTA v3 public, wss://ws.bitget.com/v3/ws/public): the
// liquidation topic of every product type on one connection, behind
// Config.Liquidations. What rests on documentation only (the project's
// reference, section 6): the v2 REST paths, fields and the 20 req/s limit;
// the text "ping"/"pong" heartbeat every 30 s and the 24 h forced
// disconnect. UNVERIFIED (taken from community code and fixtures, not from
// Bitget's documentation): the v3 liquidation topic itself, its subscribe
// request {"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"}]},
// the ack and error event shapes, the push shape
// {"arg":{...},"data":[{"symbol","price","amount","side","ts"}]}, that side
// "sell" means a long position was liquidated, that amount is in base coin
// for every product type (inverse too) so that notional = amount x price,
// that ts is in milliseconds, the contracts field names baseCoin and
// quoteCoin (symbols fall back to stripping the quote), and whether the feed
// is complete. Bitget does not say whether the topic publishes every
// liquidation, so the venue reports crypto_exporter_liquidation_feed_complete
// 0 (totals are lower bounds) for both markets.
package bitget

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "bitget"

// Product types, as Bitget's v2 REST names them.
const (
	USDTFutures = "USDT-FUTURES"
	CoinFutures = "COIN-FUTURES"
	USDCFutures = "USDC-FUTURES"
)

// Documented limits and the exporter's choices.
const (
	// PingInterval: Bitget asks for a text "ping" every 30 s and drops a
	// connection that sent none for 2 minutes (documented).
	PingInterval = 30 * time.Second
	// MaxConnectionLifetime: Bitget disconnects every connection after 24
	// hours (documented); the exporter reconnects first.
	MaxConnectionLifetime = 23 * time.Hour
	// RequestsPerSecond is Bitget's documented limit of each public mix
	// market endpoint (20 requests per second per IP).
	RequestsPerSecond = 20
	// FundingTimeSpacing spaces funding-time requests: 4 per second, a
	// fifth of the documented limit, leaving room for other clients on the
	// same IP.
	FundingTimeSpacing = 250 * time.Millisecond
	// staleAfter: gauges expire after this many refresh periods without data.
	staleAfter = 3
)

// Config configures the Bitget venue.
type Config struct {
	REST string // base URL, e.g. https://api.bitget.com (the venue appends /api/v2/...)
	WS   string // full URL, e.g. wss://ws.bitget.com/v3/ws/public
	// Liquidations turns the v3 liquidation topic on (the exporter's
	// default). Off: no stream, no liquidation series, no feed_complete.
	Liquidations bool
	Coins        []string // allowlist; empty = all

	PollInterval        time.Duration // tickers and funding-time rounds
	InstrumentsInterval time.Duration // contracts refresh
	Client              *exchanges.Client
	Logger              *slog.Logger

	// RefreshSpacing is the minimum time between an early contracts
	// refresh (asked for by a liquidation of an unlisted symbol) and the
	// previous discovery; default 1 minute.
	RefreshSpacing time.Duration

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the Bitget collector.
type Venue struct {
	cfg   Config
	kinds []*kind
	coins exchanges.CoinFilter
	log   *slog.Logger
	sink  exchanges.Sink
	epoch time.Time // liquidations before it are history, not counted

	listMu sync.Mutex // serialises instrument list updates

	streamObs  exchanges.StreamObserver
	fundingObs exchanges.PollObserver
	fundingCur int // round-robin cursor of funding-time; funding poller only
	dedupe     *exchanges.Dedupe
	counted    atomic.Int64 // liquidations handed to the sink
	history    atomic.Int64 // liquidations skipped as history or repeats
	throttle   exchanges.LogThrottle
}

// instrument is a Bitget contract with what the pollers and decoders need.
type instrument struct {
	symbol string
	inst   *exchanges.Instrument // nil when excluded by the coin allowlist
}

// kind is one product type: its discovery, tickers poll and instruments.
type kind struct {
	v            *Venue
	index        int    // in Venue.kinds
	productType  string // USDT-FUTURES ...
	wsInstType   string // usdt-futures ... (v3 naming, UNVERIFIED for coin/usdc)
	label        string // usdt_futures ...
	market       exchanges.Market
	defaultQuote string
	log          *slog.Logger

	contractsObs, tickersObs exchanges.PollObserver

	instruments atomic.Pointer[map[string]*instrument] // symbol -> instrument
	refresh     chan struct{}
	tried       *exchanges.Latch // open after the first discovery attempt
}

// New returns a Bitget venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.InstrumentsInterval = exchanges.Positive(cfg.InstrumentsInterval, exchanges.DefaultInstrumentsInterval)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	cfg.REST = strings.TrimRight(cfg.REST, "/")
	v := &Venue{cfg: cfg, coins: exchanges.NewCoinFilter(cfg.Coins), log: cfg.Logger, epoch: time.Now()}
	for _, pt := range []struct {
		name   string
		market exchanges.Market
		quote  string
	}{{USDTFutures, exchanges.Linear, "USDT"}, {CoinFutures, exchanges.Inverse, "USD"}, {USDCFutures, exchanges.Linear, "USDC"}} {
		k := &kind{
			v: v, index: len(v.kinds), productType: pt.name, wsInstType: strings.ToLower(pt.name),
			label:  strings.ReplaceAll(strings.ToLower(pt.name), "-", "_"),
			market: pt.market, defaultQuote: pt.quote,
			log:     v.log.With("product_type", pt.name),
			refresh: make(chan struct{}, 1),
			tried:   exchanges.NewLatch(),
		}
		empty := map[string]*instrument{}
		k.instruments.Store(&empty)
		v.kinds = append(v.kinds, k)
	}
	v.dedupe = exchanges.NewDedupe(dedupeWindow, dedupeMaxKeys, v.epoch)
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Stream and endpoint label values.
const (
	// StreamLiquidations is the stream label of the liquidation connection.
	StreamLiquidations = "liquidations"
	// EndpointFundingTime is the endpoint label of the funding-time rounds.
	EndpointFundingTime = "funding_time"
	epContracts         = "contracts"
	epTickers           = "tickers"
)

// Endpoints returns every endpoint label value the venue declares:
// usdt_futures_contracts, usdt_futures_tickers, the same with coin_futures_
// and usdc_futures_, and funding_time.
func Endpoints() []string {
	var out []string
	for _, pt := range []string{USDTFutures, CoinFutures, USDCFutures} {
		l := strings.ReplaceAll(strings.ToLower(pt), "-", "_")
		out = append(out, l+"_"+epContracts, l+"_"+epTickers)
	}
	return append(out, EndpointFundingTime)
}

// Run implements exchanges.Venue.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	v.epoch = time.Now()
	v.dedupe = exchanges.NewDedupe(dedupeWindow, dedupeMaxKeys, v.epoch)
	if v.cfg.Liquidations {
		for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
			sink.SetFeedComplete(Name, mk, false)
		}
		v.streamObs = sink.Stream(Name, StreamLiquidations)
		v.streamObs.SetUp(false)
	}
	for _, k := range v.kinds {
		k.contractsObs = sink.Poll(Name, k.label+"_"+epContracts)
		k.tickersObs = sink.Poll(Name, k.label+"_"+epTickers)
	}
	v.fundingObs = sink.Poll(Name, EndpointFundingTime)

	var wg sync.WaitGroup
	for _, k := range v.kinds {
		wg.Go(func() { k.run(ctx) })
	}
	wg.Go(func() {
		if !v.waitTried(ctx) {
			return
		}
		v.poller(EndpointFundingTime, v.fundingObs, v.cfg.PollInterval, v.pollFundingTime, nil).Run(ctx)
	})
	if v.cfg.Liquidations {
		wg.Go(func() {
			if !v.waitTried(ctx) {
				return
			}
			wsconn.Run(ctx, v.streamConfig())
		})
	}
	wg.Wait()
	return nil
}

// waitTried waits until every product type has finished its first
// discovery attempt (successful or not); false when ctx ended first.
func (v *Venue) waitTried(ctx context.Context) bool {
	for _, k := range v.kinds {
		if !k.tried.Wait(ctx) {
			return false
		}
	}
	return true
}

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

func (k *kind) run(ctx context.Context) {
	v := k.v
	var wg sync.WaitGroup
	wg.Go(func() {
		v.poller(k.label+"_"+epContracts, k.contractsObs, v.cfg.InstrumentsInterval, k.tried.AfterTry(k.discover), k.refresh).Run(ctx)
	})
	if !k.tried.Wait(ctx) {
		wg.Wait()
		return
	}
	wg.Go(func() {
		v.poller(k.label+"_"+epTickers, k.tickersObs, v.cfg.PollInterval, k.pollTickers, nil).Run(ctx)
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

// setList stores one product type's discovery and declares the merged
// instrument lists of both markets.
func (v *Venue) setList(k *kind, list map[string]*instrument) {
	v.listMu.Lock()
	defer v.listMu.Unlock()
	k.instruments.Store(&list)
	var all []*exchanges.Instrument
	for _, kk := range v.kinds {
		for _, in := range *kk.instruments.Load() {
			all = append(all, in.inst)
		}
	}
	lists := exchanges.ByMarket(all)
	for i, mk := range exchanges.Markets {
		v.sink.SetInstruments(Name, mk, lists[i])
	}
}

// kindOf returns the product type of a v3 instType ("usdt-futures"), nil
// when unknown.
func (v *Venue) kindOf(instType []byte) *kind {
	for _, k := range v.kinds {
		if strings.EqualFold(string(instType), k.wsInstType) {
			return k
		}
	}
	return nil
}
