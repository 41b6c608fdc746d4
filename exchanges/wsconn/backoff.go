package wsconn

import (
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Backoff is exponential back-off with full jitter: the n-th consecutive
// delay is random in [0, min(Max, Min*2^n)).
type Backoff struct {
	Min, Max    time.Duration
	StableAfter time.Duration // an established connection that lived this long resets the sequence
	attempt     int
}

// Cap returns the upper bound of the next delay.
func (b *Backoff) Cap() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Next returns the delay before reconnecting after a connection that lived
// for lived (0 when the dial failed).
func (b *Backoff) Next(lived time.Duration) time.Duration {
	if lived > 0 && lived >= b.StableAfter {
		b.attempt = 0
	}
	d := exchanges.Jitter(b.Cap())
	if b.attempt < 64 {
		b.attempt++
	}
	return d
}

// Reset starts the sequence again.
func (b *Backoff) Reset() { b.attempt = 0 }
