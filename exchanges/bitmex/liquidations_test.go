package bitmex

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	id, symbol string
	side       exchanges.Side
	price, qty float64
}

func decodeAll(t testing.TB, data []byte) (frame, []decoded, int, error) {
	t.Helper()
	f, err := decodeFrame(data)
	if err != nil || f.kind != kindTable {
		return f, nil, 0, err
	}
	var out []decoded
	_, bad, err := eachOrder(f.data, f.action, func(o order) {
		out = append(out, decoded{string(o.OrderID), string(o.Symbol), o.Side, o.Price, o.Qty})
	})
	return f, out, bad, err
}

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeDocumentedPayloads(t *testing.T) {
	const docID = "98ae1dad-6a3b-51c4-14bd-e076919e9e30"
	for _, tc := range []struct {
		file   string
		kind   frameKind
		action action
		want   []decoded
	}{
		// The reference's real insert: Buy = a short liquidated, 314930
		// XBTUSD contracts.
		{"insert_doc.json", kindTable, actInsert, []decoded{{docID, "XBTUSD", exchanges.Short, 13854.5, 314930}}},
		// Updates and deletes carry the orderID only as far as the venue
		// is concerned.
		{"update_doc.json", kindTable, actUpdate, []decoded{{id: docID}}},
		{"delete.json", kindTable, actDelete, []decoded{{id: docID}}},
		{"partial.json", kindTable, actPartial, []decoded{{id: "0f9a3c1e-1111-2222-3333-444455556666"}, {id: "0f9a3c1e-1111-2222-3333-777788889999"}}},
		{"insert_multi.json", kindTable, actInsert, []decoded{
			{"a1", "XBTUSDT", exchanges.Long, 60000, 2500000},
			{"a2", "ETHUSD", exchanges.Short, 3000, 10},
			{"a3", "ETHUSDT", exchanges.Long, 3000.5, 20000},
		}},
		{"subscribe_ack.json", kindAck, actNone, nil},
		{"subscribe_error.json", kindError, actNone, nil},
		{"welcome.json", kindInfo, actNone, nil},
		{"pong.txt", kindPong, actNone, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, got, bad, err := decodeAll(t, readTestdata(t, tc.file))
			if err != nil || bad != 0 {
				t.Fatalf("err %v, bad %d", err, bad)
			}
			if f.kind != tc.kind || f.action != tc.action {
				t.Fatalf("kind %d action %d, want %d %d", f.kind, f.action, tc.kind, tc.action)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("order %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	f, _ := decodeFrame(readTestdata(t, "subscribe_ack.json"))
	if !isLiquidationTopic(f.subscribe) {
		t.Errorf("ack subscribe %q not recognised", f.subscribe)
	}
	f, _ = decodeFrame(readTestdata(t, "subscribe_error.json"))
	if string(f.status) != "400" || string(f.errMsg) != "Unknown table: liquidations" {
		t.Errorf("error frame %q %q", f.status, f.errMsg)
	}
}

func TestDecodeBadInput(t *testing.T) {
	ins := func(row string) string { return `{"table":"liquidation","action":"insert","data":[` + row + `]}` }
	for _, tc := range []struct {
		name      string
		in        string
		frameErr  bool // the envelope is unusable
		good, bad int
	}{
		{"not json", `not json`, true, 0, 0},
		{"truncated", `{"table":"liquidation","action":"insert","data":[{"orderID":"a"`, true, 0, 0},
		{"empty object", `{}`, true, 0, 0},
		{"unknown action", `{"table":"liquidation","action":"upsert","data":[]}`, true, 0, 0},
		{"data not array", `{"table":"liquidation","action":"insert","data":{}}`, true, 0, 0},
		{"table not string", `{"table":1,"action":"insert","data":[]}`, true, 0, 0},
		{"keys are case sensitive", `{"Table":"liquidation","Action":"insert","Data":[]}`, true, 0, 0},
		{"side lower case", ins(`{"orderID":"a","symbol":"XBTUSD","side":"sell","price":1,"leavesQty":1}`), false, 0, 1},
		{"side missing", ins(`{"orderID":"a","symbol":"XBTUSD","price":1,"leavesQty":1}`), false, 0, 1},
		{"qty zero", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":1,"leavesQty":0}`), false, 0, 1},
		{"qty negative", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":1,"leavesQty":-5}`), false, 0, 1},
		{"qty NaN", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":1,"leavesQty":"NaN"}`), false, 0, 1},
		{"qty missing", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":1}`), false, 0, 1},
		{"price negative", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":-1,"leavesQty":1}`), false, 0, 1},
		{"price text", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":"x","leavesQty":1}`), false, 0, 1},
		{"price null is absent", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":null,"leavesQty":1}`), false, 1, 0},
		{"symbol missing", ins(`{"orderID":"a","side":"Sell","price":1,"leavesQty":1}`), false, 0, 1},
		{"orderID missing", ins(`{"symbol":"XBTUSD","side":"Sell","price":1,"leavesQty":1}`), false, 0, 1},
		{"element not object", ins(`1`), false, 0, 1},
		{"one bad next to a good one", ins(`{"orderID":"a","symbol":"XBTUSD","side":"Sell","price":1,"leavesQty":"1e400"},` +
			`{"orderID":"b","symbol":"XBTUSD","side":"Buy","price":1,"leavesQty":7}`), false, 1, 1},
		{"bad partial rows are skipped", `{"table":"liquidation","action":"partial","data":[1,{"symbol":"XBTUSD"}]}`, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeFrame([]byte(tc.in))
			if tc.frameErr {
				if err == nil {
					t.Fatalf("no error for %s (kind %d)", tc.in, f.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			good, bad, err := eachOrder(f.data, f.action, func(order) {})
			if good != tc.good || bad != tc.bad || (bad > 0) != (err != nil) {
				t.Errorf("good %d bad %d err %v, want %d %d", good, bad, err, tc.good, tc.bad)
			}
		})
	}
}

// contract builds the instrument of a row the way discovery does.
func contract(t *testing.T, r instrumentRow) *instrument {
	t.Helper()
	in, _, ok := contractOf(r)
	if !ok {
		t.Fatalf("row %+v not usable", r)
	}
	return in
}

func num(v float64) number { return number{exchanges.Number{Value: v, Set: true}} }

var (
	rowXBTUSD  = instrumentRow{Symbol: "XBTUSD", Typ: TypPerpetual, Underlying: "XBT", QuoteCurrency: "USD", SettlCurrency: "XBt", IsInverse: true, Multiplier: num(-1e8)}
	rowXBTUSDT = instrumentRow{Symbol: "XBTUSDT", Typ: TypPerpetual, Underlying: "XBT", QuoteCurrency: "USDT", SettlCurrency: "USDt", Multiplier: num(1), UnderlyingToPositionMultiplier: num(1e6)}
	rowETHUSD  = instrumentRow{Symbol: "ETHUSD", Typ: TypPerpetual, Underlying: "ETH", QuoteCurrency: "USD", SettlCurrency: "XBt", IsQuanto: true, Multiplier: num(100)}
)

func TestNotional(t *testing.T) {
	for _, tc := range []struct {
		name            string
		row             instrumentRow
		qty, price, btc float64
		want            float64
		ok              bool
	}{
		// XBTUSD: 1 USD per contract, whatever the price.
		{"inverse XBTUSD", rowXBTUSD, 314930, 13854.5, 0, 314930, true},
		// XBTUSDT: leavesQty / underlyingToPositionMultiplier x price.
		{"linear XBTUSDT", rowXBTUSDT, 2_500_000, 60000, 0, 2.5 * 60000, true},
		// ETHUSD quanto: qty x multiplier x price satoshi, at the BTC price.
		{"quanto ETHUSD", rowETHUSD, 10, 3000, 60000, 10 * 100 * 3000 / 1e8 * 60000, true},
		{"quanto without a BTC price", rowETHUSD, 10, 3000, 0, 0, false},
		{"inverse without multiplier", instrumentRow{Symbol: "XBTUSD", QuoteCurrency: "USD", SettlCurrency: "XBt", IsInverse: true}, 5, 1, 0, 5, true},
		{"quanto settled in USDt", instrumentRow{Symbol: "Q", QuoteCurrency: "USDT", SettlCurrency: "USDt", IsQuanto: true, Multiplier: num(1e6)}, 3, 2, 0, 6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := contract(t, tc.row).notional(tc.qty, tc.price, tc.btc)
			if ok != tc.ok || (ok && math.Abs(got-tc.want) > 1e-9*tc.want) {
				t.Errorf("notional = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestContractOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		row    instrumentRow
		market exchanges.Market
		ok     bool
	}{
		{"inverse is coin-margined", rowXBTUSD, exchanges.Inverse, true},
		{"linear USDT", rowXBTUSDT, exchanges.Linear, true},
		{"quanto settled in XBt is coin-margined", rowETHUSD, exchanges.Inverse, true},
		{"EUR quote cannot be valued", instrumentRow{Symbol: "XBTEUR", QuoteCurrency: "EUR", SettlCurrency: "XBt", IsInverse: true, Multiplier: num(-1e8)}, "", false},
		{"inverse settled in an unknown currency", instrumentRow{Symbol: "X", QuoteCurrency: "USD", SettlCurrency: "Gwei", IsInverse: true}, "", false},
		{"linear without underlyingToPositionMultiplier", instrumentRow{Symbol: "X", QuoteCurrency: "USDT", SettlCurrency: "USDt", Multiplier: num(1)}, "", false},
		{"quanto without multiplier", instrumentRow{Symbol: "X", QuoteCurrency: "USD", SettlCurrency: "XBt", IsQuanto: true}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mk, ok := contractOf(tc.row)
			if ok != tc.ok || mk != tc.market {
				t.Errorf("market %q ok %v, want %q %v", mk, ok, tc.market, tc.ok)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"insert_doc.json", "update_doc.json", "partial.json", "delete.json", "insert_multi.json",
		"subscribe_ack.json", "subscribe_error.json", "welcome.json", "pong.txt"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil || fr.kind != kindTable {
			return
		}
		var n int
		good, _, _ := eachOrder(fr.data, fr.action, func(o order) {
			n++
			if len(o.OrderID) == 0 {
				t.Fatalf("order without orderID: %+v", o)
			}
			if fr.action != actInsert {
				return
			}
			if !(o.Qty > 0) || math.IsInf(o.Qty, 0) || o.Price < 0 || math.IsInf(o.Price, 0) || math.IsNaN(o.Price) || len(o.Symbol) == 0 {
				t.Fatalf("invalid insert emitted: %+v", o)
			}
			if o.Side != exchanges.Long && o.Side != exchanges.Short {
				t.Fatalf("bad side %v", o.Side)
			}
		})
		if n != good {
			t.Fatalf("emitted %d, counted %d", n, good)
		}
	})
}
