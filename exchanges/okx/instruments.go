package okx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// response is OKX's v5 REST envelope (documented):
// {"code":"0","msg":"","data":[...]}. code is a string; "0" is success.
type response struct {
	Code *string         `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// codeRateLimited is OKX's "Too Many Requests" error code, served with
// HTTP 429 (documented error code list).
const codeRateLimited = "50011"

// get fetches path (with query) from the REST base and returns the data
// member of OKX's envelope. A rate-limit answer (HTTP 429, or code 50011)
// becomes a rate-limited *exchanges.HTTPError whose RetryAfter is at least
// one rate window, so the poller waits the window out; any other non-zero
// code is an error.
func (v *Venue) get(ctx context.Context, path string) (json.RawMessage, error) {
	var resp response
	_, err := v.cfg.Client.GetJSON(ctx, v.cfg.REST+path, &resp)
	var herr *exchanges.HTTPError
	if errors.As(err, &herr) {
		if herr.RateLimited() && herr.RetryAfter <= 0 {
			herr.RetryAfter = RateWindow
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if resp.Code == nil {
		return nil, fmt.Errorf("GET %s: no code in the answer", path)
	}
	if code := *resp.Code; code != "0" {
		if code == codeRateLimited {
			return nil, &exchanges.HTTPError{URL: v.cfg.REST + path, StatusCode: 429, RetryAfter: RateWindow,
				Body: fmt.Sprintf("code %s: %s", code, resp.Msg)}
		}
		return nil, fmt.Errorf("GET %s: code %s: %s", path, code, resp.Msg)
	}
	if len(resp.Data) == 0 || resp.Data[0] != '[' {
		return nil, fmt.Errorf("GET %s: data is not an array", path)
	}
	return resp.Data, nil
}

// getList decodes the data array of path into out.
func (v *Venue) getList(ctx context.Context, path string, out any) error {
	data, err := v.get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("GET %s: decoding data: %w", path, err)
	}
	return nil
}

// instrumentInfo is one row of GET /api/v5/public/instruments (documented
// fields; numbers are strings).
type instrumentInfo struct {
	InstType   string           `json:"instType"`
	InstID     string           `json:"instId"`
	Uly        string           `json:"uly"`
	InstFamily string           `json:"instFamily"`
	SettleCcy  string           `json:"settleCcy"`
	CtVal      exchanges.Number `json:"ctVal"`
	CtMult     exchanges.Number `json:"ctMult"`
	CtValCcy   string           `json:"ctValCcy"`
	CtType     string           `json:"ctType"` // linear, inverse
	State      string           `json:"state"`  // live, suspend, preopen, test
}

// discover fetches the instrument type's instruments and declares them.
func (k *kind) discover(ctx context.Context) error {
	var rows []instrumentInfo
	if err := k.v.getList(ctx, "/api/v5/public/instruments?instType="+k.name, &rows); err != nil {
		return err
	}
	list, skipped := k.instrumentsFrom(rows)
	allowed := 0
	for _, in := range list {
		if in.inst != nil {
			allowed++
		}
	}
	if len(list) == 0 {
		return fmt.Errorf("instruments listed no live %s contracts (%d skipped)", k.name, skipped)
	}
	before := len(k.v.families(k))
	k.v.setList(k, list)
	if before == 0 || len(k.v.families(k)) != before {
		k.log.Info("instruments discovered", "count", allowed, "excluded_by_coins", len(list)-allowed, "skipped", skipped)
	}
	return nil
}

// instrumentsFrom turns instrument rows into instruments: state live,
// ctType linear or inverse, positive ctVal; ctMult defaults to 1 when
// absent. Instruments the coin allowlist excludes are returned with a nil
// inst (known, not collected). skipped counts unusable rows.
func (k *kind) instrumentsFrom(rows []instrumentInfo) (list []*instrument, skipped int) {
	dup := map[string]bool{}
	for _, r := range rows {
		if r.State != "live" {
			continue
		}
		if r.InstType != "" && r.InstType != k.name {
			skipped++
			continue
		}
		var mk exchanges.Market
		switch r.CtType {
		case "linear":
			mk = exchanges.Linear
		case "inverse":
			mk = exchanges.Inverse
		default:
			skipped++
			continue
		}
		family := r.InstFamily
		if family == "" {
			family = r.Uly
		}
		base, quote, ok := splitFamily(family, r.InstID)
		mult := 1.0
		if r.CtMult.Set {
			mult = r.CtMult.Value
		}
		if !ok || r.InstID == "" || dup[r.InstID] || !r.CtVal.Positive() || !(mult > 0) {
			skipped++
			continue
		}
		dup[r.InstID] = true
		in := &instrument{id: r.InstID, instType: k.name, family: family, size: r.CtVal.Value * mult}
		list = append(list, in)
		coin, coinMult := exchanges.NormalizeCoin(base)
		if !k.v.coins.Allows(coin) {
			continue
		}
		in.inst = &exchanges.Instrument{
			Exchange:     Name,
			Market:       mk,
			Symbol:       r.InstID,
			Coin:         coin,
			Quote:        quote,
			ContractType: k.contractType,
			// Linear: base coin (venue units) per contract; inverse: USD
			// per contract (documented meaning of ctVal, times ctMult).
			ContractSize: in.size,
			Multiplier:   coinMult,
		}
	}
	return list, skipped
}

// splitFamily returns the base and quote of an instrument family such as
// BTC-USDT or BTC-USD (documented: the underlying, "BTC-USDT"); without a
// family it reads the first two segments of the instId (BTC-USDT-SWAP,
// BTC-USD-250926).
func splitFamily(family, instID string) (base, quote string, ok bool) {
	src := family
	if src == "" {
		src = instID
	}
	parts := strings.Split(src, "-")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// query escapes a query value.
func query(s string) string { return url.QueryEscape(s) }
