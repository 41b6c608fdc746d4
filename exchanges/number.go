package exchanges

import (
	"sync"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
)

// Number is a JSON number that venues send bare (1.5) or quoted ("1.5").
// An empty string or null leaves it unset; NaN, infinities and other text are
// decoding errors.
type Number struct {
	Value float64
	Set   bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" || string(b) == `""` {
		*n = Number{}
		return nil
	}
	v, err := jsonx.Float(b)
	if err != nil {
		return err
	}
	*n = Number{v, true}
	return nil
}

// Positive reports whether the number is set and greater than zero.
func (n Number) Positive() bool { return n.Set && n.Value > 0 }

// LogThrottle lets one log line per key through per period, so a flood of
// identical bad frames is counted in full but logged sparingly.
type LogThrottle struct {
	Period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
}

// Allow reports whether a line for key may be logged now.
func (t *LogThrottle) Allow(key string) bool {
	now := time.Now()
	period := t.Period
	if period <= 0 {
		period = time.Minute
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if now.Sub(t.last[key]) < period {
		return false
	}
	if len(t.last) > 1024 {
		clear(t.last)
	}
	t.last[key] = now
	return true
}

// LenientNumber is a Number that never fails decoding: a value that is not
// a finite number is left unset and marked Bad, so one unusable field of a
// large answer costs only its own gauge, not the whole poll.
type LenientNumber struct {
	Number
	Bad bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *LenientNumber) UnmarshalJSON(b []byte) error {
	*n = LenientNumber{}
	if err := n.Number.UnmarshalJSON(b); err != nil {
		n.Number, n.Bad = Number{}, true
	}
	return nil
}

// Truncate returns b as a string of at most n bytes (with "..." when cut),
// for log lines that quote a frame.
func Truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// NextBoundary returns the first multiple of interval after now (counted
// from the Unix epoch, so whole hours and 8 h blocks fall on UTC
// boundaries), in Unix seconds: the next funding time of venues that settle
// on a fixed grid without publishing it.
func NextBoundary(now time.Time, interval time.Duration) float64 {
	return float64(now.Truncate(interval).Add(interval).Unix())
}

// RetryInterval is the delay before a failed poll of period interval is
// retried: the exporter's poll interval (at least 5 s), never longer than
// the period itself.
func RetryInterval(interval, pollInterval time.Duration) time.Duration {
	return min(interval, max(pollInterval, 5*time.Second))
}
