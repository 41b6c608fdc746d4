package bitget

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

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

func TestDedupe(t *testing.T) {
	d := newDedupe(dedupeWindow, 3)
	now := time.Now()
	k := dedupeKey{instType: USDTFutures, symbol: "BTCUSDT", amount: 1, price: 2, ts: now.UnixMilli()}
	if !d.admit(k, now) || d.admit(k, now) {
		t.Fatal("a key was admitted twice or not at all")
	}
	old := k
	old.ts = now.Add(-2 * dedupeWindow).UnixMilli()
	if d.admit(old, now) {
		t.Error("a key older than the window was admitted")
	}
	for i := range 5 {
		k2 := k
		k2.ts += int64(i + 1)
		if !d.admit(k2, now) {
			t.Errorf("key %d not admitted", i)
		}
	}
	if len(d.seen) > 3 {
		t.Errorf("dedupe holds %d keys, max 3", len(d.seen))
	}
	if d.admit(k, now) {
		t.Error("an evicted key at or before the floor was admitted again")
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

// refDedupe is the dedupe's rule written the plain way (evict from the front
// of a slice that is moved on every eviction), to check the amortised one
// against.
type refDedupe struct {
	window time.Duration
	max    int
	seen   map[dedupeKey]struct{}
	order  []dedupeKey
	floor  int64
}

func (d *refDedupe) admit(k dedupeKey, now time.Time) bool {
	horizon := now.Add(-d.window).UnixMilli()
	if k.ts < horizon || k.ts <= d.floor {
		return false
	}
	if _, dup := d.seen[k]; dup {
		return false
	}
	for len(d.order) > 0 && (d.order[0].ts < horizon || len(d.order) >= d.max) {
		if d.order[0].ts >= horizon {
			d.floor = max(d.floor, d.order[0].ts)
		}
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
	d.seen[k] = struct{}{}
	d.order = append(d.order, k)
	return true
}

func TestDedupeMatchesPlainRule(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 7))
		d := newDedupe(time.Second, 50)
		ref := &refDedupe{window: time.Second, max: 50, seen: map[dedupeKey]struct{}{}}
		now := time.Unix(1_800_000_000, 0)
		var recent []dedupeKey
		for i := range 5000 {
			now = now.Add(time.Duration(rng.IntN(5)) * time.Millisecond)
			var k dedupeKey
			if len(recent) > 0 && rng.IntN(4) == 0 { // a replay of a recent key
				k = recent[rng.IntN(len(recent))]
			} else {
				k = dedupeKey{instType: USDTFutures, symbol: []string{"BTCUSDT", "ETHUSDT"}[rng.IntN(2)], amount: float64(rng.IntN(3) + 1),
					price: 100, ts: now.Add(-time.Duration(rng.IntN(1500)) * time.Millisecond).UnixMilli()}
				recent = append(recent, k)
				if len(recent) > 200 {
					recent = recent[1:]
				}
			}
			if got, want := d.admit(k, now), ref.admit(k, now); got != want {
				t.Fatalf("seed %d step %d: admit(%+v) = %v, the plain rule says %v", seed, i, k, got, want)
			}
			if len(d.seen) > 50 {
				t.Fatalf("seed %d: %d keys held, max 50", seed, len(d.seen))
			}
		}
	}
}

// BenchmarkDedupeFull admits new keys into a full set: constant time per
// key, not a copy of the whole set.
func BenchmarkDedupeFull(b *testing.B) {
	d := newDedupe(time.Hour, dedupeMaxKeys)
	now := time.Now()
	k := dedupeKey{instType: USDTFutures, symbol: "BTCUSDT", amount: 1, price: 2, ts: now.UnixMilli()}
	for range dedupeMaxKeys { // distinct times, as liquidations have
		k.ts++
		d.admit(k, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		k.ts++
		if !d.admit(k, now) {
			b.Fatal("new key refused")
		}
	}
}
