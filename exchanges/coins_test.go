package exchanges

import "testing"

func TestNormalizeCoin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		coin string
		mult float64
	}{
		{"BTC", "BTC", 1},
		{"XBT", "BTC", 1},
		{"1000PEPE", "PEPE", 1000},
		{"1000SHIB", "SHIB", 1000},
		{"1000000MOG", "MOG", 1e6},
		{"1MBABYDOGE", "BABYDOGE", 1e6},
		{"kPEPE", "PEPE", 1000},
		{"kBONK", "BONK", 1000},
		{"KAVA", "KAVA", 1},
		{"KNC", "KNC", 1},
		{"1INCH", "1INCH", 1},
		{"1000", "1000", 1},
		{"10000LADYS", "LADYS", 1e4},
		{"eth", "ETH", 1},
		{" SOL ", "SOL", 1},
		{"1000X", "1000X", 1}, // a one-letter remainder is not a multiplier prefix
	} {
		coin, mult := NormalizeCoin(tc.in)
		if coin != tc.coin || mult != tc.mult {
			t.Errorf("NormalizeCoin(%q) = %q, %v; want %q, %v", tc.in, coin, mult, tc.coin, tc.mult)
		}
	}
}

func TestCoinFilter(t *testing.T) {
	var all CoinFilter
	if !all.Allows("BTC") {
		t.Error("empty filter must allow everything")
	}
	f := NewCoinFilter([]string{"btc", "ETH"})
	if !f.Allows("BTC") || !f.Allows("ETH") || f.Allows("SOL") {
		t.Errorf("filter %v", f)
	}
}
