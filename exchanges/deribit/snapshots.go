package deribit

import (
	"context"
	"net/url"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// staleAfter is how many poll periods a value survives without a refresh.
const staleAfter = 3

// summary is the part of a public/get_book_summary_by_currency row the
// exporter uses (documented fields). Funding fields are present for
// perpetuals only.
type summary struct {
	InstrumentName string           `json:"instrument_name"`
	MarkPrice      exchanges.Number `json:"mark_price"`
	// OpenInterest: USD for inverse instruments, base coin for linear ones
	// (documented for inverse; UNVERIFIED for linear perpetuals).
	OpenInterest exchanges.Number `json:"open_interest"`
	Funding8h    exchanges.Number `json:"funding_8h"`
	VolumeUSD    exchanges.Number `json:"volume_usd"` // 24 h, USD
	Volume       exchanges.Number `json:"volume"`     // 24 h, base coin
}

// pollBookSummary stores mark price, funding, open interest and 24 h
// volume of every instrument of one currency (one request).
func (v *Venue) pollBookSummary(ctx context.Context, c *currency) error {
	var rows []summary
	q := url.Values{"currency": {c.name}, "kind": {"future"}}
	if err := v.getList(ctx, "get_book_summary_by_currency", q, &rows); err != nil {
		return err
	}
	ttl := staleAfter * v.cfg.PollInterval
	now := time.Now()
	values := make([]exchanges.MarketValue, 0, 8*len(rows))
	for _, r := range rows {
		inst, _ := v.lookup([]byte(r.InstrumentName))
		if inst == nil {
			continue // filtered out, or listed since the last discovery
		}
		values = summaryValues(values, inst, r, ttl, now)
	}
	v.sink.SetMarketValues(values)
	return nil
}

// summaryValues appends the gauges of one book summary row by the
// project's rules.
func summaryValues(out []exchanges.MarketValue, inst *exchanges.Instrument, r summary, ttl time.Duration, now time.Time) []exchanges.MarketValue {
	add := func(f exchanges.Field, val float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: val, TTL: ttl})
	}
	mark, haveMark := r.MarkPrice.Value, r.MarkPrice.Positive()
	if haveMark {
		add(exchanges.MarkPrice, mark) // USD; USDC at par for linear
	}
	if inst.ContractType == exchanges.Perpetual && r.Funding8h.Set {
		add(exchanges.FundingRate, r.Funding8h.Value)
		add(exchanges.FundingIntervalSeconds, FundingInterval.Seconds())
		// Deribit has no next-funding field and funding accrues
		// continuously: the next 8 h UTC boundary (00:00, 08:00, 16:00) is
		// the exporter's convention (UNVERIFIED).
		add(exchanges.FundingNextTimestamp, exchanges.NextBoundary(now, FundingInterval))
	}
	if r.OpenInterest.Set && r.OpenInterest.Value >= 0 {
		oi := r.OpenInterest.Value
		switch inst.Market {
		case exchanges.Inverse: // USD
			add(exchanges.OpenInterestUSD, oi)
			if haveMark {
				add(exchanges.OpenInterestCoins, oi/mark*inst.Multiplier)
			}
		case exchanges.Linear: // base coin
			add(exchanges.OpenInterestCoins, oi*inst.Multiplier)
			if haveMark {
				add(exchanges.OpenInterestUSD, oi*mark)
			}
		}
	}
	switch {
	case r.VolumeUSD.Set && r.VolumeUSD.Value >= 0:
		add(exchanges.Volume24hUSD, r.VolumeUSD.Value)
	case r.Volume.Set && r.Volume.Value >= 0 && haveMark:
		add(exchanges.Volume24hUSD, r.Volume.Value*mark)
	}
	return out
}
