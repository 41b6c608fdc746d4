package okx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// DefaultLongShortCoins are the coins whose long/short account ratio is
// polled by default (Config.LongShortCoins nil).
var DefaultLongShortCoins = []string{"BTC", "ETH", "SOL", "XRP", "DOGE", "BNB"}

// LongShortInterval is the minimum time between long/short account ratio
// rounds: the exporter asks for OKX's 5-minute period, so polling more
// often than once a minute would mostly fetch the same value again.
const LongShortInterval = time.Minute

// Request budget of GET /api/v5/rubik/stat/contracts/long-short-account-ratio:
// OKX documents 5 requests per 2 seconds per IP for it. The exporter sends
// one request per configured coin per round, one at a time, and never two
// requests less than LongShortRequestSpacing apart (across rounds too):
// 2 requests per 2 seconds, 40 % of the limit, whatever the coin list. A
// rate-limit answer (HTTP 429 or code 50011) ends the round and the poller
// waits at least one rate window (see get).
const (
	LongShortRequestsPerWindow = 5
	LongShortRequestSpacing    = time.Second
)

// epLongShortRatio is the endpoint label value of the long/short poll. OKX
// serves the ratio per currency, not per instrument type, so the poll is
// venue-wide and unprefixed, like funding_rate (Binance's is
// usdm_long_short_ratio, Bybit's linear_long_short_ratio).
const epLongShortRatio = "long_short_ratio"

// longShortPath is the rubik endpoint (documented, OKX v5 "Trading
// Statistics: Get long/short ratio": "the ratio of users with net long vs
// net short positions for Expiry Futures and Perpetual Futures"; ccy
// required, period 5m (default), 1H or 1D; data is an array of [ts, ratio]
// string pairs, newest first).
const longShortPath = "/api/v5/rubik/stat/contracts/long-short-account-ratio"

// The ratio is per currency and covers all of OKX's futures and perpetuals
// of that currency; the exporter attaches it to the <COIN>-USDT-SWAP
// instrument (the linear USDT perpetual, the most traded contract of a
// coin, and the same kind of instrument Binance and Bybit attach theirs
// to), so that crypto_long_short_account_ratio keeps its instrument labels.

// decodeLongShortData reads the data array of the long/short answer and
// returns the ratio (longs/shorts, as OKX publishes it) of the newest row:
// the largest ts, which is the first row as documented. ok is false without
// an error when data is empty. Rows that are not [ts, ratio] pairs of
// numbers, a row without a positive ts, and a newest ratio that is missing,
// zero or negative are errors; an older row never stands in for a bad
// newest one.
func decodeLongShortData(data []byte) (ratio float64, ts int64, ok bool, err error) {
	var rows [][]exchanges.Number
	if err := json.Unmarshal(data, &rows); err != nil {
		return 0, 0, false, fmt.Errorf("long/short ratio: %w", err)
	}
	if len(rows) == 0 {
		return 0, 0, false, nil
	}
	newest := -1
	for i, r := range rows {
		if len(r) < 2 {
			return 0, 0, false, fmt.Errorf("long/short ratio: row %d has %d elements, want [ts, ratio]", i, len(r))
		}
		if !r[0].Positive() || r[0].Value >= 1<<53 {
			return 0, 0, false, fmt.Errorf("long/short ratio: row %d has no valid ts", i)
		}
		if newest < 0 || r[0].Value > rows[newest][0].Value {
			newest = i
		}
	}
	r := rows[newest]
	if !r[1].Positive() {
		return 0, 0, false, fmt.Errorf("long/short ratio: newest row (ts %.0f) has no positive ratio", r[0].Value)
	}
	return r[1].Value, int64(r[0].Value), true, nil
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

// longShort reports whether the venue polls long/short ratios: the SWAP
// instrument type is collected and at least one coin is configured.
func (v *Venue) longShort(swap *kind) bool { return swap != nil && len(v.longShortCoins()) > 0 }

func (v *Venue) longShortEvery() time.Duration {
	if v.ls.every > 0 {
		return v.ls.every
	}
	return max(v.cfg.PollInterval, LongShortInterval)
}

func (v *Venue) longShortSpacing() time.Duration {
	if v.ls.spacing > 0 {
		return v.ls.spacing
	}
	return LongShortRequestSpacing
}

// longShortState is the long/short poll's state.
type longShortState struct {
	obs     exchanges.PollObserver
	last    time.Time     // when the last request was sent; touched by the poll goroutine only
	every   time.Duration // round interval override (tests); 0 = the default
	spacing time.Duration // request spacing override (tests); 0 = LongShortRequestSpacing
}

// declareLongShort declares the long/short poll, if the venue has one.
func (v *Venue) declareLongShort(sink exchanges.Sink, swap *kind) {
	if v.longShort(swap) {
		v.ls.obs = sink.Poll(Name, epLongShortRatio)
	}
}

// runLongShort runs the long/short poller, if the venue has one, after the
// first SWAP discovery.
func (v *Venue) runLongShort(ctx context.Context, swap *kind) {
	if !v.longShort(swap) {
		return
	}
	if !swap.ready.Wait(ctx) {
		return
	}
	v.poller(epLongShortRatio, v.ls.obs, v.longShortEvery(), v.pollLongShort, nil).Run(ctx)
}

// pace waits until LongShortRequestSpacing has passed since the previous
// long/short request; it reports false when ctx is done.
func (v *Venue) pace(ctx context.Context) bool {
	if !v.ls.last.IsZero() {
		if !exchanges.Sleep(ctx, v.longShortSpacing()-time.Since(v.ls.last)) {
			return false
		}
	}
	v.ls.last = time.Now()
	return true
}

// pollLongShort stores the long/short account ratio of each configured
// coin on its <COIN>-USDT-SWAP instrument (one request per coin, paced, see
// the budget above). A coin without a live USDT swap is skipped with a
// debug line; a bad answer fails the poll (counted) and exports nothing for
// that coin.
func (v *Venue) pollLongShort(ctx context.Context) error {
	ttl := staleAfter * v.longShortEvery()
	var values []exchanges.MarketValue
	var errs []error
	coins := v.longShortCoins()
	for _, coin := range coins {
		in, known := v.lookup([]byte(coin + "-USDT-SWAP"))
		switch {
		case !known || in == nil:
			v.log.Debug("long/short ratio skipped: no live USDT swap listed", "coin", coin)
			continue
		case in.inst == nil:
			v.log.Debug("long/short ratio skipped: coin excluded by the coin allowlist", "coin", coin)
			continue
		}
		if !v.pace(ctx) {
			break
		}
		data, err := v.get(ctx, longShortPath+"?ccy="+query(coin)+"&period=5m")
		if err != nil {
			errs = append(errs, err)
			var herr *exchanges.HTTPError
			if errors.As(err, &herr) && herr.RateLimited() {
				break // the poller backs off; the other coins wait too
			}
			continue
		}
		ratio, _, ok, err := decodeLongShortData(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", coin, err))
			continue
		}
		if !ok {
			continue // no data published yet
		}
		values = append(values, exchanges.MarketValue{Instrument: in.inst, Field: exchanges.LongShortAccountRatio, Value: ratio, TTL: ttl})
	}
	v.sink.SetMarketValues(values)
	if len(errs) > 0 {
		// A rate-limit error first, so the poller honours its back-off.
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
