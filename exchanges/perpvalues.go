package exchanges

import (
	"math"
	"time"
)

// PerpValues are the values of one perpetual as dYdX and Hyperliquid serve
// them: the mark price, the funding rate per funding interval, the open
// interest in the venue's units of the base coin (Inst.Multiplier coins
// each) and the 24 h volume in USD.
type PerpValues struct {
	Inst         *Instrument
	Mark         LenientNumber
	Funding      LenientNumber
	OpenInterest LenientNumber
	Volume24hUSD LenientNumber
}

// AppendPerpValues appends the gauges of v by the project's rules: mark
// price; funding rate with its interval and the next funding time next
// (unix seconds); open interest in coins (x Multiplier) and, with a mark
// price, in USD (x mark); 24 h volume. A value that is unset, not finite,
// or negative where it cannot be (prices, open interest, volume) is
// skipped, as is a zero mark price; bad counts the skipped values that were
// present but unusable, and products too large to be finite.
func AppendPerpValues(out []MarketValue, v PerpValues, interval time.Duration, next float64, ttl time.Duration) (_ []MarketValue, bad int) {
	add := func(f Field, val float64) {
		if math.IsInf(val, 0) || math.IsNaN(val) {
			bad++
			return
		}
		out = append(out, MarketValue{Instrument: v.Inst, Field: f, Value: val, TTL: ttl})
	}
	usable := func(n LenientNumber, allowNegative bool) bool {
		ok := n.Set && !math.IsNaN(n.Value) && !math.IsInf(n.Value, 0) && (allowNegative || n.Value >= 0)
		if !ok && (n.Bad || n.Set) {
			bad++
		}
		return ok
	}
	haveMark := usable(v.Mark, false)
	if haveMark && v.Mark.Value == 0 {
		haveMark = false
		bad++
	}
	if haveMark {
		add(MarkPrice, v.Mark.Value)
	}
	if usable(v.Funding, true) {
		add(FundingRate, v.Funding.Value)
		add(FundingIntervalSeconds, interval.Seconds())
		add(FundingNextTimestamp, next)
	}
	if usable(v.OpenInterest, false) {
		add(OpenInterestCoins, v.OpenInterest.Value*v.Inst.Multiplier)
		if haveMark {
			add(OpenInterestUSD, v.OpenInterest.Value*v.Mark.Value)
		}
	}
	if usable(v.Volume24hUSD, false) {
		add(Volume24hUSD, v.Volume24hUSD.Value)
	}
	return out, bad
}
