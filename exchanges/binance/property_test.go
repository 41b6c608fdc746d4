package binance

import (
	"math"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest/faultsuite"
)

// TestNoLossNoDoubleCount runs seeded random fault schedules against the
// fake and asserts, for every series, that the exported totals equal the
// good events the fake delivered: garbage, disconnects, close frames,
// server pings and REST faults lose nothing and double-count nothing.
// A failure prints its seed; replay it with -property.seed=N.
func TestNoLossNoDoubleCount(t *testing.T) {
	faultsuite.Property(t, "./exchanges/binance/", func(t *testing.T, s *faultsuite.Schedule) {
		if !runSchedule(t, s) {
			t.Error("the exported totals differ from what the fake delivered")
		}
	})
}

func runSchedule(t *testing.T, sch *faultsuite.Schedule) bool {
	rng := sch.Rand
	h := start(t, func(c *Config) { c.Markets = []string{usdm} })
	waitSubscribed(t, h.usdm, 1)
	symbols := []struct {
		sym, coin string
	}{{"BTCUSDT", "BTC"}, {"ETHUSDT", "ETH"}, {"1000PEPEUSDT", "PEPE"}, {"BTCUSDT_261225", "BTC"}}
	type key struct{ symbol, side string }
	want := map[key][2]float64{}
	connects := func() float64 {
		return val(h.Samples(t), "crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "usdm_force_order")
	}
	// afterFault waits until the exporter has reconnected and subscribed, so
	// the next frame is not written to a connection that is going away.
	afterFault := func(before float64) {
		h.Eventually(t, "reconnect after a fault", func(s collectortest.Samples) bool {
			return val(s, "crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "usdm_force_order") > before &&
				val(s, "crypto_exporter_stream_up", "exchange", "binance", "stream", "usdm_force_order") == 1
		})
	}
	bad := 0
	steps := 30 + rng.IntN(20)
	for range steps {
		switch r := rng.IntN(100); {
		case r < 70: // a good liquidation
			sy := symbols[rng.IntN(len(symbols))]
			side := []string{"SELL", "BUY"}[rng.IntN(2)]
			qty := math.Round((0.001+rng.Float64()*5)*1000) / 1000
			px := math.Round((1+rng.Float64()*1000)*100) / 100
			d := h.usdm.Play([]exchangetest.Event{{Frame: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{
				Symbol: sy.sym, Side: side, Qty: qty, Price: px, AvgPrice: px, FilledQty: qty, LastFilledQty: qty})}})
			if len(d) != 1 || d[0].Conns != 1 {
				t.Logf("seed %d: frame not delivered: %+v", sch.Seed, d)
				return false
			}
			k := key{sy.sym, sideOf(side)}
			w := want[k]
			want[k] = [2]float64{w[0] + 1, w[1] + qty*px}
		case r < 80: // garbage of several kinds
			garbage := [][]byte{
				[]byte(`{"e":"forceOrder","o":{"s":"BTCUSDT","S":"SELL"`),
				[]byte(`{"e":"forceOrder","o":{"s":"BTCUSDT","S":"SELL","z":"NaN","ap":"1"}}`),
				[]byte(`{"e":"forceOrder","o":{"s":"BTCUSDT","S":"HOLD","z":"1","ap":"1"}}`),
				[]byte(`{"e":"forceOrder","o":{"s":"NOPEUSDT","S":"SELL","z":"1","ap":"1"}}`),
				[]byte(`{"e":"markPriceUpdate"}`),
				{0xff, 0xfe, 0x00},
			}[rng.IntN(6)]
			h.usdm.Play([]exchangetest.Event{{Frame: garbage}})
			bad++
		case r < 85: // abrupt disconnect
			before := connects()
			h.usdm.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, Disconnect: true}})
			afterFault(before)
		case r < 90: // close frame with a random code
			before := connects()
			h.usdm.Play([]exchangetest.Event{{Delay: 100 * time.Millisecond, CloseCode: []int{1000, 1001, 1011, 4000}[rng.IntN(4)]}})
			afterFault(before)
		case r < 95: // server ping
			h.usdm.Play([]exchangetest.Event{{Ping: []byte("p")}})
		default: // a REST fault: the stream must not care
			h.usdm.FailNext("/fapi/v1/premiumIndex", 1, []int{429, 418, 500, 503}[rng.IntN(4)], rng.IntN(2), "")
		}
	}
	var total float64
	for _, w := range want {
		total += w[0]
	}
	h.Eventually(t, "every delivered event counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= total &&
			val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order") >= float64(bad)
	})
	time.Sleep(100 * time.Millisecond) // anything counted twice would show by now
	s := h.Samples(t)
	ok := true
	for _, sy := range symbols {
		for _, side := range []string{"long", "short"} {
			l := append(inst("binance", "linear", sy.sym, sy.coin), "side", side)
			w := want[key{sy.sym, side}]
			c, n := val(s, "crypto_liquidations_total", l...), val(s, "crypto_liquidation_notional_usd_total", l...)
			if c != w[0] || !collectortest.Close(n, w[1]) {
				t.Logf("seed %d: %s %s: count %v notional %v, delivered %v %v", sch.Seed, sy.sym, side, c, n, w[0], w[1])
				ok = false
			}
		}
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", "usdm_force_order"); got != float64(bad) {
		t.Logf("seed %d: decode errors %v, want %d", sch.Seed, got, bad)
		ok = false
	}
	return ok
}
