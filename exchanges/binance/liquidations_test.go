package binance

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	symbol string
	side   exchanges.Side
	qty    float64
	price  float64
}

func decodeAll(t testing.TB, data []byte) (frame, []decoded, error) {
	var out []decoded
	f, err := decodeFrame(data, func(fo forceOrder) {
		out = append(out, decoded{string(fo.Symbol), fo.Side, fo.FilledQty, fo.AvgPrice})
	})
	return f, out, err
}

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeDocumentedPayloads(t *testing.T) {
	usdm := readTestdata(t, "usdm_force_order.json")
	coin := readTestdata(t, "coinm_force_order.json")
	live := readTestdata(t, "usdm_force_order_live.json")
	buy := []byte(strings.Replace(string(usdm), `"S":"SELL"`, `"S":"BUY"`, 1))
	partial := []byte(`{"e":"forceOrder","E":1,"o":{"s":"ETHUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"10","p":"3000","ap":"3001.5","X":"PARTIALLY_FILLED","l":"2","z":"4","T":1}}`)
	pepe := []byte(`{"e":"forceOrder","E":1,"o":{"s":"1000PEPEUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"500000","p":"0.0101","ap":"0.0102","X":"FILLED","l":"500000","z":"500000","T":1}}`)

	for _, tc := range []struct {
		name string
		in   []byte
		want []decoded
	}{
		{"usdm sell = long", usdm, []decoded{{"BTCUSDT", exchanges.Long, 0.014, 9910}}},
		{"usdm buy = short", buy, []decoded{{"BTCUSDT", exchanges.Short, 0.014, 9910}}},
		{"coinm", coin, []decoded{{"BTCUSD_200925", exchanges.Long, 1, 9496.5}}},
		{"live message with spaces", live, []decoded{{"BTCUSDT", exchanges.Long, 0.288, 39021}}},
		{"partial fill uses z", partial, []decoded{{"ETHUSDT", exchanges.Short, 4, 3001.5}}},
		{"1000PEPE", pepe, []decoded{{"1000PEPEUSDT", exchanges.Long, 500000, 0.0102}}},
		{"combined envelope", []byte(`{"stream":"!forceOrder@arr","data":` + string(usdm) + `}`), []decoded{{"BTCUSDT", exchanges.Long, 0.014, 9910}}},
		{"array of events", []byte(`[` + string(usdm) + `,` + string(buy) + `]`), []decoded{{"BTCUSDT", exchanges.Long, 0.014, 9910}, {"BTCUSDT", exchanges.Short, 0.014, 9910}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll(t, tc.in)
			if err != nil || f.bad != 0 {
				t.Fatalf("bad=%d err=%v", f.bad, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDecodeReplies(t *testing.T) {
	f, got, err := decodeAll(t, []byte(`{"result":null,"id":1}`))
	if err != nil || !f.ack || f.ackID != 1 || f.venueErr != nil || len(got) != 0 || f.bad != 0 {
		t.Errorf("ack: %+v %v %v", f, got, err)
	}
	f, _, _ = decodeAll(t, []byte(`{"error":{"code":2,"msg":"Invalid request"},"id":1}`))
	if !f.ack || f.venueErr == nil {
		t.Errorf("error reply: %+v", f)
	}
}

func TestDecodeBadInput(t *testing.T) {
	good := `{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"1","p":"1","ap":"100","z":"1"}}`
	for name, in := range map[string]string{
		"malformed":           `{"e":"forceOrder","o":{`,
		"garbage":             `not json at all`,
		"empty":               ``,
		"other event":         `{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1"}`,
		"no e":                `{"o":{"s":"BTCUSDT","S":"SELL","ap":"1","z":"1"}}`,
		"NaN qty":             strings.Replace(good, `"z":"1"`, `"z":"NaN"`, 1),
		"negative qty":        strings.Replace(good, `"z":"1"`, `"z":"-1"`, 1),
		"zero qty":            strings.Replace(good, `"z":"1"`, `"z":"0"`, 1),
		"missing qty":         strings.Replace(good, `,"z":"1"`, ``, 1),
		"zero price":          strings.Replace(good, `"ap":"100"`, `"ap":"0"`, 1),
		"Inf price":           strings.Replace(good, `"ap":"100"`, `"ap":"Infinity"`, 1),
		"overflow price":      strings.Replace(good, `"ap":"100"`, `"ap":"1e999"`, 1),
		"bad side":            strings.Replace(good, `"S":"SELL"`, `"S":"sell"`, 1),
		"missing side":        strings.Replace(good, `"S":"SELL",`, ``, 1),
		"missing symbol":      strings.Replace(good, `"s":"BTCUSDT",`, ``, 1),
		"symbol not a string": strings.Replace(good, `"s":"BTCUSDT"`, `"s":12`, 1),
		"o not an object":     `{"e":"forceOrder","o":[1,2]}`,
		"number frame":        `42`,
	} {
		t.Run(name, func(t *testing.T) {
			f, got, err := decodeAll(t, []byte(in))
			if f.bad != 1 || err == nil || len(got) != 0 {
				t.Errorf("bad=%d err=%v events=%v", f.bad, err, got)
			}
		})
	}
	// Case matters: lower-case "s" is the symbol, upper-case "S" the side,
	// whatever their order in the frame.
	f, got, err := decodeAll(t, []byte(`{"E":5,"o":{"S":"BUY","z":"2","ap":"3","s":"ETHUSDT"},"e":"forceOrder"}`))
	if err != nil || f.bad != 0 || len(got) != 1 || got[0] != (decoded{"ETHUSDT", exchanges.Short, 2, 3}) {
		t.Errorf("reordered keys: %+v %v %v", f, got, err)
	}
	// A bad event inside an array does not hide the good ones around it.
	arr := `[` + good + `,{"e":"forceOrder","o":{"s":"X","S":"SELL","z":"NaN","ap":"1"}},` + good + `]`
	f, got, _ = decodeAll(t, []byte(arr))
	if f.bad != 1 || len(got) != 2 {
		t.Errorf("array with one bad event: bad=%d events=%d", f.bad, len(got))
	}
}

func TestNotional(t *testing.T) {
	lin := &exchanges.Instrument{Symbol: "BTCUSDT", ContractSize: 1, Multiplier: 1}
	inv := &exchanges.Instrument{Symbol: "BTCUSD_PERP", ContractSize: 100, Multiplier: 1}
	if got := notional(usdm, lin, forceOrder{FilledQty: 0.014, AvgPrice: 9910}); math.Abs(got-138.74) > 1e-9 {
		t.Errorf("usdm notional %v", got)
	}
	if got := notional(coinm, inv, forceOrder{FilledQty: 3, AvgPrice: 9496.5}); got != 300 {
		t.Errorf("coinm notional %v", got)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"usdm_force_order.json", "coinm_force_order.json", "usdm_force_order_live.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"result":null,"id":1}`))
	f.Add([]byte(`{"stream":"!forceOrder@arr","data":{"e":"forceOrder","o":{"s":"A","S":"BUY","z":"1","ap":"1"}}}`))
	f.Add([]byte(`[{"e":"forceOrder","o":{"s":"A","S":"BUY","z":"1","ap":"1"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var events int
		fr, _ := decodeFrame(data, func(fo forceOrder) {
			events++
			if !(fo.FilledQty > 0) || !(fo.AvgPrice > 0) || math.IsInf(fo.FilledQty, 0) || math.IsInf(fo.AvgPrice, 0) || len(fo.Symbol) == 0 {
				t.Fatalf("invalid event emitted: %+v", fo)
			}
			if fo.Side != exchanges.Long && fo.Side != exchanges.Short {
				t.Fatalf("bad side %v", fo.Side)
			}
		})
		if events != fr.events {
			t.Fatalf("emitted %d, frame says %d", events, fr.events)
		}
	})
}
