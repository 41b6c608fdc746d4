package bitmex

import (
	"context"
	"fmt"
	"math"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// activePath is appended to Config.REST.
const activePath = "/api/v1/instrument/active"

// Instrument types (typ, the CFI code) the venue collects.
const (
	TypPerpetual = "FFWCSX"
	TypFuture    = "FFCCSX"
)

// kind is how a contract's value is computed.
type kind uint8

const (
	inverse kind = iota // value in USD per contract
	linear              // value in coins per contract
	quanto              // value in settlement coins per contract and USD of price
)

// instrument is a BitMEX contract with what the decoders need.
type instrument struct {
	symbol string
	inst   *exchanges.Instrument // nil when not collected (coin allowlist)
	kind   kind
	// size: inverse USD per contract (|multiplier| / scale); linear coins
	// (venue units) per contract (1 / underlyingToPositionMultiplier);
	// quanto settlement coins per contract and USD of price
	// (multiplier / scale).
	size float64
	row  int // index of its row in the answer it was discovered from
	// settleBTC is true when the settlement currency is XBt (quanto
	// values need the BTC/USD price); false for USDt (at par).
	settleBTC bool
}

// notional returns the USD value of qty contracts at price; false when it
// cannot be computed (a quanto contract before the BTC price is known).
func (in *instrument) notional(qty, price, btcUSD float64) (float64, bool) {
	switch in.kind {
	case inverse:
		return qty * in.size, true
	case linear:
		return qty * in.size * price, true
	}
	if !in.settleBTC {
		return qty * in.size * price, true
	}
	if !(btcUSD > 0) {
		return 0, false
	}
	return qty * in.size * price * btcUSD, true
}

// number is an exchanges.Number that never fails decoding: a value that is
// not a finite number is left unset, so one unusable field costs only its
// own gauge, not the poll.
type number struct{ exchanges.Number }

// UnmarshalJSON implements json.Unmarshaler.
func (n *number) UnmarshalJSON(b []byte) error {
	if err := n.Number.UnmarshalJSON(b); err != nil {
		n.Number = exchanges.Number{}
	}
	return nil
}

// instrumentRow is the part of an Instrument (GET /api/v1/instrument/active,
// documented field names) the exporter uses. No two keys differ only in
// case, so encoding/json's case-insensitive matching cannot confuse them.
type instrumentRow struct {
	Symbol        string `json:"symbol"`
	RootSymbol    string `json:"rootSymbol"`
	State         string `json:"state"`
	Typ           string `json:"typ"`
	Underlying    string `json:"underlying"`
	QuoteCurrency string `json:"quoteCurrency"`
	SettlCurrency string `json:"settlCurrency"`
	IsQuanto      bool   `json:"isQuanto"`
	IsInverse     bool   `json:"isInverse"`
	Multiplier    number `json:"multiplier"`
	// UnderlyingToPositionMultiplier: position units per coin (1e6 for
	// XBTUSDT, whose quantities are in millionths of a XBT).
	UnderlyingToPositionMultiplier number `json:"underlyingToPositionMultiplier"`

	FundingRate        number `json:"fundingRate"`
	FundingTimestamp   string `json:"fundingTimestamp"` // the next funding
	FundingInterval    string `json:"fundingInterval"`  // "2000-01-01T08:00:00.000Z" = 8 h
	OpenInterest       number `json:"openInterest"`     // contracts
	MarkPrice          number `json:"markPrice"`
	ForeignNotional24h number `json:"foreignNotional24h"` // 24 h volume in the quote currency
}

// settlement is what the venue knows of a settlement currency: the size of
// its minor unit in coins and whether it is bitcoin (else a USD stablecoin
// at par). BitMEX serves XBt (satoshi) and USDt (micro USDT).
var settlements = map[string]struct {
	scale float64
	btc   bool
}{
	"XBt": {1e8, true}, "XBT": {1, true},
	"USDt": {1e6, false}, "USDT": {1, false}, "USDC": {1, false},
}

// usdQuotes are the quote currencies whose prices are USD (stablecoins at par).
var usdQuotes = map[string]bool{"USD": true, "USDT": true, "USDC": true}

// pollOnce fetches instrument/active, declares the instrument list when it
// changed and stores the gauges. A failed request or an answer that is not
// an array of instruments stores nothing.
func (v *Venue) pollOnce(ctx context.Context) error {
	var rows []instrumentRow
	if _, err := v.cfg.Client.GetJSON(ctx, v.cfg.REST+activePath, &rows); err != nil {
		return fmt.Errorf("instrument/active: %w", err)
	}
	if px, ok := btcUSDFrom(rows); ok {
		v.btcUSD.Store(math.Float64bits(px))
	}
	list, skipped := v.instrumentsFrom(rows)
	if len(list) == 0 {
		return fmt.Errorf("instrument/active listed no usable perpetual or future (%d skipped)", skipped)
	}
	byID := make(map[string]*instrument, len(list))
	all := make([]*exchanges.Instrument, 0, len(list))
	for _, in := range list {
		byID[in.symbol] = in
		all = append(all, in.inst)
	}
	v.instruments.Store(&byID)
	changed := !v.declared
	lists := exchanges.ByMarket(all)
	for i, mk := range exchanges.Markets {
		if !v.declared || !exchanges.SameInstruments(v.known[i], lists[i]) {
			v.sink.SetInstruments(Name, mk, lists[i])
			v.known[i] = lists[i]
			changed = true
		}
	}
	if changed {
		v.log.Info("instruments declared", "linear", len(lists[0]), "inverse", len(lists[1]), "listed", len(list), "skipped", skipped)
	}
	v.declared = true
	v.sink.SetMarketValues(v.marketValues(rows, byID))
	return nil
}

// btcUSDFrom returns the mark price of the BTC/USD perpetual (XBTUSD), the
// price quanto values settled in XBt are converted with.
func btcUSDFrom(rows []instrumentRow) (float64, bool) {
	for _, r := range rows {
		if r.Symbol == "XBTUSD" && r.MarkPrice.Positive() {
			return r.MarkPrice.Value, true
		}
	}
	for _, r := range rows {
		coin, _ := exchanges.NormalizeCoin(baseOf(r))
		if coin == "BTC" && r.Typ == TypPerpetual && r.QuoteCurrency == "USD" && r.MarkPrice.Positive() {
			return r.MarkPrice.Value, true
		}
	}
	return 0, false
}

// baseOf returns the row's base asset: underlying, else rootSymbol.
func baseOf(r instrumentRow) string {
	if r.Underlying != "" {
		return r.Underlying
	}
	return r.RootSymbol
}

// instrumentsFrom turns rows into instruments: perpetuals and futures in
// state Open (or without a state) with a USD-valued quote and a usable
// contract size. Instruments the coin allowlist excludes are returned with
// a nil inst (known, not collected). skipped counts perpetual and future
// rows that cannot be valued; other types (spot, indices) are ignored.
func (v *Venue) instrumentsFrom(rows []instrumentRow) (list []*instrument, skipped int) {
	dup := map[string]bool{}
	for i, r := range rows {
		var contractType string
		switch r.Typ {
		case TypPerpetual:
			contractType = exchanges.Perpetual
		case TypFuture:
			contractType = exchanges.Future
		default:
			continue
		}
		if r.State != "" && r.State != "Open" {
			continue
		}
		in, mk, ok := contractOf(r)
		if !ok || r.Symbol == "" || dup[r.Symbol] || baseOf(r) == "" {
			skipped++
			continue
		}
		dup[r.Symbol] = true
		in.row = i
		list = append(list, in)
		coin, coinMult := exchanges.NormalizeCoin(baseOf(r))
		if !v.coins.Allows(coin) {
			continue
		}
		in.inst = &exchanges.Instrument{
			Exchange:     Name,
			Market:       mk,
			Symbol:       r.Symbol,
			Coin:         coin,
			Quote:        r.QuoteCurrency,
			ContractType: contractType,
			ContractSize: in.size,
			Multiplier:   coinMult,
		}
	}
	return list, skipped
}

// contractOf derives the valuation of one row (see the package comment).
func contractOf(r instrumentRow) (*instrument, exchanges.Market, bool) {
	if !usdQuotes[r.QuoteCurrency] {
		return nil, "", false
	}
	settle, known := settlements[r.SettlCurrency]
	mk := exchanges.Linear
	if settle.btc {
		mk = exchanges.Inverse
	}
	in := &instrument{symbol: r.Symbol, settleBTC: settle.btc}
	switch {
	case r.IsInverse:
		if !known || !settle.btc {
			return nil, "", false
		}
		in.kind, in.size = inverse, 1
		if r.Multiplier.Set && r.Multiplier.Value != 0 {
			in.size = math.Abs(r.Multiplier.Value) / settle.scale
		}
	case r.IsQuanto:
		if !known || !r.Multiplier.Positive() {
			return nil, "", false
		}
		in.kind, in.size = quanto, r.Multiplier.Value/settle.scale
	default:
		if !r.UnderlyingToPositionMultiplier.Positive() || (known && settle.btc) {
			return nil, "", false
		}
		mk = exchanges.Linear
		in.kind, in.size = linear, 1/r.UnderlyingToPositionMultiplier.Value
	}
	if !(in.size > 0) || math.IsInf(in.size, 0) {
		return nil, "", false
	}
	return in, mk, true
}
