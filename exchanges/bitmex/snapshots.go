package bitmex

import (
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// marketValues returns the gauges of every collected instrument.
func (v *Venue) marketValues(rows []instrumentRow, byID map[string]*instrument) []exchanges.MarketValue {
	ttl := v.ttl()
	btc := v.btcPrice()
	out := make([]exchanges.MarketValue, 0, 7*len(byID))
	for _, in := range byID {
		if in.inst != nil {
			out = rowValues(out, in, rows[in.row], btc, ttl)
		}
	}
	return out
}

// rowValues appends the gauges of one row: open interest in USD (contracts
// valued at the mark) and in coins (USD / mark, or for linear contracts
// contracts x coins per contract), mark price, 24 h volume
// (foreignNotional24h, the quote currency at par), and for perpetuals the
// funding rate, interval and next time.
func rowValues(out []exchanges.MarketValue, in *instrument, r instrumentRow, btcUSD float64, ttl time.Duration) []exchanges.MarketValue {
	inst := in.inst
	add := func(f exchanges.Field, v float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: v, TTL: ttl})
	}
	mark := r.MarkPrice.Value
	if r.MarkPrice.Positive() {
		add(exchanges.MarkPrice, mark)
	}
	if r.OpenInterest.Set && r.OpenInterest.Value >= 0 {
		oi := r.OpenInterest.Value
		if in.kind == linear {
			coins := oi * in.size
			add(exchanges.OpenInterestCoins, coins*inst.Multiplier)
			if mark > 0 {
				add(exchanges.OpenInterestUSD, coins*mark)
			}
		} else if usd, ok := in.notional(oi, mark, btcUSD); ok && (in.kind == inverse || mark > 0) {
			add(exchanges.OpenInterestUSD, usd)
			if mark > 0 {
				add(exchanges.OpenInterestCoins, usd/mark*inst.Multiplier)
			}
		}
	}
	if r.ForeignNotional24h.Set && r.ForeignNotional24h.Value >= 0 {
		add(exchanges.Volume24hUSD, r.ForeignNotional24h.Value)
	}
	if r.Typ != TypPerpetual {
		return out
	}
	if r.FundingRate.Set {
		add(exchanges.FundingRate, r.FundingRate.Value)
	}
	if t, err := time.Parse(time.RFC3339Nano, r.FundingTimestamp); err == nil && t.Unix() > 0 {
		add(exchanges.FundingNextTimestamp, float64(t.UnixMilli())/1000)
	}
	if d, ok := fundingInterval(r.FundingInterval); ok {
		add(exchanges.FundingIntervalSeconds, d.Seconds())
	}
	return out
}

// intervalEpoch is the origin BitMEX expresses intervals from.
var intervalEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// fundingInterval parses BitMEX's interval form, a timestamp whose offset
// from 2000-01-01T00:00:00Z is the interval ("2000-01-01T08:00:00.000Z" is
// 8 h).
func fundingInterval(s string) (time.Duration, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	d := t.Sub(intervalEpoch)
	return d, d > 0 && d <= 7*24*time.Hour
}
