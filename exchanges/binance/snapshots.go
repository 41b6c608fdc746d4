package binance

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// staleAfter is how many poll periods a value survives without a refresh.
const staleAfter = 3

type premiumIndex struct {
	Symbol          string           `json:"symbol"`
	MarkPrice       exchanges.Number `json:"markPrice"`
	LastFundingRate exchanges.Number `json:"lastFundingRate"` // "" for delivery contracts
	NextFundingTime exchanges.Number `json:"nextFundingTime"` // ms; 0 for delivery contracts
}

// pollPremiumIndex stores mark price, funding rate, funding interval and the
// next funding time of every instrument (one request, weight 10).
func (m *market) pollPremiumIndex(ctx context.Context) error {
	var rows []premiumIndex
	if err := m.get(ctx, m.apiPrefix+"/premiumIndex", &rows); err != nil {
		return err
	}
	ttl := staleAfter * m.v.cfg.PollInterval
	values := make([]exchanges.MarketValue, 0, 4*len(rows))
	marks := make(map[string]float64, len(rows))
	bad := 0
	for _, r := range rows {
		inst, _ := m.lookup([]byte(r.Symbol))
		if inst == nil {
			continue // not trading, filtered out, or listed since the last discovery
		}
		if !r.MarkPrice.Positive() {
			bad++
			continue
		}
		marks[r.Symbol] = r.MarkPrice.Value
		values = append(values, exchanges.MarketValue{Instrument: inst, Field: exchanges.MarkPrice, Value: r.MarkPrice.Value, TTL: ttl})
		if inst.ContractType == exchanges.Perpetual && r.LastFundingRate.Set {
			values = append(values,
				exchanges.MarketValue{Instrument: inst, Field: exchanges.FundingRate, Value: r.LastFundingRate.Value, TTL: ttl},
				exchanges.MarketValue{Instrument: inst, Field: exchanges.FundingIntervalSeconds, Value: m.fundingInterval(r.Symbol).Seconds(), TTL: ttl})
			if r.NextFundingTime.Positive() {
				values = append(values, exchanges.MarketValue{Instrument: inst, Field: exchanges.FundingNextTimestamp, Value: r.NextFundingTime.Value / 1000, TTL: ttl})
			}
		}
	}
	m.mu.Lock()
	for s, p := range marks {
		m.marks[s] = p
	}
	m.mu.Unlock()
	m.sink.SetMarketValues(values)
	if bad > 0 && m.logThrottle.Allow("premium_bad") {
		m.log.Warn("premiumIndex rows without a valid mark price were skipped", "count", bad)
	}
	return nil
}

func (m *market) mark(symbol string) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.marks[symbol]
	return p, ok
}

type ticker24h struct {
	Symbol      string           `json:"symbol"`
	Volume      exchanges.Number `json:"volume"`      // USDⓈ-M: base asset; COIN-M: contracts
	QuoteVolume exchanges.Number `json:"quoteVolume"` // USDⓈ-M: quote asset (USDT/USDC, at par with USD)
}

// pollTicker24h stores the rolling 24 h turnover in USD (one request, weight 40).
func (m *market) pollTicker24h(ctx context.Context) error {
	var rows []ticker24h
	if err := m.get(ctx, m.apiPrefix+"/ticker/24hr", &rows); err != nil {
		return err
	}
	ttl := staleAfter * m.v.cfg.PollInterval
	values := make([]exchanges.MarketValue, 0, len(rows))
	for _, r := range rows {
		inst, _ := m.lookup([]byte(r.Symbol))
		if inst == nil {
			continue
		}
		var usd float64
		switch m.kind {
		case usdm:
			if !r.QuoteVolume.Set || r.QuoteVolume.Value < 0 {
				continue
			}
			usd = r.QuoteVolume.Value
		case coinm:
			if !r.Volume.Set || r.Volume.Value < 0 {
				continue
			}
			usd = r.Volume.Value * inst.ContractSize
		}
		values = append(values, exchanges.MarketValue{Instrument: inst, Field: exchanges.Volume24hUSD, Value: usd, TTL: ttl})
	}
	m.sink.SetMarketValues(values)
	return nil
}

type openInterest struct {
	Symbol       string           `json:"symbol"`
	OpenInterest exchanges.Number `json:"openInterest"` // USDⓈ-M: base asset; COIN-M: contracts
}

// OpenInterestWorkers is how many open interest requests run at once.
const OpenInterestWorkers = 4

// openInterestPlan returns how many symbols one round polls and how long a
// full cycle over n symbols takes, for a weight budget per minute.
func openInterestPlan(n, weightPerMinute int, interval time.Duration) (batch int, cycle time.Duration) {
	batch = int(float64(weightPerMinute) * interval.Minutes() / weightOpenInterest)
	batch = max(1, min(batch, n))
	rounds := (n + batch - 1) / max(batch, 1)
	return batch, time.Duration(max(rounds, 1)) * interval
}

// pollOpenInterest polls the next batch of symbols, round robin, so that the
// per-symbol requests stay within OpenInterestWeightPerMinute.
func (m *market) pollOpenInterest(ctx context.Context) error {
	if w := m.usedWeight.Load(); w > weightHighWater {
		m.log.Warn("skipping an open interest round: used request weight is high", "used_weight_1m", w)
		return nil
	}
	byName := *m.instruments.Load()
	symbols := make([]string, 0, len(byName))
	for s, inst := range byName {
		if inst != nil {
			symbols = append(symbols, s)
		}
	}
	if len(symbols) == 0 {
		return nil
	}
	sort.Strings(symbols)
	batch, cycle := openInterestPlan(len(symbols), m.v.cfg.OpenInterestWeightPerMinute, m.v.cfg.PollInterval)
	m.mu.Lock()
	start := m.oiCursor % len(symbols)
	m.oiCursor = (start + batch) % len(symbols)
	m.mu.Unlock()
	todo := make([]string, 0, batch)
	for i := range batch {
		todo = append(todo, symbols[(start+i)%len(symbols)])
	}

	ttl := staleAfter * cycle
	var (
		mu     sync.Mutex
		values []exchanges.MarketValue
		errs   []error
		wg     sync.WaitGroup
		next   = make(chan string)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range OpenInterestWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sym := range next {
				vs, err := m.openInterestOf(ctx, byName[sym], ttl)
				mu.Lock()
				values = append(values, vs...)
				if err != nil {
					errs = append(errs, err)
					var herr *exchanges.HTTPError
					if errors.As(err, &herr) && herr.RateLimited() {
						cancel() // stop the round; the poller backs off
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, s := range todo {
		select {
		case next <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	m.sink.SetMarketValues(values)
	if len(errs) > 0 {
		// A rate-limit error first, so the poller honours Retry-After.
		for _, err := range errs {
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				return err
			}
		}
		return fmt.Errorf("%d of %d open interest requests failed, first: %w", len(errs), len(todo), errs[0])
	}
	return nil
}

func (m *market) openInterestOf(ctx context.Context, inst *exchanges.Instrument, ttl time.Duration) ([]exchanges.MarketValue, error) {
	var r openInterest
	if err := m.get(ctx, m.apiPrefix+"/openInterest?symbol="+url.QueryEscape(inst.Symbol), &r); err != nil {
		return nil, err
	}
	if !r.OpenInterest.Set || r.OpenInterest.Value < 0 {
		return nil, fmt.Errorf("open interest of %s: invalid value", inst.Symbol)
	}
	oi := r.OpenInterest.Value
	mark, haveMark := m.mark(inst.Symbol)
	var coins, usd float64
	haveCoins, haveUSD := true, haveMark
	switch m.kind {
	case usdm: // base units; 1000PEPE counts 1000 PEPE
		coins = oi * inst.Multiplier
		usd = oi * mark
	case coinm: // contracts of ContractSize USD each
		usd, haveUSD = oi*inst.ContractSize, true
		haveCoins = haveMark
		if haveMark {
			coins = usd / mark * inst.Multiplier
		}
	}
	out := make([]exchanges.MarketValue, 0, 2)
	if haveCoins {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: exchanges.OpenInterestCoins, Value: coins, TTL: ttl})
	}
	if haveUSD {
		out = append(out, exchanges.MarketValue{Instrument: inst, Field: exchanges.OpenInterestUSD, Value: usd, TTL: ttl})
	}
	return out, nil
}

// LongShortInterval is the minimum time between long/short account ratio
// rounds: Binance computes the ratio over 5-minute periods.
const LongShortInterval = time.Minute

type longShortRow struct {
	Symbol         string           `json:"symbol"`
	LongShortRatio exchanges.Number `json:"longShortRatio"`
}

// pollLongShort stores the global long/short account ratio of each
// configured coin's <COIN>USDT perpetual (one request per coin; these
// endpoints are limited to 1000 requests per 5 minutes per IP and carry no
// request weight).
func (m *market) pollLongShort(ctx context.Context) error {
	ttl := staleAfter * max(m.v.cfg.PollInterval, LongShortInterval)
	var values []exchanges.MarketValue
	var errs []error
	for _, coin := range m.v.cfg.LongShortCoins {
		inst, _ := m.lookup([]byte(coin + "USDT"))
		if inst == nil || inst.ContractType != exchanges.Perpetual {
			continue // not listed, or excluded by the coin allowlist
		}
		var rows []longShortRow
		path := "/futures/data/globalLongShortAccountRatio?period=5m&limit=1&symbol=" + url.QueryEscape(inst.Symbol)
		if err := m.get(ctx, path, &rows); err != nil {
			errs = append(errs, err)
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				break
			}
			continue
		}
		if len(rows) == 0 {
			continue // no data published for this period yet
		}
		r := rows[len(rows)-1]
		if !r.LongShortRatio.Positive() {
			errs = append(errs, fmt.Errorf("long/short ratio of %s: invalid value", inst.Symbol))
			continue
		}
		values = append(values, exchanges.MarketValue{Instrument: inst, Field: exchanges.LongShortAccountRatio, Value: r.LongShortRatio.Value, TTL: ttl})
	}
	m.sink.SetMarketValues(values)
	if len(errs) > 0 {
		for _, err := range errs {
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				return err
			}
		}
		return fmt.Errorf("%d long/short ratio requests failed, first: %w", len(errs), errs[0])
	}
	return nil
}
