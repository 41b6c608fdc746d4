package venuetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// fatalTB records the message of a Fatal or Fatalf and ends the calling
// goroutine as testing.T does. Any other method of testing.TB panics on
// the nil interface it embeds, so an unexpected call shows.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) message() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

// call runs fn(tb) in a goroutine of its own, as Goexit needs, and
// returns once it has ended.
func call(tb *fatalTB, fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
}

var failures = []string{"exchange", "x", "endpoint", "e"}

func TestEventuallyConfirmsOnTheNextScrape(t *testing.T) {
	h := New(t)
	poll := h.Coll.Poll("x", "e")
	calls := 0
	begin := time.Now()
	// Every call counts one more failure after reading the scrape: cond
	// holds from the third scrape (2 failures) on, and the fourth, taken
	// at once, confirms it.
	s := h.Eventually(t, "two failures", func(s collectortest.Samples) bool {
		calls++
		n := Val(s, "crypto_exporter_poll_failures_total", failures...)
		poll.Observe(0, errors.New("boom"))
		return n >= 2
	})
	if got := Val(s, "crypto_exporter_poll_failures_total", failures...); got != 3 {
		t.Errorf("returned scrape holds %v failures, want 3 (the confirming scrape)", got)
	}
	if calls != 4 {
		t.Errorf("cond called %d times, want 4", calls)
	}
	if d := time.Since(begin); d < 2*PollEvery || d > 2*PollEvery+PollEvery/2+50*time.Millisecond {
		t.Errorf("four scrapes took %v, want two pauses of %v (none before the confirming scrape)", d, PollEvery)
	}
}

// TestEventuallySeesEarlierWrites: a venue counts a decode error, then a
// liquidation. A scrape reads the decode errors before the liquidations,
// and here the venue's pair of writes falls between the two reads of the
// first scrape, which so shows the liquidation without its decode error.
// Eventually, waiting for the liquidation, returns the next scrape, which
// shows both.
func TestEventuallySeesEarlierWrites(t *testing.T) {
	h := New(t)
	errs, liqs := 0.0, 0.0
	write := func() { errs++; liqs++ }
	scrapes := 0
	h.gather = func() (collectortest.Samples, error) {
		scrapes++
		s := collectortest.Samples{}
		s[collectortest.Key("crypto_exporter_stream_decode_errors_total")] = errs // status first
		if scrapes == 1 {
			write()
		}
		s[collectortest.Key("crypto_liquidations_total")] = liqs // data second
		return s, nil
	}
	s := h.Eventually(t, "the liquidation", func(s collectortest.Samples) bool { return Val(s, "crypto_liquidations_total") == 1 })
	if got := Val(s, "crypto_exporter_stream_decode_errors_total"); got != 1 {
		t.Errorf("the scrape Eventually returned shows %v decode errors, want 1 (written before the liquidation)", got)
	}
}

func TestEventuallyTimesOut(t *testing.T) {
	h := New(t)
	h.Timeout = 100 * time.Millisecond
	var calls atomic.Int32
	tb := &fatalTB{}
	begin := time.Now()
	call(tb, func(tb testing.TB) {
		h.Eventually(tb, "the impossible", func(collectortest.Samples) bool { calls.Add(1); return false })
		panic("Eventually returned although cond never held")
	})
	if got := tb.message(); got != "timed out waiting for the impossible" {
		t.Errorf("failure %q", got)
	}
	if d := time.Since(begin); d < h.Timeout {
		t.Errorf("gave up after %v, before the timeout %v", d, h.Timeout)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("cond called %d times in %v, want a scrape every %v", n, h.Timeout, PollEvery)
	}
}

func TestAwaitDoesNotFail(t *testing.T) {
	h := New(t)
	h.Coll.Stream("x", "s") // declared, down
	s, ok := h.Await(t, 50*time.Millisecond, func(s collectortest.Samples) bool {
		return Val(s, "crypto_exporter_stream_up", "exchange", "x", "stream", "s") == 1
	})
	if ok {
		t.Error("Await reports a condition that never held")
	}
	if got := Val(s, "crypto_exporter_stream_up", "exchange", "x", "stream", "s"); got != 0 {
		t.Errorf("last scrape: stream_up %v, want 0", got)
	}
}

// slowRun returns a Run that returns delay after its context ends and
// sets returned as it does.
func slowRun(delay time.Duration, returned *atomic.Bool) RunFunc {
	return func(ctx context.Context, _ exchanges.Sink) error {
		<-ctx.Done()
		time.Sleep(delay)
		returned.Store(true)
		return ctx.Err()
	}
}

func TestStopWaitsForRun(t *testing.T) {
	h := New(t)
	var returned atomic.Bool
	h.Start(slowRun(100*time.Millisecond, &returned))
	h.Stop()
	if !returned.Load() {
		t.Fatal("Stop returned before Run")
	}
	h.Stop() // again: nothing left to do
}

func TestCleanupStops(t *testing.T) {
	var returned atomic.Bool
	t.Run("venue", func(t *testing.T) {
		New(t).Start(slowRun(50*time.Millisecond, &returned))
	})
	if !returned.Load() {
		t.Fatal("the subtest ended with its venue still running")
	}
}

func TestStopWithin(t *testing.T) {
	h := New(t)
	var returned atomic.Bool
	h.Start(slowRun(10*time.Millisecond, &returned))
	h.StopWithin(t, time.Second)
	if !returned.Load() {
		t.Fatal("StopWithin returned before Run")
	}

	// A Run that ignores its context fails the test.
	release := make(chan struct{})
	h2 := New(t)
	h2.Start(func(context.Context, exchanges.Sink) error { <-release; return nil })
	tb := &fatalTB{}
	call(tb, func(tb testing.TB) { h2.StopWithin(tb, 50*time.Millisecond) })
	if got := tb.message(); got != "Run did not return within 50ms of cancel" {
		t.Errorf("failure %q", got)
	}
	close(release) // so that cleanup's Stop finds it returned
}

// countingSink counts the streams declared through it.
type countingSink struct {
	exchanges.Sink
	streams atomic.Int32
}

func (c *countingSink) Stream(exchange, stream string) exchanges.StreamObserver {
	c.streams.Add(1)
	return c.Sink.Stream(exchange, stream)
}

func TestStartHandsOverTheSink(t *testing.T) {
	report := func(ctx context.Context, sink exchanges.Sink) error {
		sink.Stream("x", "a").SetUp(true)
		sink.Stream("x", "b").SetUp(true)
		sink.Poll("x", "e").Observe(time.Millisecond, nil)
		<-ctx.Done()
		return ctx.Err()
	}
	h := New(t)
	h.Start(report)
	h.WaitStreamsUp(t, "x", "a", "b")
	if s := h.WaitPolled(t, "x", "e"); Val(s, "crypto_exporter_poll_success", failures...) != 1 {
		t.Error("WaitPolled returned a scrape without the good poll")
	}

	h2 := New(t)
	sink := &countingSink{Sink: h2.Coll}
	h2.StartWith(sink, report)
	h2.WaitStreamsUp(t, "x", "a", "b")
	h2.StopWithin(t, time.Second)
	if n := sink.streams.Load(); n != 2 {
		t.Errorf("%d streams declared through the given sink, want 2", n)
	}

	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "twice") {
			t.Errorf("second Start: recovered %v, want a panic", r)
		}
	}()
	h2.Start(report)
}

func TestVal(t *testing.T) {
	s := collectortest.Samples{collectortest.Key("m", "a", "1"): 2.5}
	if got := Val(s, "m", "a", "1"); got != 2.5 {
		t.Errorf("Val = %v, want 2.5", got)
	}
	if got := Val(s, "m", "a", "2"); !math.IsNaN(got) {
		t.Errorf("Val of a missing series = %v, want NaN", got)
	}
}

func TestWaitClosed(t *testing.T) {
	var open atomic.Int32
	open.Store(2)
	go func() {
		time.Sleep(30 * time.Millisecond)
		open.Store(0)
	}()
	WaitClosed(t, time.Second, func() int { return int(open.Load()) })

	tb := &fatalTB{}
	call(tb, func(tb testing.TB) { WaitClosed(tb, 50*time.Millisecond, func() int { return 1 }) })
	if got := tb.message(); got != "1 connections left open" {
		t.Errorf("failure %q", got)
	}
}
