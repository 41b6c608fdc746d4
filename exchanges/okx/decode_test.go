package okx

import (
	"bytes"
	"math"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
)

// FuzzNumbers checks the shortcuts of decimal and integer against
// jsonx.Float and jsonx.Int, to the bit.
func FuzzNumbers(f *testing.F) {
	for _, s := range []string{`"13"`, `"0.007831"`, `"64100.5"`, `"1700000000000"`, `0`, `"0.000"`, `"00.5"`, `"1."`, `".5"`,
		`"-1"`, `"+1"`, `"1e3"`, `"999999999999999"`, `"9999999999999999"`, `"123456789.123456"`, `"0.1"`, `"1.2.3"`,
		`""`, `"`, `"999999999999999999"`, `"9223372036854775807"`, `"9223372036854775808"`, `"1_0"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := decimal(v)
		want, werr := jsonx.Float(v)
		if (err == nil) != (werr == nil) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("decimal(%q) = %v, %v; jsonx.Float %v, %v", v, got, err, want, werr)
		}
		n, err := integer(v)
		wn, werr := jsonx.Int(v)
		if (err == nil) != (werr == nil) || n != wn {
			t.Fatalf("integer(%q) = %v, %v; jsonx.Int %v, %v", v, n, err, wn, werr)
		}
	})
}

// FuzzPlainString checks plainString against a byte-by-byte reading of a
// string that holds neither an escape nor a control character.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`""`, `"a"`, `"liquidation-orders"`, `"a\"b"`, "\"a\x1fb\"", `"unterminated`,
		`"exactly seven"`, `"1234567"x`, `"12345678"`, `"123456789012345\"`, "\"\xc3\xa9t\xc3\xa9\"", `x`, ``} {
		f.Add([]byte(s), 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, i int) {
		if i < 0 || i > len(b) {
			return
		}
		want := -1
		if i < len(b) && b[i] == '"' {
			if j := bytes.IndexFunc(b[i+1:], func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 }); j >= 0 && b[i+1+j] == '"' {
				want = i + j + 2
			}
		}
		if got := plainString(b, i); got != want {
			t.Fatalf("plainString(%q, %d) = %d, want %d", b, i, got, want)
		}
	})
}
