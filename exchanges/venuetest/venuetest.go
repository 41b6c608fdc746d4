// Package venuetest runs a venue in a test: the venue's Run goes to a
// goroutine with a fresh collector as its sink, the test reads the
// collector's series as collectortest.Samples and waits for conditions on
// them, and cleanup cancels Run and waits for it to return.
//
// It is a package of its own, not part of collectortest, because it holds
// a *collector.Collector and the collector's own tests import
// collectortest.
package venuetest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

const (
	// DefaultTimeout is how long Eventually waits unless Harness.Timeout
	// says otherwise.
	DefaultTimeout = 10 * time.Second
	// PollEvery is how often Await and Eventually scrape the collector.
	PollEvery = 20 * time.Millisecond
	// StopTimeout is how long Stop waits for Run to return after cancel.
	StopTimeout = 5 * time.Second
)

// RunFunc is the form of a venue's Run method.
type RunFunc func(ctx context.Context, sink exchanges.Sink) error

// Harness runs one venue with Coll as its sink.
type Harness struct {
	// Coll is the collector the venue writes to and Samples reads.
	Coll *collector.Collector
	// Timeout is how long Eventually waits; New sets DefaultTimeout.
	Timeout time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	// gather, when set, replaces the scrape of Coll (this package's
	// tests model a scrape with a write between its two reads).
	gather func() (collectortest.Samples, error)
}

// New returns a Harness with a fresh collector and registers Stop with
// t.Cleanup. Cleanups run last registered first: register the fakes'
// Close before calling New, so that they close after the venue stopped.
func New(t testing.TB) *Harness {
	t.Helper()
	h := &Harness{Coll: collector.New(), Timeout: DefaultTimeout, done: make(chan struct{})}
	t.Cleanup(h.Stop)
	return h
}

// Start runs run(ctx, h.Coll) in a goroutine until Stop or StopWithin
// cancels ctx. The error run returns is dropped: a venue returns one only
// when ctx ends.
func (h *Harness) Start(run RunFunc) { h.StartWith(h.Coll, run) }

// StartWith is Start with another sink, such as one that wraps Coll or
// records every call. A Harness starts one Run only.
func (h *Harness) StartWith(sink exchanges.Sink, run RunFunc) {
	if h.cancel != nil {
		panic("venuetest: Start called twice on one Harness")
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		_ = run(ctx, sink)
	}()
}

// Stop cancels Run's context and waits for Run to return. It panics when
// Run has not returned within StopTimeout: a venue that ignores its
// context would run on into later tests, and the panic's goroutine dump
// shows where it hangs. Stop does nothing before Start and may be called
// again.
func (h *Harness) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(StopTimeout):
		panic(fmt.Sprintf("venue did not stop within %v of cancel", StopTimeout))
	}
}

// StopWithin cancels Run's context and fails t unless Run returns within
// the given time.
func (h *Harness) StopWithin(t testing.TB, within time.Duration) {
	t.Helper()
	if h.cancel == nil {
		t.Fatal("StopWithin before Start")
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(within):
		t.Fatalf("Run did not return within %v of cancel", within)
	}
}

// Samples scrapes the collector.
func (h *Harness) Samples(t testing.TB) collectortest.Samples {
	t.Helper()
	gather := h.gather
	if gather == nil {
		gather = func() (collectortest.Samples, error) { return collectortest.FromCollector(h.Coll) }
	}
	s, err := gather()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Await scrapes the collector every PollEvery until cond holds on two
// scrapes in a row or within has passed; see the function Await.
func (h *Harness) Await(t testing.TB, within time.Duration, cond func(s collectortest.Samples) bool) (collectortest.Samples, bool) {
	t.Helper()
	return Await(t, h.Samples, within, cond)
}

// Eventually is Await for h.Timeout; it returns the scrape that confirmed
// cond and fails t when there is none.
func (h *Harness) Eventually(t testing.TB, what string, cond func(s collectortest.Samples) bool) collectortest.Samples {
	t.Helper()
	return Eventually(t, h.Samples, h.Timeout, what, cond)
}

// Await calls samples every PollEvery until cond holds on two scrapes in a
// row or within has passed. It returns the last scrape and whether cond
// held on it.
//
// The second scrape, taken at once after the first that satisfied cond, is
// what makes a test's further checks on it sound: one scrape reads the
// status series and the per-instrument series one after the other, so a
// venue may write between the two reads, and a scrape that sees the
// awaited value need not see what the venue wrote just before it (a decode
// error before a counted liquidation, a poll's instruments before its
// success). Everything written before the awaited value has been written
// before the second scrape starts.
func Await(t testing.TB, samples func(testing.TB) collectortest.Samples, within time.Duration, cond func(s collectortest.Samples) bool) (collectortest.Samples, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	held := false
	for {
		s := samples(t)
		ok := cond(s)
		if ok && held {
			return s, true
		}
		held = ok
		if ok {
			continue // confirm on the next scrape at once
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(PollEvery)
	}
}

// Eventually is Await that fails t ("timed out waiting for what") when
// cond has not held within the given time.
func Eventually(t testing.TB, samples func(testing.TB) collectortest.Samples, within time.Duration, what string, cond func(s collectortest.Samples) bool) collectortest.Samples {
	t.Helper()
	s, ok := Await(t, samples, within, cond)
	if !ok {
		t.Fatalf("timed out waiting for %s", what)
	}
	return s
}

// WaitStreamsUp waits until crypto_exporter_stream_up is 1 for each of the
// exchange's streams.
func (h *Harness) WaitStreamsUp(t testing.TB, exchange string, streams ...string) collectortest.Samples {
	t.Helper()
	return h.Eventually(t, "streams up", func(s collectortest.Samples) bool {
		for _, st := range streams {
			if Val(s, "crypto_exporter_stream_up", "exchange", exchange, "stream", st) != 1 {
				return false
			}
		}
		return true
	})
}

// WaitPolled waits until crypto_exporter_poll_success is 1 for each of the
// exchange's endpoints.
func (h *Harness) WaitPolled(t testing.TB, exchange string, endpoints ...string) collectortest.Samples {
	t.Helper()
	return h.Eventually(t, "polls succeeded", func(s collectortest.Samples) bool {
		for _, ep := range endpoints {
			if Val(s, "crypto_exporter_poll_success", "exchange", exchange, "endpoint", ep) != 1 {
				return false
			}
		}
		return true
	})
}

// Val returns the value of one series, or NaN when s does not hold it (NaN
// equals no value, so a missing series fails every comparison).
func Val(s collectortest.Samples, name string, pairs ...string) float64 {
	v, ok := s.Get(name, pairs...)
	if !ok {
		return math.NaN()
	}
	return v
}

// WaitClosed polls open every 10 ms until it returns 0 and fails t when it
// has not within the given time; open is a fake's count of open
// connections.
func WaitClosed(t testing.TB, within time.Duration, open func() int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for open() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left open", open())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FastStream is the WebSocket runner setting of the venue tests: reconnect
// after 20 to 100 ms and ping every second. Venues whose tests want other
// values set them after calling it.
func FastStream(c *wsconn.Config) {
	c.BackoffMin = 20 * time.Millisecond
	c.BackoffMax = 100 * time.Millisecond
	c.PingInterval = time.Second
}

// Bench runs fn(i) for i from 0 to b.N-1, each call one message of size
// bytes, and reports allocations, bytes and messages per second; what comes
// before it (building the venue, warming it up) is not timed.
func Bench(b *testing.B, size int, fn func(i int)) {
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fn(i)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
