package dydx

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	market string
	side   exchanges.Side
	size   float64
	price  float64
}

func decodeAll(data []byte) (frame, []decoded, error) {
	var out []decoded
	f, err := decodeFrame(data, func(ev liquidation) {
		out = append(out, decoded{string(ev.Market), ev.Side, ev.Size, ev.Price})
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

func TestDecodeFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []byte
		kind   kind
		want   []decoded
		trades int
	}{
		{"documented sample, not a liquidation", readTestdata(t, "trades_doc.json"), kindData, nil, 1},
		{"liquidation true SELL = long, false skipped, type LIQUIDATED BUY = short", readTestdata(t, "trades_liquidations.json"), kindData,
			[]decoded{{"ETH-USD", exchanges.Long, 1.5, 3000}, {"ETH-USD", exchanges.Short, 0.5, 3002}}, 3},
		{"batched contents", readTestdata(t, "trades_batched.json"), kindData,
			[]decoded{{"BTC-USD", exchanges.Long, 0.1, 65000}, {"BTC-USD", exchanges.Short, 0.2, 65010}}, 2},
		{"subscribed history is not decoded", readTestdata(t, "subscribed.json"), kindSubscribed, nil, 0},
		{"connected", readTestdata(t, "connected.json"), kindOther, nil, 0},
		{"error", readTestdata(t, "error.json"), kindError, nil, 0},
		{"unsubscribed", []byte(`{"type":"unsubscribed","connection_id":"c","message_id":9,"channel":"v4_trades","id":"BTC-USD"}`), kindUnsubscribed, nil, 0},
		{"DELEVERAGED is not a liquidation", []byte(`{"type":"channel_data","id":"X-USD","channel":"v4_trades","contents":{"trades":[{"size":"1","price":"2","side":"SELL","liquidation":false,"type":"DELEVERAGED"}]}}`), kindData, nil, 1},
		{"bare numbers, keys in any order", []byte(`{"contents":{"trades":[{"liquidation":true,"price":2,"size":3,"side":"BUY"}]},"channel":"v4_trades","id":"X-USD","type":"channel_data"}`), kindData,
			[]decoded{{"X-USD", exchanges.Short, 3, 2}}, 1},
		{"empty trades", []byte(`{"type":"channel_data","id":"X-USD","channel":"v4_trades","contents":{"trades":[]}}`), kindData, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll(tc.in)
			if err != nil || f.bad != 0 {
				t.Fatalf("err %v bad %d", err, f.bad)
			}
			if f.kind != tc.kind || f.trades != tc.trades || f.events != len(tc.want) {
				t.Errorf("kind %d trades %d events %d", f.kind, f.trades, f.events)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if f, _, _ := decodeAll(readTestdata(t, "error.json")); string(f.message) != "Invalid subscribe message: channel v4_tradez" {
		t.Errorf("error message %q", f.message)
	}
}

func TestDecodeBadInput(t *testing.T) {
	liq := func(trade string) []byte {
		return []byte(`{"type":"channel_data","id":"BTC-USD","channel":"v4_trades","contents":{"trades":[` + trade + `]}}`)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		bad  int
	}{
		{"not JSON", []byte(`{"type":`), 1},
		{"array", []byte(`[1,2]`), 1},
		{"no type", []byte(`{"id":"BTC-USD"}`), 1},
		{"wrong channel", []byte(`{"type":"channel_data","id":"BTC-USD","channel":"v4_orderbook","contents":{}}`), 1},
		{"no id", []byte(`{"type":"channel_data","channel":"v4_trades","contents":{"trades":[]}}`), 1},
		{"contents not an object", []byte(`{"type":"channel_data","id":"BTC-USD","channel":"v4_trades","contents":[]}`), 1},
		{"trades missing", []byte(`{"type":"channel_data","id":"BTC-USD","channel":"v4_trades","contents":{}}`), 1},
		{"bad side", liq(`{"size":"1","price":"2","side":"sell","liquidation":true}`), 1},
		{"NaN size", liq(`{"size":"NaN","price":"2","side":"SELL","liquidation":true}`), 1},
		{"zero size", liq(`{"size":"0","price":"2","side":"SELL","liquidation":true}`), 1},
		{"negative price", liq(`{"size":"1","price":"-2","side":"SELL","liquidation":true}`), 1},
		{"missing price", liq(`{"size":"1","side":"SELL","liquidation":true}`), 1},
		{"liquidation not a bool", liq(`{"size":"1","price":"2","side":"SELL","liquidation":"yes"}`), 1},
		{"trade not an object", liq(`1`), 1},
		{"one bad among good", liq(`{"size":"1","price":"2","side":"SELL","liquidation":true},{"size":"x","price":"2","side":"SELL","liquidation":true}`), 1},
		{"batched contents not an array", []byte(`{"type":"channel_batch_data","id":"BTC-USD","channel":"v4_trades","contents":{"trades":[]}}`), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, err := decodeAll(tc.in)
			if f.bad != tc.bad || err == nil {
				t.Errorf("bad %d (want %d), err %v", f.bad, tc.bad, err)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"trades_doc.json", "trades_liquidations.json", "trades_batched.json", "subscribed.json", "connected.json", "error.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, _ := decodeFrame(data, func(ev liquidation) {
			if !(ev.Size > 0) || !(ev.Price > 0) || len(ev.Market) == 0 {
				t.Fatalf("emitted an unusable event %+v", ev)
			}
		})
		if fr.bad < 0 || fr.events > fr.trades {
			t.Fatalf("inconsistent frame %+v", fr)
		}
	})
}
