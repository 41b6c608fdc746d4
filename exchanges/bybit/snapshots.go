package bybit

import (
	"context"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// staleAfter is how many poll periods a value survives without a refresh.
const staleAfter = 3

// tickersPage is the result of GET /v5/market/tickers?category=...
type tickersPage struct {
	Category string   `json:"category"`
	List     []ticker `json:"list"`
}

// ticker is the part of a linear/inverse ticker the exporter uses. Bybit
// serves every number as a string; "" means not applicable (e.g. the
// funding rate of a dated future).
type ticker struct {
	Symbol    string           `json:"symbol"`
	MarkPrice exchanges.Number `json:"markPrice"`
	// Open interest. Since the 2026-06-11 changelog openInterest is "both
	// sides" and singleOpenInterest one side (documented); the exporter
	// uses one side, like every other venue. Linear: *OpenInterest in base
	// coin, *OpenInterestValue in USDT/USDC. Inverse: *OpenInterest in USD,
	// *OpenInterestValue in coin (documented).
	OpenInterest            exchanges.Number `json:"openInterest"`
	OpenInterestValue       exchanges.Number `json:"openInterestValue"`
	SingleOpenInterest      exchanges.Number `json:"singleOpenInterest"`
	SingleOpenInterestValue exchanges.Number `json:"singleOpenInterestValue"`
	// 24 h: linear turnover24h in USDT/USDC, volume24h in base coin;
	// inverse volume24h in USD contracts, turnover24h in coin (documented).
	Turnover24h exchanges.Number `json:"turnover24h"`
	Volume24h   exchanges.Number `json:"volume24h"`
	FundingRate exchanges.Number `json:"fundingRate"`
	// NextFundingTime is in ms; FundingIntervalHour in hours (documented).
	NextFundingTime     exchanges.Number `json:"nextFundingTime"`
	FundingIntervalHour exchanges.Number `json:"fundingIntervalHour"`
}

// pollTickers stores mark price, funding rate, funding interval, next
// funding time, open interest and 24 h turnover of every instrument (one
// request per category).
func (m *market) pollTickers(ctx context.Context) error {
	var page tickersPage
	if err := m.get(ctx, "/v5/market/tickers?category="+m.kind, &page); err != nil {
		return err
	}
	ttl := staleAfter * m.v.cfg.PollInterval
	minutes := *m.fundingMinutes.Load()
	values := make([]exchanges.MarketValue, 0, 8*len(page.List))
	for _, t := range page.List {
		inst, _ := m.lookup([]byte(t.Symbol))
		if inst == nil {
			continue // not trading, filtered out, or listed since the last discovery
		}
		values = m.tickerValues(values, inst, t, minutes[t.Symbol], ttl)
	}
	m.sink.SetMarketValues(values)
	return nil
}

// tickerValues appends the gauges of one ticker by the project's rules.
// fundingMinutes is instruments-info's interval (0 if unknown).
func (m *market) tickerValues(out []exchanges.MarketValue, inst *exchanges.Instrument, t ticker, fundingMinutes float64, ttl time.Duration) []exchanges.MarketValue {
	add := func(f exchanges.Field, v float64) {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: f, Value: v, TTL: ttl})
	}
	mark, haveMark := t.MarkPrice.Value, t.MarkPrice.Positive()
	if haveMark {
		add(exchanges.MarkPrice, mark)
	}

	if inst.ContractType == exchanges.Perpetual && t.FundingRate.Set {
		add(exchanges.FundingRate, t.FundingRate.Value)
		switch {
		case t.FundingIntervalHour.Positive():
			add(exchanges.FundingIntervalSeconds, t.FundingIntervalHour.Value*3600)
		case fundingMinutes > 0:
			add(exchanges.FundingIntervalSeconds, fundingMinutes*60)
		}
		if t.NextFundingTime.Positive() {
			add(exchanges.FundingNextTimestamp, t.NextFundingTime.Value/1000)
		}
	}

	// One side of the open interest: the single* pair when Bybit serves it,
	// else the older fields. The two pairs are never mixed.
	oi, oiValue := t.OpenInterest, t.OpenInterestValue
	if t.SingleOpenInterest.Set {
		oi, oiValue = t.SingleOpenInterest, t.SingleOpenInterestValue
	}
	if oi.Set && oi.Value >= 0 {
		switch inst.Market {
		case exchanges.Linear: // base units; 1000PEPE counts 1000 PEPE
			add(exchanges.OpenInterestCoins, oi.Value*inst.Multiplier)
			switch {
			case oiValue.Set && oiValue.Value >= 0: // USDT/USDC at par
				add(exchanges.OpenInterestUSD, oiValue.Value)
			case haveMark:
				add(exchanges.OpenInterestUSD, oi.Value*mark)
			}
		case exchanges.Inverse: // USD contracts of ContractSize USD
			usd := oi.Value * inst.ContractSize
			add(exchanges.OpenInterestUSD, usd)
			switch {
			case oiValue.Set && oiValue.Value >= 0: // coin
				add(exchanges.OpenInterestCoins, oiValue.Value*inst.Multiplier)
			case haveMark:
				add(exchanges.OpenInterestCoins, usd/mark*inst.Multiplier)
			}
		}
	}

	switch inst.Market {
	case exchanges.Linear:
		if t.Turnover24h.Set && t.Turnover24h.Value >= 0 {
			add(exchanges.Volume24hUSD, t.Turnover24h.Value)
		}
	case exchanges.Inverse:
		if t.Volume24h.Set && t.Volume24h.Value >= 0 {
			add(exchanges.Volume24hUSD, t.Volume24h.Value*inst.ContractSize)
		}
	}
	return out
}
