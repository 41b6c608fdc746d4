package deribit

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	instrument string
	sides      string // e.g. "long", "short", "long+short"
	amount     float64
	price      float64
	tradeID    string
}

func sidesOf(t trade) string {
	var s []string
	for i := range t.NSides {
		s = append(s, t.Sides[i].String())
	}
	return strings.Join(s, "+")
}

func decodeAll(data []byte) (frame, []decoded, error) {
	var out []decoded
	f, err := decodeFrame(data, func(t trade) {
		out = append(out, decoded{string(t.Instrument), sidesOf(t), t.Amount, t.Price, string(t.TradeID)})
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

// liqFrame builds a trades notification with one trade.
func liqFrame(liq, dir string) string {
	l := ""
	if liq != "" {
		l = `,"liquidation":"` + liq + `"`
	}
	return `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":[{"trade_id":"1","timestamp":1790000000000,"price":60000,"instrument_name":"BTC-PERPETUAL","direction":"` + dir + `","amount":100` + l + `}]}}`
}

func TestDecodeSideMapping(t *testing.T) {
	for _, tc := range []struct{ liq, dir, want string }{
		{"T", "sell", "long"}, // the taker was liquidated and sold: a long
		{"T", "buy", "short"},
		{"M", "buy", "long"}, // the maker was liquidated and sold to a buying taker: a long
		{"M", "sell", "short"},
		{"MT", "buy", "long+short"},
		{"MT", "sell", "long+short"},
	} {
		f, got, err := decodeAll([]byte(liqFrame(tc.liq, tc.dir)))
		if err != nil || f.bad != 0 || f.events != 1 || len(got) != 1 || got[0].sides != tc.want {
			t.Errorf("%s+%s: got %+v (frame %+v, err %v), want %s", tc.liq, tc.dir, got, f, err, tc.want)
		}
	}
}

func TestDecodeDocumentedPayloads(t *testing.T) {
	// The documented sample is an ordinary trade: ignored without error.
	f, got, err := decodeAll(readTestdata(t, "trades_doc.json"))
	if err != nil || f.bad != 0 || f.events != 0 || len(got) != 0 || f.kind != kindSubscription {
		t.Errorf("doc sample: %+v %v %v", f, got, err)
	}
	f, got, err = decodeAll(readTestdata(t, "trades_liquidations.json"))
	want := []decoded{{"BTC-PERPETUAL", "long", 12000, 60000.5, "100001"}, {"BTC-PERPETUAL", "long", 500, 60010, "100002"}}
	if err != nil || f.bad != 0 || f.events != 2 || string(f.currency) != "BTC" || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("liquidations: %+v %v %v", f, got, err)
	}
	f, got, err = decodeAll(readTestdata(t, "trades_mt_linear.json"))
	if err != nil || f.events != 1 || len(got) != 1 || got[0] != (decoded{"BTC_USDC-PERPETUAL", "long+short", 0.25, 60000, "USDC-2001"}) {
		t.Errorf("MT linear: %+v %v %v", f, got, err)
	}
	f, _, err = decodeAll(readTestdata(t, "subscribe_result.json"))
	if err != nil || f.kind != kindReply || f.id != 2 || f.isError || !strings.Contains(string(f.result), "trades.future.USDC.100ms") {
		t.Errorf("subscribe result: %+v %v", f, err)
	}
	f, _, err = decodeAll(readTestdata(t, "subscribe_error.json"))
	if err != nil || f.kind != kindReply || f.id != 2 || !f.isError || f.errCode != 11050 || string(f.errMsg) != "bad_request" {
		t.Errorf("subscribe error: %+v %v", f, err)
	}
	f, _, err = decodeAll(readTestdata(t, "test_request.json"))
	if err != nil || f.kind != kindHeartbeat || string(f.hbType) != "test_request" {
		t.Errorf("test_request: %+v %v", f, err)
	}
}

func TestNotional(t *testing.T) {
	inv := &exchanges.Instrument{Market: exchanges.Inverse, ContractSize: 10}
	lin := &exchanges.Instrument{Market: exchanges.Linear, ContractSize: 0.001}
	tr := trade{Amount: 12000, Price: 60000.5}
	if got := notional(inv, tr); got != 12000 {
		t.Errorf("inverse notional %v, want amount (USD) 12000", got)
	}
	tr = trade{Amount: 0.25, Price: 60000}
	if got := notional(lin, tr); got != 15000 {
		t.Errorf("linear notional %v, want amount x price 15000", got)
	}
}

func TestDecodeBadInput(t *testing.T) {
	good := liqFrame("T", "sell")
	for name, in := range map[string]string{
		"malformed":              `{"jsonrpc":"2.0","method":"subscription","params":{`,
		"garbage":                `not json`,
		"empty":                  ``,
		"array frame":            `[` + good + `]`,
		"unknown method":         strings.Replace(good, `"subscription"`, `"other"`, 1),
		"no method":              `{"jsonrpc":"2.0","params":{}}`,
		"params not object":      `{"jsonrpc":"2.0","method":"subscription","params":[]}`,
		"heartbeat params":       `{"jsonrpc":"2.0","method":"heartbeat","params":1}`,
		"wrong channel":          strings.Replace(good, `trades.future.BTC.100ms`, `book.BTC-PERPETUAL.100ms`, 1),
		"channel not string":     strings.Replace(good, `"trades.future.BTC.100ms"`, `7`, 1),
		"data not array":         `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":{}}}`,
		"no data":                `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms"}}`,
		"bad letter":             strings.Replace(good, `"liquidation":"T"`, `"liquidation":"X"`, 1),
		"letter lower case":      strings.Replace(good, `"liquidation":"T"`, `"liquidation":"t"`, 1),
		"letter not string":      strings.Replace(good, `"liquidation":"T"`, `"liquidation":1`, 1),
		"bad direction":          strings.Replace(good, `"direction":"sell"`, `"direction":"SELL"`, 1),
		"missing direction":      strings.Replace(good, `"direction":"sell",`, ``, 1),
		"NaN amount":             strings.Replace(good, `"amount":100`, `"amount":"NaN"`, 1),
		"zero amount":            strings.Replace(good, `"amount":100`, `"amount":0`, 1),
		"negative amount":        strings.Replace(good, `"amount":100`, `"amount":-100`, 1),
		"missing amount":         strings.Replace(good, `,"amount":100`, ``, 1),
		"overflow amount":        strings.Replace(good, `"amount":100`, `"amount":1e999`, 1),
		"zero price":             strings.Replace(good, `"price":60000`, `"price":0`, 1),
		"negative price":         strings.Replace(good, `"price":60000`, `"price":-1`, 1),
		"missing price":          strings.Replace(good, `"price":60000,`, ``, 1),
		"missing instrument":     strings.Replace(good, `"instrument_name":"BTC-PERPETUAL",`, ``, 1),
		"escaped instrument":     strings.Replace(good, `"BTC-PERPETUAL"`, `"BTC\u002dPERPETUAL"`, 1),
		"instrument not string":  strings.Replace(good, `"BTC-PERPETUAL"`, `1`, 1),
		"missing timestamp":      strings.Replace(good, `"timestamp":1790000000000,`, ``, 1),
		"timestamp not integer":  strings.Replace(good, `"timestamp":1790000000000`, `"timestamp":"x"`, 1),
		"trade not object":       `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":[1]}}`,
		"reply id not integer":   `{"jsonrpc":"2.0","id":"a","result":[]}`,
		"error without code":     `{"jsonrpc":"2.0","id":2,"error":{"message":"x"}}`,
		"error not object":       `{"jsonrpc":"2.0","id":2,"error":"x"}`,
		"trailing bytes":         good + `x`,
		"unterminated data":      strings.TrimSuffix(good, `]}}`),
		"id without result":      `{"jsonrpc":"2.0","id":2}`,
		"result without id":      `{"jsonrpc":"2.0","result":"ok"}`,
		"heartbeat bad params":   `{"jsonrpc":"2.0","method":"heartbeat","params":{"type":}}`,
		"subscription bad param": `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":[{"a":}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			f, got, err := decodeAll([]byte(in))
			if f.bad != 1 || err == nil || len(got) != 0 || f.events != 0 {
				t.Errorf("bad=%d events=%d err=%v got=%v", f.bad, f.events, err, got)
			}
		})
	}
	// A bad trade does not hide the good ones; non-liquidation trades are
	// not errors.
	tr := `{"trade_id":"1","timestamp":1,"price":1,"instrument_name":"BTC-PERPETUAL","direction":"buy","amount":10,"liquidation":"M"}`
	bad := strings.Replace(tr, `"amount":10`, `"amount":0`, 1)
	plain := strings.Replace(tr, `,"liquidation":"M"`, ``, 1)
	mixed := `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":[` + tr + `,` + bad + `,` + plain + `,` + tr + `]}}`
	f, got, err := decodeAll([]byte(mixed))
	if f.bad != 1 || f.events != 2 || len(got) != 2 || err == nil {
		t.Errorf("mixed: bad=%d events=%d got=%d err=%v", f.bad, f.events, len(got), err)
	}
	// liquidation null is an ordinary trade.
	if f, got, err := decodeAll([]byte(strings.Replace(liqFrame("T", "sell"), `"T"`, `null`, 1))); f.bad != 0 || len(got) != 0 || err != nil {
		t.Errorf("null liquidation: %+v %v %v", f, got, err)
	}
}

func TestChannelCurrency(t *testing.T) {
	for _, tc := range []struct {
		ch, cur string
		ok      bool
	}{
		{"trades.future.BTC.100ms", "BTC", true},
		{"trades.future.USDC.raw", "USDC", true},
		{"trades.BTC-PERPETUAL.100ms", "", true}, // per instrument: no currency
		{"trades.future.BTC.100ms.x", "", false},
		{"trades.future.BTC.", "", false},
		{"trades.future..100ms", "", false},
		{"trades..BTC.100ms", "", false},
		{"trades.BTC-PERPETUAL.", "", false},
		{"trades.BTC-PERPETUAL", "", false},
		{"trades.", "", false},
		{"book.BTC-PERPETUAL.100ms", "", false},
	} {
		cur, ok := channelCurrency([]byte(tc.ch))
		if ok != tc.ok || string(cur) != tc.cur {
			t.Errorf("%s: %q %v, want %q %v", tc.ch, cur, ok, tc.cur, tc.ok)
		}
	}
}

func TestSummaryValues(t *testing.T) {
	var resp struct {
		Result []summary `json:"result"`
	}
	if err := json.Unmarshal(readTestdata(t, "book_summary_btc.json"), &resp); err != nil || len(resp.Result) != 1 {
		t.Fatal(err)
	}
	inv := &exchanges.Instrument{Market: exchanges.Inverse, ContractType: exchanges.Perpetual, ContractSize: 10, Multiplier: 1}
	now := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	got := map[exchanges.Field]float64{}
	for _, v := range summaryValues(nil, inv, resp.Result[0], time.Minute, now) {
		got[v.Field] = v.Value
	}
	want := map[exchanges.Field]float64{
		exchanges.MarkPrice: 60000.5, exchanges.FundingRate: 0.00012, exchanges.FundingIntervalSeconds: 28800,
		exchanges.FundingNextTimestamp: float64(time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC).Unix()),
		exchanges.OpenInterestUSD:      1.2e9, exchanges.OpenInterestCoins: 1.2e9 / 60000.5, exchanges.Volume24hUSD: 8e8,
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	for f, w := range want {
		if math.Abs(got[f]-w) > 1e-9*math.Abs(w) {
			t.Errorf("field %d = %v, want %v", f, got[f], w)
		}
	}
	lin := &exchanges.Instrument{Market: exchanges.Linear, ContractType: exchanges.Future, Multiplier: 1}
	got = map[exchanges.Field]float64{}
	for _, v := range summaryValues(nil, lin, summary{MarkPrice: exchanges.Number{Value: 100, Set: true}, OpenInterest: exchanges.Number{Value: 3, Set: true},
		Funding8h: exchanges.Number{Value: 0.1, Set: true}, Volume: exchanges.Number{Value: 2, Set: true}}, time.Minute, now) {
		got[v.Field] = v.Value
	}
	if len(got) != 4 || got[exchanges.OpenInterestCoins] != 3 || got[exchanges.OpenInterestUSD] != 300 || got[exchanges.Volume24hUSD] != 200 {
		t.Errorf("linear future: %v", got)
	}
}

func TestSeenSetEvicts(t *testing.T) {
	s := newSeenSet(2)
	s.add([]byte("a"))
	s.add([]byte("b"))
	s.add([]byte("c"))
	if s.has([]byte("a")) || !s.has([]byte("b")) || !s.has([]byte("c")) {
		t.Errorf("%v", s.keys)
	}
	if len(s.keys) != 2 {
		t.Errorf("%d keys held, want 2", len(s.keys))
	}
	// Once full, adding and looking up allocate nothing.
	big := newSeenSet(64)
	key := []byte("480000000")
	for i := range 64 {
		key[len(key)-1] = byte('0' + i%10)
		key[len(key)-2] = byte('0' + i/10)
		big.add(key)
	}
	if n := testing.AllocsPerRun(1000, func() {
		key[0]++
		if !big.has(key) {
			big.add(key)
		}
	}); n != 0 {
		t.Errorf("%v allocations per add, want 0", n)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"trades_doc.json", "trades_liquidations.json", "trades_mt_linear.json",
		"subscribe_result.json", "subscribe_error.json", "test_request.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(liqFrame("MT", "buy")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var events int
		fr, _ := decodeFrame(data, func(tr trade) {
			events++
			if !(tr.Amount > 0) || !(tr.Price > 0) || math.IsInf(tr.Amount, 0) || math.IsInf(tr.Price, 0) || len(tr.Instrument) == 0 {
				t.Fatalf("invalid trade emitted: %+v", tr)
			}
			if tr.NSides < 1 || tr.NSides > 2 || (tr.NSides == 2 && tr.Sides[0] == tr.Sides[1]) {
				t.Fatalf("bad sides %+v", tr)
			}
		})
		if events != fr.events {
			t.Fatalf("emitted %d, frame says %d", events, fr.events)
		}
		if fr.kind == kindReply && (fr.events != 0 || fr.bad != 0) {
			t.Fatalf("a reply with events: %+v", fr)
		}
	})
}

// TestDecodeNotificationTakesNotifications checks that the one-pass
// decoder takes the documented notifications (it may decline anything,
// so a decoder that always declined would pass every equivalence check)
// and declines what is not a plain notification.
func TestDecodeNotificationTakesNotifications(t *testing.T) {
	for _, name := range []string{"trades_doc.json", "trades_liquidations.json", "trades_mt_linear.json"} {
		if _, ok := decodeNotification(readTestdata(t, name), func(trade) {}); !ok {
			t.Errorf("%s declined", name)
		}
	}
	for _, liq := range []string{"", "T", "M", "MT"} {
		if _, ok := decodeNotification([]byte(liqFrame(liq, "buy")), func(trade) {}); !ok {
			t.Errorf("a notification with liquidation %q declined", liq)
		}
	}
	for name, data := range map[string]string{
		"reply":           string(readTestdata(t, "subscribe_result.json")),
		"heartbeat":       string(readTestdata(t, "test_request.json")),
		"invalid trade":   liqFrame("X", "buy"),
		"trailing bytes":  liqFrame("T", "buy") + "x",
		"nested unknown":  strings.Replace(liqFrame("T", "buy"), `"amount":100`, `"amount":100,"x":{"y":1}`, 1),
		"repeated method": strings.Replace(liqFrame("T", "buy"), `"method":"subscription"`, `"method":"subscription","method":"subscription"`, 1),
	} {
		emitted := 0
		if _, ok := decodeNotification([]byte(data), func(trade) { emitted++ }); ok || emitted != 0 {
			t.Errorf("%s: taken %v, %d trades emitted", name, ok, emitted)
		}
	}
}

// FuzzDecodeNotification checks that the one-pass decoder, where it takes
// a frame, gives exactly what decodeGeneric gives, and that it emits
// nothing from a frame it declines.
func FuzzDecodeNotification(f *testing.F) {
	for _, name := range []string{"trades_doc.json", "trades_liquidations.json", "trades_mt_linear.json",
		"subscribe_result.json", "test_request.json"} {
		f.Add(readTestdata(f, name))
	}
	for _, liq := range []string{"", "T", "M", "MT", "X"} {
		f.Add([]byte(liqFrame(liq, "sell")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, generic []string
		record := func(out *[]string) func(trade) {
			return func(tr trade) {
				*out = append(*out, fmt.Sprintf("%s|%s|%v|%d|%v|%v|%d", tr.Instrument, tr.TradeID, tr.Sides, tr.NSides, tr.Amount, tr.Price, tr.Timestamp))
			}
		}
		ff, ok := decodeNotification(data, record(&fast))
		if !ok {
			if len(fast) != 0 {
				t.Fatalf("declined after emitting %d trades", len(fast))
			}
			return
		}
		gf, err := decodeGeneric(data, record(&generic))
		if err != nil || gf.bad != 0 {
			t.Fatalf("taken, but decodeGeneric finds it bad: %v (%+v)", err, gf)
		}
		if ff.kind != gf.kind || ff.events != gf.events || ff.bad != gf.bad || string(ff.currency) != string(gf.currency) {
			t.Fatalf("frame %+v, decodeGeneric %+v", ff, gf)
		}
		if strings.Join(fast, "\n") != strings.Join(generic, "\n") {
			t.Fatalf("trades\n%s\ndecodeGeneric\n%s", strings.Join(fast, "\n"), strings.Join(generic, "\n"))
		}
	})
}
