package gate

import (
	"context"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// staleAfter is how many poll periods a value survives without a refresh.
const staleAfter = 3

func (v *Venue) ttl() time.Duration { return staleAfter * v.cfg.PollInterval }

// tickerRow is the part of GET /api/v4/futures/{settle}/tickers the
// exporter uses (documented; numbers are strings).
type tickerRow struct {
	Contract       string           `json:"contract"`
	TotalSize      exchanges.Number `json:"total_size"` // open interest in contracts
	MarkPrice      exchanges.Number `json:"mark_price"`
	FundingRate    exchanges.Number `json:"funding_rate"`
	Volume24hQuote exchanges.Number `json:"volume_24h_quote"`
}

// pollTickers stores open interest, funding, mark price and 24 h volume of
// every contract of the settle (one request), with the funding interval and
// next funding time from the last contracts discovery.
func (s *settle) pollTickers(ctx context.Context) error {
	var rows []tickerRow
	if err := s.v.get(ctx, "/api/v4/futures/"+s.name+"/tickers", &rows); err != nil {
		return err
	}
	ttl := s.v.ttl()
	now := time.Now()
	values := make([]exchanges.MarketValue, 0, 7*len(rows))
	for _, r := range rows {
		c := s.v.lookup([]byte(r.Contract))
		if c == nil || c.inst == nil || c.settle != s.name {
			continue
		}
		values = tickerValues(values, c, r, now, ttl)
	}
	s.v.sink.SetMarketValues(values)
	return nil
}

// tickerValues appends the gauges of one ticker by the project's rules:
// open interest coins = total_size x quanto_multiplier (x the coin
// multiplier), USD = coins x mark (linear); inverse total_size is USD
// contracts (1 USD each, assumed), coins = USD / mark. Funding rate and mark
// as given; volume volume_24h_quote; next funding funding_next_apply, rolled
// forward by funding_interval once it has passed (the contracts list is
// refreshed less often than the tickers).
func tickerValues(out []exchanges.MarketValue, c *contract, r tickerRow, now time.Time, ttl time.Duration) []exchanges.MarketValue {
	inst := c.inst
	add := func(f exchanges.Field, v float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: v, TTL: ttl})
	}
	mark := 0.0
	if r.MarkPrice.Positive() {
		mark = r.MarkPrice.Value
		add(exchanges.MarkPrice, mark)
	}
	if r.TotalSize.Set && r.TotalSize.Value >= 0 {
		if inst.Market == exchanges.Inverse {
			usd := r.TotalSize.Value * c.size
			add(exchanges.OpenInterestUSD, usd)
			if mark > 0 {
				add(exchanges.OpenInterestCoins, usd/mark)
			}
		} else {
			coins := r.TotalSize.Value * c.size
			add(exchanges.OpenInterestCoins, coins*inst.Multiplier)
			if mark > 0 {
				add(exchanges.OpenInterestUSD, coins*mark)
			}
		}
	}
	if r.FundingRate.Set {
		add(exchanges.FundingRate, r.FundingRate.Value)
	}
	if r.Volume24hQuote.Set && r.Volume24hQuote.Value >= 0 {
		add(exchanges.Volume24hUSD, r.Volume24hQuote.Value)
	}
	if c.fundingInterval > 0 {
		add(exchanges.FundingIntervalSeconds, c.fundingInterval)
	}
	if next := nextFunding(c.fundingNext, c.fundingInterval, now); next > 0 {
		add(exchanges.FundingNextTimestamp, next)
	}
	return out
}

// nextFunding returns next, advanced by whole intervals past now.
func nextFunding(next, interval float64, now time.Time) float64 {
	if next <= 0 {
		return 0
	}
	t := float64(now.Unix())
	if next <= t && interval > 0 {
		next += interval * float64(int64((t-next)/interval)+1)
	}
	return next
}
