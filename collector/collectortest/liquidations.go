package collectortest

import (
	"fmt"
	"sort"
)

// Liquidations is what a test sent, series by series, to compare exactly
// with what a collector counted: every series' crypto_liquidations_total
// and crypto_liquidation_notional_usd_total and both sums. The zero value
// is ready to use.
type Liquidations struct {
	count    map[string]float64 // by series key
	notional map[string]float64
	n        int
	total    float64
}

// Add records one liquidation of notional USD of the series with these
// label pairs (exchange, market, symbol, coin, side, in any order).
func (l *Liquidations) Add(notional float64, labelPairs ...string) {
	if l.count == nil {
		l.count, l.notional = map[string]float64{}, map[string]float64{}
	}
	k := Key("", labelPairs...)
	l.count[k]++
	l.notional[k] += notional
	l.n++
	l.total += notional
}

// Len returns how many liquidations were added.
func (l *Liquidations) Len() int { return l.n }

// Diff returns every difference between what was added and the samples,
// compared with == (tests choose sizes and prices whose sums are exact):
// the two sums over all series and, for every series added, its count and
// notional. It is empty when the samples hold exactly what was sent.
func (l *Liquidations) Diff(s Samples) []string {
	var out []string
	if got := s.Sum("crypto_liquidations_total"); got != float64(l.n) {
		out = append(out, fmt.Sprintf("crypto_liquidations_total sums to %v, want %d", got, l.n))
	}
	if got := s.Sum("crypto_liquidation_notional_usd_total"); got != l.total {
		out = append(out, fmt.Sprintf("crypto_liquidation_notional_usd_total sums to %v, want %v", got, l.total))
	}
	keys := make([]string, 0, len(l.count))
	for k := range l.count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got := s["crypto_liquidations_total"+k]; got != l.count[k] {
			out = append(out, fmt.Sprintf("crypto_liquidations_total%s = %v, want %v", k, got, l.count[k]))
		}
		if got := s["crypto_liquidation_notional_usd_total"+k]; got != l.notional[k] {
			out = append(out, fmt.Sprintf("crypto_liquidation_notional_usd_total%s = %v, want %v", k, got, l.notional[k]))
		}
	}
	return out
}
