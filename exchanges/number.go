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
