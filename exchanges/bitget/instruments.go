package bitget

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// successCode is the code of every successful v2 answer.
const successCode = "00000"

// envelope is Bitget's v2 REST envelope:
// {"code":"00000","msg":"success","requestTime":1695806875837,"data":...}.
type envelope struct {
	Code json.RawMessage `json:"code"` // a string ("00000"); numbers are accepted too
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// APIError is an answer whose code is not "00000".
type APIError struct {
	Path, Code, Msg string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("GET %s: code %s: %s", e.Path, e.Code, e.Msg)
}

// get fetches path (with query) from the REST base and decodes the data of
// a successful envelope into v.
func (v *Venue) get(ctx context.Context, path string, out any) error {
	var env envelope
	if _, err := v.cfg.Client.GetJSON(ctx, v.cfg.REST+path, &env); err != nil {
		return err
	}
	code := strings.Trim(string(env.Code), `"`)
	if code != successCode {
		return &APIError{Path: path, Code: code, Msg: env.Msg}
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("GET %s: no data", path)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("GET %s: decoding data: %w", path, err)
	}
	return nil
}

// contract is one row of /api/v2/mix/market/contracts (documented fields;
// the names baseCoin and quoteCoin are UNVERIFIED per the project's
// reference, so symbols fall back to stripping the quote).
type contract struct {
	Symbol         string           `json:"symbol"`
	BaseCoin       string           `json:"baseCoin"`
	QuoteCoin      string           `json:"quoteCoin"`
	SymbolType     string           `json:"symbolType"`   // perpetual or delivery
	SymbolStatus   string           `json:"symbolStatus"` // normal, maintain, limit_open, restrictedAPI, off
	SizeMultiplier exchanges.Number `json:"sizeMultiplier"`
}

// discover fetches the contracts of the product type and declares them.
func (k *kind) discover(ctx context.Context) error {
	var rows []contract
	if err := k.v.get(ctx, "/api/v2/mix/market/contracts?productType="+url.QueryEscape(k.productType), &rows); err != nil {
		return err
	}
	list := make(map[string]*instrument, len(rows))
	for _, r := range rows {
		in, ok := k.instrumentOf(r)
		if !ok {
			continue
		}
		list[in.symbol] = in
	}
	k.v.setList(k, list)
	return nil
}

// instrumentOf turns a contract row into an instrument; ok is false for
// contracts that are not trading normally or of an unknown type.
func (k *kind) instrumentOf(r contract) (*instrument, bool) {
	if r.Symbol == "" || !strings.EqualFold(r.SymbolStatus, "normal") {
		return nil, false
	}
	var ct string
	switch strings.ToLower(r.SymbolType) {
	case "perpetual":
		ct = exchanges.Perpetual
	case "delivery":
		ct = exchanges.Future
	default:
		if k.v.throttle.Allow("type:" + r.SymbolType) {
			k.log.Warn("contract of an unknown symbolType skipped", "symbol", r.Symbol, "symbol_type", r.SymbolType)
		}
		return nil, false
	}
	quote := r.QuoteCoin
	if quote == "" {
		quote = k.defaultQuote
	}
	base := r.BaseCoin
	if base == "" {
		base = baseOf(r.Symbol, quote)
	}
	if base == "" {
		return nil, false
	}
	coin, mult := exchanges.NormalizeCoin(base)
	in := &instrument{symbol: r.Symbol}
	if k.v.coins.Allows(coin) {
		in.inst = &exchanges.Instrument{
			Exchange: Name, Market: k.market, Symbol: r.Symbol, Coin: coin, Quote: strings.ToUpper(quote),
			ContractType: ct,
			// Bitget sizes every product type, COIN-FUTURES included, in
			// base coin (holdingAmount is documented as "number of coins
			// traded"), so one venue unit is one base unit.
			ContractSize:      1,
			Multiplier:        mult,
			NoLiquidationFeed: !k.v.cfg.Liquidations,
		}
	}
	return in, true
}

// baseOf strips a delivery suffix ("_231229") and the quote ("USDT",
// "USD", or Bitget's "PERP" for USDC perpetuals) from a symbol.
func baseOf(symbol, quote string) string {
	s, _, _ := strings.Cut(strings.ToUpper(symbol), "_")
	for _, q := range []string{strings.ToUpper(quote), "PERP", "USDT", "USDC", "USD"} {
		if b, ok := strings.CutSuffix(s, q); ok && q != "" && b != "" {
			return b
		}
	}
	return ""
}
