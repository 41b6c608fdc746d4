package collectortest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Baseline is the straightforward counting the venues' hot paths are
// benchmarked against: a CounterVec of liquidations and one of notional by
// the liquidation series' labels, updated through WithLabelValues for
// every liquidation.
type Baseline struct{ count, notional *prometheus.CounterVec }

// NewBaseline returns empty counters.
func NewBaseline() *Baseline {
	labels := []string{"exchange", "market", "symbol", "coin", "side"}
	return &Baseline{
		count:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, labels),
		notional: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "n_total", Help: "h"}, labels),
	}
}

// Add counts one liquidation of notional USD.
func (b *Baseline) Add(exchange, market, symbol, coin, side string, notional float64) {
	b.count.WithLabelValues(exchange, market, symbol, coin, side).Inc()
	b.notional.WithLabelValues(exchange, market, symbol, coin, side).Add(notional)
}

// Check scrapes c and fails t for every difference Diff finds and for any
// decode error it counted (a hot-path test sends only well-formed frames).
func (l *Liquidations) Check(t testing.TB, c prometheus.Collector) {
	t.Helper()
	s, err := FromCollector(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l.Diff(s) {
		t.Error(d)
	}
	if got := s.Sum("crypto_exporter_stream_decode_errors_total"); got != 0 {
		t.Errorf("%v decode errors, want 0", got)
	}
}
