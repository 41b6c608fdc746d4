package collectortest

import (
	"strings"
	"testing"
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
