package bitget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// ticker is one row of /api/v2/mix/market/tickers (documented fields).
type ticker struct {
	Symbol        string           `json:"symbol"`
	MarkPrice     exchanges.Number `json:"markPrice"`
	FundingRate   exchanges.Number `json:"fundingRate"`
	HoldingAmount exchanges.Number `json:"holdingAmount"` // open interest in base coin
	USDTVolume    exchanges.Number `json:"usdtVolume"`
	QuoteVolume   exchanges.Number `json:"quoteVolume"`
	BaseVolume    exchanges.Number `json:"baseVolume"`
}

// pollTickers stores mark price, funding rate, open interest and 24 h
// volume of every symbol of the product type (one request).
func (k *kind) pollTickers(ctx context.Context) error {
	var rows []ticker
	if err := k.v.get(ctx, "/api/v2/mix/market/tickers?productType="+url.QueryEscape(k.productType), &rows); err != nil {
		return err
	}
	byName := *k.instruments.Load()
	ttl := staleAfter * k.v.cfg.PollInterval
	values := make([]exchanges.MarketValue, 0, 5*len(rows))
	unknown := 0
	for _, r := range rows {
		in, ok := byName[r.Symbol]
		if !ok {
			unknown++
			continue
		}
		if in.inst == nil {
			continue
		}
		values = append(values, tickerValues(in.inst, r, ttl)...)
	}
	if unknown > 0 {
		k.requestRefresh() // a new listing: discover it early
	}
	k.v.sink.SetMarketValues(values)
	return nil
}

// tickerValues returns the gauges of one ticker row.
func tickerValues(inst *exchanges.Instrument, r ticker, ttl time.Duration) []exchanges.MarketValue {
	out := make([]exchanges.MarketValue, 0, 5)
	add := func(f exchanges.Field, v float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: v, TTL: ttl})
	}
	mark := r.MarkPrice
	if mark.Positive() {
		add(exchanges.MarkPrice, mark.Value)
	}
	if inst.ContractType == exchanges.Perpetual && r.FundingRate.Set {
		add(exchanges.FundingRate, r.FundingRate.Value)
	}
	if r.HoldingAmount.Set && r.HoldingAmount.Value >= 0 {
		add(exchanges.OpenInterestCoins, r.HoldingAmount.Value*inst.Multiplier)
		if mark.Positive() {
			add(exchanges.OpenInterestUSD, r.HoldingAmount.Value*mark.Value)
		}
	}
	// 24 h USD turnover: usdtVolume (USDT at par) when served; otherwise
	// quoteVolume for linear contracts (USDT or USDC at par), base volume
	// x mark for inverse ones (INFERRED: the reference lists usdtVolume and
	// quoteVolume without their units per product type).
	switch {
	case r.USDTVolume.Set && r.USDTVolume.Value >= 0:
		add(exchanges.Volume24hUSD, r.USDTVolume.Value)
	case inst.Market == exchanges.Linear && r.QuoteVolume.Set && r.QuoteVolume.Value >= 0:
		add(exchanges.Volume24hUSD, r.QuoteVolume.Value)
	case inst.Market == exchanges.Inverse && r.BaseVolume.Set && r.BaseVolume.Value >= 0 && mark.Positive():
		add(exchanges.Volume24hUSD, r.BaseVolume.Value*mark.Value)
	}
	return out
}

// fundingTime is the data row of /api/v2/mix/market/funding-time.
type fundingTime struct {
	Symbol          string           `json:"symbol"`
	NextFundingTime exchanges.Number `json:"nextFundingTime"` // ms
	RatePeriod      exchanges.Number `json:"ratePeriod"`      // hours
}

// fundingPlan returns how many symbols one funding-time round polls and how
// long a full cycle over n symbols takes: one request per
// FundingTimeSpacing, within 80 % of the poll interval.
func fundingPlan(n int, interval time.Duration) (batch int, cycle time.Duration) {
	batch = int(interval * 8 / 10 / FundingTimeSpacing)
	batch = max(1, min(batch, n))
	rounds := (n + batch - 1) / batch
	return batch, time.Duration(max(rounds, 1)) * interval
}

// fundingTarget is one perpetual whose funding time is polled.
type fundingTarget struct {
	k  *kind
	in *instrument
}

// pollFundingTime polls the next batch of perpetuals, round robin over all
// product types, one request per FundingTimeSpacing. At the default 30 s
// interval that is up to 96 symbols a round, so ~500 perpetuals are all
// refreshed about every 3 minutes, at 4 requests per second (a fifth of
// Bitget's documented 20 per second). Funding times only move at each
// funding, hours apart.
func (v *Venue) pollFundingTime(ctx context.Context) error {
	var targets []fundingTarget
	for _, k := range v.kinds {
		for _, in := range *k.instruments.Load() {
			if in.inst != nil && in.inst.ContractType == exchanges.Perpetual {
				targets = append(targets, fundingTarget{k, in})
			}
		}
	}
	if len(targets) == 0 {
		return nil
	}
	sort.Slice(targets, func(a, b int) bool {
		if targets[a].k.productType != targets[b].k.productType {
			return targets[a].k.productType < targets[b].k.productType
		}
		return targets[a].in.symbol < targets[b].in.symbol
	})
	batch, cycle := fundingPlan(len(targets), v.cfg.PollInterval)
	start := v.fundingCur % len(targets)
	ttl := staleAfter * cycle
	var (
		values []exchanges.MarketValue
		errs   []error
	)
	done := 0
	for i := range batch {
		if i > 0 && !exchanges.Sleep(ctx, FundingTimeSpacing) {
			break
		}
		t := targets[(start+i)%len(targets)]
		vs, err := v.fundingTimeOf(ctx, t, ttl)
		done++
		values = append(values, vs...)
		if err != nil {
			errs = append(errs, err)
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				v.sink.SetMarketValues(values)
				v.fundingCur = (start + done) % len(targets)
				return err // the poller backs off
			}
		}
	}
	v.fundingCur = (start + done) % len(targets)
	v.sink.SetMarketValues(values)
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d funding-time requests failed, first: %w", len(errs), done, errs[0])
	}
	return nil
}

func (v *Venue) fundingTimeOf(ctx context.Context, t fundingTarget, ttl time.Duration) ([]exchanges.MarketValue, error) {
	var raw json.RawMessage
	path := "/api/v2/mix/market/funding-time?symbol=" + url.QueryEscape(t.in.symbol) + "&productType=" + url.QueryEscape(t.k.productType)
	if err := v.get(ctx, path, &raw); err != nil {
		return nil, err
	}
	// data is an array of one row; a bare object is accepted too.
	var rows []fundingTime
	if err := json.Unmarshal(raw, &rows); err != nil {
		var one fundingTime
		if err2 := json.Unmarshal(raw, &one); err2 != nil {
			return nil, fmt.Errorf("funding-time of %s: %w", t.in.symbol, err)
		}
		rows = []fundingTime{one}
	}
	for _, r := range rows {
		if r.Symbol != "" && r.Symbol != t.in.symbol {
			continue
		}
		var out []exchanges.MarketValue
		if r.RatePeriod.Positive() {
			out = append(out, exchanges.MarketValue{Instrument: t.in.inst, Field: exchanges.FundingIntervalSeconds, Value: r.RatePeriod.Value * 3600, TTL: ttl})
		}
		if r.NextFundingTime.Positive() {
			out = append(out, exchanges.MarketValue{Instrument: t.in.inst, Field: exchanges.FundingNextTimestamp, Value: r.NextFundingTime.Value / 1000, TTL: ttl})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("funding-time of %s: no usable nextFundingTime or ratePeriod", t.in.symbol)
		}
		return out, nil
	}
	return nil, fmt.Errorf("funding-time of %s: no row for the symbol", t.in.symbol)
}
