package gate

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	contract string
	side     exchanges.Side
	size, px float64
	ts       int64
}

func decodeAll(data []byte) (frame, []decoded, error) {
	var out []decoded
	f, err := decodeFrame(data, func(l liq) {
		out = append(out, decoded{string(l.Contract), l.Side, l.Size, l.Price, l.TimeMs})
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

func TestDecodeFrameDocumented(t *testing.T) {
	for _, tc := range []struct {
		file string
		kind frameKind
		want []decoded
	}{
		{"liquidation_doc.json", kindPush, []decoded{{"BTC_USD", exchanges.Long, -124, 215.1, 1541486601123}}},
		{"liquidation_multi.json", kindPush, []decoded{
			{"BTC_USDT", exchanges.Long, -20, 60000.5, 1700000000100},
			{"ETH_USDT", exchanges.Short, 15, 3000, 1700000000200},
			{"PEPE_USDT", exchanges.Long, -3, 0.0000123, 1700000000300},
		}},
		{"subscribe_ack.json", kindAck, nil},
		{"subscribe_error.json", kindSubError, nil},
		{"pong.json", kindPong, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, got, err := decodeAll(readTestdata(t, tc.file))
			if err != nil || f.bad != 0 {
				t.Fatalf("err %v, bad %d", err, f.bad)
			}
			if f.kind != tc.kind {
				t.Errorf("kind %v, want %v", f.kind, tc.kind)
			}
			if len(got) != len(tc.want) || f.events != len(tc.want) {
				t.Fatalf("got %v (events %d), want %v", got, f.events, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("order %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	f, _, _ := decodeAll(readTestdata(t, "subscribe_error.json"))
	if !strings.Contains(f.errText, "unknown contract NOPE_USDT") || !strings.Contains(f.errText, "code 2") {
		t.Errorf("error text %q", f.errText)
	}
}

func TestNotional(t *testing.T) {
	lin := &contract{name: "BTC_USDT", size: 0.0001, inst: &exchanges.Instrument{Market: exchanges.Linear}}
	inv := &contract{name: "BTC_USD", size: 1, inst: &exchanges.Instrument{Market: exchanges.Inverse}}
	for _, tc := range []struct {
		c    *contract
		l    liq
		want float64
		side exchanges.Side
	}{
		{lin, liq{Size: -124, Price: 60000}, 124 * 0.0001 * 60000, exchanges.Long},
		{lin, liq{Size: 50, Price: 59000}, 50 * 0.0001 * 59000, exchanges.Short},
		{inv, liq{Size: -124, Price: 215.1}, 124, exchanges.Long},
		{inv, liq{Size: 3000, Price: 60000}, 3000, exchanges.Short},
	} {
		if got := notional(tc.c, tc.l); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("notional(%s, %+v) = %v, want %v", tc.c.name, tc.l, got, tc.want)
		}
		if got := sideOf(tc.l.Size); got != tc.side {
			t.Errorf("side of %v = %v, want %v", tc.l.Size, got, tc.side)
		}
	}
}

func TestDecodeFrameBadInput(t *testing.T) {
	push := func(items string) string {
		return `{"channel":"futures.public_liquidates","event":"update","time":1,"time_ms":1000,"result":[` + items + `]}`
	}
	good := `{"price":1,"size":-1,"time_ms":5,"contract":"A_USDT"}`
	for _, tc := range []struct {
		name      string
		frame     string
		kind      frameKind
		events    int
		bad       int
		wantError bool
	}{
		{"not json", `not json`, kindOther, 0, 1, true},
		{"empty", ``, kindOther, 0, 1, true},
		{"array", `[1,2]`, kindOther, 0, 1, true},
		{"no channel", `{"event":"update","result":[]}`, kindOther, 0, 1, true},
		{"other channel", `{"channel":"futures.trades","event":"update","result":[{"x":1}]}`, kindOther, 0, 0, false},
		{"unsubscribe answer", `{"channel":"futures.public_liquidates","event":"unsubscribe","result":{"status":"success"}}`, kindOther, 0, 0, false},
		{"result not array", `{"channel":"futures.public_liquidates","event":"update","result":{"price":1}}`, kindPush, 0, 1, true},
		{"empty result", push(``), kindPush, 0, 0, false},
		{"NaN size", push(`{"price":1,"size":"NaN","time_ms":5,"contract":"A_USDT"},` + good), kindPush, 1, 1, true},
		{"zero size", push(`{"price":1,"size":0,"time_ms":5,"contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"zero price", push(`{"price":0,"size":1,"time_ms":5,"contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"negative price", push(`{"price":-3,"size":1,"time_ms":5,"contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"infinite size", push(`{"price":1,"size":1e999,"time_ms":5,"contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"no time", push(`{"price":1,"size":1,"contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"float time", push(`{"price":1,"size":1,"time_ms":5.5,"contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"no contract", push(`{"price":1,"size":1,"time_ms":5}`), kindPush, 0, 1, true},
		{"contract number", push(`{"price":1,"size":1,"time_ms":5,"contract":7}`), kindPush, 0, 1, true},
		{"wrong case keys", push(`{"Price":1,"Size":1,"Time_ms":5,"Contract":"A_USDT"}`), kindPush, 0, 1, true},
		{"element not object", push(`1,` + good), kindPush, 1, 1, true},
		{"truncated", push(good)[:60], kindOther, 0, 1, true},
		{"ack without status", `{"channel":"futures.public_liquidates","event":"subscribe","error":null,"result":null}`, kindSubError, 0, 0, false},
		{"ack with error", `{"channel":"futures.public_liquidates","event":"subscribe","error":{"code":1,"message":"x"},"result":{"status":"success"}}`, kindSubError, 0, 0, false},
		{"error as string", `{"channel":"futures.public_liquidates","event":"subscribe","error":"boom","result":{"status":"fail"}}`, kindSubError, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll([]byte(tc.frame))
			if f.kind != tc.kind || f.events != tc.events || f.bad != tc.bad || len(got) != tc.events {
				t.Errorf("frame %+v (emitted %d), want kind %v events %d bad %d", f, len(got), tc.kind, tc.events, tc.bad)
			}
			if (err != nil) != tc.wantError {
				t.Errorf("err %v, want error %v", err, tc.wantError)
			}
		})
	}
}

func TestDecodeHistory(t *testing.T) {
	var got []decoded
	rows, bad, err := decodeHistory(readTestdata(t, "liq_orders_doc.json"), func(l liq) {
		got = append(got, decoded{string(l.Contract), l.Side, l.Size, l.Price, l.TimeMs})
	})
	if rows != 1 || bad != 0 || err != nil {
		t.Fatalf("rows %d bad %d err %v", rows, bad, err)
	}
	// The position size 600 (a long) has the liquidation order -600: a long liquidated.
	want := decoded{"BTC_USDT", exchanges.Long, -600, 3405, 1548654951000}
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	rows, bad, _ = decodeHistory([]byte(`[{"time":1,"contract":"A","order_size":0,"order_price":"1"},{"time":"x","contract":"A","order_size":1,"order_price":"1"},`+
		`{"time":2,"contract":"A","order_size":1,"order_price":"NaN"},{"time":3,"contract":"A","order_size":2,"order_price":"4"}]`), func(liq) {})
	if rows != 4 || bad != 3 {
		t.Errorf("rows %d bad %d, want 4 and 3", rows, bad)
	}
	if _, bad, err := decodeHistory([]byte(`{"label":"INVALID_PARAM_VALUE"}`), func(liq) {}); bad != 1 || err == nil {
		t.Errorf("an object answer: bad %d err %v", bad, err)
	}
}

func TestDecodeFrameAllocations(t *testing.T) {
	data := readTestdata(t, "liquidation_multi.json")
	n := 0
	emit := func(liq) { n++ }
	allocs := testing.AllocsPerRun(100, func() { _, _ = decodeFrame(data, emit) })
	if allocs != 0 {
		t.Errorf("decodeFrame allocates %v times per frame", allocs)
	}
}

func TestDedupe(t *testing.T) {
	start := time.Unix(1_700_000_000, 500e6)
	d := newDedupe(time.Hour, 3, start)
	now := start.Add(time.Minute)
	admit := func(sec int64, size float64, tsMs int64, at time.Time) exchanges.Verdict {
		if tsMs/1000 != sec {
			t.Fatalf("bad case: %d ms is not in second %d", tsMs, sec)
		}
		return d.admit("BTC_USDT", size, 1, tsMs, at)
	}
	ms := func(sec int64) int64 { return sec * 1000 }
	if v := admit(1_700_000_000, 1, start.UnixMilli(), now); v != exchanges.TooOld {
		t.Errorf("an order at the start: %v", v)
	}
	// A live order in the start second after the start counts; its REST
	// copy (whole second, possibly before the start) does not count again.
	if v := admit(1_700_000_000, 2, start.UnixMilli()+100, now); v != exchanges.Admitted {
		t.Errorf("live order after the start: %v", v)
	}
	if v := d.Admit(d.Hash("BTC_USDT", 1_700_000_000, exchanges.FloatWord(2), exchanges.FloatWord(1)), ms(1_700_000_000), now); v != exchanges.Duplicate {
		t.Errorf("REST copy of a counted order: %v", v)
	}
	if v := admit(1_700_000_001, 3, ms(1_700_000_001), now); v != exchanges.Admitted {
		t.Errorf("REST order: %v", v)
	}
	if v := admit(1_700_000_001, 3, ms(1_700_000_001)+999, now); v != exchanges.Duplicate {
		t.Errorf("live copy of a backfilled order: %v", v)
	}
	if e := d.earliest(); !e.Equal(start) {
		t.Errorf("earliest %v, want the start %v", e, start)
	}
	_ = admit(1_700_000_002, 4, ms(1_700_000_002), now)
	// Full: the oldest key goes and the floor rises to its second.
	if v := admit(1_700_000_003, 5, ms(1_700_000_003), now); v != exchanges.Admitted || d.Len() != 3 {
		t.Errorf("admit when full: %v, len %d", v, d.Len())
	}
	if v := admit(1_700_000_000, 2, start.UnixMilli()+100, now); v != exchanges.TooOld {
		t.Errorf("evicted key readmitted: %v", v)
	}
	if v := admit(1_700_000_000, 7, start.UnixMilli()+300, now); v != exchanges.TooOld {
		t.Errorf("an order in the evicted second: %v", v)
	}
	if e, want := d.earliest(), time.Unix(1_700_000_001, 0); !e.Equal(want) {
		t.Errorf("earliest %v after eviction, want %v (the second after the evicted one)", e, want)
	}
	// Age: an hour later everything is older than the window.
	later := start.Add(2 * time.Hour)
	if v := admit(1_700_000_003, 5, ms(1_700_000_003), later); v != exchanges.TooOld || d.Len() != 0 {
		t.Errorf("aged key: %v, len %d", v, d.Len())
	}
	if e := d.earliest(); e.Before(later.Add(-time.Hour)) {
		t.Errorf("earliest %v before the window", e)
	}
}

func TestNextFunding(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct{ next, interval, want float64 }{
		{1_700_000_100, 28800, 1_700_000_100},
		{1_700_000_000 - 10, 28800, 1_700_000_000 - 10 + 28800},
		{1_700_000_000 - 28800*2 - 10, 28800, 1_700_000_000 - 10 + 28800},
		{1_700_000_000, 3600, 1_700_003_600},
		{0, 3600, 0},
	} {
		if got := nextFunding(tc.next, tc.interval, now); got != tc.want {
			t.Errorf("nextFunding(%v, %v) = %v, want %v", tc.next, tc.interval, got, tc.want)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"liquidation_doc.json", "liquidation_multi.json", "subscribe_ack.json", "subscribe_error.json", "pong.json", "liq_orders_doc.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(l liq) {
			if l.Size == 0 || math.IsNaN(l.Size) || math.IsInf(l.Size, 0) || !(l.Price > 0) || math.IsInf(l.Price, 0) || len(l.Contract) == 0 || l.TimeMs <= 0 {
				t.Fatalf("invalid order emitted: %+v", l)
			}
			if l.Side != sideOf(l.Size) {
				t.Fatalf("side %v for size %v", l.Side, l.Size)
			}
		}
		events := 0
		fr, _ := decodeFrame(data, func(l liq) { events++; check(l) })
		if events != fr.events {
			t.Fatalf("emitted %d, frame says %d", events, fr.events)
		}
		if fr.kind != kindPush && fr.events != 0 {
			t.Fatalf("a non-push with orders: %+v", fr)
		}
		rows, bad, _ := decodeHistory(data, check)
		if bad > rows+1 {
			t.Fatalf("bad %d > rows %d + 1", bad, rows)
		}
	})
}
