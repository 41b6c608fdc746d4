package binance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// exchangeInfo is the part of GET /fapi/v1/exchangeInfo and
// /dapi/v1/exchangeInfo the exporter uses.
type exchangeInfo struct {
	Symbols []symbolInfo `json:"symbols"`
}

type symbolInfo struct {
	Symbol         string           `json:"symbol"`
	Pair           string           `json:"pair"`
	ContractType   string           `json:"contractType"`
	Status         string           `json:"status"`         // USDⓈ-M
	ContractStatus string           `json:"contractStatus"` // COIN-M
	BaseAsset      string           `json:"baseAsset"`
	QuoteAsset     string           `json:"quoteAsset"`
	MarginAsset    string           `json:"marginAsset"`
	ContractSize   exchanges.Number `json:"contractSize"` // COIN-M: USD per contract
}

// errRateLimited is returned while Binance's Retry-After is in force.
var errRateLimited = errors.New("skipped: Binance asked to back off (HTTP 418/429)")

// get fetches path (with query) from the market's REST base, honouring a
// ban or back-off that any earlier answer of this market announced.
func (m *market) get(ctx context.Context, path string, v any) error {
	if until := m.bannedUntil.Load(); until > time.Now().UnixNano() {
		return &exchanges.HTTPError{URL: m.rest + path, StatusCode: 429,
			RetryAfter: time.Until(time.Unix(0, until)).Round(time.Second) + time.Second, Body: errRateLimited.Error()}
	}
	hdr, err := m.v.cfg.Client.GetJSON(ctx, m.rest+path, v)
	if w, perr := strconv.ParseInt(hdr.Get("X-MBX-USED-WEIGHT-1M"), 10, 64); perr == nil {
		m.usedWeight.Store(w)
	}
	var herr *exchanges.HTTPError
	if errors.As(err, &herr) && herr.RateLimited() {
		wait := herr.RetryAfter
		if wait <= 0 {
			wait = time.Minute
		}
		m.bannedUntil.Store(time.Now().Add(wait).UnixNano())
	}
	return err
}

// discover fetches exchangeInfo and declares the instrument list.
func (m *market) discover(ctx context.Context) error {
	var info exchangeInfo
	if err := m.get(ctx, m.apiPrefix+"/exchangeInfo", &info); err != nil {
		return err
	}
	list, filtered, skipped := m.instrumentsFrom(info)
	if len(list) == 0 && len(filtered) == 0 {
		return fmt.Errorf("exchangeInfo listed no trading instruments (%d skipped)", skipped)
	}
	byName := make(map[string]*exchanges.Instrument, len(list)+len(filtered))
	for _, s := range filtered {
		byName[s] = nil // known, but excluded by the coin allowlist
	}
	for _, inst := range list {
		byName[inst.Symbol] = inst
	}
	old := *m.instruments.Load()
	m.sink.SetInstruments(Name, m.market, list)
	m.instruments.Store(&byName)
	if len(old) != len(byName) {
		m.log.Info("instruments discovered", "count", len(list), "excluded_by_coins", len(filtered), "skipped", skipped)
	}
	return nil
}

// instrumentsFrom turns exchangeInfo into instruments: trading contracts
// only, perpetual and dated, filtered by the coin allowlist. filtered names
// the trading symbols the allowlist excludes; skipped counts unusable rows.
func (m *market) instrumentsFrom(info exchangeInfo) (list []*exchanges.Instrument, filtered []string, skipped int) {
	for _, s := range info.Symbols {
		status := s.Status
		if m.kind == coinm {
			status = s.ContractStatus
		}
		if status != "TRADING" || s.Symbol == "" || s.BaseAsset == "" {
			continue
		}
		coin, mult := exchanges.NormalizeCoin(s.BaseAsset)
		if !m.coins.Allows(coin) {
			filtered = append(filtered, s.Symbol)
			continue
		}
		inst := &exchanges.Instrument{
			Exchange:     Name,
			Market:       m.market,
			Symbol:       s.Symbol,
			Coin:         coin,
			Quote:        s.QuoteAsset,
			ContractType: contractType(s.ContractType),
			ContractSize: 1,
			Multiplier:   mult,
		}
		if m.kind == coinm {
			if !s.ContractSize.Positive() {
				m.log.Warn("skipping COIN-M instrument without a contract size", "symbol", s.Symbol)
				skipped++
				continue
			}
			inst.ContractSize = s.ContractSize.Value
		}
		list = append(list, inst)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Symbol < list[j].Symbol })
	return list, filtered, skipped
}

// contractType maps Binance's contractType to the exporter's label value.
func contractType(ct string) string {
	if strings.Contains(ct, "PERPETUAL") || ct == "" {
		return exchanges.Perpetual
	}
	return exchanges.Future // CURRENT_QUARTER, NEXT_QUARTER, CURRENT_MONTH, ...
}

// fundingInfo lists the symbols whose funding interval differs from the default.
type fundingInfo struct {
	Symbol               string `json:"symbol"`
	FundingIntervalHours int    `json:"fundingIntervalHours"`
}

// DefaultFundingInterval applies to every perpetual fundingInfo does not list.
const DefaultFundingInterval = 8 * time.Hour

func (m *market) pollFundingInfo(ctx context.Context) error {
	var rows []fundingInfo
	if err := m.get(ctx, m.apiPrefix+"/fundingInfo", &rows); err != nil {
		return err
	}
	hours := make(map[string]int, len(rows))
	for _, r := range rows {
		if r.FundingIntervalHours > 0 && r.FundingIntervalHours <= 24 {
			hours[r.Symbol] = r.FundingIntervalHours
		}
	}
	m.mu.Lock()
	m.fundingHours = hours
	m.mu.Unlock()
	return nil
}

// fundingInterval returns the funding interval of a perpetual.
func (m *market) fundingInterval(symbol string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.fundingHours[symbol]; ok {
		return time.Duration(h) * time.Hour
	}
	return DefaultFundingInterval
}
