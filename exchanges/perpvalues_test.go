package exchanges

import (
	"math"
	"testing"
	"time"
)

func TestAppendPerpValues(t *testing.T) {
	inst := &Instrument{Exchange: "x", Market: Linear, Symbol: "kPEPE", Coin: "PEPE", Multiplier: 1000}
	num := func(v float64) LenientNumber { return LenientNumber{Number: Number{Value: v, Set: true}} }
	bad := LenientNumber{Bad: true}
	const next = 1.7e9
	for name, tc := range map[string]struct {
		v       PerpValues
		want    map[Field]float64
		wantBad int
	}{
		"all": {PerpValues{Mark: num(0.02), Funding: num(-0.0001), OpenInterest: num(5e6), Volume24hUSD: num(3e5)},
			map[Field]float64{MarkPrice: 0.02, FundingRate: -0.0001, FundingIntervalSeconds: 3600, FundingNextTimestamp: next,
				OpenInterestCoins: 5e9, OpenInterestUSD: 1e5, Volume24hUSD: 3e5}, 0},
		"unset values are skipped, not bad": {PerpValues{}, map[Field]float64{}, 0},
		"a zero mark: no price, no USD open interest": {PerpValues{Mark: num(0), OpenInterest: num(10)},
			map[Field]float64{OpenInterestCoins: 1e4}, 1},
		"unparsable and negative": {PerpValues{Mark: bad, Funding: num(math.NaN()), OpenInterest: num(-1), Volume24hUSD: num(math.Inf(1))},
			map[Field]float64{}, 4},
		"a product too large": {PerpValues{Mark: num(1e300), OpenInterest: num(1e306)},
			map[Field]float64{MarkPrice: 1e300}, 2}, // coins (x1000) and USD overflow
	} {
		tc.v.Inst = inst
		out, nbad := AppendPerpValues(nil, tc.v, time.Hour, next, time.Minute)
		got := map[Field]float64{}
		for _, mv := range out {
			if mv.Instrument != inst || mv.TTL != time.Minute {
				t.Errorf("%s: %+v", name, mv)
			}
			got[mv.Field] = mv.Value
		}
		if nbad != tc.wantBad || len(got) != len(tc.want) {
			t.Errorf("%s: %v, bad %d; want %v, bad %d", name, got, nbad, tc.want, tc.wantBad)
			continue
		}
		for f, v := range tc.want {
			if got[f] != v {
				t.Errorf("%s: field %v = %v, want %v", name, f, got[f], v)
			}
		}
	}
}
