// Package faultsuite holds the WebSocket fault scenarios every venue with
// a liquidation stream must survive, run against the venue's fake through a
// small description of the venue (Venue). Each venue's faults_test.go
// describes itself and calls the scenarios; venue-specific faults stay
// there.
package faultsuite

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Fake is what the scenarios drive of a venue's fake.
type Fake interface {
	Play([]exchangetest.Event) []exchangetest.Delivered
	SetStallHandshake(bool)
	StalledHandshakes() int
}

// Venue describes one venue under test: a running venue with a collector
// whose stream uses Stream's timers, its fake, and one liquidation series
// the scenarios count on.
type Venue struct {
	Samples func(testing.TB) collectortest.Samples // the collector's series now
	WaitUp  func(t *testing.T)                     // until the stream is up and subscribed
	Fake    Fake
	Logs    *exchangetest.LogRecorder // the venue's log

	Exchange string   // the exchange label
	Stream   []string // label pairs of the stream's series
	Series   []string // label pairs (with side) of the counted liquidation series
	// Liquidation returns the k-th of distinct liquidations (k from 0) of
	// Series, each worth Notional USD.
	Liquidation func(k int) []byte
	Notional    float64

	// SetAnswerHeartbeats makes the fake answer (or ignore) the venue's
	// heartbeats; nil where the half-open peer is tested elsewhere.
	SetAnswerHeartbeats func(bool)
}

// Stream shortens every timer of a stream so that faults show fast; the
// venue's Config.Stream hook applies it.
func Stream(c *wsconn.Config) {
	c.BackoffMin = 10 * time.Millisecond
	c.BackoffMax = 50 * time.Millisecond
	c.PingInterval = 100 * time.Millisecond
	c.ReadTimeout = 500 * time.Millisecond
	c.HandshakeTimeout = 200 * time.Millisecond
	c.SubscribeTimeout = time.Second
	c.ReadLimit = 64 << 10
}

// oversized is larger than Stream's read limit.
const oversized = 256 << 10

func (v *Venue) val(s collectortest.Samples, name string, labels ...string) float64 {
	x, _ := s.Get(name, labels...)
	return x
}

func (v *Venue) connects(s collectortest.Samples) float64 {
	return v.val(s, "crypto_exporter_stream_connects_total", v.Stream...)
}

func (v *Venue) decodeErrors(s collectortest.Samples) float64 {
	return v.val(s, "crypto_exporter_stream_decode_errors_total", v.Stream...)
}

func (v *Venue) up(s collectortest.Samples) bool {
	return v.val(s, "crypto_exporter_stream_up", v.Stream...) == 1
}

func (v *Venue) count(s collectortest.Samples) float64 {
	return v.val(s, "crypto_liquidations_total", v.Series...)
}

// eventually waits up to 15 s for cond, confirmed on a second scrape
// (venuetest.Eventually).
func (v *Venue) eventually(t *testing.T, what string, cond func(collectortest.Samples) bool) collectortest.Samples {
	t.Helper()
	return venuetest.Eventually(t, v.Samples, 15*time.Second, what, cond)
}

// checkCount checks that exactly n liquidations were counted, all on
// Series, with their notional.
func (v *Venue) checkCount(t *testing.T, s collectortest.Samples, n float64) {
	t.Helper()
	if got := v.count(s); got != n {
		t.Errorf("%v liquidations = %v, want %v", v.Series, got, n)
	}
	if got := v.val(s, "crypto_liquidation_notional_usd_total", v.Series...); !collectortest.Close(got, n*v.Notional) {
		t.Errorf("%v notional = %v, want %v", v.Series, got, n*v.Notional)
	}
	if got := s.Sum("crypto_liquidations_total", "exchange", v.Exchange); got != n {
		t.Errorf("liquidations of every symbol = %v, want %v", got, n)
	}
}

// CloseCodesAndBadFrames checks that close frames of every kind and an abrupt close
// are each followed by a new connection and logged; garbage and truncated
// frames are counted and dropped on the live connection, a slow frame
// after them counted once; an oversized frame is a logged decode error
// that replaces the connection; nothing is counted twice.
func CloseCodesAndBadFrames(t *testing.T, v *Venue) {
	t.Helper()
	v.WaitUp(t)
	reconnect := func(what string, ev exchangetest.Event) {
		t.Helper()
		before := v.connects(v.Samples(t))
		v.Fake.Play([]exchangetest.Event{ev})
		v.eventually(t, what, func(s collectortest.Samples) bool { return v.connects(s) > before && v.up(s) })
	}
	for _, code := range []int{1000, 1001, 1011, 4000} {
		reconnect(fmt.Sprintf("a new connection after close code %d", code), exchangetest.Event{CloseCode: code})
	}
	reconnect("a new connection after a TCP close", exchangetest.Event{Disconnect: true})
	if n := v.Logs.Count(slog.LevelWarn, "websocket disconnected"); n < 5 {
		t.Errorf("%d disconnects logged, want >= 5", n)
	}

	c0 := v.connects(v.Samples(t))
	v.Fake.Play([]exchangetest.Event{
		{Frame: []byte("garbage \x01\x02")},
		{Frame: v.Liquidation(0)[:40]},
		{Delay: 300 * time.Millisecond, Frame: v.Liquidation(1)},
	})
	s := v.eventually(t, "bad frames counted", func(s collectortest.Samples) bool {
		return v.decodeErrors(s) == 2 && v.count(s) == 1
	})
	if got := v.connects(s); got != c0 {
		t.Errorf("connects %v -> %v after bad frames, want the connection kept", c0, got)
	}

	reconnect("a new connection after an oversized frame", exchangetest.Event{Frame: exchangetest.OversizedFrame(oversized)})
	v.Fake.Play([]exchangetest.Event{{Frame: v.Liquidation(2)}})
	v.eventually(t, "the last liquidation", func(s collectortest.Samples) bool { return v.count(s) >= 2 })
	time.Sleep(100 * time.Millisecond) // let a late double count show
	s = v.Samples(t)
	v.checkCount(t, s, 2)
	if got := v.decodeErrors(s); got != 3 {
		t.Errorf("decode errors %v, want 3 (garbage, truncated, oversized)", got)
	}
	if got := v.connects(s); got != c0+1 {
		t.Errorf("connects %v, want %v", got, c0+1)
	}
	if n := v.Logs.Count(slog.LevelWarn, "read limit"); n < 1 {
		t.Error("the oversized frame was not logged")
	}
}

// HalfOpenAndStalledHandshake checks that a peer that stops answering heartbeats is
// detected by the read deadline, logged and replaced (skipped where
// SetAnswerHeartbeats is nil); a server that accepts TCP but never
// completes the handshake makes every dial time out and be retried, none
// counted as a connection; after both the stream counts again, once.
func HalfOpenAndStalledHandshake(t *testing.T, v *Venue) {
	t.Helper()
	v.WaitUp(t)
	if v.SetAnswerHeartbeats != nil {
		c0 := v.connects(v.Samples(t))
		v.SetAnswerHeartbeats(false)
		v.eventually(t, "the half-open connection replaced", func(s collectortest.Samples) bool { return v.connects(s) > c0 })
		if n := v.Logs.Count(slog.LevelWarn, "timeout"); n < 1 {
			t.Error("the dead peer was not logged")
		}
		v.SetAnswerHeartbeats(true)
		v.WaitUp(t)
	}

	v.Fake.SetStallHandshake(true)
	c1 := v.connects(v.Samples(t))
	v.Fake.Play([]exchangetest.Event{{Disconnect: true}})
	s := v.eventually(t, "stalled handshakes retried", func(s collectortest.Samples) bool {
		return v.Fake.StalledHandshakes() >= 2 && !v.up(s)
	})
	if got := v.connects(s); got != c1 {
		t.Errorf("connects %v -> %v with every handshake stalled", c1, got)
	}
	if n := v.Logs.Count(slog.LevelWarn, "websocket connect failed"); n < 1 {
		t.Error("the failed handshakes were not logged")
	}
	v.Fake.SetStallHandshake(false)
	v.WaitUp(t)
	v.Fake.Play([]exchangetest.Event{{Frame: v.Liquidation(0)}})
	v.eventually(t, "counted after recovering", func(s collectortest.Samples) bool { return v.count(s) == 1 })
	v.checkCount(t, v.Samples(t), 1)
}

// Run runs every WebSocket scenario of this package as a parallel subtest,
// each against a venue of its own from newVenue.
func Run(t *testing.T, newVenue func(t *testing.T) *Venue) {
	t.Helper()
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *Venue)
	}{
		{"CloseCodesAndBadFrames", CloseCodesAndBadFrames},
		{"HalfOpenAndStalledHandshake", HalfOpenAndStalledHandshake},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, newVenue(t))
		})
	}
}
