package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
)

// The REST backfill recovers the orders a liquidation stream missed while it
// was down. After every subscription ack (the first one covers the start-up
// gap from the venue's start) the stream asks its backfiller for the window
// from a start time to now; the backfiller fetches, for the settle currency
// as a whole (no contract parameter),
//
//	GET /api/v4/futures/{settle}/liq_orders?from=F&to=T&limit=1000
//
// in windows of at most 3600 s (Gate's documented maximum), consecutive
// windows sharing their boundary second. A window answered with a full page
// may hold more orders than it returned, so it is split in halves and
// fetched again, down to one second. Requests are spaced by
// BackfillRequestInterval (default half of the documented 200 requests per
// 10 s); a rate-limit answer waits out its Retry-After (or one rate window)
// and retries, at most three times per request. Every order goes through the
// same dedupe as the pushed ones, so an order counts once whether it arrives
// live, backfilled, or both. Windows asked for while a backfill runs are
// merged into the next one, and a backfill that fails otherwise is retried
// (exchanges.Backfill).

// backfillLimit is the page size asked for (Gate's documented maximum 1000).
const backfillLimit = 1000

// backfillRetries bounds the retries of one request after rate-limit answers.
const backfillRetries = 3

type backfiller struct {
	s     *settle
	q     exchanges.Backfill // merges the requests, retries failed fills
	first bool               // no request sent yet in this backfill
}

// init wires the queue; called once when the settle is built.
func (b *backfiller) init(s *settle) {
	b.s = s
	b.q = exchanges.Backfill{
		Fill:          func(ctx context.Context, from time.Time) error { return b.fill(ctx, from, time.Now()) },
		Counted:       s.v.stats.backfilled.Load,
		Logger:        s.log,
		RetryInterval: s.v.cfg.BackfillRetryInterval,
	}
}

// request asks for a backfill from from to now.
func (b *backfiller) request(from time.Time) { b.q.Request(from) }

// run serves backfill requests until ctx is done.
func (b *backfiller) run(ctx context.Context) { b.q.Run(ctx, b.s.polls[epLiqOrders]) }

// fill backfills from from to now in windows of at most MaxBackfillWindow.
// Orders before the dedupe's earliest countable time cannot count, so the
// window starts no earlier.
func (b *backfiller) fill(ctx context.Context, from, now time.Time) error {
	if e := b.s.v.dedupe.earliest(); from.Before(e) {
		from = e
	}
	b.first = true
	a, end := from.Unix(), now.Unix()
	step := int64(MaxBackfillWindow / time.Second)
	var errs []error
	for a <= end {
		z := min(a+step, end)
		if err := b.window(ctx, a, z, 0); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
			if len(errs) >= 3 {
				errs = append(errs, errors.New("giving up on the rest of the gap"))
				break
			}
		}
		if z == end {
			break
		}
		a = z
	}
	return errors.Join(errs...)
}

// window fetches the orders from a to z (unix s, inclusive as far as
// Gate's answer goes) and splits it when the page is full.
func (b *backfiller) window(ctx context.Context, a, z int64, depth int) error {
	s := b.s
	path := "/api/v4/futures/" + s.name + "/liq_orders?from=" + strconv.FormatInt(a, 10) + "&to=" + strconv.FormatInt(z, 10) +
		"&limit=" + strconv.Itoa(backfillLimit)
	body, err := b.fetch(ctx, path)
	if err != nil {
		return fmt.Errorf("window %d..%d: %w", a, z, err)
	}
	rows, bad, derr := decodeHistory(body, func(l liq) { s.handle(l, fromBackfill) })
	for range bad {
		s.obs.DecodeError()
	}
	if bad > 0 && s.v.throttle.Allow("backfill-decode:"+s.name) {
		s.log.Warn("dropped malformed backfilled orders", "bad", bad, "err", derr)
	}
	if rows < backfillLimit {
		return nil
	}
	if z <= a || depth > 24 {
		if s.v.throttle.Allow("backfill-full:" + s.name) {
			s.log.Warn("liquidation backfill page full for a one-second window; older orders of that second may be missing", "from", a)
		}
		return nil
	}
	m := a + (z-a)/2
	if err := b.window(ctx, a, m, depth+1); err != nil {
		return err
	}
	// The halves share m (fetched twice; the dedupe makes that harmless)
	// unless the window is two seconds long.
	return b.window(ctx, max(m, a+1), z, depth+1)
}

// fetch paces and sends one backfill request, retrying after rate-limit
// answers.
func (b *backfiller) fetch(ctx context.Context, path string) (json.RawMessage, error) {
	cfg := &b.s.v.cfg
	for attempt := 0; ; attempt++ {
		if !b.first && !exchanges.Sleep(ctx, cfg.BackfillRequestInterval) {
			return nil, ctx.Err()
		}
		b.first = false
		var body json.RawMessage
		err := b.s.v.get(ctx, path, &body)
		var herr *exchanges.HTTPError
		if err == nil || !errors.As(err, &herr) || !herr.RateLimited() || attempt >= backfillRetries {
			if herr != nil {
				err = fmt.Errorf("%w (%s)", err, describe(herr.Body))
			}
			return body, err
		}
		if !exchanges.Sleep(ctx, max(herr.RetryAfter, time.Second)) {
			return nil, ctx.Err()
		}
	}
}

// decodeHistory decodes a liq_orders answer, an array of
// {"time":1548654951,"contract":"BTC_USDT","size":600,"order_size":-600,
// "order_price":"3405","fill_price":"3424","left":0} (documented). The
// liquidation order is order_size at order_price (the pushed size and
// price), at time (s). rows counts every element, bad the unusable ones.
func decodeHistory(body []byte, emit func(liq)) (rows, bad int, lastErr error) {
	if jsonx.KindOf(body) != jsonx.KindArray {
		return 0, 1, errors.New("liq_orders answer is not an array")
	}
	err := jsonx.ArrayEach(body, func(item []byte) bool {
		rows++
		if err := decodeHistoryRow(item, emit); err != nil {
			bad++
			lastErr = err
		}
		return true
	})
	if err != nil {
		bad++
		lastErr = err
	}
	return rows, bad, lastErr
}

func decodeHistoryRow(item []byte, emit func(liq)) error {
	if jsonx.KindOf(item) != jsonx.KindObject {
		return errBadItem
	}
	var contract, size, price, ts []byte
	if err := jsonx.ObjectEach(item, func(k, v []byte) bool {
		switch string(k) {
		case "contract":
			contract = v
		case "order_size":
			size = v
		case "order_price":
			price = v
		case "time":
			ts = v
		}
		return true
	}); err != nil {
		return err
	}
	l := liq{}
	var ok bool
	if l.Contract, ok = jsonx.String(contract); !ok || len(l.Contract) == 0 {
		return errBadContract
	}
	var err error
	if l.Size, err = jsonx.Float(size); err != nil || l.Size == 0 || math.IsInf(l.Size, 0) {
		return errBadSize
	}
	if l.Price, err = jsonx.Float(price); err != nil || !(l.Price > 0) || math.IsInf(l.Price, 0) {
		return errBadPrice
	}
	sec, err := jsonx.Int(ts)
	if err != nil || sec <= 0 || sec > math.MaxInt64/1000 {
		return errors.New("time is missing or not a positive integer")
	}
	l.TimeMs = sec * 1000
	l.Side = sideOf(l.Size)
	emit(l)
	return nil
}
