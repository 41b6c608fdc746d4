package exchangetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func binanceNew(t *testing.T, kind BinanceMarketKind) *BinanceMarket {
	t.Helper()
	m := NewBinanceMarket(kind)
	m.SetSymbols(BinanceSampleSymbols(kind))
	t.Cleanup(m.Close)
	return m
}

// binanceGet fetches url and returns the status, headers and body.
func binanceGet(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// binanceGetJSON fetches url, expects 200 and decodes the body generically.
func binanceGetJSON(t *testing.T, url string) (any, http.Header) {
	t.Helper()
	status, hdr, body := binanceGet(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", url, status, body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return v, hdr
}

func binanceObject(t *testing.T, v any) map[string]any {
	t.Helper()
	o, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("want a JSON object, got %T: %v", v, v)
	}
	return o
}

func binanceArray(t *testing.T, v any) []any {
	t.Helper()
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("want a JSON array, got %T: %v", v, v)
	}
	return a
}

// binanceWantString checks that obj[key] is the JSON string want ("*" = any string).
func binanceWantString(t *testing.T, obj map[string]any, key, want string) {
	t.Helper()
	s, ok := obj[key].(string)
	if !ok {
		t.Errorf("%s: want a string, got %T (%v)", key, obj[key], obj[key])
		return
	}
	if want != "*" && s != want {
		t.Errorf("%s = %q, want %q", key, s, want)
	}
}

// binanceWantNumber checks that obj[key] is a JSON number (want < 0: any number).
func binanceWantNumber(t *testing.T, obj map[string]any, key string, want float64) {
	t.Helper()
	n, ok := obj[key].(float64)
	if !ok {
		t.Errorf("%s: want a number, got %T (%v)", key, obj[key], obj[key])
		return
	}
	if want >= 0 && n != want {
		t.Errorf("%s = %v, want %v", key, n, want)
	}
}

func binanceWantAbsent(t *testing.T, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; ok {
			t.Errorf("%s should be absent, got %v", k, obj[k])
		}
	}
}

func binanceRow(t *testing.T, rows []any, symbol string) map[string]any {
	t.Helper()
	for _, r := range rows {
		if o := binanceObject(t, r); o["symbol"] == symbol {
			return o
		}
	}
	t.Fatalf("no row for %s in %v", symbol, rows)
	return nil
}

func binanceWeight(t *testing.T, h http.Header) int {
	t.Helper()
	n, err := strconv.Atoi(h.Get("X-MBX-USED-WEIGHT-1M"))
	if err != nil {
		t.Fatalf("X-MBX-USED-WEIGHT-1M %q: %v", h.Get("X-MBX-USED-WEIGHT-1M"), err)
	}
	return n
}

// binanceFixClock pins the fake's clock to *now (unix seconds).
func binanceFixClock(m *BinanceMarket, now *atomic.Int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = func() time.Time { return time.Unix(now.Load(), 0) }
}

func TestBinanceURLs(t *testing.T) {
	u := binanceNew(t, BinanceUSDM)
	c := binanceNew(t, BinanceCoinM)
	if !strings.HasPrefix(u.RESTURL(), "http://127.0.0.1:") || !strings.HasPrefix(u.WSURL(), "ws://127.0.0.1:") ||
		!strings.HasSuffix(u.WSURL(), "/market") {
		t.Errorf("USDⓈ-M URLs %s %s", u.RESTURL(), u.WSURL())
	}
	if c.WSURL() != "ws"+strings.TrimPrefix(c.RESTURL(), "http") {
		t.Errorf("COIN-M URLs %s %s", c.RESTURL(), c.WSURL())
	}
	status, _, body := binanceGet(t, u.RESTURL()+"/fapi/v1/nope")
	if status != http.StatusNotFound || !strings.Contains(string(body), "-5000") {
		t.Errorf("unknown path: %d %s", status, body)
	}
	// The retired USDⓈ-M path without /market is not served.
	if _, resp, err := websocket.DefaultDialer.Dial(strings.TrimSuffix(u.WSURL(), "/market")+"/ws", nil); err == nil {
		t.Error("dial of /ws without /market succeeded")
	} else if resp != nil {
		resp.Body.Close()
	}
}

func TestBinanceExchangeInfo(t *testing.T) {
	t.Run("usdm", func(t *testing.T) {
		m := binanceNew(t, BinanceUSDM)
		v, hdr := binanceGetJSON(t, m.RESTURL()+"/fapi/v1/exchangeInfo")
		if w := binanceWeight(t, hdr); w != 1 {
			t.Errorf("used weight %d, want 1", w)
		}
		info := binanceObject(t, v)
		binanceWantString(t, info, "timezone", "UTC")
		binanceWantNumber(t, info, "serverTime", -1)
		rl := binanceObject(t, binanceArray(t, info["rateLimits"])[0])
		binanceWantString(t, rl, "rateLimitType", "REQUEST_WEIGHT")
		binanceWantString(t, rl, "interval", "MINUTE")
		binanceWantNumber(t, rl, "intervalNum", 1)
		binanceWantNumber(t, rl, "limit", 2400)
		syms := binanceArray(t, info["symbols"])
		if len(syms) != 4 {
			t.Fatalf("%d symbols", len(syms))
		}
		btc := binanceRow(t, syms, "BTCUSDT")
		binanceWantString(t, btc, "pair", "BTCUSDT")
		binanceWantString(t, btc, "contractType", "PERPETUAL")
		binanceWantString(t, btc, "status", "TRADING")
		binanceWantString(t, btc, "baseAsset", "BTC")
		binanceWantString(t, btc, "quoteAsset", "USDT")
		binanceWantString(t, btc, "marginAsset", "USDT")
		binanceWantNumber(t, btc, "deliveryDate", 4133404800000)
		binanceWantNumber(t, btc, "onboardDate", -1)
		binanceWantNumber(t, btc, "pricePrecision", 2)
		binanceWantNumber(t, btc, "quantityPrecision", 3)
		binanceWantAbsent(t, btc, "contractStatus", "contractSize")
		binanceWantString(t, binanceRow(t, syms, "1000PEPEUSDT"), "baseAsset", "1000PEPE")
	})
	t.Run("coinm", func(t *testing.T) {
		m := binanceNew(t, BinanceCoinM)
		v, _ := binanceGetJSON(t, m.RESTURL()+"/dapi/v1/exchangeInfo")
		syms := binanceArray(t, binanceObject(t, v)["symbols"])
		perp := binanceRow(t, syms, "BTCUSD_PERP")
		binanceWantString(t, perp, "contractStatus", "TRADING")
		binanceWantNumber(t, perp, "contractSize", 100)
		binanceWantString(t, perp, "pair", "BTCUSD")
		binanceWantString(t, perp, "marginAsset", "BTC")
		binanceWantString(t, perp, "quoteAsset", "USD")
		binanceWantAbsent(t, perp, "status")
		binanceWantNumber(t, binanceRow(t, syms, "ETHUSD_PERP"), "contractSize", 10)
		d := binanceNextQuarterly(time.Now())
		q := binanceRow(t, syms, "BTCUSD_"+d.Format("060102"))
		binanceWantString(t, q, "contractType", "CURRENT_QUARTER")
		binanceWantNumber(t, q, "deliveryDate", float64(d.UnixMilli()))
	})
}

func TestBinancePremiumIndex(t *testing.T) {
	t.Run("usdm", func(t *testing.T) {
		m := binanceNew(t, BinanceUSDM)
		v, hdr := binanceGetJSON(t, m.RESTURL()+"/fapi/v1/premiumIndex")
		if w := binanceWeight(t, hdr); w != 10 {
			t.Errorf("weight after the all-symbol request %d, want 10", w)
		}
		rows := binanceArray(t, v)
		if len(rows) != 4 {
			t.Fatalf("%d rows", len(rows))
		}
		btc := binanceRow(t, rows, "BTCUSDT")
		binanceWantString(t, btc, "markPrice", "60000.10000000")
		binanceWantString(t, btc, "indexPrice", "60001.50000000")
		binanceWantString(t, btc, "estimatedSettlePrice", "*")
		binanceWantString(t, btc, "lastFundingRate", "0.00010000")
		binanceWantString(t, btc, "interestRate", "0.00010000")
		binanceWantNumber(t, btc, "nextFundingTime", -1)
		binanceWantNumber(t, btc, "time", -1)
		binanceWantAbsent(t, btc, "pair")

		v, hdr = binanceGetJSON(t, m.RESTURL()+"/fapi/v1/premiumIndex?symbol=ETHUSDT")
		if w := binanceWeight(t, hdr); w != 11 {
			t.Errorf("weight after the one-symbol request %d, want 11", w)
		}
		binanceWantString(t, binanceObject(t, v), "markPrice", "3000.25000000")

		status, _, body := binanceGet(t, m.RESTURL()+"/fapi/v1/premiumIndex?symbol=NOPE")
		var e map[string]any
		_ = json.Unmarshal(body, &e)
		if status != http.StatusBadRequest {
			t.Errorf("unknown symbol: status %d", status)
		}
		binanceWantNumber(t, e, "code", -1)
		if e["code"] != float64(-1121) {
			t.Errorf("unknown symbol: %s", body)
		}
	})
	t.Run("coinm", func(t *testing.T) {
		m := binanceNew(t, BinanceCoinM)
		v, _ := binanceGetJSON(t, m.RESTURL()+"/dapi/v1/premiumIndex")
		rows := binanceArray(t, v)
		perp := binanceRow(t, rows, "BTCUSD_PERP")
		binanceWantString(t, perp, "pair", "BTCUSD")
		binanceWantString(t, perp, "lastFundingRate", "0.00010000")
		binanceWantNumber(t, perp, "nextFundingTime", -1)
		q := binanceRow(t, rows, "BTCUSD_"+binanceNextQuarterly(time.Now()).Format("060102"))
		binanceWantString(t, q, "lastFundingRate", "")
		binanceWantString(t, q, "interestRate", "")
		binanceWantNumber(t, q, "nextFundingTime", 0)
		binanceWantString(t, q, "markPrice", "61000.00000000")

		// COIN-M answers an array even for one symbol, and filters by pair.
		v, _ = binanceGetJSON(t, m.RESTURL()+"/dapi/v1/premiumIndex?symbol=ETHUSD_PERP")
		if rows := binanceArray(t, v); len(rows) != 1 {
			t.Errorf("one symbol: %d rows", len(rows))
		}
		v, _ = binanceGetJSON(t, m.RESTURL()+"/dapi/v1/premiumIndex?pair=BTCUSD")
		if rows := binanceArray(t, v); len(rows) != 2 {
			t.Errorf("pair BTCUSD: %d rows", len(rows))
		}
	})
}

func TestBinanceTicker24h(t *testing.T) {
	t.Run("usdm", func(t *testing.T) {
		m := binanceNew(t, BinanceUSDM)
		v, hdr := binanceGetJSON(t, m.RESTURL()+"/fapi/v1/ticker/24hr")
		if w := binanceWeight(t, hdr); w != 40 {
			t.Errorf("weight %d, want 40", w)
		}
		btc := binanceRow(t, binanceArray(t, v), "BTCUSDT")
		binanceWantString(t, btc, "volume", "150000.5")
		binanceWantString(t, btc, "quoteVolume", "9000030000")
		for _, k := range []string{"priceChange", "priceChangePercent", "weightedAvgPrice", "lastPrice", "lastQty", "openPrice", "highPrice", "lowPrice"} {
			binanceWantString(t, btc, k, "*")
		}
		for _, k := range []string{"openTime", "closeTime", "firstId", "lastId", "count"} {
			binanceWantNumber(t, btc, k, -1)
		}
		binanceWantAbsent(t, btc, "baseVolume", "pair")

		v, hdr = binanceGetJSON(t, m.RESTURL()+"/fapi/v1/ticker/24hr?symbol=BTCUSDT")
		if w := binanceWeight(t, hdr); w != 41 {
			t.Errorf("weight %d, want 41", w)
		}
		binanceWantString(t, binanceObject(t, v), "symbol", "BTCUSDT")
	})
	t.Run("coinm", func(t *testing.T) {
		m := binanceNew(t, BinanceCoinM)
		v, _ := binanceGetJSON(t, m.RESTURL()+"/dapi/v1/ticker/24hr")
		perp := binanceRow(t, binanceArray(t, v), "BTCUSD_PERP")
		binanceWantString(t, perp, "pair", "BTCUSD")
		binanceWantString(t, perp, "volume", "3500000")
		binanceWantString(t, perp, "baseVolume", "58.33")
		binanceWantNumber(t, perp, "count", -1)
		binanceWantAbsent(t, perp, "quoteVolume")
	})
}

func TestBinanceOpenInterest(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	v, hdr := binanceGetJSON(t, m.RESTURL()+"/fapi/v1/openInterest?symbol=BTCUSDT")
	if w := binanceWeight(t, hdr); w != 1 {
		t.Errorf("weight %d", w)
	}
	oi := binanceObject(t, v)
	binanceWantString(t, oi, "openInterest", "80000.123")
	binanceWantString(t, oi, "symbol", "BTCUSDT")
	binanceWantNumber(t, oi, "time", -1)
	binanceWantAbsent(t, oi, "pair", "contractType")

	m.UpdateSymbol("BTCUSDT", func(s *BinanceSymbol) { s.OpenInterest = 10659.509 })
	v, _ = binanceGetJSON(t, m.RESTURL()+"/fapi/v1/openInterest?symbol=BTCUSDT")
	binanceWantString(t, binanceObject(t, v), "openInterest", "10659.509")

	for _, tc := range []struct {
		query string
		code  float64
	}{{"?symbol=NOPE", -1121}, {"", -1102}} {
		status, _, body := binanceGet(t, m.RESTURL()+"/fapi/v1/openInterest"+tc.query)
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil || status != http.StatusBadRequest || e["code"] != tc.code {
			t.Errorf("openInterest%s: %d %s", tc.query, status, body)
		}
		binanceWantString(t, e, "msg", "*")
	}

	c := binanceNew(t, BinanceCoinM)
	v, _ = binanceGetJSON(t, c.RESTURL()+"/dapi/v1/openInterest?symbol=BTCUSD_PERP")
	oi = binanceObject(t, v)
	binanceWantString(t, oi, "openInterest", "1200000")
	binanceWantString(t, oi, "pair", "BTCUSD")
	binanceWantString(t, oi, "contractType", "PERPETUAL")
	binanceWantNumber(t, oi, "time", -1)
}

func TestBinanceFundingInfo(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	v, hdr := binanceGetJSON(t, m.RESTURL()+"/fapi/v1/fundingInfo")
	if w := binanceWeight(t, hdr); w != 0 {
		t.Errorf("weight %d, want 0", w)
	}
	rows := binanceArray(t, v)
	if len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	r := binanceObject(t, rows[0])
	binanceWantString(t, r, "symbol", "1000PEPEUSDT")
	binanceWantString(t, r, "adjustedFundingRateCap", "*")
	binanceWantString(t, r, "adjustedFundingRateFloor", "*")
	binanceWantNumber(t, r, "fundingIntervalHours", 4)
	if r["disclaimer"] != false {
		t.Errorf("disclaimer %v", r["disclaimer"])
	}
	// Nothing listed: an empty array, not null.
	m.SetSymbols(nil)
	_, _, body := binanceGet(t, m.RESTURL()+"/fapi/v1/fundingInfo")
	if string(body) != "[]" {
		t.Errorf("empty fundingInfo %s", body)
	}
}

func TestBinanceFailNext(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	const path = "/fapi/v1/premiumIndex"
	m.FailNext(path, 2, http.StatusTooManyRequests, 7, "")
	m.FailNext(path, 1, http.StatusBadGateway, 0, "<html>bad gateway</html>")
	for i := range 2 {
		status, hdr, body := binanceGet(t, m.RESTURL()+path)
		if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "7" || !strings.Contains(string(body), "-1003") {
			t.Errorf("request %d: %d Retry-After %q %s", i, status, hdr.Get("Retry-After"), body)
		}
		if hdr.Get("X-MBX-USED-WEIGHT-1M") == "" {
			t.Error("no weight header on a failed answer")
		}
	}
	status, hdr, body := binanceGet(t, m.RESTURL()+path)
	if status != http.StatusBadGateway || string(body) != "<html>bad gateway</html>" || hdr.Get("Retry-After") != "" {
		t.Errorf("third: %d %q %s", status, hdr.Get("Retry-After"), body)
	}
	if status, _, _ := binanceGet(t, m.RESTURL()+path); status != http.StatusOK {
		t.Errorf("after the faults: %d", status)
	}
	// Other paths were not affected.
	if status, _, _ := binanceGet(t, m.RESTURL()+"/fapi/v1/exchangeInfo"); status != http.StatusOK {
		t.Errorf("exchangeInfo: %d", status)
	}
	if n := m.Requests(path); n != 4 {
		t.Errorf("Requests = %d, want 4", n)
	}
}

func TestBinanceWeightLimit(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	var now atomic.Int64
	now.Store(1_700_000_020) // 40 s into a minute
	binanceFixClock(m, &now)
	url := m.RESTURL() + "/fapi/v1/ticker/24hr"
	for i := 1; i <= 60; i++ {
		status, hdr, _ := binanceGet(t, url)
		if status != http.StatusOK || binanceWeight(t, hdr) != 40*i {
			t.Fatalf("request %d: status %d weight %s", i, status, hdr.Get("X-MBX-USED-WEIGHT-1M"))
		}
	}
	status, hdr, body := binanceGet(t, url)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "20" || !strings.Contains(string(body), `"code":-1003`) {
		t.Errorf("over the limit: %d Retry-After %q %s", status, hdr.Get("Retry-After"), body)
	}
	if w := binanceWeight(t, hdr); w != 2440 || m.UsedWeight() != 2440 {
		t.Errorf("used weight header %d, UsedWeight %d", w, m.UsedWeight())
	}
	now.Add(60)
	if m.UsedWeight() != 0 {
		t.Errorf("UsedWeight in a new minute = %d", m.UsedWeight())
	}
	status, hdr, _ = binanceGet(t, url+"?symbol=BTCUSDT")
	if status != http.StatusOK || binanceWeight(t, hdr) != 1 {
		t.Errorf("new minute: %d weight %s", status, hdr.Get("X-MBX-USED-WEIGHT-1M"))
	}

	m.SetWeightLimit(5)
	v, _ := binanceGetJSON(t, m.RESTURL()+"/fapi/v1/exchangeInfo")
	if l := binanceObject(t, binanceArray(t, binanceObject(t, v)["rateLimits"])[0])["limit"]; l != float64(5) {
		t.Errorf("limit %v", l)
	}
	if status, _, _ := binanceGet(t, m.RESTURL()+"/fapi/v1/premiumIndex"); status != http.StatusTooManyRequests {
		t.Errorf("weight 12 of 5: %d", status)
	}
}

func TestBinanceLatency(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	const path = "/fapi/v1/openInterest"
	m.SetLatency(path, 2*time.Second)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	if resp, err := client.Get(m.RESTURL() + path + "?symbol=BTCUSDT"); err == nil {
		resp.Body.Close()
		t.Fatal("a slow answer arrived within the client timeout")
	}
	if time.Since(start) > time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
	if status, _, _ := binanceGet(t, m.RESTURL()+"/fapi/v1/ping"); status != http.StatusOK {
		t.Errorf("other path: %d", status)
	}
	m.SetLatency(path, 0)
	if resp, err := client.Get(m.RESTURL() + path + "?symbol=BTCUSDT"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if n := m.Requests(path); n != 2 {
		t.Errorf("Requests = %d", n)
	}
}

// ---------------------------------------------------------------- WebSocket

func binanceDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func binanceRead(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	mt, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		t.Fatalf("message type %d", mt)
	}
	return data
}

func binanceSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func binanceCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func binanceWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	binanceBTCFrame = ForceOrderFrame(ForceOrder{Symbol: "BTCUSDT", Side: "SELL", Qty: 0.014, Price: 9910, AvgPrice: 9910,
		FilledQty: 0.014, LastFilledQty: 0.014, EventTime: 1568014460893})
	binanceETHFrame = ForceOrderFrame(ForceOrder{Symbol: "ETHUSDT", Side: "BUY", Qty: 1.5, Price: 3000, AvgPrice: 3001,
		FilledQty: 1.5, LastFilledQty: 1.5, EventTime: 1568014460894})
)

func TestBinanceWSRawStream(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	c := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	if err := m.WaitSubscribed(binanceCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	got := m.Play([]Event{{Frame: binanceBTCFrame}, {Delay: 10 * time.Millisecond, Frame: []byte("garbage{")}})
	if len(got) != 2 || got[0].Conns != 1 || got[1].Conns != 1 || !bytes.Equal(got[0].Frame, binanceBTCFrame) {
		t.Fatalf("delivered %+v", got)
	}
	if b := binanceRead(t, c); !bytes.Equal(b, binanceBTCFrame) {
		t.Errorf("raw frame %s", b)
	}
	if b := binanceRead(t, c); string(b) != "garbage{" {
		t.Errorf("garbage frame %s", b)
	}
	if m.Connections() != 1 || m.TotalConnections() != 1 || m.Subscribed() != 1 || len(m.Deliveries()) != 2 {
		t.Errorf("connections %d total %d subscribed %d deliveries %d", m.Connections(), m.TotalConnections(), m.Subscribed(), len(m.Deliveries()))
	}
}

func TestBinanceWSSubscribe(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	c := binanceDial(t, m.WSURL()+"/ws")
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":["!forceOrder@arr"],"id":1}`)
	if b := binanceRead(t, c); string(b) != `{"result":null,"id":1}` {
		t.Errorf("SUBSCRIBE reply %s", b)
	}
	if m.Subscriptions() != 1 {
		t.Errorf("Subscriptions = %d", m.Subscriptions())
	}
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":2}`)
	if b := binanceRead(t, c); string(b) != `{"result":null,"id":2}` {
		t.Errorf("unknown stream reply %s", b)
	}
	binanceSend(t, c, `{"method":"LIST_SUBSCRIPTIONS","id":3}`)
	if b := binanceRead(t, c); string(b) != `{"result":["!forceOrder@arr","btcusdt@aggTrade"],"id":3}` {
		t.Errorf("LIST_SUBSCRIPTIONS reply %s", b)
	}

	errorOf := func(b []byte) (code float64, id any) {
		var r struct {
			Error struct {
				Code float64 `json:"code"`
				Msg  string  `json:"msg"`
			} `json:"error"`
			ID any `json:"id"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Error.Msg == "" {
			t.Errorf("not an error reply: %s", b)
		}
		return r.Error.Code, r.ID
	}
	binanceSend(t, c, `{"method":"SUBSCRIBE",`)
	if code, id := errorOf(binanceRead(t, c)); code != 3 || id != nil {
		t.Errorf("malformed JSON: code %v id %v", code, id)
	}
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":["!forceOrder@arr"]}`)
	if code, id := errorOf(binanceRead(t, c)); code != 2 || id != nil {
		t.Errorf("missing id: code %v id %v", code, id)
	}
	binanceSend(t, c, `{"method":"SUBSCRIPE","params":["!forceOrder@arr"],"id":4}`)
	if code, id := errorOf(binanceRead(t, c)); code != 2 || id != float64(4) {
		t.Errorf("unknown method: code %v id %v", code, id)
	}

	binanceSend(t, c, `{"method":"UNSUBSCRIBE","params":["!forceOrder@arr"],"id":5}`)
	if b := binanceRead(t, c); string(b) != `{"result":null,"id":5}` {
		t.Errorf("UNSUBSCRIBE reply %s", b)
	}
	binanceSend(t, c, `{"method":"LIST_SUBSCRIPTIONS","id":6}`)
	if b := binanceRead(t, c); string(b) != `{"result":["btcusdt@aggTrade"],"id":6}` {
		t.Errorf("LIST_SUBSCRIPTIONS after UNSUBSCRIBE %s", b)
	}
	if m.Subscribed() != 0 {
		t.Errorf("Subscribed = %d after UNSUBSCRIBE", m.Subscribed())
	}
}

func TestBinanceWSProperty(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	c := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	binanceSend(t, c, `{"method":"GET_PROPERTY","params":["combined"],"id":1}`)
	if b := binanceRead(t, c); string(b) != `{"result":false,"id":1}` {
		t.Errorf("GET_PROPERTY %s", b)
	}
	binanceSend(t, c, `{"method":"SET_PROPERTY","params":["combined",true],"id":2}`)
	if b := binanceRead(t, c); string(b) != `{"result":null,"id":2}` {
		t.Errorf("SET_PROPERTY %s", b)
	}
	m.Play([]Event{{Frame: binanceBTCFrame}})
	if b := binanceRead(t, c); !bytes.Equal(b, BinanceCombinedFrame("!forceOrder@arr", binanceBTCFrame)) {
		t.Errorf("combined after SET_PROPERTY: %s", b)
	}
}

func TestBinanceWSCombinedAndSymbolStreams(t *testing.T) {
	m := binanceNew(t, BinanceCoinM)
	combined := binanceDial(t, m.WSURL()+"/stream?streams=ethusd_perp@forceOrder/ethusd_perp@markPrice")
	raw := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	if err := m.WaitSubscribed(binanceCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	btc := ForceOrderFrame(ForceOrder{Symbol: "BTCUSD_PERP", Pair: "BTCUSD", Side: "SELL", Qty: 1, Price: 9425.5, AvgPrice: 9496.5, FilledQty: 1, LastFilledQty: 1})
	eth := ForceOrderFrame(ForceOrder{Symbol: "ETHUSD_PERP", Pair: "ETHUSD", Side: "BUY", Qty: 3, Price: 3000, AvgPrice: 3001, FilledQty: 3, LastFilledQty: 3})
	got := m.Play([]Event{{Frame: btc}, {Frame: eth}, {Frame: []byte("not json")}})
	if len(got) != 3 || got[0].Conns != 1 || got[1].Conns != 2 || got[2].Conns != 2 {
		t.Fatalf("delivered %+v", got)
	}
	for _, want := range [][]byte{btc, eth, []byte("not json")} {
		if b := binanceRead(t, raw); !bytes.Equal(b, want) {
			t.Errorf("raw connection got %s, want %s", b, want)
		}
	}
	// The symbol stream skips BTCUSD_PERP; its payloads come wrapped.
	b := binanceRead(t, combined)
	if !bytes.Equal(b, BinanceCombinedFrame("ethusd_perp@forceOrder", eth)) {
		t.Errorf("combined frame %s", b)
	}
	// Maps, not structs: the event carries both "e" and "E", "s" and "S".
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil || string(env["stream"]) != `"ethusd_perp@forceOrder"` {
		t.Fatalf("envelope %s (%v)", b, err)
	}
	ev, o := binanceDecodeForceOrder(t, env["data"])
	binanceWantString(t, ev, "e", "forceOrder")
	binanceWantString(t, o, "s", "ETHUSD_PERP")
	binanceWantString(t, o, "ps", "ETHUSD")
	if b := binanceRead(t, combined); string(b) != "not json" {
		t.Errorf("garbage on the combined stream %s", b)
	}
}

func TestBinancePlayWaitsForSubscriber(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	done := m.PlayAsync([]Event{{Frame: binanceBTCFrame}, {Delay: 5 * time.Millisecond, Frame: binanceETHFrame}})
	time.Sleep(50 * time.Millisecond)
	select {
	case d := <-done:
		t.Fatalf("Play finished without a subscriber: %+v", d)
	default:
	}
	c := binanceDial(t, m.WSURL()+"/ws")
	// A connection without a liquidation stream does not count.
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":["btcusdt@markPrice"],"id":7}`)
	if b := binanceRead(t, c); string(b) != `{"result":null,"id":7}` {
		t.Fatalf("reply %s", b)
	}
	select {
	case d := <-done:
		t.Fatalf("Play delivered to a connection without a liquidation stream: %+v", d)
	case <-time.After(30 * time.Millisecond):
	}
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":["!forceOrder@arr"],"id":8}`)
	if b := binanceRead(t, c); string(b) != `{"result":null,"id":8}` {
		t.Fatalf("the reply must come before stream data, got %s", b)
	}
	if b := binanceRead(t, c); !bytes.Equal(b, binanceBTCFrame) {
		t.Errorf("first frame %s", b)
	}
	if b := binanceRead(t, c); !bytes.Equal(b, binanceETHFrame) {
		t.Errorf("second frame %s", b)
	}
	got := <-done
	if len(got) != 2 || got[0].Conns != 1 || got[1].Conns != 1 {
		t.Errorf("delivered %+v", got)
	}

	m.SetPlayTimeout(50 * time.Millisecond)
	c.Close()
	binanceWaitFor(t, "the connection to close", func() bool { return m.Connections() == 0 })
	start := time.Now()
	got = m.Play([]Event{{Frame: binanceBTCFrame}})
	if len(got) != 1 || got[0].Conns != 0 || time.Since(start) > time.Second {
		t.Errorf("without a subscriber: %+v after %v", got, time.Since(start))
	}
	if n := len(m.Deliveries()); n != 3 {
		t.Errorf("Deliveries: %d", n)
	}
}

func TestBinanceDisconnectAndCloseCode(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	c := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	if err := m.WaitSubscribed(binanceCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	m.Play([]Event{{Disconnect: true}})
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Errorf("after Disconnect: %v, want an abnormal closure without close frame", err)
	}
	binanceWaitFor(t, "the server to drop the connection", func() bool { return m.Connections() == 0 })

	c = binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	if err := m.WaitSubscribed(binanceCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	m.Play([]Event{{CloseCode: websocket.CloseGoingAway}})
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err = c.ReadMessage()
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("after CloseCode: %v, want close 1001", err)
	}
	binanceWaitFor(t, "the server to drop the connection", func() bool { return m.Connections() == 0 })
	if m.TotalConnections() != 2 {
		t.Errorf("TotalConnections = %d", m.TotalConnections())
	}
}

// binanceReadAll keeps reading c (so that control frames are handled)
// and reports data messages on the returned channel.
func binanceReadAll(c *websocket.Conn) <-chan []byte {
	ch := make(chan []byte, 16)
	go func() {
		defer close(ch)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			ch <- b
		}
	}()
	return ch
}

func TestBinanceServerPings(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	c := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	binanceReadAll(c) // the default ping handler answers with a pong
	m.SetServerPing(20 * time.Millisecond)
	binanceWaitFor(t, "pongs", func() bool { return m.Pongs() >= 2 })
	if _, err := strconv.ParseInt(string(m.LastPong()), 10, 64); err != nil {
		t.Errorf("pong payload %q does not echo the ping's timestamp", m.LastPong())
	}
	m.SetServerPing(0)

	// A scripted ping carries its payload, and the pong echoes it.
	var got atomic.Value
	c.SetPingHandler(func(p string) error {
		got.Store(p)
		return c.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(time.Second))
	})
	m.Play([]Event{{Ping: []byte("hello")}})
	binanceWaitFor(t, "the scripted ping", func() bool { return got.Load() == "hello" })
	binanceWaitFor(t, "its pong", func() bool { return string(m.LastPong()) == "hello" })

	// A client that stops answering is dropped after the pong timeout.
	c.SetPingHandler(func(string) error { return nil })
	m.SetPongTimeout(50 * time.Millisecond)
	m.SetServerPing(20 * time.Millisecond)
	binanceWaitFor(t, "the silent client to be dropped", func() bool { return m.Connections() == 0 })
}

func TestBinanceAnswerPingsFalse(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	m.SetPlayTimeout(100 * time.Millisecond)
	c := binanceDial(t, m.WSURL()+"/ws")
	raw := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	var pongs atomic.Int64
	c.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	msgs := binanceReadAll(c)
	rawMsgs := binanceReadAll(raw)
	if err := m.WaitSubscribed(binanceCtx(t), 1); err != nil {
		t.Fatal(err)
	}

	m.SetAnswerPings(false)
	if err := c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":["!forceOrder@arr"],"id":1}`)
	if got := m.Play([]Event{{Frame: binanceBTCFrame}}); got[0].Conns != 0 {
		t.Errorf("a half-open peer delivered %+v", got)
	}
	select {
	case b := <-msgs:
		t.Fatalf("a half-open peer answered: %s", b)
	case b := <-rawMsgs:
		t.Fatalf("a half-open peer sent: %s", b)
	case <-time.After(200 * time.Millisecond):
	}
	if pongs.Load() != 0 {
		t.Fatal("a half-open peer answered a ping")
	}

	m.SetAnswerPings(true)
	select {
	case b := <-msgs:
		if string(b) != `{"result":null,"id":1}` {
			t.Errorf("reply after resuming: %s", b)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no reply after resuming")
	}
	if err := c.WriteControl(websocket.PingMessage, []byte("p2"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	binanceWaitFor(t, "a pong", func() bool { return pongs.Load() == 1 })
	if err := m.WaitSubscribed(binanceCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	if got := m.Play([]Event{{Frame: binanceBTCFrame}}); got[0].Conns != 2 {
		t.Errorf("after resuming: %+v", got)
	}
}

func TestBinanceWSLimits(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	c := binanceDial(t, m.WSURL()+"/ws")
	for i := range BinanceMaxMessagesPerSecond + 1 {
		binanceSend(t, c, fmt.Sprintf(`{"method":"LIST_SUBSCRIPTIONS","id":%d}`, i))
	}
	replies := 0
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var err error
	for {
		if _, _, err = c.ReadMessage(); err != nil {
			break
		}
		replies++
	}
	var ce *websocket.CloseError
	if replies != BinanceMaxMessagesPerSecond || !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Errorf("%d replies, then %v; want %d and close 1008", replies, err, BinanceMaxMessagesPerSecond)
	}
	binanceWaitFor(t, "the connection to close", func() bool { return m.Connections() == 0 })

	names := make([]string, BinanceMaxStreams+1)
	for i := range names {
		names[i] = fmt.Sprintf("s%d@forceOrder", i)
	}
	c = binanceDial(t, m.WSURL()+"/ws")
	params, _ := json.Marshal(names)
	binanceSend(t, c, `{"method":"SUBSCRIBE","params":`+string(params)+`,"id":1}`)
	if b := binanceRead(t, c); !strings.Contains(string(b), `"error"`) {
		t.Errorf("1025 streams: %s", b)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(m.WSURL()+"/stream?streams="+strings.Join(names, "/"), nil); err == nil {
		t.Error("a combined connection with 1025 streams was accepted")
	} else if resp != nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
}

func binanceDecodeForceOrder(t *testing.T, b []byte) (ev, o map[string]any) {
	t.Helper()
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return ev, binanceObject(t, ev["o"])
}

func TestBinanceNextQuarterly(t *testing.T) {
	for _, tc := range []struct{ now, want string }{
		{"2026-11-01T00:00:00Z", "2026-12-25T08:00:00Z"},
		{"2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z"},
		{"2025-06-01T00:00:00Z", "2025-06-27T08:00:00Z"},
		{"2025-09-26T07:59:59Z", "2025-09-26T08:00:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		if got := binanceNextQuarterly(now).Format(time.RFC3339); got != tc.want {
			t.Errorf("after %s: %s, want %s", tc.now, got, tc.want)
		}
	}
}

func TestForceOrderFrame(t *testing.T) {
	decode := func(b []byte) (map[string]any, map[string]any) { return binanceDecodeForceOrder(t, b) }
	ev, o := decode(binanceBTCFrame)
	binanceWantString(t, ev, "e", "forceOrder")
	binanceWantNumber(t, ev, "E", 1568014460893)
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	if len(o) != 11 {
		t.Errorf("USDⓈ-M order fields %v, want s S o f q p ap X l z T", keys)
	}
	binanceWantString(t, o, "s", "BTCUSDT")
	binanceWantString(t, o, "S", "SELL")
	binanceWantString(t, o, "o", "LIMIT")
	binanceWantString(t, o, "f", "IOC")
	binanceWantString(t, o, "q", "0.014")
	binanceWantString(t, o, "p", "9910")
	binanceWantString(t, o, "ap", "9910")
	binanceWantString(t, o, "X", "FILLED")
	binanceWantString(t, o, "l", "0.014")
	binanceWantString(t, o, "z", "0.014")
	binanceWantNumber(t, o, "T", 1568014460893)
	binanceWantAbsent(t, o, "ps")

	_, o = decode(ForceOrderFrame(ForceOrder{Symbol: "BTCUSD_200925", Pair: "BTCUSD", Side: "SELL", Qty: 1, Price: 9425.5,
		AvgPrice: 9496.5, FilledQty: 1, LastFilledQty: 1, EventTime: 1591154240950, TradeTime: 1591154240949}))
	binanceWantString(t, o, "ps", "BTCUSD")
	binanceWantString(t, o, "ap", "9496.5")
	binanceWantNumber(t, o, "T", 1591154240949)

	_, o = decode(ForceOrderFrame(ForceOrder{Symbol: "1000PEPEUSDT", Side: "BUY", Qty: 1e6, Price: 1e-7, AvgPrice: 0.0000001, FilledQty: 1e6}))
	binanceWantString(t, o, "q", "1000000")
	binanceWantString(t, o, "p", "0.0000001")

	if events := FrameEvents(time.Millisecond, binanceBTCFrame, binanceETHFrame); len(events) != 2 || events[1].Delay != time.Millisecond {
		t.Errorf("FrameEvents %+v", events)
	}
}

func TestBinanceCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	m := NewBinanceMarket(BinanceCoinM)
	m.SetSymbols(BinanceSampleSymbols(BinanceCoinM))
	m.SetServerPing(10 * time.Millisecond)
	c := binanceDial(t, m.WSURL()+"/ws")
	msgs := binanceReadAll(c)
	m.SetLatency("/dapi/v1/exchangeInfo", time.Minute)
	reqDone := make(chan error, 1)
	go func() {
		resp, err := http.Get(m.RESTURL() + "/dapi/v1/exchangeInfo")
		if err == nil {
			resp.Body.Close()
		}
		reqDone <- err
	}()
	played := m.PlayAsync([]Event{{Frame: binanceBTCFrame}})
	binanceWaitFor(t, "the slow request", func() bool { return m.Requests("/dapi/v1/exchangeInfo") == 1 })

	start := time.Now()
	m.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got, ok := <-played; ok && len(got) != 0 {
		t.Errorf("aborted script delivered %+v", got)
	}
	for range msgs {
	}
	select {
	case <-reqDone:
	case <-time.After(3 * time.Second):
		t.Fatal("the slow request did not end")
	}
	m.Close() // idempotent
	if got := m.Play([]Event{{Frame: binanceBTCFrame}}); len(got) != 0 {
		t.Errorf("Play after Close: %+v", got)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	binanceWaitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// binanceStalledDial dials url with a short handshake timeout and fails the
// test if the handshake completes.
func binanceStalledDial(t *testing.T, url string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 200 * time.Millisecond}
	start := time.Now()
	c, resp, err := d.Dial(url, nil)
	if err == nil {
		c.Close()
		t.Fatalf("the handshake of %s completed while stalled", url)
	}
	if resp != nil {
		resp.Body.Close()
		t.Errorf("a stalled handshake of %s was answered %d", url, resp.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the dial of %s took %v, want the handshake timeout", url, took)
	}
}

func TestBinanceStallHandshake(t *testing.T) {
	m := binanceNew(t, BinanceUSDM)
	other := binanceNew(t, BinanceCoinM)
	// A connection made before the stall keeps working during it.
	live := binanceDial(t, m.WSURL()+"/ws/!forceOrder@arr")
	if err := m.WaitSubscribed(binanceCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	m.SetStallHandshake(true)
	urls := []string{m.WSURL() + "/ws", m.WSURL() + "/ws/!forceOrder@arr", m.WSURL() + "/stream?streams=btcusdt@forceOrder"}
	for _, u := range urls {
		binanceStalledDial(t, u)
	}
	if n := m.StalledHandshakes(); n != len(urls) {
		t.Errorf("StalledHandshakes = %d, want %d (every WebSocket path)", n, len(urls))
	}
	if n := m.TotalConnections(); n != 1 {
		t.Errorf("TotalConnections = %d while stalled, want the one from before", n)
	}
	if got := m.Play([]Event{{Frame: binanceBTCFrame}}); len(got) != 1 || got[0].Conns != 1 {
		t.Errorf("delivered %+v during the stall, want the live connection", got)
	}
	if b := binanceRead(t, live); !bytes.Equal(b, binanceBTCFrame) {
		t.Errorf("live connection read %s", b)
	}
	// REST and the other market are not stalled.
	if status, _, body := binanceGet(t, m.RESTURL()+"/fapi/v1/premiumIndex"); status != http.StatusOK {
		t.Errorf("premiumIndex during the stall: %d %s", status, body)
	}
	binanceDial(t, other.WSURL()+"/ws")
	if n := other.StalledHandshakes(); n != 0 {
		t.Errorf("the COIN-M market stalled %d handshakes", n)
	}

	m.SetStallHandshake(false)
	binanceDial(t, m.WSURL()+"/ws")
	binanceWaitFor(t, "the connection after the stall", func() bool { return m.TotalConnections() == 2 })
	if n := m.StalledHandshakes(); n != len(urls) {
		t.Errorf("StalledHandshakes = %d after the stall, want %d", n, len(urls))
	}

	// A held request does not keep Close waiting.
	m.SetStallHandshake(true)
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		d := websocket.Dialer{HandshakeTimeout: time.Minute}
		if c, resp, err := d.Dial(m.WSURL()+"/ws", nil); err == nil {
			c.Close()
		} else if resp != nil {
			resp.Body.Close()
		}
	}()
	binanceWaitFor(t, "the held handshake", func() bool { return m.StalledHandshakes() == len(urls)+1 })
	start := time.Now()
	m.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v with a held handshake", took)
	}
	select {
	case <-dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("the held dial did not end after Close")
	}
}
