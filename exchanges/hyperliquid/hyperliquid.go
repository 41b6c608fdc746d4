// Package hyperliquid collects Hyperliquid's USDC-margined perpetuals from
// one REST call, POST {REST}/info with {"type":"metaAndAssetCtxs"}: the
// perp universe (instrument discovery) and, index-aligned with it, each
// asset's context (mark price, hourly funding rate, open interest in base
// coin, 24 h notional volume).
//
// Hyperliquid publishes no liquidation feed for all users (the project's
// reference, section 8: info types such as "liquidations" are rejected and
// the SDK author states there is no such API), so this venue exports market
// gauges only. It never reports crypto_exporter_liquidation_feed_complete:
// there is no feed whose completeness could be stated. Instruments are
// still declared, so crypto_market_info exists and gauges attach to them.
//
// What rests on documentation only (the reference, section 8; the python
// SDK's types) and has not been checked against live traffic by this
// package: the response shape and field units (openInterest in base coin,
// dayNtlVlm in USDC, funding as the hourly rate), next funding at the top
// of each hour (UNVERIFIED), kPEPE-style names counting 1000 coins
// (UNVERIFIED), the optional "isDelisted" flag on universe entries (seen in
// third-party code only, UNVERIFIED) and the request weight of 20 out of
// 1200 per minute per IP (documented).
package hyperliquid

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Name is the exchange label value.
const Name = "hyperliquid"

// Endpoint is the endpoint label value of crypto_exporter_poll_* for the
// metaAndAssetCtxs poll.
const Endpoint = "meta_and_asset_ctxs"

// Documented REST limits (Hyperliquid gitbook, rate limits; the reference,
// section 8): info requests share a budget of 1200 weight per minute per
// IP, and metaAndAssetCtxs weighs 20. One poll every 30 s (the default)
// therefore spends 40 weight per minute, a thirtieth of the budget; the
// budget is only exceeded below one poll per second.
const (
	RequestWeight       = 20
	WeightPerMinute     = 1200
	FundingInterval     = time.Hour // funding is hourly (documented)
	defaultPollInterval = 30 * time.Second
	staleAfter          = 3 // poll periods a value survives without a refresh
)

// infoPath is appended to Config.REST.
const infoPath = "/info"

// Config configures the Hyperliquid venue.
type Config struct {
	REST         string   // base URL, e.g. https://api.hyperliquid.xyz (the venue appends /info)
	Coins        []string // allowlist of coins (kPEPE counts as PEPE); empty = all
	PollInterval time.Duration
	Client       *exchanges.Client
	Logger       *slog.Logger
}

// Venue is the Hyperliquid collector.
type Venue struct {
	cfg   Config
	coins exchanges.CoinFilter
	now   func() time.Time

	sink  exchanges.Sink
	poll  exchanges.PollObserver
	known []*exchanges.Instrument // last declared list; nil before the first
	// declared is true once SetInstruments has run (the first list may be
	// empty when the coin allowlist excludes everything).
	declared    bool
	logThrottle exchanges.LogThrottle
}

// New returns a Hyperliquid venue.
func New(cfg Config) *Venue {
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	cfg.Client = exchanges.OrNewClient(cfg.Client, exchanges.DefaultClientTimeout)
	cfg.PollInterval = exchanges.Positive(cfg.PollInterval, defaultPollInterval)
	return &Venue{cfg: cfg, coins: exchanges.NewCoinFilter(cfg.Coins), now: time.Now}
}

// Name implements exchanges.Venue.
func (v *Venue) Name() string { return Name }

// WeightPerMinuteAt returns the request weight one poll every interval
// spends per minute.
func WeightPerMinuteAt(interval time.Duration) float64 {
	if interval <= 0 {
		return 0
	}
	return RequestWeight * float64(time.Minute) / float64(interval)
}

// Run implements exchanges.Venue. It declares the poll at once (so
// crypto_exporter_poll_success exists at 0 until the first good poll) and
// polls metaAndAssetCtxs every PollInterval until ctx is cancelled.
func (v *Venue) Run(ctx context.Context, sink exchanges.Sink) error {
	v.sink = sink
	v.poll = sink.Poll(Name, Endpoint)
	log := v.cfg.Logger.With("endpoint", Endpoint)
	if w := WeightPerMinuteAt(v.cfg.PollInterval); w > WeightPerMinute {
		log.Warn("poll interval exceeds Hyperliquid's documented REST budget; expect HTTP 429",
			"interval", v.cfg.PollInterval, "weight_per_minute", w, "budget", WeightPerMinute)
	}
	exchanges.Poller{
		Interval: v.cfg.PollInterval,
		Observer: v.poll,
		Logger:   log,
		Poll:     v.pollOnce,
	}.Run(ctx)
	return nil
}

// pollOnce fetches metaAndAssetCtxs, declares the instrument list when it
// changed and stores the gauges. A failed request or an answer that does
// not have the documented shape fails the poll and stores nothing, so the
// previous values stay until they expire.
func (v *Venue) pollOnce(ctx context.Context) error {
	resp, err := v.fetch(ctx)
	if err != nil {
		return err
	}
	assets, skipped := v.instrumentsFrom(resp)
	list := make([]*exchanges.Instrument, 0, len(assets))
	for _, a := range assets {
		list = append(list, a.inst)
	}
	if !v.declared || !exchanges.SameInstruments(v.known, list) {
		v.sink.SetInstruments(Name, exchanges.Linear, list)
		v.cfg.Logger.Info("instruments declared", "count", len(list), "universe", len(resp.Universe), "skipped", skipped)
		v.known, v.declared = list, true
	}
	values, bad := marketValues(assets, v.now(), staleAfter*v.cfg.PollInterval)
	if bad > 0 && v.logThrottle.Allow("bad numbers") {
		v.cfg.Logger.Debug("skipped unusable values in asset contexts", "count", bad)
	}
	v.sink.SetMarketValues(values)
	return nil
}

// fetch sends POST {REST}/info {"type":"metaAndAssetCtxs"} and decodes the
// answer.
func (v *Venue) fetch(ctx context.Context) (*metaAndAssetCtxs, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.REST+infoPath,
		bytes.NewReader([]byte(`{"type":"metaAndAssetCtxs"}`)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	var resp metaAndAssetCtxs
	if _, err := v.cfg.Client.Do(req, &resp); err != nil {
		return nil, fmt.Errorf("metaAndAssetCtxs: %w", err)
	}
	return &resp, nil
}
