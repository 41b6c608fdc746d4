package okx

import (
	"context"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// staleAfter is how many poll periods a value survives without a refresh.
const staleAfter = 3

func (v *Venue) ttl() time.Duration { return staleAfter * v.cfg.PollInterval }

// markPriceRow is one row of GET /api/v5/public/mark-price (documented).
type markPriceRow struct {
	InstID string           `json:"instId"`
	MarkPx exchanges.Number `json:"markPx"`
}

// pollMarkPrice stores the mark price of every instrument of the type (one
// request) and keeps it for the open interest fallback.
func (k *kind) pollMarkPrice(ctx context.Context) error {
	var rows []markPriceRow
	if err := k.v.getList(ctx, "/api/v5/public/mark-price?instType="+k.name, &rows); err != nil {
		return err
	}
	ttl := k.v.ttl()
	values := make([]exchanges.MarketValue, 0, len(rows))
	fresh := map[string]float64{}
	for _, r := range rows {
		in, _ := k.v.lookup([]byte(r.InstID))
		if in == nil || in.inst == nil || in.instType != k.name || !r.MarkPx.Positive() {
			continue
		}
		fresh[r.InstID] = r.MarkPx.Value
		values = append(values, exchanges.MarketValue{Instrument: in.inst, Field: exchanges.MarkPrice, Value: r.MarkPx.Value, TTL: ttl})
	}
	k.v.mergeMarks(k.name, fresh)
	k.v.sink.SetMarketValues(values)
	return nil
}

// mergeMarks replaces the marks of one instrument type.
func (v *Venue) mergeMarks(instType string, fresh map[string]float64) {
	v.listMu.Lock()
	defer v.listMu.Unlock()
	byID := *v.instruments.Load()
	next := make(map[string]float64, len(fresh))
	for id, px := range *v.marks.Load() {
		if in := byID[id]; in != nil && in.instType != instType {
			next[id] = px
		}
	}
	for id, px := range fresh {
		next[id] = px
	}
	v.marks.Store(&next)
}

// openInterestRow is one row of GET /api/v5/public/open-interest
// (documented: oi in contracts, oiCcy in coin, oiUsd in USD).
type openInterestRow struct {
	InstID string           `json:"instId"`
	OI     exchanges.Number `json:"oi"`
	OICcy  exchanges.Number `json:"oiCcy"`
	OIUsd  exchanges.Number `json:"oiUsd"`
}

// pollOpenInterest stores the open interest of every instrument of the type
// (one request).
func (k *kind) pollOpenInterest(ctx context.Context) error {
	var rows []openInterestRow
	if err := k.v.getList(ctx, "/api/v5/public/open-interest?instType="+k.name, &rows); err != nil {
		return err
	}
	ttl := k.v.ttl()
	marks := *k.v.marks.Load()
	values := make([]exchanges.MarketValue, 0, 2*len(rows))
	for _, r := range rows {
		in, _ := k.v.lookup([]byte(r.InstID))
		if in == nil || in.inst == nil || in.instType != k.name {
			continue
		}
		values = openInterestValues(values, in, r, marks[r.InstID], ttl)
	}
	k.v.sink.SetMarketValues(values)
	return nil
}

// openInterestValues appends the open interest gauges of one row by the
// project's rules: coins from oiCcy (times the coin multiplier), else from
// contracts (linear oi x ctVal x ctMult, inverse USD / mark); USD from
// oiUsd, else inverse oi x ctVal x ctMult, linear coins x mark.
func openInterestValues(out []exchanges.MarketValue, in *instrument, r openInterestRow, mark float64, ttl time.Duration) []exchanges.MarketValue {
	inst := in.inst
	add := func(f exchanges.Field, v float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: v, TTL: ttl})
	}
	haveOI := r.OI.Set && r.OI.Value >= 0
	usd, haveUSD := r.OIUsd.Value, r.OIUsd.Set && r.OIUsd.Value >= 0
	if !haveUSD && haveOI && inst.Market == exchanges.Inverse {
		usd, haveUSD = r.OI.Value*in.size, true
	}
	coins, haveCoins := r.OICcy.Value, r.OICcy.Set && r.OICcy.Value >= 0
	switch {
	case haveCoins:
	case haveOI && inst.Market == exchanges.Linear:
		coins, haveCoins = r.OI.Value*in.size, true
	case haveUSD && inst.Market == exchanges.Inverse && mark > 0:
		coins, haveCoins = usd/mark, true
	}
	if !haveUSD && haveCoins && mark > 0 {
		usd, haveUSD = coins*mark, true
	}
	if haveCoins {
		add(exchanges.OpenInterestCoins, coins*inst.Multiplier)
	}
	if haveUSD {
		add(exchanges.OpenInterestUSD, usd)
	}
	return out
}

// tickerRow is the part of GET /api/v5/market/tickers the exporter uses.
// For derivatives vol24h is in contracts and volCcy24h in base coin
// (documented: "the unit is BTC for BTC-USD-SWAP and BTC-USDT-SWAP").
type tickerRow struct {
	InstID    string           `json:"instId"`
	Last      exchanges.Number `json:"last"`
	Vol24h    exchanges.Number `json:"vol24h"`
	VolCcy24h exchanges.Number `json:"volCcy24h"`
}

// pollTickers stores the 24 h USD volume of every instrument of the type.
func (k *kind) pollTickers(ctx context.Context) error {
	var rows []tickerRow
	if err := k.v.getList(ctx, "/api/v5/market/tickers?instType="+k.name, &rows); err != nil {
		return err
	}
	ttl := k.v.ttl()
	marks := *k.v.marks.Load()
	values := make([]exchanges.MarketValue, 0, len(rows))
	for _, r := range rows {
		in, _ := k.v.lookup([]byte(r.InstID))
		if in == nil || in.inst == nil || in.instType != k.name {
			continue
		}
		if usd, ok := volumeUSD(in, r, marks[r.InstID]); ok {
			values = append(values, exchanges.MarketValue{Instrument: in.inst, Field: exchanges.Volume24hUSD, Value: usd, TTL: ttl})
		}
	}
	k.v.sink.SetMarketValues(values)
	return nil
}

// volumeUSD is the 24 h volume in USD: inverse vol24h contracts x ctVal x
// ctMult (USD, exact); linear volCcy24h (base coin) x last price (x mark
// when there is no last), an approximation since the volume traded at many
// prices (the reference's "USD volume ≈ volCcy24h × last").
func volumeUSD(in *instrument, r tickerRow, mark float64) (float64, bool) {
	if in.inst.Market == exchanges.Inverse {
		if r.Vol24h.Set && r.Vol24h.Value >= 0 {
			return r.Vol24h.Value * in.size, true
		}
		return 0, false
	}
	px := mark
	if r.Last.Positive() {
		px = r.Last.Value
	}
	if r.VolCcy24h.Set && r.VolCcy24h.Value >= 0 && px > 0 {
		return r.VolCcy24h.Value * px, true
	}
	return 0, false
}

// fundingRow is one row of GET /api/v5/public/funding-rate (documented).
// fundingRate is the rate of the settlement at fundingTime (the next one);
// the interval is nextFundingTime - fundingTime (OKX changes intervals
// between 8 h, 4 h, 2 h and 1 h).
type fundingRow struct {
	InstID          string           `json:"instId"`
	FundingRate     exchanges.Number `json:"fundingRate"`
	FundingTime     exchanges.Number `json:"fundingTime"`
	NextFundingTime exchanges.Number `json:"nextFundingTime"`
}

// pollFunding stores funding of every perpetual in one request with
// instId=ANY (documented in the reference as the all-instruments form).
func (v *Venue) pollFunding(ctx context.Context) error {
	var rows []fundingRow
	if err := v.getList(ctx, "/api/v5/public/funding-rate?instId=ANY", &rows); err != nil {
		return err
	}
	ttl := v.ttl()
	values := make([]exchanges.MarketValue, 0, 3*len(rows))
	for _, r := range rows {
		in, _ := v.lookup([]byte(r.InstID))
		if in == nil || in.inst == nil || in.instType != Swap {
			continue
		}
		values = fundingValues(values, in.inst, r, ttl)
	}
	v.sink.SetMarketValues(values)
	return nil
}

func fundingValues(out []exchanges.MarketValue, inst *exchanges.Instrument, r fundingRow, ttl time.Duration) []exchanges.MarketValue {
	add := func(f exchanges.Field, v float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: v, TTL: ttl})
	}
	if r.FundingRate.Set {
		add(exchanges.FundingRate, r.FundingRate.Value)
	}
	if r.FundingTime.Positive() {
		add(exchanges.FundingNextTimestamp, r.FundingTime.Value/1000)
		if r.NextFundingTime.Positive() && r.NextFundingTime.Value > r.FundingTime.Value {
			add(exchanges.FundingIntervalSeconds, (r.NextFundingTime.Value-r.FundingTime.Value)/1000)
		}
	}
	return out
}
