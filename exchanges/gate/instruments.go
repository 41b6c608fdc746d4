package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// get fetches path (with query) from the REST base into out. Gate answers
// plain JSON (no envelope) and errors with a non-2xx status and
// {"label":"...","message":"..."} (documented). A 429 without Retry-After
// gets one rate window, so pollers and the backfill wait it out.
func (v *Venue) get(ctx context.Context, path string, out any) error {
	_, err := v.cfg.Client.GetJSON(ctx, v.cfg.REST+path, out)
	var herr *exchanges.HTTPError
	if errors.As(err, &herr) && herr.RateLimited() && herr.RetryAfter <= 0 {
		herr.RetryAfter = RateWindow
	}
	return err
}

// contractRow is one element of GET /api/v4/futures/{settle}/contracts
// (documented fields; numbers are strings, funding times integers).
type contractRow struct {
	Name             string           `json:"name"`
	Type             string           `json:"type"` // direct (linear) or inverse
	QuantoMultiplier exchanges.Number `json:"quanto_multiplier"`
	MarkPrice        exchanges.Number `json:"mark_price"`
	FundingInterval  exchanges.Number `json:"funding_interval"`   // s
	FundingNextApply exchanges.Number `json:"funding_next_apply"` // unix s
	InDelisting      bool             `json:"in_delisting"`
	Status           string           `json:"status"` // trading, delisting, delisted (when present)
}

// discover fetches the settle's contracts and declares them.
func (s *settle) discover(ctx context.Context) error {
	var rows []contractRow
	if err := s.v.get(ctx, "/api/v4/futures/"+s.name+"/contracts", &rows); err != nil {
		return err
	}
	list, skipped := s.contractsFrom(rows)
	if len(list) == 0 {
		return fmt.Errorf("contracts listed no tradable %s-settled contracts (%d skipped)", s.name, skipped)
	}
	allowed := 0
	for _, c := range list {
		if c.inst != nil {
			allowed++
		}
	}
	s.v.listMu.Lock()
	before := len(s.list)
	s.v.listMu.Unlock()
	s.v.setList(s, list)
	if before != len(list) {
		s.log.Info("contracts discovered", "count", allowed, "excluded_by_coins", len(list)-allowed, "skipped", skipped)
	}
	return nil
}

// contractsFrom turns contract rows into contracts: not delisting, type
// direct (linear, positive quanto_multiplier) or inverse (1 USD per
// contract, assumed), a name BASE_QUOTE. Contracts the coin allowlist
// excludes are returned with a nil inst (known, not collected). skipped
// counts unusable rows; delisting contracts are left out silently.
func (s *settle) contractsFrom(rows []contractRow) (list []*contract, skipped int) {
	dup := map[string]bool{}
	for _, r := range rows {
		if r.InDelisting || (r.Status != "" && r.Status != "trading") {
			continue
		}
		typ := r.Type
		if typ == "" {
			typ = map[string]string{SettleUSDT: "direct", SettleBTC: "inverse"}[s.name]
		}
		base, quote, ok := strings.Cut(r.Name, "_")
		if !ok || base == "" || quote == "" || dup[r.Name] {
			skipped++
			continue
		}
		c := &contract{name: r.Name, settle: s.name}
		var mk exchanges.Market
		switch typ {
		case "direct":
			if !r.QuantoMultiplier.Positive() {
				skipped++
				continue
			}
			mk, c.size = exchanges.Linear, r.QuantoMultiplier.Value
		case "inverse":
			mk, c.size = exchanges.Inverse, 1 // USD per contract (UNVERIFIED)
		default:
			skipped++
			continue
		}
		if r.FundingInterval.Positive() {
			c.fundingInterval = r.FundingInterval.Value
		}
		if r.FundingNextApply.Positive() {
			c.fundingNext = r.FundingNextApply.Value
		}
		dup[r.Name] = true
		list = append(list, c)
		coin, mult := exchanges.NormalizeCoin(base)
		if !s.v.coins.Allows(coin) {
			continue
		}
		c.inst = &exchanges.Instrument{
			Exchange:     Name,
			Market:       mk,
			Symbol:       r.Name,
			Coin:         coin,
			Quote:        quote,
			ContractType: exchanges.Perpetual, // /futures/ lists perpetuals; dated contracts are under /delivery/
			ContractSize: c.size,
			Multiplier:   mult,
		}
	}
	return list, skipped
}

// errorBody is Gate's REST error answer (documented).
type errorBody struct {
	Label   string `json:"label"`
	Message string `json:"message"`
}

// describe returns the label and message of a Gate error body, for logs.
func describe(body string) string {
	var e errorBody
	if json.Unmarshal([]byte(body), &e) != nil || e.Label == "" {
		return body
	}
	return e.Label + ": " + e.Message
}
