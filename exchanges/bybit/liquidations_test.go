package bybit

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

type decoded struct {
	symbol string
	side   exchanges.Side
	size   float64
	price  float64
}

func decodeAll(data []byte) (frame, []decoded, error) {
	var out []decoded
	f, err := decodeFrame(data, func(ev liquidation) {
		out = append(out, decoded{string(ev.Symbol), ev.Side, ev.Size, ev.Price})
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
	doc := readTestdata(t, "all_liquidation_doc.json")
	buy := []byte(strings.Replace(string(doc), `"S": "Sell"`, `"S": "Buy"`, 1))
	for _, tc := range []struct {
		name string
		in   []byte
		want []decoded
	}{
		// The documented sample: S "Sell" is a short position liquidated.
		{"documented sample, Sell = short", doc, []decoded{{"ROSEUSDT", exchanges.Short, 20000, 0.04499}}},
		{"Buy = long", buy, []decoded{{"ROSEUSDT", exchanges.Long, 20000, 0.04499}}},
		{"linear BTCUSDT", readTestdata(t, "all_liquidation_btcusdt.json"), []decoded{{"BTCUSDT", exchanges.Long, 0.003, 43511.70}}},
		{"inverse, two events", readTestdata(t, "all_liquidation_inverse.json"), []decoded{
			{"BTCUSD", exchanges.Long, 12000, 114898.43}, {"BTCUSD", exchanges.Short, 350, 115020.50}}},
		{"three events", readTestdata(t, "all_liquidation_multi.json"), []decoded{
			{"ETHUSDT", exchanges.Long, 1.25, 2650.10}, {"ETHUSDT", exchanges.Short, 0.5, 2652}, {"ETHUSDT", exchanges.Long, 10, 2649.5}}},
		{"1000PEPE", readTestdata(t, "all_liquidation_1000pepe.json"), []decoded{{"1000PEPEUSDT", exchanges.Long, 1500000, 0.0101234}}},
		{"bare numbers", []byte(`{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Sell","v":0.5,"p":60000}]}`),
			[]decoded{{"BTCUSDT", exchanges.Short, 0.5, 60000}}},
		{"keys in any order", []byte(`{"data":[{"p":"2","v":"3","S":"Buy","s":"XUSDT","T":1}],"ts":1,"topic":"allLiquidation.XUSDT","type":"snapshot"}`),
			[]decoded{{"XUSDT", exchanges.Long, 3, 2}}},
		{"empty data", []byte(`{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[]}`), nil},
		{"data as one object (retired liquidation topic shape)", []byte(`{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"2"}}`),
			[]decoded{{"BTCUSDT", exchanges.Long, 1, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := decodeAll(tc.in)
			if err != nil || f.bad != 0 || f.ack {
				t.Fatalf("bad=%d ack=%v err=%v", f.bad, f.ack, err)
			}
			if len(got) != len(tc.want) || f.events != len(tc.want) {
				t.Fatalf("got %v (events %d), want %v", got, f.events, tc.want)
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
	f, got, err := decodeAll(readTestdata(t, "subscribe_ack.json"))
	if err != nil || !f.ack || !f.success || string(f.op) != "subscribe" || len(f.reqID) != 0 || len(got) != 0 || f.bad != 0 {
		t.Errorf("subscribe ack: %+v %v %v", f, got, err)
	}
	f, _, err = decodeAll(readTestdata(t, "pong.json"))
	if err != nil || !f.ack || !f.success || string(f.op) != "ping" || string(f.retMsg) != "pong" {
		t.Errorf("pong: %+v %v", f, err)
	}
	f, _, err = decodeAll(readTestdata(t, "subscribe_error.json"))
	if err != nil || !f.ack || f.success || string(f.op) != "subscribe" || string(f.reqID) != "init-1" ||
		string(f.retMsg) != "error:handler not found,topic:allLiquidation.NOSUCHUSDT" {
		t.Errorf("error ack: %+v %v", f, err)
	}
}

func TestDecodeBadInput(t *testing.T) {
	good := `{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.5","p":"60000"}]}`
	for name, in := range map[string]string{
		"malformed":                  `{"topic":"allLiquidation.BTCUSDT","data":[{`,
		"garbage":                    `not json at all`,
		"empty":                      ``,
		"number frame":               `42`,
		"array frame":                `[` + good + `]`,
		"wrong topic":                strings.Replace(good, `allLiquidation.BTCUSDT`, `tickers.BTCUSDT`, 1),
		"retired liquidation topic":  strings.Replace(good, `allLiquidation.BTCUSDT`, `liquidation.BTCUSDT`, 1),
		"topic without symbol":       strings.Replace(good, `allLiquidation.BTCUSDT`, `allLiquidation.`, 1),
		"topic not a string":         strings.Replace(good, `"allLiquidation.BTCUSDT"`, `1`, 1),
		"no topic":                   `{"type":"snapshot","ts":1,"data":[]}`,
		"data not an array":          strings.Replace(good, `"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.5","p":"60000"}]`, `"data":"x"`, 1),
		"no data":                    `{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1}`,
		"NaN size":                   strings.Replace(good, `"v":"0.5"`, `"v":"NaN"`, 1),
		"zero size":                  strings.Replace(good, `"v":"0.5"`, `"v":"0"`, 1),
		"negative size":              strings.Replace(good, `"v":"0.5"`, `"v":"-0.5"`, 1),
		"empty size":                 strings.Replace(good, `"v":"0.5"`, `"v":""`, 1),
		"missing size":               strings.Replace(good, `"v":"0.5",`, ``, 1),
		"NaN price":                  strings.Replace(good, `"p":"60000"`, `"p":"NaN"`, 1),
		"zero price":                 strings.Replace(good, `"p":"60000"`, `"p":"0"`, 1),
		"negative price":             strings.Replace(good, `"p":"60000"`, `"p":"-1"`, 1),
		"Inf price":                  strings.Replace(good, `"p":"60000"`, `"p":"Infinity"`, 1),
		"overflow price":             strings.Replace(good, `"p":"60000"`, `"p":"1e999"`, 1),
		"lower-case side":            strings.Replace(good, `"S":"Buy"`, `"S":"buy"`, 1),
		"Binance side":               strings.Replace(good, `"S":"Buy"`, `"S":"SELL"`, 1),
		"missing side":               strings.Replace(good, `"S":"Buy",`, ``, 1),
		"side not a string":          strings.Replace(good, `"S":"Buy"`, `"S":1`, 1),
		"missing symbol":             strings.Replace(good, `"s":"BTCUSDT",`, ``, 1),
		"symbol not a string":        strings.Replace(good, `"s":"BTCUSDT"`, `"s":12`, 1),
		"symbol differs from topic":  strings.Replace(good, `"s":"BTCUSDT"`, `"s":"ETHUSDT"`, 1),
		"escaped symbol":             strings.Replace(good, `"s":"BTCUSDT"`, `"s":"BTC\u0055SDT"`, 1),
		"event not an object":        strings.Replace(good, `{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.5","p":"60000"}`, `[1]`, 1),
		"success not a boolean":      `{"success":"true","ret_msg":"","conn_id":"x","req_id":"","op":"subscribe"}`,
		"trailing bytes":             good + `x`,
		"unterminated data":          `{"topic":"allLiquidation.BTCUSDT","data":[{"s":"BTCUSDT","S":"Buy","v":"1","p":"1"}`,
		"upper-case S only (s lost)": strings.Replace(good, `"s":"BTCUSDT",`, ``, 1),
	} {
		t.Run(name, func(t *testing.T) {
			f, got, err := decodeAll([]byte(in))
			if f.bad != 1 || err == nil || len(got) != 0 || f.events != 0 {
				t.Errorf("bad=%d events=%d err=%v got=%v", f.bad, f.events, err, got)
			}
		})
	}
	// A bad event inside data does not hide the good ones around it, and
	// each event counts once.
	ev := `{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.5","p":"60000"}`
	bad := `{"T":1,"s":"BTCUSDT","S":"Buy","v":"NaN","p":"60000"}`
	mixed := `{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[` + ev + `,` + bad + `,` + ev + `]}`
	f, got, err := decodeAll([]byte(mixed))
	if f.bad != 1 || f.events != 2 || len(got) != 2 || err == nil {
		t.Errorf("data with one bad event: bad=%d events=%d got=%d err=%v", f.bad, f.events, len(got), err)
	}
}

func TestNotional(t *testing.T) {
	lin := &exchanges.Instrument{Market: exchanges.Linear, Symbol: "BTCUSDT", ContractSize: 1, Multiplier: 1}
	pepe := &exchanges.Instrument{Market: exchanges.Linear, Symbol: "1000PEPEUSDT", ContractSize: 1, Multiplier: 1000}
	inv := &exchanges.Instrument{Market: exchanges.Inverse, Symbol: "BTCUSD", ContractSize: 1, Multiplier: 1}
	for _, tc := range []struct {
		inst *exchanges.Instrument
		ev   liquidation
		want float64
	}{
		{lin, liquidation{Size: 0.003, Price: 43511.70}, 0.003 * 43511.70}, // linear: v x p
		{pepe, liquidation{Size: 1500000, Price: 0.0101234}, 1500000 * 0.0101234},
		{inv, liquidation{Size: 12000, Price: 114898.43}, 12000}, // inverse: v USD contracts
	} {
		if got := notional(tc.inst, tc.ev); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("%s: notional %v, want %v", tc.inst.Symbol, got, tc.want)
		}
	}
}

func TestNormalizeCoin(t *testing.T) {
	for _, tc := range []struct {
		base string
		coin string
		mult float64
	}{
		{"BTC", "BTC", 1},
		{"1000PEPE", "PEPE", 1000},
		{"10000LADYS", "LADYS", 1e4},
		{"1000000MOG", "MOG", 1e6},
		{"SHIB1000", "SHIB", 1000},
		{"1INCH", "1INCH", 1},
		{"XBT", "BTC", 1},
		{"A1000", "A1000", 1}, // too short a remainder
	} {
		coin, mult := NormalizeCoin(tc.base)
		if coin != tc.coin || mult != tc.mult {
			t.Errorf("NormalizeCoin(%q) = %q, %v; want %q, %v", tc.base, coin, mult, tc.coin, tc.mult)
		}
	}
}

// countingObserver is a StreamObserver that counts decode errors.
type countingObserver struct{ decodeErrors atomic.Int64 }

func (*countingObserver) SetUp(bool)     {}
func (*countingObserver) Connected()     {}
func (*countingObserver) Message()       {}
func (o *countingObserver) DecodeError() { o.decodeErrors.Add(1) }

// testMarket returns a linear market whose instruments are BTCUSDT and
// 1000PEPEUSDT, with ETHUSDT known but excluded by the coin allowlist.
func testMarket(t *testing.T) (*market, *shard, *countingObserver, *collector.Collector) {
	t.Helper()
	v := New(Config{Markets: []string{MarketLinear}})
	m := v.markets[0]
	coll := collector.New()
	m.sink = coll
	btc := &exchanges.Instrument{Exchange: Name, Market: exchanges.Linear, Symbol: "BTCUSDT", Coin: "BTC", Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1}
	pepe := &exchanges.Instrument{Exchange: Name, Market: exchanges.Linear, Symbol: "1000PEPEUSDT", Coin: "PEPE", Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1000}
	coll.SetInstruments(Name, exchanges.Linear, []*exchanges.Instrument{btc, pepe})
	byName := map[string]*exchanges.Instrument{"BTCUSDT": btc, "1000PEPEUSDT": pepe, "ETHUSDT": nil}
	m.instruments.Store(&byName)
	obs := &countingObserver{}
	sh := &shard{m: m, name: "linear_liquidations_0", obs: obs, want: map[string]bool{}}
	sh.emit = sh.handle
	return m, sh, obs, coll
}

func TestHandleCountsAndRejects(t *testing.T) {
	m, sh, obs, coll := testMarket(t)
	for _, name := range []string{"all_liquidation_btcusdt.json", "all_liquidation_1000pepe.json"} {
		f, err := decodeFrame(readTestdata(t, name), sh.emit)
		if err != nil || f.events != 1 {
			t.Fatalf("%s: %+v %v", name, f, err)
		}
	}
	// Excluded by the allowlist: ignored without an error.
	if _, err := decodeFrame([]byte(`{"topic":"allLiquidation.ETHUSDT","data":[{"s":"ETHUSDT","S":"Buy","v":"1","p":"1"}]}`), sh.emit); err != nil {
		t.Fatal(err)
	}
	if n := obs.decodeErrors.Load(); n != 0 {
		t.Fatalf("decode errors %d before the unknown symbol", n)
	}
	// Unknown symbol: counted as a decode error and a refresh is requested.
	if _, err := decodeFrame([]byte(`{"topic":"allLiquidation.NEWUSDT","data":[{"s":"NEWUSDT","S":"Buy","v":"1","p":"1"}]}`), sh.emit); err != nil {
		t.Fatal(err)
	}
	if n := obs.decodeErrors.Load(); n != 1 {
		t.Errorf("decode errors after an unknown symbol = %d, want 1", n)
	}
	select {
	case <-m.refresh:
	default:
		t.Error("no instrument refresh requested for an unknown symbol")
	}
	// Implausible notional (above the collector's cap): counted, not added.
	if _, err := decodeFrame([]byte(`{"topic":"allLiquidation.BTCUSDT","data":[{"s":"BTCUSDT","S":"Buy","v":"1e9","p":"1e9"}]}`), sh.emit); err != nil {
		t.Fatal(err)
	}
	if n := obs.decodeErrors.Load(); n != 2 {
		t.Errorf("decode errors after an implausible notional = %d, want 2", n)
	}
	s, err := collectortest.FromCollector(coll)
	if err != nil {
		t.Fatal(err)
	}
	btcLong := []string{"exchange", "bybit", "market", "linear", "symbol", "BTCUSDT", "coin", "BTC", "side", "long"}
	pepeLong := []string{"exchange", "bybit", "market", "linear", "symbol", "1000PEPEUSDT", "coin", "PEPE", "side", "long"}
	if v, _ := s.Get("crypto_liquidation_notional_usd_total", btcLong...); !collectortest.Close(v, 0.003*43511.70) {
		t.Errorf("BTCUSDT long notional %v", v)
	}
	if v, _ := s.Get("crypto_liquidation_notional_usd_total", pepeLong...); !collectortest.Close(v, 1500000*0.0101234) {
		t.Errorf("1000PEPEUSDT long notional %v", v)
	}
	if v := s.Sum("crypto_liquidations_total"); v != 2 {
		t.Errorf("liquidations total %v, want 2", v)
	}
}

func TestDecodeAllocations(t *testing.T) {
	_, sh, _, _ := testMarket(t)
	frame := readTestdata(t, "all_liquidation_btcusdt.json")
	ack := readTestdata(t, "pong.json")
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = decodeFrame(frame, sh.emit)
		_, _ = decodeFrame(ack, sh.emit)
	})
	if allocs > 0 {
		t.Errorf("decoding a liquidation frame and a pong allocates %v times", allocs)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, name := range []string{"all_liquidation_doc.json", "all_liquidation_btcusdt.json", "all_liquidation_inverse.json",
		"all_liquidation_multi.json", "all_liquidation_1000pepe.json", "subscribe_ack.json", "pong.json", "subscribe_error.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"topic":"allLiquidation.A","data":{"s":"A","S":"Buy","v":"1","p":"1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var events int
		fr, _ := decodeFrame(data, func(ev liquidation) {
			events++
			if !(ev.Size > 0) || !(ev.Price > 0) || math.IsInf(ev.Size, 0) || math.IsInf(ev.Price, 0) || len(ev.Symbol) == 0 {
				t.Fatalf("invalid event emitted: %+v", ev)
			}
			if ev.Side != exchanges.Long && ev.Side != exchanges.Short {
				t.Fatalf("bad side %v", ev.Side)
			}
		})
		if events != fr.events {
			t.Fatalf("emitted %d, frame says %d", events, fr.events)
		}
		if fr.ack && (fr.events != 0 || fr.bad != 0) {
			t.Fatalf("a reply with events: %+v", fr)
		}
	})
}
