package okx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// The REST backfill recovers the orders a liquidation stream missed while it
// was down. After every subscription ack (the first one covers the start-up
// gap from the venue's start) the stream asks its backfiller for the window
// from a start time to now; the backfiller fetches, for every instFamily of
// the instrument type's allowed instruments,
//
//	GET /api/v5/public/liquidation-orders?instType=SWAP&instFamily=BTC-USDT&state=filled&limit=100[&after=ts]
//
// newest page first, paging back with after (orders earlier than ts,
// INFERRED from OKX's pagination convention) until a page is not full,
// reaches the window's start, or BackfillMaxPages pages were read. Requests
// are spaced by BackfillRequestInterval (default half of the documented 40
// requests per 2 s); a rate-limit answer waits out its Retry-After or one
// rate window and retries, at most three times per request. Every order goes
// through the same dedupe as the pushed ones, so an order counts once
// whether it arrives live, replayed, backfilled, or several of these.
// Windows asked for while a backfill runs are merged into the next one, and
// a backfill that fails otherwise is retried (exchanges.Backfill).

// backfillLimit is the page size asked for (documented maximum 100).
const backfillLimit = 100

// backfillRetries bounds the retries of one request after rate-limit answers.
const backfillRetries = 3

type backfiller struct {
	k *kind
	q exchanges.Backfill // merges the requests, retries failed fills
}

// init wires the queue; called once when the kind is built.
func (b *backfiller) init(k *kind) {
	b.k = k
	b.q = exchanges.Backfill{
		Fill:          func(ctx context.Context, from time.Time) error { return b.fill(ctx, from.UnixMilli()) },
		Counted:       k.v.stats.backfilled.Load,
		Logger:        k.log,
		RetryInterval: k.v.cfg.BackfillRetryInterval,
	}
}

// request asks for a backfill from the ts from (ms) to now.
func (b *backfiller) request(from int64) { b.q.Request(time.UnixMilli(from)) }

// run serves backfill requests until ctx is done.
func (b *backfiller) run(ctx context.Context) { b.q.Run(ctx, b.k.polls[epBackfill]) }

// fill backfills every instFamily from the ts from (ms). Orders at or
// before the dedupe floor cannot count, so the window starts no earlier.
func (b *backfiller) fill(ctx context.Context, from int64) error {
	k := b.k
	from = max(from, k.v.dedupe.Floor())
	var errs []error
	first := true
	for _, fam := range k.v.families(k) {
		if err := b.family(ctx, fam, from, &first); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("instFamily %s: %w", fam, err))
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more instFamilies failed", len(errs)-3))
	}
	return errors.Join(errs...)
}

// family pages back through one instFamily's filled orders down to from.
func (b *backfiller) family(ctx context.Context, fam string, from int64, first *bool) error {
	k := b.k
	cfg := &k.v.cfg
	after := int64(0)
	prevOldest := int64(0)
	emit := func(d detail) { k.handle(d, fromBackfill, time.Now()) }
	for page := 0; page < cfg.BackfillMaxPages; page++ {
		path := "/api/v5/public/liquidation-orders?instType=" + k.name + "&instFamily=" + query(fam) +
			"&state=filled&limit=" + strconv.Itoa(backfillLimit)
		if after > 0 {
			path += "&after=" + strconv.FormatInt(after, 10)
		}
		data, err := b.fetch(ctx, path, first)
		if err != nil {
			return err
		}
		oldest, details := int64(0), 0
		_, bad, derr := decodeItems(data, []byte(k.name), func(d detail) {
			details++
			if oldest == 0 || d.TS < oldest {
				oldest = d.TS
			}
			if d.TS > from {
				emit(d)
			}
		})
		for range bad {
			k.obs.DecodeError()
		}
		if bad > 0 && k.v.throttle.Allow("backfill-decode:"+k.name) {
			k.log.Warn("dropped malformed backfilled orders", "inst_family", fam, "bad", bad, "err", derr)
		}
		switch {
		case details < backfillLimit, oldest <= from, prevOldest != 0 && oldest >= prevOldest:
			return nil
		}
		prevOldest = oldest
		// Orders sharing the oldest ts may straddle the page boundary, so
		// the next page starts at that ts again (duplicates are deduped).
		after = oldest + 1
	}
	if k.v.throttle.Allow("backfill-pages:" + fam) {
		k.log.Warn("liquidation backfill stopped at the page cap; older orders of the gap are not recovered", "inst_family", fam, "pages", cfg.BackfillMaxPages)
	}
	return nil
}

// fetch paces and sends one backfill request, retrying after rate-limit
// answers.
func (b *backfiller) fetch(ctx context.Context, path string, first *bool) ([]byte, error) {
	cfg := &b.k.v.cfg
	for attempt := 0; ; attempt++ {
		if !*first && !exchanges.Sleep(ctx, cfg.BackfillRequestInterval) {
			return nil, ctx.Err()
		}
		*first = false
		data, err := b.k.v.get(ctx, path)
		var herr *exchanges.HTTPError
		if err == nil || !errors.As(err, &herr) || !herr.RateLimited() || attempt >= backfillRetries {
			return data, err
		}
		if !exchanges.Sleep(ctx, max(herr.RetryAfter, RateWindow)) {
			return nil, ctx.Err()
		}
	}
}
