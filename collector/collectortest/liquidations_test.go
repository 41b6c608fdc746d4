package collectortest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLiquidationsDiff(t *testing.T) {
	var l Liquidations
	btc := []string{"exchange", "x", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC", "side", "long"}
	eth := []string{"exchange", "x", "market", "linear", "symbol", "ETHUSDT", "coin", "ETH", "side", "short"}
	l.Add(1.5, btc...)
	l.Add(2, btc...)
	l.Add(0.25, eth...)
	exact := Samples{
		Key("crypto_liquidations_total", btc...):             2,
		Key("crypto_liquidation_notional_usd_total", btc...): 3.5,
		Key("crypto_liquidations_total", eth...):             1,
		Key("crypto_liquidation_notional_usd_total", eth...): 0.25,
	}
	if d := l.Diff(exact); len(d) != 0 || l.Len() != 3 {
		t.Errorf("exact samples: %v (len %d)", d, l.Len())
	}
	for name, tc := range map[string]struct {
		change func(Samples)
		want   string
	}{
		"a series short": {func(s Samples) { s[Key("crypto_liquidations_total", eth...)] = 0 }, `crypto_liquidations_total{coin="ETH"`},
		"notional off":   {func(s Samples) { s[Key("crypto_liquidation_notional_usd_total", btc...)] = 3.75 }, "sums to 4"},
		"an extra series": {func(s Samples) {
			s[Key("crypto_liquidations_total", "exchange", "x", "symbol", "SOLUSDT")] = 1
		}, "crypto_liquidations_total sums to 4, want 3"},
	} {
		s := Samples{}
		for k, v := range exact {
			s[k] = v
		}
		tc.change(s)
		d := l.Diff(s)
		if !strings.Contains(strings.Join(d, "\n"), tc.want) {
			t.Errorf("%s: diff %q lacks %q", name, d, tc.want)
		}
	}
}

// errorsTB records Error and Errorf.
type errorsTB struct {
	testing.TB
	errs []string
}

func (e *errorsTB) Helper()                   {}
func (e *errorsTB) Error(args ...any)         { e.errs = append(e.errs, fmt.Sprint(args...)) }
func (e *errorsTB) Errorf(f string, a ...any) { e.errs = append(e.errs, fmt.Sprintf(f, a...)) }

func TestLiquidationsCheck(t *testing.T) {
	labels := []string{"exchange", "market", "symbol", "coin", "side"}
	newColl := func(decodeErrors float64) prometheus.Collector {
		reg := prometheus.NewRegistry()
		count := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crypto_liquidations_total", Help: "h"}, labels)
		notional := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crypto_liquidation_notional_usd_total", Help: "h"}, labels)
		errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "crypto_exporter_stream_decode_errors_total", Help: "h"})
		reg.MustRegister(count, notional, errs)
		count.WithLabelValues("x", "linear", "BTCUSDT", "BTC", "long").Inc()
		notional.WithLabelValues("x", "linear", "BTCUSDT", "BTC", "long").Add(2)
		errs.Add(decodeErrors)
		return reg // a Registry is a Collector of what it holds
	}
	for _, tc := range []struct {
		decodeErrors float64
		notional     float64
		errs         int
	}{{0, 2, 0}, {1, 2, 1}, {0, 3, 2}} {
		var want Liquidations
		want.Add(tc.notional, "exchange", "x", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC", "side", "long")
		tb := &errorsTB{}
		want.Check(tb, newColl(tc.decodeErrors))
		if len(tb.errs) != tc.errs {
			t.Errorf("decode errors %v, notional %v: %d errors %q, want %d", tc.decodeErrors, tc.notional, len(tb.errs), tb.errs, tc.errs)
		}
	}
}
