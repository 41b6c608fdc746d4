package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// response is Bybit's v5 REST envelope (documented):
// {"retCode":0,"retMsg":"OK","result":{...},"retExtInfo":{},"time":...}.
type response[T any] struct {
	RetCode *int   `json:"retCode"`
	RetMsg  string `json:"retMsg"`
	Result  T      `json:"result"`
}

// Bybit's rate-limit answers in the envelope (documented error codes):
// 10006 "Too many visits. Exceeded the API Rate Limit.", 10018 "Exceeded
// the IP Rate Limit." (back off at least a second, or until
// X-Bapi-Limit-Reset-Timestamp) and 10009 "IP has been banned." (back off
// BanWait, like HTTP 403).
const (
	retCodeTooManyVisits = 10006
	retCodeIPBanned      = 10009
	retCodeIPRateLimit   = 10018
)

// get fetches path (with query) from the REST base and decodes the result
// of Bybit's envelope into out. It honours a ban or back-off that any
// earlier answer announced (the limits are per IP, across categories), turns
// HTTP 403 into a ban of BanWait (Bybit documents 403 as an IP ban) and a
// non-zero retCode into an error, rate limited for 10006, 10009 and 10018.
func (m *market) get(ctx context.Context, path string, out any) error {
	v := m.v
	if until := v.bannedUntil.Load(); until > time.Now().UnixNano() {
		return &exchanges.HTTPError{URL: v.cfg.REST + path, StatusCode: 429,
			RetryAfter: time.Until(time.Unix(0, until)).Round(time.Second) + time.Second, Body: errBanned.Error()}
	}
	var resp response[json.RawMessage]
	hdr, err := v.cfg.Client.GetJSON(ctx, v.cfg.REST+path, &resp)
	var herr *exchanges.HTTPError
	if errors.As(err, &herr) {
		if herr.StatusCode == 403 && herr.RetryAfter <= 0 {
			herr.RetryAfter = BanWait
		}
		if herr.RetryAfter > 0 {
			v.bannedUntil.Store(time.Now().Add(herr.RetryAfter).UnixNano())
		}
		return err
	}
	if err != nil {
		return err
	}
	if resp.RetCode == nil {
		return fmt.Errorf("GET %s: no retCode in the answer", path)
	}
	if code := *resp.RetCode; code != 0 {
		if code == retCodeTooManyVisits || code == retCodeIPRateLimit || code == retCodeIPBanned {
			wait := time.Second
			if code == retCodeIPBanned {
				wait = BanWait
			}
			if ms, perr := strconv.ParseInt(hdr.Get("X-Bapi-Limit-Reset-Timestamp"), 10, 64); perr == nil {
				if d := time.Until(time.UnixMilli(ms)); d > wait {
					wait = d
				}
			}
			v.bannedUntil.Store(time.Now().Add(wait).UnixNano())
			return &exchanges.HTTPError{URL: v.cfg.REST + path, StatusCode: 200, RetryAfter: wait,
				Body: fmt.Sprintf("retCode %d: %s", code, resp.RetMsg)}
		}
		return fmt.Errorf("GET %s: retCode %d: %s", path, code, resp.RetMsg)
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("GET %s: decoding result: %w", path, err)
	}
	return nil
}

// instrumentsPage is the result of GET /v5/market/instruments-info.
type instrumentsPage struct {
	Category       string           `json:"category"`
	List           []instrumentInfo `json:"list"`
	NextPageCursor string           `json:"nextPageCursor"`
}

type instrumentInfo struct {
	Symbol       string `json:"symbol"`
	ContractType string `json:"contractType"` // LinearPerpetual, LinearFutures, InversePerpetual, InverseFutures
	Status       string `json:"status"`       // Trading, PreLaunch, Delivering, Closed
	BaseCoin     string `json:"baseCoin"`
	QuoteCoin    string `json:"quoteCoin"`
	SettleCoin   string `json:"settleCoin"`
	// FundingInterval is in minutes (documented, e.g. 480).
	FundingInterval exchanges.Number `json:"fundingInterval"`
}

// Pagination limits: Bybit serves at most 1000 instruments per page
// (documented); more than maxPages pages or a cursor seen twice means the
// answer is not converging.
const (
	pageLimit = 1000
	maxPages  = 50
)

// discover fetches every page of instruments-info and declares the
// instrument list, then moves the liquidation subscriptions to it.
func (m *market) discover(ctx context.Context) error {
	var rows []instrumentInfo
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page >= maxPages {
			return fmt.Errorf("instruments-info: more than %d pages", maxPages)
		}
		path := "/v5/market/instruments-info?category=" + m.kind + "&limit=" + strconv.Itoa(pageLimit)
		if cursor != "" {
			// The cursor is an opaque token (documented samples are already
			// percent-encoded, e.g. "first%3DBIOUSDT%26last%3DBIOUSDT"); it
			// is sent back as it was received, escaped as a query value
			// (INFERRED from Bybit's own SDKs, which pass it as a parameter).
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var p instrumentsPage
		if err := m.get(ctx, path, &p); err != nil {
			return err
		}
		if p.Category != "" && p.Category != m.kind {
			return fmt.Errorf("instruments-info: asked for category %s, got %q", m.kind, p.Category)
		}
		rows = append(rows, p.List...)
		if p.NextPageCursor == "" {
			break
		}
		if seen[p.NextPageCursor] {
			return fmt.Errorf("instruments-info: cursor %q repeated", p.NextPageCursor)
		}
		seen[p.NextPageCursor] = true
		cursor = p.NextPageCursor
	}
	list, filtered, skipped := m.instrumentsFrom(rows)
	if len(list) == 0 && len(filtered) == 0 {
		return fmt.Errorf("instruments-info listed no trading perpetuals or futures (%d skipped)", skipped)
	}
	byName := make(map[string]*exchanges.Instrument, len(list)+len(filtered))
	for _, s := range filtered {
		byName[s] = nil // known, but excluded by the coin allowlist
	}
	symbols := make([]string, 0, len(list))
	for _, inst := range list {
		byName[inst.Symbol] = inst
		symbols = append(symbols, inst.Symbol)
	}
	minutes := make(map[string]float64, len(rows))
	for _, r := range rows {
		if r.FundingInterval.Positive() {
			minutes[r.Symbol] = r.FundingInterval.Value
		}
	}
	old := *m.instruments.Load()
	m.sink.SetInstruments(Name, m.market, list)
	m.instruments.Store(&byName)
	m.fundingMinutes.Store(&minutes)
	if len(old) != len(byName) {
		m.log.Info("instruments discovered", "count", len(list), "excluded_by_coins", len(filtered), "skipped", skipped)
	}
	m.shards.assign(symbols)
	return nil
}

// instrumentsFrom turns instruments-info rows into instruments: status
// Trading only, perpetual and dated futures, filtered by the coin allowlist.
// filtered names the trading symbols the allowlist excludes; skipped counts
// unusable rows. The list is sorted by symbol.
func (m *market) instrumentsFrom(rows []instrumentInfo) (list []*exchanges.Instrument, filtered []string, skipped int) {
	dup := map[string]bool{}
	for _, r := range rows {
		if r.Status != "Trading" {
			continue
		}
		ct, ok := contractType(m.kind, r.ContractType)
		if !ok || r.Symbol == "" || r.BaseCoin == "" || dup[r.Symbol] {
			skipped++
			continue
		}
		dup[r.Symbol] = true
		coin, mult := NormalizeCoin(r.BaseCoin)
		if !m.coins.Allows(coin) {
			filtered = append(filtered, r.Symbol)
			continue
		}
		list = append(list, &exchanges.Instrument{
			Exchange:     Name,
			Market:       m.market,
			Symbol:       r.Symbol,
			Coin:         coin,
			Quote:        r.QuoteCoin,
			ContractType: ct,
			// Linear quantities are in base coin; inverse quantities are
			// contracts of 1 USD (INFERRED from Bybit's inverse qty
			// convention; instruments-info has no contract size field).
			ContractSize: 1,
			Multiplier:   mult,
		})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Symbol < list[j].Symbol })
	return list, filtered, skipped
}

// contractType maps Bybit's contractType (documented enum) to the
// exporter's label value; other types, or a type of the other category, are
// not collected.
func contractType(kind, ct string) (string, bool) {
	switch {
	case kind == MarketLinear && ct == "LinearPerpetual", kind == MarketInverse && ct == "InversePerpetual":
		return exchanges.Perpetual, true
	case kind == MarketLinear && ct == "LinearFutures", kind == MarketInverse && ct == "InverseFutures":
		return exchanges.Future, true
	}
	return "", false
}

// NormalizeCoin is exchanges.NormalizeCoin plus Bybit's suffix form of a
// multiplier: baseCoin "SHIB1000" (SHIB1000USDT) counts SHIB in units of
// 1000. The prefix forms (1000PEPE, 10000LADYS, 1000000MOG) are handled by
// exchanges.NormalizeCoin. The suffix form is taken from Bybit's symbol list
// as the project knows it, not from the reference (UNVERIFIED).
func NormalizeCoin(base string) (string, float64) {
	coin, mult := exchanges.NormalizeCoin(base)
	if mult != 1 {
		return coin, mult
	}
	if rest, ok := strings.CutSuffix(coin, "1000"); ok && len(rest) >= 2 && isLetters(rest) {
		return rest, 1000
	}
	return coin, mult
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
