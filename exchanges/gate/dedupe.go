package gate

import (
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// dedupe is the venue's exchanges.Dedupe with Gate's naming of an order:
// Gate sends no order id, so the order is named by what it carries,
// (contract, second, signed size, price). The push carries time_ms,
// liq_orders whole seconds, so the name and the dedupe's time hold the
// second; Gate pushes at most one order per contract per second, so two
// orders of one contract rarely share a second, and never also size and
// price. Orders at or before the venue's start (to the millisecond, where
// the push says so) are history.
type dedupe struct {
	*exchanges.Dedupe
	startMs int64
}

func newDedupe(window time.Duration, maxKeys int, start time.Time) *dedupe {
	// The set's own floor is just before the start's second, so that an
	// order of that second after the start counts (and its REST copy, of
	// the same second, is a duplicate).
	return &dedupe{Dedupe: exchanges.NewDedupe(window, maxKeys, start.Truncate(time.Second)), startMs: start.UnixMilli()}
}

// admit decides whether the order of contract with signed size and price,
// which happened at tsMs (for orders known to the second only, the
// second's start: the earliest it can have happened), is new at now and,
// if so, records it.
func (d *dedupe) admit(contract string, size, price float64, tsMs int64, now time.Time) exchanges.Verdict {
	if tsMs <= d.startMs {
		return exchanges.TooOld
	}
	sec := tsMs / 1000
	return d.Admit(d.Hash(contract, uint64(sec), exchanges.FloatWord(size), exchanges.FloatWord(price)), sec*1000, now)
}

// earliest returns the earliest time an order may have to count: after the
// start and after the second of the floor.
func (d *dedupe) earliest() time.Time {
	return time.UnixMilli(max(d.startMs, (d.Floor()/1000+1)*1000))
}
