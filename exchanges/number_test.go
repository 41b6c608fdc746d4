package exchanges

import (
	"testing"
	"time"
)

func TestNextBoundary(t *testing.T) {
	for _, tc := range []struct {
		now      time.Time
		interval time.Duration
		want     time.Time
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour, time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 23, 59, 59, 999, time.UTC), time.Hour, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		// Boundaries are UTC whatever the zone of now.
		{time.Date(2026, 1, 1, 10, 10, 0, 0, time.FixedZone("IST", 5*3600+1800)), time.Hour, time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 7, 59, 0, 0, time.UTC), 8 * time.Hour, time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 16, 0, 0, 0, time.UTC), 8 * time.Hour, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
	} {
		if got := NextBoundary(tc.now, tc.interval); got != float64(tc.want.Unix()) {
			t.Errorf("NextBoundary(%v, %v) = %v, want %v", tc.now, tc.interval, time.Unix(int64(got), 0).UTC(), tc.want)
		}
	}
}

func TestLenientNumberAndTruncate(t *testing.T) {
	var n LenientNumber
	if err := n.UnmarshalJSON([]byte(`"NaN"`)); err != nil || !n.Bad || n.Set {
		t.Errorf("NaN: %+v, %v; want unset, bad, no error", n, err)
	}
	if err := n.UnmarshalJSON([]byte(`"1.5"`)); err != nil || n.Bad || !n.Set || n.Value != 1.5 {
		t.Errorf("1.5: %+v, %v", n, err)
	}
	if got := Truncate([]byte("abcdef"), 3); got != "abc..." {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate([]byte("ab"), 3); got != "ab" {
		t.Errorf("Truncate short = %q", got)
	}
	if got := RetryInterval(time.Minute, time.Second); got != 5*time.Second {
		t.Errorf("RetryInterval(1m, 1s) = %v, want 5s", got)
	}
	if got := RetryInterval(2*time.Second, 30*time.Second); got != 2*time.Second {
		t.Errorf("RetryInterval(2s, 30s) = %v, want 2s", got)
	}
}
