package exchanges

import "strings"

// coinAliases maps venue-specific asset names to the common ticker.
var coinAliases = map[string]string{
	"XBT": "BTC",
}

// multiplierPrefixes are the unit prefixes venues put in front of low-priced
// assets, longest first. "1000PEPE" counts PEPE in units of 1000.
var multiplierPrefixes = []struct {
	prefix string
	mult   float64
}{
	{"1000000", 1e6},
	{"100000", 1e5},
	{"10000", 1e4},
	{"1000", 1e3},
	{"1M", 1e6},
	{"k", 1e3}, // Hyperliquid kPEPE (lower-case k only)
}

// NormalizeCoin turns a venue's base-asset name into the exporter's coin
// label and the number of coins in one venue unit: "1000PEPE" -> ("PEPE",
// 1000), "kPEPE" -> ("PEPE", 1000), "XBT" -> ("BTC", 1), "1INCH" -> ("1INCH", 1).
// A prefix is only removed when an upper-case asset name of at least two
// characters remains, so names such as "1000" or "KAVA" are left alone.
func NormalizeCoin(raw string) (coin string, multiplier float64) {
	s := strings.TrimSpace(raw)
	multiplier = 1
	for _, p := range multiplierPrefixes {
		rest, ok := strings.CutPrefix(s, p.prefix)
		if !ok || len(rest) < 2 || !isUpperAsset(rest) {
			continue
		}
		s, multiplier = rest, p.mult
		break
	}
	s = strings.ToUpper(s)
	if a, ok := coinAliases[s]; ok {
		s = a
	}
	return s, multiplier
}

// isUpperAsset reports whether s looks like an asset ticker that starts with
// an upper-case letter (digits may follow).
func isUpperAsset(s string) bool {
	if s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// CoinFilter is an allowlist of coins; the zero value allows every coin.
type CoinFilter map[string]bool

// NewCoinFilter builds a filter from a list of coins (empty = all).
func NewCoinFilter(coins []string) CoinFilter {
	if len(coins) == 0 {
		return nil
	}
	f := CoinFilter{}
	for _, c := range coins {
		f[strings.ToUpper(c)] = true
	}
	return f
}

// Allows reports whether coin passes the filter.
func (f CoinFilter) Allows(coin string) bool { return f == nil || f[coin] }
