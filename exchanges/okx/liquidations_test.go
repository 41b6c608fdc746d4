package okx

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	instID  string
	side    exchanges.Side
	posSide byte
	sz, px  float64
	ts      int64
}

func decodeAll(data []byte) (frame, []decoded, error) {
	var out []decoded
	f, err := decodeFrame(data, func(d detail) {
		out = append(out, decoded{string(d.InstID), d.Side, d.posSide, d.Sz, d.Px, d.TS})
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
	doc := readTestdata(t, "liquidation_doc.json")
	sell := []byte(strings.Replace(strings.Replace(string(doc), `"side": "buy"`, `"side": "sell"`, 1), `"posSide": "short"`, `"posSide": "net"`, 1))
	for _, tc := range []struct {
		name string
		in   []byte
		want []decoded
	}{
		// The documented sample: side buy with posSide short = a short liquidated.
		{"documented sample", doc, []decoded{{"IOST-USDT-SWAP", exchanges.Short, 's', 13, 0.007831, 1692266434010}}},
		{"net mode, sell = long", sell, []decoded{{"IOST-USDT-SWAP", exchanges.Long, 'n', 13, 0.007831, 1692266434010}}},
		{"several details and instruments", readTestdata(t, "liquidation_multi.json"), []decoded{
			{"BTC-USDT-SWAP", exchanges.Long, 'l', 2, 64100.5, 1752000000001},
			{"BTC-USDT-SWAP", exchanges.Long, 'n', 0.5, 64200, 1752000000002},
			{"BTC-USDT-SWAP", exchanges.Short, 'n', 7, 64300, 1752000000003},
			{"BTC-USDT-SWAP", exchanges.Long, 0, 1, 64050, 1752000000004},
			{"ETH-USDT-SWAP", exchanges.Short, 's', 30, 3001.5, 1752000000005},
		}},
		{"inverse futures", readTestdata(t, "liquidation_inverse.json"), []decoded{
			{"BTC-USD-250926", exchanges.Long, 'n', 120, 61050.1, 1752000000100},
			{"BTC-USD-250926", exchanges.Short, 's', 3, 61100, 1752000000200},
		}},
		// posSide takes precedence over the order side.
		{"posSide long beats side buy", []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP","details":[{"side":"buy","posSide":"long","sz":"1","bkPx":"2","ts":"3"}]}]}`),
			[]decoded{{"X-USDT-SWAP", exchanges.Long, 'l', 1, 2, 3}}},
		{"posSide short beats side sell", []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP","details":[{"side":"sell","posSide":"short","sz":"1","bkPx":"2","ts":"3"}]}]}`),
			[]decoded{{"X-USDT-SWAP", exchanges.Short, 's', 1, 2, 3}}},
		{"posSide absent, buy = short", []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP","details":[{"side":"buy","sz":"1","bkPx":"2","ts":"3"}]}]}`),
			[]decoded{{"X-USDT-SWAP", exchanges.Short, 0, 1, 2, 3}}},
		{"bare numbers", []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP","details":[{"side":"sell","sz":1.5,"bkPx":2,"ts":3}]}]}`),
			[]decoded{{"X-USDT-SWAP", exchanges.Long, 0, 1.5, 2, 3}}},
		{"empty data", []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[]}`), nil},
		{"empty details", []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP","details":[]}]}`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll(tc.in)
			if err != nil || f.bad != 0 || f.kind != kindPush {
				t.Fatalf("bad=%d kind=%v err=%v", f.bad, f.kind, err)
			}
			if len(got) != len(tc.want) || f.events != len(tc.want) {
				t.Fatalf("got %v (events %d), want %v", got, f.events, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("detail %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDecodeRESTData(t *testing.T) {
	var env struct {
		Code string          `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(readTestdata(t, "rest_liquidation_orders.json"), &env); err != nil {
		t.Fatal(err)
	}
	var got []decoded
	events, bad, err := decodeItems(env.Data, []byte("SWAP"), func(d detail) {
		got = append(got, decoded{string(d.InstID), d.Side, d.posSide, d.Sz, d.Px, d.TS})
	})
	if err != nil || bad != 0 || events != 2 {
		t.Fatalf("events=%d bad=%d err=%v", events, bad, err)
	}
	want := []decoded{{"BTC-USDT-SWAP", exchanges.Long, 'l', 2, 64100.5, 1752000000001}, {"BTC-USDT-SWAP", exchanges.Short, 'n', 7, 64300, 1752000000003}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("detail %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// An element of another instType is rejected.
	_, bad, err = decodeItems(env.Data, []byte("FUTURES"), func(detail) { t.Error("emitted") })
	if bad != 1 || err == nil {
		t.Errorf("other instType: bad=%d err=%v", bad, err)
	}
}

func TestDecodeEventsAndPong(t *testing.T) {
	f, got, err := decodeAll(readTestdata(t, "subscribe_ack.json"))
	if err != nil || f.kind != kindEvent || string(f.event) != "subscribe" || string(f.channel) != Channel || string(f.instType) != "SWAP" || len(got) != 0 || f.bad != 0 {
		t.Errorf("subscribe ack: %+v %v %v", f, got, err)
	}
	f, _, err = decodeAll(readTestdata(t, "error_event.json"))
	if err != nil || f.kind != kindEvent || string(f.event) != "error" || string(f.code) != "60012" || !strings.HasPrefix(string(f.msg), "Invalid request") {
		t.Errorf("error event: %+v %v", f, err)
	}
	for in, want := range map[string]frameKind{"pong": kindPong, "ping": kindPing, " pong\n": kindPong} {
		f, _, err = decodeAll([]byte(in))
		if err != nil || f.kind != want || f.bad != 0 {
			t.Errorf("%q: %+v %v", in, f, err)
		}
	}
}

func TestDecodeBadInput(t *testing.T) {
	good := `{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","details":[{"bkLoss":"0","bkPx":"60000","ccy":"","posSide":"long","side":"sell","sz":"2","ts":"1752000000001"}]}]}`
	for name, in := range map[string]string{
		"malformed":              `{"arg":{"channel":"liquidation-orders"},"data":[{`,
		"garbage":                `not json at all`,
		"empty":                  ``,
		"number frame":           `42`,
		"array frame":            `[` + good + `]`,
		"wrong channel":          strings.Replace(good, `"liquidation-orders"`, `"trades"`, 1),
		"no arg":                 `{"data":[]}`,
		"arg not an object":      strings.Replace(good, `{"channel":"liquidation-orders","instType":"SWAP"}`, `"x"`, 1),
		"no data, no event":      `{"arg":{"channel":"liquidation-orders","instType":"SWAP"}}`,
		"data not an array":      strings.Replace(good, `"data":[`, `"data":{"a":[`, 1) + `}`,
		"event not a string":     `{"event":1}`,
		"element without instId": strings.Replace(good, `"instId":"BTC-USDT-SWAP",`, ``, 1),
		"element of other type":  strings.Replace(good, `"instType":"SWAP","details"`, `"instType":"FUTURES","details"`, 1),
		"details not an array":   strings.Replace(good, `"details":[`, `"details":{"x":[`, 1)[:len(good)-3] + `]}]}]}`,
		"NaN size":               strings.Replace(good, `"sz":"2"`, `"sz":"NaN"`, 1),
		"zero size":              strings.Replace(good, `"sz":"2"`, `"sz":"0"`, 1),
		"negative size":          strings.Replace(good, `"sz":"2"`, `"sz":"-2"`, 1),
		"empty size":             strings.Replace(good, `"sz":"2"`, `"sz":""`, 1),
		"missing size":           strings.Replace(good, `"sz":"2",`, ``, 1),
		"NaN price":              strings.Replace(good, `"bkPx":"60000"`, `"bkPx":"NaN"`, 1),
		"zero price":             strings.Replace(good, `"bkPx":"60000"`, `"bkPx":"0"`, 1),
		"negative price":         strings.Replace(good, `"bkPx":"60000"`, `"bkPx":"-1"`, 1),
		"Inf price":              strings.Replace(good, `"bkPx":"60000"`, `"bkPx":"Infinity"`, 1),
		"overflow price":         strings.Replace(good, `"bkPx":"60000"`, `"bkPx":"1e999"`, 1),
		"upper-case side":        strings.Replace(good, `"side":"sell"`, `"side":"SELL"`, 1),
		"missing side":           strings.Replace(good, `"side":"sell",`, ``, 1),
		"side not a string":      strings.Replace(good, `"side":"sell"`, `"side":1`, 1),
		"unknown posSide":        strings.Replace(good, `"posSide":"long"`, `"posSide":"both"`, 1),
		"missing ts":             strings.Replace(good, `,"ts":"1752000000001"`, ``, 1),
		"fractional ts":          strings.Replace(good, `"ts":"1752000000001"`, `"ts":"1.5"`, 1),
		"zero ts":                strings.Replace(good, `"ts":"1752000000001"`, `"ts":"0"`, 1),
		"escaped instId":         strings.Replace(good, `"instId":"BTC-USDT-SWAP"`, `"instId":"BTC\u002dUSDT-SWAP"`, 1),
		"detail not an object":   strings.Replace(good, `{"bkLoss":"0","bkPx":"60000","ccy":"","posSide":"long","side":"sell","sz":"2","ts":"1752000000001"}`, `[1]`, 1),
		"trailing bytes":         good + `x`,
		"Side key case":          strings.Replace(good, `"side":"sell"`, `"Side":"sell"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			f, got, err := decodeAll([]byte(in))
			if f.bad != 1 || err == nil || len(got) != 0 || f.events != 0 {
				t.Errorf("bad=%d events=%d err=%v got=%v", f.bad, f.events, err, got)
			}
		})
	}
	// A bad detail does not hide the good ones around it.
	ev := `{"side":"sell","posSide":"net","sz":"1","bkPx":"2","ts":"3"}`
	bad := `{"side":"sell","posSide":"net","sz":"NaN","bkPx":"2","ts":"4"}`
	mixed := `{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"A-USDT-SWAP","details":[` + ev + `,` + bad + `,` + ev + `]}]}`
	f, got, err := decodeAll([]byte(mixed))
	if f.bad != 1 || f.events != 2 || len(got) != 2 || err == nil {
		t.Errorf("details with one bad: bad=%d events=%d got=%d err=%v", f.bad, f.events, len(got), err)
	}
}

func TestNotional(t *testing.T) {
	lin := &instrument{id: "BTC-USDT-SWAP", size: 0.01 * 1, inst: &exchanges.Instrument{Market: exchanges.Linear}}
	linMult := &instrument{id: "X-USDT-SWAP", size: 10 * 3, inst: &exchanges.Instrument{Market: exchanges.Linear}}
	inv := &instrument{id: "BTC-USD-SWAP", size: 100, inst: &exchanges.Instrument{Market: exchanges.Inverse}}
	invMult := &instrument{id: "X-USD-SWAP", size: 10 * 2, inst: &exchanges.Instrument{Market: exchanges.Inverse}}
	for _, tc := range []struct {
		in   *instrument
		d    detail
		want float64
	}{
		{lin, detail{Sz: 2, Px: 64100.5}, 2 * 0.01 * 64100.5}, // sz x ctVal x ctMult x bkPx
		{linMult, detail{Sz: 7, Px: 0.25}, 7 * 10 * 3 * 0.25}, // ctMult 3
		{inv, detail{Sz: 120, Px: 61050}, 120 * 100},          // sz x ctVal x ctMult USD
		{invMult, detail{Sz: 5, Px: 1}, 5 * 10 * 2},
	} {
		if got := notional(tc.in, tc.d); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("%s: notional %v, want %v", tc.in.id, got, tc.want)
		}
	}
}

// countingObserver is a StreamObserver that counts decode errors.
type countingObserver struct{ decodeErrors atomic.Int64 }

func (*countingObserver) SetUp(bool)     {}
func (*countingObserver) Connected()     {}
func (*countingObserver) Message()       {}
func (o *countingObserver) DecodeError() { o.decodeErrors.Add(1) }

// testVenue returns a venue whose SWAP instruments are BTC-USDT-SWAP
// (ctVal 0.01) and BTC-USD-SWAP (ctVal 100), with ETH-USDT-SWAP known but
// excluded by the coin allowlist.
func testVenue(t testing.TB) (*Venue, *kind, *countingObserver, *collector.Collector) {
	t.Helper()
	v := New(Config{InstTypes: []string{Swap}, Coins: []string{"BTC"}})
	coll := collector.New()
	v.sink = coll
	k := v.kinds[0]
	obs := &countingObserver{}
	k.obs = obs
	rows := []instrumentInfo{
		{InstType: Swap, InstID: "BTC-USDT-SWAP", InstFamily: "BTC-USDT", SettleCcy: "USDT", CtVal: exchanges.Number{Value: 0.01, Set: true}, CtMult: exchanges.Number{Value: 1, Set: true}, CtType: "linear", State: "live"},
		{InstType: Swap, InstID: "BTC-USD-SWAP", InstFamily: "BTC-USD", SettleCcy: "BTC", CtVal: exchanges.Number{Value: 100, Set: true}, CtMult: exchanges.Number{Value: 1, Set: true}, CtType: "inverse", State: "live"},
		{InstType: Swap, InstID: "ETH-USDT-SWAP", InstFamily: "ETH-USDT", SettleCcy: "USDT", CtVal: exchanges.Number{Value: 0.1, Set: true}, CtType: "linear", State: "live"},
		{InstType: Swap, InstID: "OLD-USDT-SWAP", InstFamily: "OLD-USDT", SettleCcy: "USDT", CtVal: exchanges.Number{Value: 1, Set: true}, CtType: "linear", State: "suspend"},
	}
	list, skipped := k.instrumentsFrom(rows)
	if len(list) != 3 || skipped != 0 {
		t.Fatalf("instruments %d skipped %d", len(list), skipped)
	}
	v.setList(k, list)
	return v, k, obs, coll
}

func pushFrame(instID string, details ...string) []byte {
	return []byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"` + instID + `","instType":"SWAP","details":[` + strings.Join(details, ",") + `]}]}`)
}

func detailJSON(side, posSide, sz, px string, ts int64) string {
	return `{"bkLoss":"0","bkPx":"` + px + `","ccy":"","posSide":"` + posSide + `","side":"` + side + `","sz":"` + sz + `","ts":"` + strconv.FormatInt(ts, 10) + `"}`
}

func TestHandleCountsDedupesAndRejects(t *testing.T) {
	v, k, obs, coll := testVenue(t)
	now := time.Now().UnixMilli()
	emit := k.emitLive
	frames := [][]byte{
		pushFrame("BTC-USDT-SWAP", detailJSON("sell", "long", "2", "60000", now), detailJSON("buy", "net", "3", "60100", now+1)),
		pushFrame("BTC-USD-SWAP", detailJSON("sell", "net", "120", "60050", now+2)),
		// The same orders again (a replay): skipped.
		pushFrame("BTC-USDT-SWAP", detailJSON("sell", "long", "2.0", "60000", now)),
		// Excluded by the allowlist: ignored without an error.
		pushFrame("ETH-USDT-SWAP", detailJSON("sell", "long", "1", "3000", now)),
		// History from before the start: not new.
		pushFrame("BTC-USDT-SWAP", detailJSON("sell", "long", "9", "60000", v.epoch.UnixMilli()-60_000)),
	}
	for _, fr := range frames {
		if _, err := decodeFrame(fr, emit); err != nil {
			t.Fatal(err)
		}
	}
	if n := obs.decodeErrors.Load(); n != 0 {
		t.Fatalf("decode errors %d", n)
	}
	if d, h := v.stats.duplicates.Load(), v.stats.history.Load(); d != 1 || h != 1 {
		t.Errorf("duplicates %d, history %d; want 1, 1", d, h)
	}
	// Unknown instId: a decode error and an early refresh.
	if _, err := decodeFrame(pushFrame("NEW-USDT-SWAP", detailJSON("sell", "long", "1", "1", now)), emit); err != nil {
		t.Fatal(err)
	}
	if n := obs.decodeErrors.Load(); n != 1 {
		t.Errorf("decode errors after an unknown instId = %d, want 1", n)
	}
	select {
	case <-k.refresh:
	default:
		t.Error("no instrument refresh requested for an unknown instId")
	}
	// Implausible notional: counted as a decode error, not added.
	if _, err := decodeFrame(pushFrame("BTC-USDT-SWAP", detailJSON("sell", "long", "1e12", "1e9", now+5)), emit); err != nil {
		t.Fatal(err)
	}
	if n := obs.decodeErrors.Load(); n != 2 {
		t.Errorf("decode errors after an implausible notional = %d, want 2", n)
	}
	s, err := collectortest.FromCollector(coll)
	if err != nil {
		t.Fatal(err)
	}
	lbl := func(market, sym, side string) []string {
		return []string{"exchange", "okx", "market", market, "symbol", sym, "coin", "BTC", "side", side}
	}
	for _, tc := range []struct {
		labels   []string
		count    float64
		notional float64
	}{
		{lbl("linear", "BTC-USDT-SWAP", "long"), 1, 2 * 0.01 * 60000},
		{lbl("linear", "BTC-USDT-SWAP", "short"), 1, 3 * 0.01 * 60100},
		{lbl("inverse", "BTC-USD-SWAP", "long"), 1, 120 * 100},
		{lbl("inverse", "BTC-USD-SWAP", "short"), 0, 0},
	} {
		if got, _ := s.Get("crypto_liquidations_total", tc.labels...); got != tc.count {
			t.Errorf("%v count %v, want %v", tc.labels, got, tc.count)
		}
		if got, _ := s.Get("crypto_liquidation_notional_usd_total", tc.labels...); !collectortest.Close(got, tc.notional) {
			t.Errorf("%v notional %v, want %v", tc.labels, got, tc.notional)
		}
	}
	if got := s.Sum("crypto_liquidations_total"); got != 3 {
		t.Errorf("total %v, want 3", got)
	}
}

func TestInstrumentsFrom(t *testing.T) {
	v := New(Config{})
	k := v.kinds[1] // FUTURES
	num := func(x float64) exchanges.Number { return exchanges.Number{Value: x, Set: true} }
	rows := []instrumentInfo{
		{InstType: Futures, InstID: "BTC-USD-250926", Uly: "BTC-USD", SettleCcy: "BTC", CtVal: num(100), CtMult: num(1), CtType: "inverse", State: "live"},
		{InstType: Futures, InstID: "1000PEPE-USDT-250926", InstFamily: "1000PEPE-USDT", SettleCcy: "USDT", CtVal: num(10), CtType: "linear", State: "live"},
		{InstType: Futures, InstID: "ETH-USDT-250926", InstFamily: "ETH-USDT", SettleCcy: "USDT", CtVal: num(0.1), CtMult: num(2), CtType: "linear", State: "live"},
		{InstType: Futures, InstID: "BAD-USDT-250926", InstFamily: "BAD-USDT", CtVal: num(0), CtType: "linear", State: "live"},
		{InstType: Futures, InstID: "ODD-USDT-250926", InstFamily: "ODD-USDT", CtVal: num(1), CtType: "", State: "live"},
		{InstType: Futures, InstID: "PRE-USDT-250926", InstFamily: "PRE-USDT", CtVal: num(1), CtType: "linear", State: "preopen"},
		{InstType: Swap, InstID: "BTC-USDT-SWAP", InstFamily: "BTC-USDT", CtVal: num(1), CtType: "linear", State: "live"},
	}
	list, skipped := k.instrumentsFrom(rows)
	if len(list) != 3 || skipped != 3 {
		t.Fatalf("list %d skipped %d", len(list), skipped)
	}
	want := []exchanges.Instrument{
		{Exchange: Name, Market: exchanges.Inverse, Symbol: "BTC-USD-250926", Coin: "BTC", Quote: "USD", ContractType: exchanges.Future, ContractSize: 100, Multiplier: 1},
		{Exchange: Name, Market: exchanges.Linear, Symbol: "1000PEPE-USDT-250926", Coin: "PEPE", Quote: "USDT", ContractType: exchanges.Future, ContractSize: 10, Multiplier: 1000},
		{Exchange: Name, Market: exchanges.Linear, Symbol: "ETH-USDT-250926", Coin: "ETH", Quote: "USDT", ContractType: exchanges.Future, ContractSize: 0.2, Multiplier: 1},
	}
	for i, w := range want {
		if got := *list[i].inst; got != w {
			t.Errorf("%d: %+v, want %+v", i, got, w)
		}
	}
	if list[0].family != "BTC-USD" || list[1].family != "1000PEPE-USDT" {
		t.Errorf("families %q %q", list[0].family, list[1].family)
	}
}

func TestDecodeAllocations(t *testing.T) {
	_, k, _, _ := testVenue(t)
	fr := readTestdata(t, "liquidation_multi.json")
	ack := readTestdata(t, "subscribe_ack.json")
	noop := func(detail) {}
	pong := []byte("pong")
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = decodeFrame(fr, noop)
		_, _ = decodeFrame(ack, k.emitLive)
		_, _ = decodeFrame(pong, k.emitLive)
	})
	if allocs > 0 {
		t.Errorf("decoding a push, an ack and a pong allocates %v times", allocs)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"liquidation_doc.json", "liquidation_multi.json", "liquidation_inverse.json",
		"subscribe_ack.json", "error_event.json", "pong.txt"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"A","details":[{"side":"sell","sz":"1","bkPx":"1","ts":"1"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var events int
		fr, _ := decodeFrame(data, func(d detail) {
			events++
			if !(d.Sz > 0) || !(d.Px > 0) || math.IsInf(d.Sz, 0) || math.IsInf(d.Px, 0) || len(d.InstID) == 0 || d.TS <= 0 {
				t.Fatalf("invalid detail emitted: %+v", d)
			}
			if d.Side != exchanges.Long && d.Side != exchanges.Short {
				t.Fatalf("bad side %v", d.Side)
			}
			if d.side != 'b' && d.side != 's' {
				t.Fatalf("bad order side %q", d.side)
			}
		})
		if events != fr.events {
			t.Fatalf("emitted %d, frame says %d", events, fr.events)
		}
		if fr.kind != kindPush && (fr.events != 0 || fr.bad > 1) {
			t.Fatalf("a non-push with details: %+v", fr)
		}
	})
}
