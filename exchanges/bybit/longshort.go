package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// DefaultLongShortCoins are the coins whose long/short account ratio is
// polled by default (Config.LongShortCoins nil).
var DefaultLongShortCoins = []string{"BTC", "ETH", "SOL", "XRP", "DOGE", "BNB"}

// LongShortInterval is the minimum time between long/short account ratio
// rounds: the exporter asks for Bybit's 5-minute period, so polling more
// often than once a minute would mostly fetch the same value again.
const LongShortInterval = time.Minute

// epLongShort is the poll of GET /v5/market/account-ratio; its endpoint
// label value is linear_long_short_ratio (the category prefix, like every
// Bybit endpoint, and the name Binance uses: usdm_long_short_ratio).
const epLongShort = "long_short_ratio"

// accountRatioPath is Bybit's long/short ratio endpoint (documented:
// bybit-exchange/docs, docs/v5/market/long-short-ratio.mdx). category is
// "linear" (USDT perpetuals only) or "inverse"; period one of 5min, 15min,
// 30min, 1h, 4h, 1d; limit 1..500 (default 50).
const accountRatioPath = "/v5/market/account-ratio"

// Request budget: one request per configured coin per round, sequentially,
// and at most one round per max(PollInterval, LongShortInterval). With the
// six default coins that is six requests a minute against Bybit's
// documented IP limit of 600 requests per 5 seconds, so no extra spacing is
// needed. Every request goes through get, which honours a ban or back-off
// announced by any earlier answer (HTTP 403/429, Retry-After, retCode
// 10006/10009/10018) for all of the venue's REST requests.

// accountRatioRow is one row of the account-ratio result (documented: every
// field a string; buyRatio "the ratio of users with net long position",
// sellRatio "... net short position", timestamp in ms).
type accountRatioRow struct {
	Symbol    string           `json:"symbol"`
	BuyRatio  exchanges.Number `json:"buyRatio"`
	SellRatio exchanges.Number `json:"sellRatio"`
	Timestamp exchanges.Number `json:"timestamp"`
}

type accountRatioResult struct {
	List []accountRatioRow `json:"list"`
}

// decodeAccountRatio reads the result member of an account-ratio answer for
// symbol and returns longs/shorts among accounts: buyRatio / sellRatio of
// the newest row (the largest timestamp; the exporter asks for limit=1).
// ok is false without an error when the list is empty (no period published
// yet). Anything that does not make a trustworthy ratio is an error: rows
// of another symbol, a row without a positive timestamp, and shares that
// are missing or outside (0, 1] (they are documented as fractions of
// users; a zero share would make the ratio 0 or infinite).
func decodeAccountRatio(result []byte, symbol string) (ratio float64, ok bool, err error) {
	var res accountRatioResult
	if err := json.Unmarshal(result, &res); err != nil {
		return 0, false, fmt.Errorf("account-ratio of %s: %w", symbol, err)
	}
	if len(res.List) == 0 {
		return 0, false, nil
	}
	newest := -1
	for i, r := range res.List {
		if r.Symbol != "" && r.Symbol != symbol {
			return 0, false, fmt.Errorf("account-ratio of %s: answer lists %q", symbol, r.Symbol)
		}
		if !r.Timestamp.Positive() {
			return 0, false, fmt.Errorf("account-ratio of %s: row without a valid timestamp", symbol)
		}
		if newest < 0 || r.Timestamp.Value > res.List[newest].Timestamp.Value {
			newest = i
		}
	}
	r := res.List[newest]
	if !share(r.BuyRatio) || !share(r.SellRatio) {
		return 0, false, fmt.Errorf("account-ratio of %s: invalid buyRatio/sellRatio %q/%q", symbol, numText(r.BuyRatio), numText(r.SellRatio))
	}
	return r.BuyRatio.Value / r.SellRatio.Value, true, nil
}

// share reports whether n is a usable fraction of users: set, in (0, 1].
func share(n exchanges.Number) bool { return n.Set && n.Value > 0 && n.Value <= 1 }

func numText(n exchanges.Number) string {
	if !n.Set {
		return ""
	}
	return fmt.Sprint(n.Value)
}

// longShort reports whether this market polls long/short account ratios:
// the linear category only (the USDT perpetuals Bybit publishes the ratio
// for), and only with at least one coin configured.
func (m *market) longShort() bool {
	return m.kind == MarketLinear && len(m.v.longShortCoins()) > 0
}

// longShortCoins returns Config.LongShortCoins upper-cased, trimmed and
// without duplicates; nil means DefaultLongShortCoins, empty means none.
func (v *Venue) longShortCoins() []string {
	src := v.cfg.LongShortCoins
	if src == nil {
		src = DefaultLongShortCoins
	}
	out := make([]string, 0, len(src))
	seen := map[string]bool{}
	for _, c := range src {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// longShortEvery is the time between long/short rounds.
func (v *Venue) longShortEvery() time.Duration {
	if v.lsEvery > 0 {
		return v.lsEvery
	}
	return max(v.cfg.PollInterval, LongShortInterval)
}

// declareLongShort declares the long/short poll of the market, if it has one.
func (m *market) declareLongShort(sink exchanges.Sink) {
	if m.longShort() {
		m.polls[epLongShort] = sink.Poll(Name, m.endpoint(epLongShort))
	}
}

// startLongShort runs the long/short poller, if the market has one, with go.
func (m *market) startLongShort(ctx context.Context, goFn func(func())) {
	if !m.longShort() {
		return
	}
	goFn(func() { m.poller(epLongShort, m.v.longShortEvery(), m.pollLongShort, nil).Run(ctx) })
}

// longShortInstrument returns the linear <COIN>USDT perpetual of coin, or,
// for coins Bybit lists with a multiplier (1000PEPEUSDT), the first USDT
// perpetual whose coin label is coin. known is true when the symbol is
// listed but excluded by the coin allowlist.
func (m *market) longShortInstrument(coin string) (inst *exchanges.Instrument, known bool) {
	byName := *m.instruments.Load()
	inst, known = byName[coin+"USDT"]
	if inst != nil && inst.ContractType == exchanges.Perpetual {
		return inst, true
	}
	var names []string
	for s, in := range byName {
		if in != nil && in.Coin == coin && in.Quote == "USDT" && in.ContractType == exchanges.Perpetual {
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return nil, known
	}
	sort.Strings(names)
	return byName[names[0]], true
}

// pollLongShort stores the long/short account ratio of each configured
// coin's linear USDT perpetual (one request per coin, see the budget
// above). A coin Bybit does not list is skipped with a debug line; a bad
// answer fails the poll (counted) and exports nothing for that coin.
func (m *market) pollLongShort(ctx context.Context) error {
	ttl := staleAfter * m.v.longShortEvery()
	var values []exchanges.MarketValue
	var errs []error
	coins := m.v.longShortCoins()
	for _, coin := range coins {
		inst, known := m.longShortInstrument(coin)
		if inst == nil {
			if known {
				m.log.Debug("long/short ratio skipped: coin excluded by the coin allowlist", "coin", coin)
			} else {
				m.log.Debug("long/short ratio skipped: no linear USDT perpetual listed", "coin", coin)
			}
			continue
		}
		var result json.RawMessage
		path := accountRatioPath + "?category=" + MarketLinear + "&symbol=" + url.QueryEscape(inst.Symbol) + "&period=5min&limit=1"
		if err := m.get(ctx, path, &result); err != nil {
			errs = append(errs, err)
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				break // the poller backs off; the other coins wait too
			}
			continue
		}
		ratio, ok, err := decodeAccountRatio(result, inst.Symbol)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // no data published for this period yet
		}
		values = append(values, exchanges.MarketValue{Instrument: inst, Field: exchanges.LongShortAccountRatio, Value: ratio, TTL: ttl})
	}
	m.sink.SetMarketValues(values)
	if len(errs) > 0 {
		// A rate-limit error first, so the poller honours Retry-After.
		for _, err := range errs {
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				return err
			}
		}
		return fmt.Errorf("%d of %d long/short ratio requests failed, first: %w", len(errs), len(coins), errs[0])
	}
	return nil
}
