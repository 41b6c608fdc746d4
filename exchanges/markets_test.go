package exchanges

import "testing"

func TestByMarket(t *testing.T) {
	in := func(m Market, sym string) *Instrument { return &Instrument{Exchange: "x", Market: m, Symbol: sym} }
	lists := ByMarket([]*Instrument{in(Inverse, "ETHUSD"), in(Linear, "SOLUSDT"), nil, in(Linear, "BTCUSDT"), in(Inverse, "BTCUSD")})
	want := [2][]string{{"BTCUSDT", "SOLUSDT"}, {"BTCUSD", "ETHUSD"}}
	for i, mk := range Markets {
		var got []string
		for _, x := range lists[i] {
			if x.Market != mk {
				t.Errorf("%s listed under %s", x.Symbol, mk)
			}
			got = append(got, x.Symbol)
		}
		if len(got) != len(want[i]) || (len(got) > 0 && (got[0] != want[i][0] || got[1] != want[i][1])) {
			t.Errorf("%s: %v, want %v", mk, got, want[i])
		}
	}
	if l := ByMarket(nil); l[0] != nil || l[1] != nil {
		t.Errorf("no instruments gave %v", l)
	}
}

func TestSameInstruments(t *testing.T) {
	a := &Instrument{Exchange: "x", Market: Linear, Symbol: "BTCUSDT", ContractSize: 1}
	b := *a
	c := *a
	c.ContractSize = 10
	switch {
	case !SameInstruments([]*Instrument{a}, []*Instrument{&b}):
		t.Error("equal instruments at other addresses differ")
	case SameInstruments([]*Instrument{a}, []*Instrument{&c}):
		t.Error("a changed contract size is the same")
	case SameInstruments([]*Instrument{a}, []*Instrument{a, a}):
		t.Error("lists of other lengths are the same")
	case !SameInstruments(nil, []*Instrument{}):
		t.Error("nil and empty differ")
	}
}
