package exchanges

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Backfill runs the REST backfills of one liquidation stream (OKX, Gate):
// after a gap the stream asks for the window from a start time to now, and
// Backfill calls Fill for it, one window at a time. Windows asked for while a
// fill runs are merged into the next one (the earliest start wins). A fill
// that fails (a 5xx, a timeout, a malformed answer; the venue code retries
// rate-limit answers itself) is asked for again after RetryInterval,
// doubling up to MaxRetryInterval, at most MaxRetries times in a row, so that
// a venue error during the backfill does not lose the gap's orders for good.
// Fill must be idempotent: the venues pass every backfilled order through
// their dedupe, so fetching a window again counts nothing twice.
type Backfill struct {
	// Fill fetches and counts the orders from from to now.
	Fill func(ctx context.Context, from time.Time) error
	// Counted returns the number of orders backfilled so far (for the log).
	Counted func() int64
	Logger  *slog.Logger

	// RetryInterval is the delay before the first retry of a failed fill
	// (default 5 s); it doubles up to MaxRetryInterval (default 2 min).
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// MaxRetries bounds the retries of one failed window (default 5).
	MaxRetries int

	once    sync.Once
	wake    chan struct{}
	mu      sync.Mutex
	pending bool
	from    time.Time // the earliest start asked for
}

// Backfill defaults.
const (
	DefaultBackfillRetryInterval    = 5 * time.Second
	DefaultBackfillMaxRetryInterval = 2 * time.Minute
	DefaultBackfillMaxRetries       = 5
)

func (b *Backfill) init() {
	b.once.Do(func() {
		b.wake = make(chan struct{}, 1)
		if b.RetryInterval <= 0 {
			b.RetryInterval = DefaultBackfillRetryInterval
		}
		if b.MaxRetryInterval < b.RetryInterval {
			b.MaxRetryInterval = max(DefaultBackfillMaxRetryInterval, b.RetryInterval)
		}
		if b.MaxRetries <= 0 {
			b.MaxRetries = DefaultBackfillMaxRetries
		}
		if b.Logger == nil {
			b.Logger = slog.New(slog.DiscardHandler)
		}
		if b.Counted == nil {
			b.Counted = func() int64 { return 0 }
		}
	})
}

// Request asks for a backfill from from to now. It never blocks.
func (b *Backfill) Request(from time.Time) {
	b.init()
	b.merge(from)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Backfill) merge(from time.Time) {
	b.mu.Lock()
	if !b.pending || from.Before(b.from) {
		b.from = from
	}
	b.pending = true
	b.mu.Unlock()
}

func (b *Backfill) take() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from, ok := b.from, b.pending
	b.pending = false
	return from, ok
}

// Run serves backfill requests until ctx is done; obs (if not nil)
// receives each fill's duration and outcome.
func (b *Backfill) Run(ctx context.Context, obs PollObserver) {
	b.init()
	var (
		retry    *time.Timer
		retryC   <-chan time.Time
		failed   time.Time // start of the window that failed
		attempts int       // consecutive failed fills
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
			if retryC != nil {
				// A new gap: fetch the failed window with it now.
				retry.Stop()
				retryC = nil
				b.merge(failed)
			}
		case <-retryC:
			retryC = nil
			b.merge(failed)
		}
		from, ok := b.take()
		if !ok {
			continue
		}
		start := time.Now()
		counted := b.Counted()
		err := b.Fill(ctx, from)
		if ctx.Err() != nil {
			return
		}
		if obs != nil {
			obs.Observe(time.Since(start), err)
		}
		n := b.Counted() - counted
		if err == nil {
			attempts = 0
			b.Logger.Debug("liquidation backfill done", "from", from.UTC(), "counted", n, "took", time.Since(start))
			continue
		}
		attempts++
		if attempts > b.MaxRetries {
			b.Logger.Warn("liquidation backfill failed; giving up on this gap", "err", err, "from", from.UTC(), "counted", n, "attempts", attempts)
			attempts = 0
			continue
		}
		delay := b.RetryInterval << (attempts - 1)
		if delay > b.MaxRetryInterval || delay <= 0 {
			delay = b.MaxRetryInterval
		}
		b.Logger.Warn("liquidation backfill incomplete; retrying the gap", "err", err, "from", from.UTC(), "counted", n, "retry_in", delay, "attempt", attempts)
		failed = from
		if retry == nil {
			retry = time.NewTimer(delay)
		} else {
			retry.Reset(delay)
		}
		retryC = retry.C
	}
}
