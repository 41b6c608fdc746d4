package kraken

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	pf = &exchanges.Instrument{Exchange: Name, Market: exchanges.Linear, Symbol: "PF_XBTUSD", Coin: "BTC", ContractSize: 1, Multiplier: 1}
	pi = &exchanges.Instrument{Exchange: Name, Market: exchanges.Inverse, Symbol: "PI_XBTUSD", Coin: "BTC", ContractSize: 1, Multiplier: 1}
)

func TestDecodeFrames(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []byte
		kind     kind
		product  string
		side     exchanges.Side
		qty      float64
		price    float64
		products string
	}{
		{name: "documented trade sample (fill) is not a liquidation", in: readTestdata(t, "trade_doc.json"), kind: kindTrade},
		{name: "liquidation sell = long (ASSUMED: taker liquidated), PF_", in: readTestdata(t, "trade_liquidation_sell.json"), kind: kindLiquidation,
			product: "PF_XBTUSD", side: exchanges.Long, qty: 0.25, price: 36000.5},
		{name: "liquidation buy = short, PI_", in: readTestdata(t, "trade_liquidation_buy.json"), kind: kindLiquidation,
			product: "PI_XBTUSD", side: exchanges.Short, qty: 5000, price: 36010},
		{name: "trade_snapshot is history and ignored", in: readTestdata(t, "trade_snapshot.json"), kind: kindOther},
		{name: "subscribed", in: readTestdata(t, "subscribed.json"), kind: kindSubscribed, products: `["PI_XBTUSD","PF_XBTUSD"]`},
		{name: "subscribed_failed", in: readTestdata(t, "subscribed_failed.json"), kind: kindFailed, products: `["PI_NOPEUSD"]`},
		{name: "error", in: readTestdata(t, "error.json"), kind: kindFailed},
		{name: "info", in: readTestdata(t, "info.json"), kind: kindOther},
		{name: "heartbeat", in: readTestdata(t, "heartbeat.json"), kind: kindOther},
		{name: "heartbeat subscribed ack", in: []byte(`{"event":"subscribed","feed":"heartbeat"}`), kind: kindOther},
		{name: "unsubscribed", in: []byte(`{"event":"unsubscribed","feed":"trade","product_ids":["PF_XBTUSD"]}`), kind: kindOther},
		{name: "alert", in: []byte(`{"event":"alert","message":"Bad request"}`), kind: kindFailed},
		{name: "assignment is not a liquidation", in: []byte(`{"feed":"trade","product_id":"PF_XBTUSD","side":"sell","type":"assignment","qty":1,"price":2}`), kind: kindTrade},
		{name: "keys in any order, quoted numbers", in: []byte(`{"price":"2","qty":"3","type":"liquidation","side":"buy","product_id":"PF_X","feed":"trade"}`), kind: kindLiquidation,
			product: "PF_X", side: exchanges.Short, qty: 3, price: 2},
		{name: "Type/Side in other case are other keys", in: []byte(`{"feed":"trade","product_id":"PF_X","Type":"liquidation","type":"fill","side":"sell","qty":1,"price":1}`), kind: kindTrade},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ev, err := decodeFrame(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if f.kind != tc.kind {
				t.Fatalf("kind %d, want %d", f.kind, tc.kind)
			}
			if string(f.products) != tc.products {
				t.Errorf("products %s, want %s", f.products, tc.products)
			}
			if tc.kind != kindLiquidation {
				return
			}
			if string(ev.Product) != tc.product || ev.Side != tc.side || ev.Qty != tc.qty || ev.Price != tc.price {
				t.Errorf("got %s %v %v %v", ev.Product, ev.Side, ev.Qty, ev.Price)
			}
		})
	}
	if f, _, _ := decodeFrame(readTestdata(t, "subscribed_failed.json")); string(f.message) != "Invalid product id" {
		t.Errorf("message %q", f.message)
	}
}

func TestNotional(t *testing.T) {
	_, sell, _ := decodeFrame(readTestdata(t, "trade_liquidation_sell.json"))
	if got := notional(pf, sell); got != 0.25*36000.5 {
		t.Errorf("PF_ notional %v, want qty x price", got)
	}
	_, buy, _ := decodeFrame(readTestdata(t, "trade_liquidation_buy.json"))
	if got := notional(pi, buy); got != 5000 {
		t.Errorf("PI_ notional %v, want qty (USD contracts)", got)
	}
}

func TestDecodeBadInput(t *testing.T) {
	liq := func(fields string) []byte {
		return []byte(`{"feed":"trade","product_id":"PF_XBTUSD","type":"liquidation",` + fields + `}`)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"not JSON", []byte(`{"feed":`)},
		{"array", []byte(`[1,2]`)},
		{"no event or feed", []byte(`{"product_id":"PF_XBTUSD"}`)},
		{"no product", []byte(`{"feed":"trade","type":"liquidation","side":"sell","qty":1,"price":1}`)},
		{"product not a string", []byte(`{"feed":"trade","product_id":5,"type":"liquidation","side":"sell","qty":1,"price":1}`)},
		{"no type", []byte(`{"feed":"trade","product_id":"PF_XBTUSD","side":"sell","qty":1,"price":1}`)},
		{"bad side", liq(`"side":"Sell","qty":1,"price":1`)},
		{"missing side", liq(`"qty":1,"price":1`)},
		{"NaN qty", liq(`"side":"sell","qty":"NaN","price":1`)},
		{"zero qty", liq(`"side":"sell","qty":0,"price":1`)},
		{"negative qty", liq(`"side":"sell","qty":-1,"price":1`)},
		{"missing price", liq(`"side":"sell","qty":1`)},
		{"zero price", liq(`"side":"sell","qty":1,"price":0`)},
		{"infinite price", liq(`"side":"sell","qty":1,"price":1e999`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, err := decodeFrame(tc.in)
			if err == nil || f.kind == kindLiquidation {
				t.Errorf("kind %d err %v", f.kind, err)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"trade_doc.json", "trade_liquidation_sell.json", "trade_liquidation_buy.json", "trade_snapshot.json",
		"subscribed.json", "subscribed_failed.json", "error.json", "info.json", "heartbeat.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ev, err := decodeFrame(data)
		if fr.kind == kindLiquidation {
			if err != nil || !(ev.Qty > 0) || !(ev.Price > 0) || len(ev.Product) == 0 || notional(pf, ev) <= 0 {
				t.Fatalf("emitted an unusable event %+v (err %v)", ev, err)
			}
		}
	})
}
