package dydx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Quote is the quote asset of every dYdX v4 perpetual (USD, settled in
// USDC, counted at par).
const Quote = "USD"

// marketsPath is appended to Config.REST.
const marketsPath = "/v4/perpetualMarkets"

// statusActive is the status of a tradable market (documented values
// include ACTIVE, PAUSED, CANCEL_ONLY, POST_ONLY, INITIALIZING, FINAL_SETTLEMENT).
const statusActive = "ACTIVE"

// perpetualMarkets is the answer of GET /v4/perpetualMarkets: every market
// in one object keyed by ticker.
type perpetualMarkets struct {
	Markets map[string]perpetualMarket `json:"markets"`
}

// perpetualMarket holds the fields the exporter uses. Numbers are decimal
// strings. The keys differ in more than case, so encoding/json's
// case-insensitive matching cannot confuse them.
type perpetualMarket struct {
	Ticker          string `json:"ticker"`
	Status          string `json:"status"`
	OraclePrice     number `json:"oraclePrice"`     // USD per coin
	NextFundingRate number `json:"nextFundingRate"` // per hour
	OpenInterest    number `json:"openInterest"`    // base units
	Volume24H       number `json:"volume24H"`       // USD
}

// number is a field that never fails the decoding of the whole answer.
type number = exchanges.LenientNumber

var errNoMarkets = errors.New("perpetualMarkets: answer has no markets object")

// pollOnce fetches perpetualMarkets, declares the instrument list when it
// changed, moves the subscriptions to it and stores the gauges. A failed
// request or an answer without the markets object fails the poll and stores
// nothing, so the previous values stay until they expire.
func (v *Venue) pollOnce(ctx context.Context) error {
	var resp perpetualMarkets
	if _, err := v.cfg.Client.GetJSON(ctx, v.cfg.REST+marketsPath, &resp); err != nil {
		return fmt.Errorf("perpetualMarkets: %w", err)
	}
	if resp.Markets == nil {
		return errNoMarkets
	}
	assets, all := v.instrumentsFrom(resp.Markets)
	list := make([]*exchanges.Instrument, 0, len(assets))
	byTicker := make(map[string]*exchanges.Instrument, len(all))
	for _, t := range all {
		byTicker[t] = nil
	}
	for _, a := range assets {
		list = append(list, a.inst)
		byTicker[a.inst.Symbol] = a.inst
	}
	if !v.declared || !exchanges.SameInstruments(v.known, list) {
		v.sink.SetInstruments(Name, exchanges.Linear, list)
		v.log.Info("instruments declared", "count", len(list), "markets", len(resp.Markets))
		v.known, v.declared = list, true
	}
	v.instruments.Store(&byTicker)
	tickers := make([]string, len(list))
	for i, inst := range list {
		tickers[i] = inst.Symbol
	}
	v.shards.assign(tickers)

	values, bad := marketValues(assets, v.now(), staleAfter*v.interval)
	if bad > 0 && v.logThrottle.Allow("bad numbers") {
		v.log.Debug("skipped unusable values in perpetualMarkets", "count", bad)
	}
	v.sink.SetMarketValues(values)
	return nil
}

// asset is one collected instrument with its market data of this poll.
type asset struct {
	inst *exchanges.Instrument
	m    perpetualMarket
}

// instrumentsFrom returns the ACTIVE markets allowed by the coin allowlist,
// sorted by ticker, and every ACTIVE ticker (allowlisted or not). A market
// whose ticker is missing, differs from its key or is not BASE-QUOTE is
// skipped.
func (v *Venue) instrumentsFrom(markets map[string]perpetualMarket) (out []asset, active []string) {
	for _, key := range slices.Sorted(maps.Keys(markets)) {
		m := markets[key]
		if m.Status != statusActive {
			continue
		}
		base, _, ok := strings.Cut(m.Ticker, "-")
		if !ok || base == "" || m.Ticker != key {
			if v.logThrottle.Allow("bad ticker") {
				v.log.Warn("skipped a market with an unusable ticker", "key", key, "ticker", m.Ticker)
			}
			continue
		}
		active = append(active, m.Ticker)
		coin, mult := exchanges.NormalizeCoin(base)
		if !v.coins.Allows(coin) {
			continue
		}
		out = append(out, asset{
			inst: &exchanges.Instrument{
				Exchange:     Name,
				Market:       exchanges.Linear,
				Symbol:       m.Ticker,
				Coin:         coin,
				Quote:        Quote,
				ContractType: exchanges.Perpetual,
				ContractSize: 1, // sizes are in base units
				Multiplier:   mult,
			},
			m: m,
		})
	}
	return out, active
}

// marketValues turns the markets into gauges by the project's rules: mark
// price oraclePrice; funding rate nextFundingRate per hour (interval
// 3600 s, next funding the next top of the hour); open interest in coins
// openInterest x the ticker's multiplier, in USD openInterest x
// oraclePrice; 24 h volume volume24H. A value that is unset, not finite, or
// negative where it cannot be is skipped; bad counts the skipped values
// that were present but unusable.
func marketValues(assets []asset, now time.Time, ttl time.Duration) (out []exchanges.MarketValue, bad int) {
	out = make([]exchanges.MarketValue, 0, 7*len(assets))
	next := exchanges.NextBoundary(now, FundingInterval)
	for _, a := range assets {
		m := a.m
		var b int
		out, b = exchanges.AppendPerpValues(out, exchanges.PerpValues{Inst: a.inst, Mark: m.OraclePrice, Funding: m.NextFundingRate,
			OpenInterest: m.OpenInterest, Volume24hUSD: m.Volume24H}, FundingInterval, next, ttl)
		bad += b
	}
	return out, bad
}
