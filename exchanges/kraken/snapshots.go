package kraken

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// tickersResponse is the answer of GET /derivatives/api/v3/tickers: every
// product (futures and indices) in one list.
type tickersResponse struct {
	envelope
	Tickers []ticker `json:"tickers"`
}

// ticker holds the fields the exporter uses (reference section 10). The
// keys differ in more than case, so encoding/json's case-insensitive
// matching cannot confuse them.
type ticker struct {
	Symbol              string `json:"symbol"`
	Suspended           bool   `json:"suspended"`
	MarkPrice           number `json:"markPrice"`           // USD per base unit
	OpenInterest        number `json:"openInterest"`        // contracts: PF_ base units, PI_ USD
	Vol24h              number `json:"vol24h"`              // contracts (UNVERIFIED unit)
	FundingRate         number `json:"fundingRate"`         // absolute, per hour
	RelativeFundingRate number `json:"relativeFundingRate"` // ratio, per hour; sometimes absent
}

// number is a field that never fails the decoding of the whole answer.
type number = exchanges.LenientNumber

// pollTickers fetches every ticker and stores the gauges of the discovered,
// non-suspended products. A failed request or an error envelope stores
// nothing, so the previous values stay until they expire.
func (v *Venue) pollTickers(ctx context.Context) error {
	var resp tickersResponse
	if err := v.get(ctx, tickersPath, &resp); err != nil {
		return fmt.Errorf("tickers: %w", err)
	}
	if resp.Result != "success" {
		return fmt.Errorf("tickers: result %q: %s", resp.Result, resp.Error)
	}
	values, bad := v.marketValues(resp.Tickers, v.now(), staleAfter*v.cfg.PollInterval)
	if bad > 0 && v.logThrottle.Allow("bad tickers") {
		v.log.Debug("skipped unusable values in tickers", "count", bad)
	}
	v.sink.SetMarketValues(values)
	return nil
}

// marketValues turns tickers into gauges by the project's rules. Tickers of
// products that were not discovered (indices such as in_xbtusd, products
// listed since the last discovery, products the allowlist excludes) and
// suspended products are skipped.
//
//   - mark price: markPrice.
//   - funding (perpetuals): relativeFundingRate when present, otherwise
//     fundingRate / markPrice; interval 3600 s; next funding the next top of
//     the hour.
//   - open interest: linear (PF_) openInterest x contractSize base units,
//     coins = that x the coin multiplier, USD = that x markPrice; inverse
//     (PI_/FI_) openInterest x contractSize USD, coins = USD / markPrice x
//     the coin multiplier.
//   - 24 h volume (UNVERIFIED: vol24h taken in contracts, like qty): linear
//     vol24h x contractSize x markPrice (valued at the current mark, an
//     approximation of the day's turnover); inverse vol24h x contractSize USD.
//
// bad counts values that were present but unusable.
func (v *Venue) marketValues(tickers []ticker, now time.Time, ttl time.Duration) (out []exchanges.MarketValue, bad int) {
	out = make([]exchanges.MarketValue, 0, 8*len(tickers))
	next := exchanges.NextBoundary(now, FundingInterval)
	for _, t := range tickers {
		inst, _ := v.lookup([]byte(t.Symbol))
		if inst == nil || t.Suspended {
			continue
		}
		add := func(f exchanges.Field, val float64) {
			if math.IsInf(val, 0) || math.IsNaN(val) {
				bad++
				return
			}
			out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: val, TTL: ttl})
		}
		usable := func(n number, allowNegative bool) bool {
			ok := n.Set && (allowNegative || n.Value >= 0)
			if !ok && (n.Bad || n.Set) {
				bad++
			}
			return ok
		}
		mark := 0.0
		if usable(t.MarkPrice, false) {
			if t.MarkPrice.Value > 0 {
				mark = t.MarkPrice.Value
				add(exchanges.MarkPrice, mark)
			} else {
				bad++
			}
		}
		if inst.ContractType == exchanges.Perpetual {
			rate, ok := 0.0, false
			switch {
			case usable(t.RelativeFundingRate, true):
				rate, ok = t.RelativeFundingRate.Value, true
			case usable(t.FundingRate, true) && mark > 0:
				rate, ok = t.FundingRate.Value/mark, true
			}
			if ok {
				add(exchanges.FundingRate, rate)
				add(exchanges.FundingIntervalSeconds, FundingInterval.Seconds())
				add(exchanges.FundingNextTimestamp, next)
			}
		}
		cs := inst.ContractSize
		if usable(t.OpenInterest, false) {
			oi := t.OpenInterest.Value * cs
			if inst.Market == exchanges.Inverse {
				add(exchanges.OpenInterestUSD, oi)
				if mark > 0 {
					add(exchanges.OpenInterestCoins, oi/mark*inst.Multiplier)
				}
			} else {
				add(exchanges.OpenInterestCoins, oi*inst.Multiplier)
				if mark > 0 {
					add(exchanges.OpenInterestUSD, oi*mark)
				}
			}
		}
		if usable(t.Vol24h, false) {
			vol := t.Vol24h.Value * cs
			if inst.Market == exchanges.Inverse {
				add(exchanges.Volume24hUSD, vol)
			} else if mark > 0 {
				add(exchanges.Volume24hUSD, vol*mark)
			}
		}
	}
	return out, bad
}
