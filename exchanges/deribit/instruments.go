package deribit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// rpcResponse is Deribit's JSON-RPC 2.0 envelope, served over HTTP GET as
// well (documented): {"jsonrpc":"2.0","result":...,"usIn":..,"usOut":..,
// "usDiff":..,"testnet":false}, or "error":{"code":..,"message":..}.
type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// codeTooManyRequests is Deribit's "too_many_requests" error code
// (Deribit's error code list; not in the project's reference: UNVERIFIED).
const codeTooManyRequests = 10028

// tooManyRequestsMember finds the code in the first bytes of an error body.
var tooManyRequestsMember = fmt.Sprintf(`"code":%d`, codeTooManyRequests)

// get fetches /api/v2/public/{method}?{query} and returns the result. A
// rate-limit answer (HTTP 429 or 418, Retry-After, or error code 10028 with
// any HTTP status) is a rate-limited *exchanges.HTTPError, so the poller
// waits for Retry-After or backs off exponentially; any other error object
// is an error.
func (v *Venue) get(ctx context.Context, method string, q url.Values) (json.RawMessage, error) {
	u := v.cfg.REST + "/api/v2/public/" + method + "?" + q.Encode()
	var resp rpcResponse
	_, err := v.cfg.Client.GetJSON(ctx, u, &resp)
	var herr *exchanges.HTTPError
	if errors.As(err, &herr) {
		if !herr.RateLimited() && strings.Contains(herr.Body, tooManyRequestsMember) {
			return nil, &exchanges.HTTPError{URL: u, StatusCode: http.StatusTooManyRequests,
				Body: fmt.Sprintf("HTTP %d: %s", herr.StatusCode, herr.Body)}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		if resp.Error.Code == codeTooManyRequests {
			return nil, &exchanges.HTTPError{URL: u, StatusCode: http.StatusTooManyRequests,
				Body: fmt.Sprintf("error %d: %s", resp.Error.Code, resp.Error.Message)}
		}
		return nil, fmt.Errorf("GET %s: error %d: %s", u, resp.Error.Code, resp.Error.Message)
	}
	if len(resp.Result) == 0 || resp.Result[0] != '[' {
		return nil, fmt.Errorf("GET %s: result is not an array", u)
	}
	return resp.Result, nil
}

// getList decodes the result array of a public method into out.
func (v *Venue) getList(ctx context.Context, method string, q url.Values, out any) error {
	data, err := v.get(ctx, method, q)
	if err != nil {
		return err
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding result: %w", method, err)
	}
	return nil
}

// instrumentInfo is one row of public/get_instruments (documented fields).
type instrumentInfo struct {
	InstrumentName     string           `json:"instrument_name"`
	Kind               string           `json:"kind"`
	BaseCurrency       string           `json:"base_currency"`
	QuoteCurrency      string           `json:"quote_currency"`
	SettlementCurrency string           `json:"settlement_currency"`
	SettlementPeriod   string           `json:"settlement_period"` // perpetual, month, week, day
	InstrumentType     string           `json:"instrument_type"`   // linear, reversed
	ContractSize       exchanges.Number `json:"contract_size"`
	IsActive           *bool            `json:"is_active"`
}

// discover fetches one currency's futures and declares them.
func (v *Venue) discover(ctx context.Context, c *currency) error {
	var rows []instrumentInfo
	q := url.Values{"currency": {c.name}, "kind": {"future"}}
	if err := v.getList(ctx, "get_instruments", q, &rows); err != nil {
		return err
	}
	list, excluded, skipped := v.instrumentsFrom(rows)
	v.listMu.Lock()
	before := len(c.list) + len(c.excluded)
	v.listMu.Unlock()
	v.setList(c, list, excluded)
	if before != len(list)+len(excluded) {
		v.log.Info("instruments discovered", "currency", c.name, "count", len(list), "excluded_by_coins", len(excluded), "skipped", skipped)
	}
	return nil
}

// instrumentsFrom turns instrument rows into instruments: kind future,
// active, instrument_type linear or reversed, positive contract_size.
// Instruments the coin allowlist excludes are returned by name only.
// skipped counts unusable rows.
func (v *Venue) instrumentsFrom(rows []instrumentInfo) (list []*exchanges.Instrument, excluded []string, skipped int) {
	dup := map[string]bool{}
	for _, r := range rows {
		if r.IsActive != nil && !*r.IsActive {
			continue
		}
		var mk exchanges.Market
		switch r.InstrumentType {
		case "linear":
			mk = exchanges.Linear
		case "reversed":
			mk = exchanges.Inverse
		default:
			skipped++
			continue
		}
		base := r.BaseCurrency
		if base == "" {
			base = baseOf(r.InstrumentName)
		}
		if (r.Kind != "" && r.Kind != "future") || r.InstrumentName == "" || base == "" || dup[r.InstrumentName] || !r.ContractSize.Positive() {
			skipped++
			continue
		}
		dup[r.InstrumentName] = true
		coin, mult := exchanges.NormalizeCoin(base)
		if !v.coins.Allows(coin) {
			excluded = append(excluded, r.InstrumentName)
			continue
		}
		ct := exchanges.Future
		if r.SettlementPeriod == "perpetual" || strings.HasSuffix(r.InstrumentName, "-PERPETUAL") {
			ct = exchanges.Perpetual
		}
		quote := r.QuoteCurrency
		if quote == "" {
			quote = r.SettlementCurrency
		}
		list = append(list, &exchanges.Instrument{
			Exchange:     Name,
			Market:       mk,
			Symbol:       r.InstrumentName,
			Coin:         coin,
			Quote:        quote,
			ContractType: ct,
			// Inverse: USD per contract (BTC 10, ETH 1); linear: base coin
			// per contract (documented meaning of contract_size).
			ContractSize: r.ContractSize.Value,
			Multiplier:   mult,
		})
	}
	return list, excluded, skipped
}

// baseOf returns the base of an instrument name: the prefix before "-" or
// "_" (BTC-PERPETUAL, BTC_USDC-PERPETUAL, BTC-26DEC25).
func baseOf(name string) string {
	if i := strings.IndexAny(name, "-_"); i > 0 {
		return name[:i]
	}
	return ""
}
