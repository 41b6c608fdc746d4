package collector

import (
	"math/rand/v2"
	"testing"
)

// bucketWindow is the plain rule: the largest value of each of the last
// largestWindow seconds in a bucket per second.
type bucketWindow struct {
	b [largestWindow]secondMax
}

func (w *bucketWindow) add(sec int64, v float64) {
	b := &w.b[sec%largestWindow]
	if b.sec != sec {
		*b = secondMax{sec: sec}
	}
	b.max = max(b.max, v)
}

func (w *bucketWindow) largest(oldest int64) float64 {
	m := 0.0
	for _, b := range w.b {
		if b.sec >= oldest {
			m = max(m, b.max)
		}
	}
	return m
}

// TestMaxWindowMatchesBuckets drives the queue and the bucket rule with the
// same random liquidations (bursts within a second, quiet gaps longer than
// the window, rising and falling runs) and compares the largest value at
// random moments; the queue stays within its bound.
func TestMaxWindowMatchesBuckets(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var q maxWindow
		var ref bucketWindow
		sec := int64(1_800_000_000)
		for step := range 20000 {
			switch r := rng.IntN(100); {
			case r < 30:
				sec++
			case r < 32:
				sec += int64(rng.IntN(90)) // a gap, sometimes longer than the window
			}
			var v float64
			switch rng.IntN(3) {
			case 0:
				v = float64(rng.IntN(1000) + 1)
			case 1:
				v = float64(step%500 + 1) // rising
			default:
				v = float64(1000 - step%500) // falling
			}
			oldest := sec - largestWindow + 1
			q.add(sec, v, oldest)
			ref.add(sec, v)
			if rng.IntN(5) == 0 {
				sec += int64(rng.IntN(3)) // a scrape now or a little later
				if got, want := q.largest(sec-largestWindow+1), ref.largest(sec-largestWindow+1); got != want {
					t.Fatalf("seed %d step %d: largest %v, the bucket rule says %v", seed, step, got, want)
				}
			}
			if q.n > largestWindow || len(q.q) > 64 {
				t.Fatalf("seed %d step %d: %d entries in a ring of %d", seed, step, q.n, len(q.q))
			}
		}
	}
}

// A wall clock stepped back keeps the largest value of the window.
func TestMaxWindowClockBack(t *testing.T) {
	var q maxWindow
	q.add(100, 5, 41)
	q.add(99, 7, 40) // clock stepped back a second: counts as second 100
	q.add(99, 3, 40)
	if got := q.largest(41); got != 7 {
		t.Errorf("largest %v, want 7", got)
	}
	if got := q.largest(101); got != 0 {
		t.Errorf("largest after the window %v, want 0", got)
	}
}
