// Package kraken collects Kraken Futures: the public WebSocket "trade" feed
// of every discovered product (trades of type "liquidation" are counted), and
// two REST calls, GET {REST}/derivatives/api/v3/instruments (discovery) and
// GET {REST}/derivatives/api/v3/tickers (mark price, open interest, funding
// and 24 h volume of every product in one answer).
//
// The trade feed is the venue's trade tape itself, so every liquidation trade
// is published and the venue reports crypto_exporter_liquidation_feed_complete
// 1 for both of its markets (linear and inverse).
//
// Sources and what they settle (the project's reference, section 10):
//   - Documented (docs.kraken.com futures WebSocket pages): the subscribe
//     message {"event":"subscribe","feed":"trade","product_ids":[...]}, the
//     "subscribed"/"subscribed_failed" replies, the trade_snapshot sent
//     first and the trade message fields (product_id, side, type, qty, price,
//     seq, time, uid); side is the taker's side; the heartbeat feed.
//   - Documented (Kraken support article): a client must send a "ping
//     request" at least every 60 s or the connection is dropped.
//   - Documented in the reference: the tickers fields (symbol, markPrice,
//     vol24h, openInterest, suspended, fundingRate, relativeFundingRate),
//     fundingRate is absolute so the relative rate is fundingRate /
//     markPrice, funding is hourly; PF_ quantities are in base units, PI_
//     quantities are USD contracts; contractSize comes from instruments.
//   - ASSUMED, UNVERIFIED: the liquidated account is the TAKER of a
//     liquidation trade, so side "sell" = a long was liquidated and side
//     "buy" = a short was liquidated (the project's contract adopts this).
//   - UNVERIFIED: the instruments field names besides contractSize (type,
//     tradeable, base, quote), the type values flexible_futures /
//     futures_inverse / futures_vanilla, the shape of error replies
//     ("error", "alert", and whether subscribed_failed echoes product_ids),
//     the unit of vol24h (taken as contracts, like qty), that a repeated
//     heartbeat subscription counts as the keep-alive "ping request", the
//     funding settlement at the top of each hour, REST rate limits, and any
//     limit on product_ids per subscription.
package kraken

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Name is the exchange label value.
const Name = "kraken"

// Label values of the venue's health series.
const (
	// StreamTrades is the stream label of the trade feed connection.
	StreamTrades = "trades"
	// EndpointInstruments is the endpoint label of the instruments poll.
	EndpointInstruments = "instruments"
	// EndpointTickers is the endpoint label of the tickers poll.
	EndpointTickers = "tickers"
)

// REST paths appended to Config.REST.
const (
	instrumentsPath = "/derivatives/api/v3/instruments"
	tickersPath     = "/derivatives/api/v3/tickers"
)

const (
	// FundingInterval: Kraken Futures funding is hourly (reference
	// section 10; the settlement at the top of the hour is UNVERIFIED).
	FundingInterval = time.Hour
	// DefaultProductsPerMessage bounds the product_ids of one subscribe
	// message. Kraken documents no limit; batches keep single messages
	// small (the exporter's choice).
	DefaultProductsPerMessage = 50
	// DefaultKeepAlive is how often the client sends its keep-alive
	// message; Kraken drops connections without a client message for 60 s.
	DefaultKeepAlive = 30 * time.Second
	// staleAfter is how many poll periods a gauge survives without refresh.
	staleAfter = 3
)

// Config configures the Kraken Futures venue.
type Config struct {
	REST  string   // base URL, e.g. https://futures.kraken.com (the venue appends /derivatives/api/v3/...)
	WS    string   // full URL, e.g. wss://futures.kraken.com/ws/v1 (used as is)
	Coins []string // allowlist; empty = all

	// PollInterval is the period of the tickers poll; default 30 s.
	PollInterval time.Duration
	// InstrumentsInterval is the period of the instruments poll (discovery);
	// default 15 minutes.
	InstrumentsInterval time.Duration
	Client              *exchanges.Client
	Logger              *slog.Logger

	// RefreshSpacing is the minimum time between an early discovery (asked
	// for by a liquidation of an unknown product or a subscription error)
	// and the previous one; default 1 minute.
	RefreshSpacing time.Duration

	// ProductsPerMessage caps the product_ids of one subscribe message;
	// default DefaultProductsPerMessage.
	ProductsPerMessage int

	// Stream tunes the WebSocket runner (tests shorten heartbeats); it is
	// applied after the venue's defaults.
	Stream func(*wsconn.Config)
}

// Venue is the Kraken Futures collector.
type Venue struct {
	cfg   Config
	log   *slog.Logger
	coins exchanges.CoinFilter
	now   func() time.Time

	sink  exchanges.Sink
	polls map[string]exchanges.PollObserver

	// instruments maps product symbol -> instrument (nil for products the
	// coin allowlist excludes); replaced whole on every discovery.
	instruments atomic.Pointer[map[string]*exchanges.Instrument]
	declared    map[exchanges.Market][]*exchanges.Instrument // poll goroutine only
	refresh     chan struct{}
	logThrottle exchanges.LogThrottle

	// bannedUntil (unix ns) is set by a rate-limit answer of either
	// endpoint, so that the other one waits as well (same host).
	bannedUntil atomic.Int64

	trades *tradeStream
}

// New returns a Kraken Futures venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, exchanges.DefaultPollInterval)
	cfg.InstrumentsInterval = exchanges.Positive(cfg.InstrumentsInterval, exchanges.DefaultInstrumentsInterval)
	cfg.RefreshSpacing = exchanges.Positive(cfg.RefreshSpacing, exchanges.DefaultRefreshSpacing)
	cfg.ProductsPerMessage = exchanges.Positive(cfg.ProductsPerMessage, DefaultProductsPerMessage)
	v := &Venue{
		cfg:      cfg,
		log:      cfg.Logger,
		coins:    exchanges.NewCoinFilter(cfg.Coins),
		now:      time.Now,
		refresh:  make(chan struct{}, 1),
		declared: map[exchanges.Market][]*exchanges.Instrument{},
	}
	v.trades = &tradeStream{v: v, want: map[string]bool{}}
	empty := map[string]*exchanges.Instrument{}
	v.instruments.Store(&empty)
	return v
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// Run implements exchanges.Venue. It declares the feed flags, both polls
// and the stream at once, then runs discovery; the trade connection and the
// tickers poll start with the first successful discovery.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	sink.SetFeedComplete(Name, exchanges.Linear, true)
	sink.SetFeedComplete(Name, exchanges.Inverse, true)
	v.polls = map[string]exchanges.PollObserver{
		EndpointInstruments: sink.Poll(Name, EndpointInstruments),
		EndpointTickers:     sink.Poll(Name, EndpointTickers),
	}
	v.trades.obs = sink.Stream(Name, StreamTrades)
	v.trades.obs.SetUp(false)

	var wg sync.WaitGroup
	discovered := exchanges.NewLatch()
	wg.Go(func() {
		v.poller(EndpointInstruments, v.cfg.InstrumentsInterval, discovered.OnSuccess(v.discover), v.refresh).Run(ctx)
	})
	if !discovered.Wait(ctx) {
		wg.Wait()
		return nil
	}
	wg.Go(func() { wsconn.Run(ctx, v.trades.streamConfig()) })
	wg.Go(func() { v.poller(EndpointTickers, v.cfg.PollInterval, v.pollTickers, nil).Run(ctx) })
	wg.Wait()
	return nil
}

func (v *Venue) poller(ep string, interval time.Duration, poll func(context.Context) error, trigger <-chan struct{}) exchanges.Poller {
	return exchanges.Poller{
		Interval:      interval,
		RetryInterval: exchanges.RetryInterval(interval, v.cfg.PollInterval),
		Observer:      v.polls[ep],
		Logger:        v.log.With("endpoint", ep),
		Poll:          poll,
		Trigger:       trigger,
		MinSpacing:    v.cfg.RefreshSpacing,
	}
}

// errRateLimited is the body of the synthetic answer while a back-off is in force.
var errRateLimited = errors.New("skipped: Kraken asked to back off (HTTP 429)")

// envelope is Kraken's common answer frame: {"result":"success",...} or
// {"result":"error","error":"..."}.
type envelope struct {
	Result string `json:"result"`
	Error  string `json:"error"`
}

// get fetches path from the REST base, honouring a back-off announced by an
// earlier answer of either endpoint.
func (v *Venue) get(ctx context.Context, path string, out any) error {
	url := v.cfg.REST + path
	if until := v.bannedUntil.Load(); until > time.Now().UnixNano() {
		return &exchanges.HTTPError{URL: url, StatusCode: 429,
			RetryAfter: time.Until(time.Unix(0, until)).Round(time.Second) + time.Second, Body: errRateLimited.Error()}
	}
	_, err := v.cfg.Client.GetJSON(ctx, url, out)
	var herr *exchanges.HTTPError
	if errors.As(err, &herr) && herr.RateLimited() {
		wait := herr.RetryAfter
		if wait <= 0 {
			wait = time.Minute
		}
		v.bannedUntil.Store(time.Now().Add(wait).UnixNano())
	}
	return err
}

// lookup returns the instrument of a product given as bytes, without
// allocating; known is true for products the coin allowlist excludes too
// (their instrument is nil).
func (v *Venue) lookup(product []byte) (inst *exchanges.Instrument, known bool) {
	inst, known = (*v.instruments.Load())[string(product)]
	return inst, known
}

// requestRefresh asks for an early discovery (spaced by the poller).
func (v *Venue) requestRefresh() {
	select {
	case v.refresh <- struct{}{}:
	default:
	}
}
