package kraken

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Instrument types of /derivatives/api/v3/instruments (UNVERIFIED values,
// as seen in Kraken's answers): flexible_futures are the multi-collateral
// linear contracts (PF_ perpetuals, FF_ dated), futures_inverse the
// coin-margined ones (PI_ perpetuals, FI_ dated), futures_vanilla the
// older USD-settled linear ones. Every other type (e.g. "spot index" for
// in_/rr_ indices) is not a future and is skipped.
const (
	typeFlexible = "flexible_futures"
	typeInverse  = "futures_inverse"
	typeVanilla  = "futures_vanilla"
)

// defaultQuote is the quote asset when the instrument does not name one.
const defaultQuote = "USD"

// instrumentsResponse is the answer of GET /derivatives/api/v3/instruments.
type instrumentsResponse struct {
	envelope
	Instruments []instrument `json:"instruments"`
}

// instrument holds the fields the exporter uses. The keys differ in more
// than case, so encoding/json's case-insensitive matching cannot confuse them.
type instrument struct {
	Symbol       string           `json:"symbol"`
	Type         string           `json:"type"`
	Tradeable    bool             `json:"tradeable"`
	ContractSize exchanges.Number `json:"contractSize"`
	Base         string           `json:"base"`  // flexible futures only (UNVERIFIED)
	Quote        string           `json:"quote"` // flexible futures only (UNVERIFIED)
}

// discover fetches the instruments, declares both markets' lists when they
// changed and moves the trade subscriptions to the new product set.
func (v *Venue) discover(ctx context.Context) error {
	var resp instrumentsResponse
	if err := v.get(ctx, instrumentsPath, &resp); err != nil {
		return fmt.Errorf("instruments: %w", err)
	}
	if resp.Result != "success" {
		return fmt.Errorf("instruments: result %q: %s", resp.Result, resp.Error)
	}
	byMarket, excluded, skipped := v.instrumentsFrom(resp.Instruments)
	if len(byMarket[exchanges.Linear])+len(byMarket[exchanges.Inverse])+len(excluded) == 0 {
		return fmt.Errorf("instruments: no tradeable futures listed (%d skipped)", skipped)
	}
	byName := make(map[string]*exchanges.Instrument, len(resp.Instruments))
	for _, s := range excluded {
		byName[s] = nil
	}
	var products []string
	for _, mk := range []exchanges.Market{exchanges.Linear, exchanges.Inverse} {
		list := byMarket[mk]
		for _, inst := range list {
			byName[inst.Symbol] = inst
			products = append(products, inst.Symbol)
		}
		if old, ok := v.declared[mk]; !ok || !exchanges.SameInstruments(old, list) {
			v.sink.SetInstruments(Name, mk, list)
			v.declared[mk] = list
			v.log.Info("instruments declared", "market", mk, "count", len(list))
		}
	}
	v.instruments.Store(&byName)
	if skipped > 0 && v.logThrottle.Allow("skipped instruments") {
		v.log.Debug("instruments that are not tradeable futures were skipped", "count", skipped)
	}
	slices.Sort(products)
	v.trades.assign(products)
	return nil
}

// instrumentsFrom turns the instruments answer into instruments per market,
// sorted by symbol: tradeable futures only, perpetual and dated, filtered by
// the coin allowlist. excluded names the futures the allowlist excludes;
// skipped counts the rows that are not tradeable futures or are unusable.
func (v *Venue) instrumentsFrom(rows []instrument) (out map[exchanges.Market][]*exchanges.Instrument, excluded []string, skipped int) {
	out = map[exchanges.Market][]*exchanges.Instrument{}
	for _, r := range rows {
		inst, ok := parseInstrument(r)
		if !ok {
			skipped++
			continue
		}
		if !v.coins.Allows(inst.Coin) {
			excluded = append(excluded, inst.Symbol)
			continue
		}
		out[inst.Market] = append(out[inst.Market], inst)
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b *exchanges.Instrument) int { return strings.Compare(a.Symbol, b.Symbol) })
	}
	return out, excluded, skipped
}

// parseInstrument maps one row to an instrument. The market comes from the
// type; perpetual or dated from the symbol prefix (P... perpetual, F...
// dated: PF_XBTUSD, PI_XBTUSD, FI_XBTUSD_240628); the coin from "base" when
// present, otherwise from the symbol (XBTUSD -> XBT -> BTC).
func parseInstrument(r instrument) (*exchanges.Instrument, bool) {
	if !r.Tradeable {
		return nil, false
	}
	var market exchanges.Market
	switch r.Type {
	case typeFlexible, typeVanilla:
		market = exchanges.Linear
	case typeInverse:
		market = exchanges.Inverse
	default:
		return nil, false
	}
	sym := r.Symbol
	if len(sym) < 4 || sym[2] != '_' {
		return nil, false
	}
	var contractType string
	switch sym[0] {
	case 'P':
		contractType = exchanges.Perpetual
	case 'F':
		contractType = exchanges.Future
	default:
		return nil, false
	}
	pair, _, _ := strings.Cut(sym[3:], "_") // dated: XBTUSD_240628
	quote := r.Quote
	if quote == "" {
		quote = defaultQuote
	}
	base := r.Base
	if base == "" {
		var ok bool
		if base, ok = strings.CutSuffix(pair, quote); !ok {
			return nil, false
		}
	}
	if base == "" {
		return nil, false
	}
	size := 1.0 // PF_ quantities are base units, PI_ contracts 1 USD
	if r.ContractSize.Set {
		if !(r.ContractSize.Value > 0) {
			return nil, false
		}
		size = r.ContractSize.Value
	}
	coin, mult := exchanges.NormalizeCoin(base)
	return &exchanges.Instrument{
		Exchange:     Name,
		Market:       market,
		Symbol:       sym,
		Coin:         coin,
		Quote:        strings.ToUpper(quote),
		ContractType: contractType,
		ContractSize: size,
		Multiplier:   mult,
	}, true
}
