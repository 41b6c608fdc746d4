package collector

// maxWindow is the largest value of each recent second, kept as a
// monotonic queue: seconds ascending and maxima strictly descending, so
// that the front is the largest of the window. A value leaves the queue
// when a value at least as large arrives after it (it can never be the
// largest again) or when its second leaves the window. With liquidation
// sizes in random order the queue holds a handful of entries (about the
// logarithm of the liquidations in the window), where a bucket per second
// of the window takes 60 entries (960 bytes) a series.
//
// The entries are a ring whose capacity, a power of two, starts at 4 and
// doubles when full (at most 64: one entry a second of the window).
type maxWindow struct {
	q    []secondMax
	head int
	n    int
}

type secondMax struct {
	sec int64
	max float64
}

// expire drops the seconds before oldest.
func (w *maxWindow) expire(oldest int64) {
	for w.n > 0 && w.q[w.head].sec < oldest {
		w.head = (w.head + 1) & (len(w.q) - 1)
		w.n--
	}
}

// add records v at second sec; oldest is the first second of the window
// at sec.
func (w *maxWindow) add(sec int64, v float64, oldest int64) {
	w.expire(oldest)
	mask := len(w.q) - 1
	if w.n > 0 {
		// A wall clock stepped back counts as the latest second.
		sec = max(sec, w.q[(w.head+w.n-1)&mask].sec)
	}
	for w.n > 0 && w.q[(w.head+w.n-1)&mask].max <= v {
		w.n--
	}
	if w.n > 0 && w.q[(w.head+w.n-1)&mask].sec == sec {
		return // a larger value of this second is kept
	}
	if w.n == len(w.q) {
		q := make([]secondMax, max(4, 2*len(w.q)))
		for i := range w.n {
			q[i] = w.q[(w.head+i)&mask]
		}
		w.q, w.head = q, 0
		mask = len(q) - 1
	}
	w.q[(w.head+w.n)&mask] = secondMax{sec, v}
	w.n++
}

// largest returns the largest value of the seconds from oldest on, 0 if
// none.
func (w *maxWindow) largest(oldest int64) float64 {
	w.expire(oldest)
	if w.n == 0 {
		return 0
	}
	return w.q[w.head].max
}
