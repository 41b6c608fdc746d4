package exchanges

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fillLog records the fills a Backfill makes and answers them from a script.
type fillLog struct {
	mu      sync.Mutex
	calls   []time.Time // the from of each fill
	at      []time.Time // when each fill ran
	answers []error     // answer of the n-th fill; nil beyond the script
	block   chan struct{}
	entered chan struct{}
}

func (f *fillLog) fill(ctx context.Context, from time.Time) error {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, from)
	f.at = append(f.at, time.Now())
	var err error
	if n < len(f.answers) {
		err = f.answers[n]
	}
	block, entered := f.block, f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	return err
}

func (f *fillLog) snapshot() ([]time.Time, []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...), append([]time.Time(nil), f.at...)
}

func (f *fillLog) waitCalls(t *testing.T, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls, _ := f.snapshot()
		if len(calls) >= n {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fills, want %d", len(calls), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type obsLog struct {
	mu   sync.Mutex
	errs []error
}

func (o *obsLog) Observe(_ time.Duration, err error) {
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.mu.Unlock()
}

func runBackfill(t *testing.T, b *Backfill, obs PollObserver) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx, obs); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

var t0 = time.Unix(1_800_000_000, 0)

func TestBackfillMergesRequestsWhileAFillRuns(t *testing.T) {
	f := &fillLog{block: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := &Backfill{Fill: f.fill}
	runBackfill(t, b, nil)
	b.Request(t0.Add(10 * time.Second))
	<-f.entered
	// Two more gaps while the first fill runs: one fill, from the earlier.
	b.Request(t0.Add(30 * time.Second))
	b.Request(t0.Add(20 * time.Second))
	close(f.block)
	f.waitCalls(t, 2)
	time.Sleep(20 * time.Millisecond)
	if calls, _ := f.snapshot(); len(calls) != 2 || !calls[0].Equal(t0.Add(10*time.Second)) || !calls[1].Equal(t0.Add(20*time.Second)) {
		t.Errorf("fills from %v, want [t0+10s t0+20s]", calls)
	}
}

func TestBackfillRetriesAFailedWindowWithBackoff(t *testing.T) {
	boom := errors.New("HTTP 503")
	f := &fillLog{answers: []error{boom, boom, nil}}
	obs := &obsLog{}
	b := &Backfill{Fill: f.fill, RetryInterval: 40 * time.Millisecond, MaxRetryInterval: time.Second}
	runBackfill(t, b, obs)
	requested := time.Now()
	b.Request(t0)
	f.waitCalls(t, 3)
	time.Sleep(150 * time.Millisecond) // a success schedules nothing more
	calls, at := f.snapshot()
	if len(calls) != 3 {
		t.Fatalf("%d fills, want 3 (two failures, then the success)", len(calls))
	}
	for i, c := range calls {
		if !c.Equal(t0) {
			t.Errorf("fill %d from %v, want the failed window's start %v", i, c, t0)
		}
	}
	// The retries wait RetryInterval, then twice that: lower bounds only.
	if d := at[1].Sub(requested); d < 40*time.Millisecond {
		t.Errorf("first retry after %v, want >= 40ms", d)
	}
	if d := at[2].Sub(at[1]); d < 80*time.Millisecond {
		t.Errorf("second retry %v after the first, want >= 80ms (doubled)", d)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.errs) != 3 || obs.errs[0] == nil || obs.errs[1] == nil || obs.errs[2] != nil {
		t.Errorf("observed %v, want two failures then a success", obs.errs)
	}
}

func TestBackfillGivesUpAfterMaxRetries(t *testing.T) {
	boom := errors.New("HTTP 500")
	f := &fillLog{answers: []error{boom, boom, boom, boom, boom}}
	b := &Backfill{Fill: f.fill, RetryInterval: 5 * time.Millisecond, MaxRetryInterval: 10 * time.Millisecond, MaxRetries: 2}
	runBackfill(t, b, nil)
	b.Request(t0)
	f.waitCalls(t, 3)
	time.Sleep(100 * time.Millisecond)
	if calls, _ := f.snapshot(); len(calls) != 3 {
		t.Errorf("%d fills, want 3 (the first and 2 retries)", len(calls))
	}
	// A later gap is served again.
	b.Request(t0.Add(time.Hour))
	calls := f.waitCalls(t, 4)
	if !calls[3].Equal(t0.Add(time.Hour)) {
		t.Errorf("new gap filled from %v", calls[3])
	}
}

func TestBackfillNewGapTakesTheFailedWindowAlong(t *testing.T) {
	f := &fillLog{answers: []error{errors.New("timeout")}}
	b := &Backfill{Fill: f.fill, RetryInterval: time.Hour}
	runBackfill(t, b, nil)
	b.Request(t0)
	f.waitCalls(t, 1)
	// The retry is an hour away; a new gap now covers the failed window too.
	b.Request(t0.Add(time.Minute))
	calls := f.waitCalls(t, 2)
	if !calls[1].Equal(t0) {
		t.Errorf("second fill from %v, want the failed window's start %v", calls[1], t0)
	}
}

func TestBackfillRunStopsOnCancelDuringFill(t *testing.T) {
	f := &fillLog{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	b := &Backfill{Fill: f.fill}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx, nil); close(done) }()
	b.Request(t0)
	<-f.entered
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}
