package bitget

import (
	"math"
	"os"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

func decodeAll(t testing.TB, data []byte) (frame, []event, error) {
	t.Helper()
	var got []event
	f, err := decodeFrame(data, func(e event) {
		e.Symbol = append([]byte(nil), e.Symbol...)
		got = append(got, e)
	})
	return f, got, err
}

func TestDecodeSample(t *testing.T) {
	data, err := os.ReadFile("testdata/liquidation_sample.json")
	if err != nil {
		t.Fatal(err)
	}
	f, got, err := decodeAll(t, data)
	if err != nil || f.kind != kindPush || f.bad != 0 || len(got) != 1 {
		t.Fatalf("sample: %+v %v %v", f, got, err)
	}
	e := got[0]
	if string(e.Symbol) != "BTCUSDT" || e.Side != exchanges.Long || e.Amount != 5 || e.Price != 99 || e.TS != 1002 || notional(e) != 495 {
		t.Errorf("sample decoded as %+v", e)
	}
	if string(f.instType) != "usdt-futures" {
		t.Errorf("instType %q", f.instType)
	}
}

func TestDecodeSidesAndNotional(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		side        exchanges.Side
		notional    float64
	}{
		{"linear sell = long", `{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[{"symbol":"ETHUSDT","price":"3000","amount":"2","side":"sell","ts":"1700000000000"}]}`, exchanges.Long, 6000},
		{"linear buy = short", `{"arg":{"instType":"usdc-futures","topic":"liquidation"},"data":[{"symbol":"BTCPERP","price":"60000","amount":"0.01","side":"buy","ts":"1700000000000"}]}`, exchanges.Short, 600},
		{"inverse sell = long, amount in base coin", `{"arg":{"instType":"coin-futures","topic":"liquidation"},"data":[{"symbol":"BTCUSD","price":"60000","amount":"0.5","side":"sell","ts":1700000000000}]}`, exchanges.Long, 30000},
		{"inverse buy = short", `{"arg":{"instType":"coin-futures","topic":"liquidation"},"action":"update","data":[{"symbol":"ETHUSD_231229","price":"3000","amount":"10","side":"buy","ts":"1700000000000"}],"ts":1}`, exchanges.Short, 30000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll(t, []byte(tc.frame))
			if err != nil || f.bad != 0 || len(got) != 1 {
				t.Fatalf("%+v %v %v", f, got, err)
			}
			if got[0].Side != tc.side || math.Abs(notional(got[0])-tc.notional) > 1e-9 {
				t.Errorf("side %v notional %v, want %v %v", got[0].Side, notional(got[0]), tc.side, tc.notional)
			}
		})
	}
}

func TestDecodeEventsAndHeartbeat(t *testing.T) {
	f, _, err := decodeAll(t, []byte("pong"))
	if err != nil || f.kind != kindPong {
		t.Errorf("pong: %+v %v", f, err)
	}
	f, _, _ = decodeAll(t, []byte(" ping "))
	if f.kind != kindPing {
		t.Errorf("ping: %+v", f)
	}
	f, _, err = decodeAll(t, []byte(`{"event":"subscribe","arg":{"instType":"coin-futures","topic":"liquidation"}}`))
	if err != nil || f.kind != kindEvent || string(f.event) != "subscribe" || string(f.instType) != "coin-futures" || string(f.topic) != Topic {
		t.Errorf("ack: %+v %v", f, err)
	}
	f, _, err = decodeAll(t, []byte(`{"event":"error","arg":{"instType":"x","topic":"liquidation"},"code":30001,"msg":"doesn't exist"}`))
	if err != nil || string(f.event) != "error" || string(f.code) != "30001" || string(f.msg) != "doesn't exist" {
		t.Errorf("error: %+v %v", f, err)
	}
}

func TestDecodeBadInput(t *testing.T) {
	const arg = `{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[`
	for _, tc := range []struct {
		name, frame string
		good, bad   int
	}{
		{"not json", `{"arg":`, 0, 1},
		{"garbage", `hello`, 0, 1},
		{"no data", `{"arg":{"instType":"usdt-futures","topic":"liquidation"}}`, 0, 1},
		{"other topic", `{"arg":{"instType":"usdt-futures","topic":"ticker"},"data":[]}`, 0, 1},
		{"data not array", arg[:len(arg)-1] + `{}}`, 0, 1},
		{"NaN price", arg + `{"symbol":"BTCUSDT","price":"NaN","amount":"1","side":"sell","ts":"1"}]}`, 0, 1},
		{"zero amount", arg + `{"symbol":"BTCUSDT","price":"1","amount":"0","side":"sell","ts":"1"}]}`, 0, 1},
		{"negative amount", arg + `{"symbol":"BTCUSDT","price":"1","amount":"-1","side":"sell","ts":"1"}]}`, 0, 1},
		{"unknown side", arg + `{"symbol":"BTCUSDT","price":"1","amount":"1","side":"Sell","ts":"1"}]}`, 0, 1},
		{"case-different key", arg + `{"Symbol":"BTCUSDT","price":"1","amount":"1","side":"sell","ts":"1"}]}`, 0, 1},
		{"missing ts", arg + `{"symbol":"BTCUSDT","price":"1","amount":"1","side":"sell"}]}`, 0, 1},
		{"good among bad", arg + `{"symbol":"BTCUSDT","price":"1","amount":"1","side":"sell","ts":"1"},{"symbol":"","price":"1","amount":"1","side":"sell","ts":"1"},{"symbol":"BTCUSDT","price":"2","amount":"1","side":"buy","ts":"2"}]}`, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll(t, []byte(tc.frame))
			if len(got) != tc.good || f.bad != tc.bad || (tc.bad > 0 && err == nil) {
				t.Errorf("got %d good %d bad err %v, want %d %d", len(got), f.bad, err, tc.good, tc.bad)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	seed, err := os.ReadFile("testdata/liquidation_sample.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"event":"error","code":30001,"msg":"x"}`))
	f.Add([]byte("pong"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeFrame(data, func(e event) {
			if !(e.Amount > 0) || !(e.Price > 0) || e.TS <= 0 || len(e.Symbol) == 0 {
				t.Fatalf("invalid event emitted: %+v", e)
			}
		})
	})
}
