package exchangetest

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type okxTestEnvelope struct {
	Code string            `json:"code"`
	Msg  string            `json:"msg"`
	Data []json.RawMessage `json:"data"`
}

func okxGet(t *testing.T, o *OKX, path string) (int, okxTestEnvelope, http.Header) {
	t.Helper()
	resp, err := http.Get(o.RESTURL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env okxTestEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return resp.StatusCode, env, resp.Header
}

func newTestOKX(t *testing.T) *OKX {
	t.Helper()
	o := NewOKX()
	o.SetInstruments(OKXSampleInstruments())
	t.Cleanup(o.Close)
	return o
}

func TestOKXREST(t *testing.T) {
	o := newTestOKX(t)
	status, env, _ := okxGet(t, o, "/api/v5/public/instruments?instType=SWAP")
	if status != 200 || env.Code != "0" || len(env.Data) != 5 {
		t.Fatalf("instruments: %d %+v", status, env)
	}
	var inst map[string]any
	_ = json.Unmarshal(env.Data[0], &inst)
	for k, want := range map[string]any{"instId": "BTC-USDT-SWAP", "instFamily": "BTC-USDT", "uly": "BTC-USDT", "ctVal": "0.01", "ctMult": "1",
		"ctValCcy": "BTC", "ctType": "linear", "settleCcy": "USDT", "state": "live"} {
		if inst[k] != want {
			t.Errorf("instrument %s = %v, want %v", k, inst[k], want)
		}
	}
	_, env, _ = okxGet(t, o, "/api/v5/public/instruments?instType=FUTURES")
	if len(env.Data) != 2 {
		t.Errorf("%d futures", len(env.Data))
	}
	if status, env, _ := okxGet(t, o, "/api/v5/public/instruments"); status != 400 || env.Code != "51000" {
		t.Errorf("no instType: %d %+v", status, env)
	}
	for path, field := range map[string]string{
		"/api/v5/public/open-interest?instType=SWAP": "oiUsd",
		"/api/v5/public/mark-price?instType=SWAP":    "markPx",
		"/api/v5/market/tickers?instType=SWAP":       "volCcy24h",
		"/api/v5/public/funding-rate?instId=ANY":     "nextFundingTime",
	} {
		_, env, _ := okxGet(t, o, path)
		if env.Code != "0" || len(env.Data) != 5 {
			t.Errorf("%s: %+v", path, env)
			continue
		}
		var row map[string]any
		_ = json.Unmarshal(env.Data[0], &row)
		if _, ok := row[field].(string); !ok {
			t.Errorf("%s: %s is not a string: %v", path, field, row)
		}
	}
	if _, env, _ := okxGet(t, o, "/api/v5/public/funding-rate?instId=ETH-USDT-SWAP"); len(env.Data) != 1 {
		t.Errorf("funding of one instrument: %+v", env)
	}
	if status, env, _ := okxGet(t, o, "/api/v5/public/funding-rate?instId=NOPE-USDT-SWAP"); status != 400 || env.Code != "51001" {
		t.Errorf("unknown instId: %d %+v", status, env)
	}
	if o.Requests("/api/v5/public/instruments?instType=SWAP") != 1 || o.Requests("/api/v5/public/instruments") != 3 {
		t.Errorf("request counts %d %d", o.Requests("/api/v5/public/instruments?instType=SWAP"), o.Requests("/api/v5/public/instruments"))
	}
}

func TestOKXRESTFaultsAndRateLimit(t *testing.T) {
	o := newTestOKX(t)
	path := "/api/v5/public/mark-price"
	o.FailNext(path, 1, 429, 2, "")
	status, env, hdr := okxGet(t, o, path+"?instType=SWAP")
	if status != 429 || env.Code != "50011" || hdr.Get("Retry-After") != "2" {
		t.Errorf("scripted 429: %d %+v %v", status, env, hdr)
	}
	o.FailNextCode(path+"?instType=FUTURES", 1, "50001", "busy")
	if _, env, _ := okxGet(t, o, path+"?instType=SWAP"); env.Code != "0" {
		t.Errorf("the fault of another instType hit SWAP: %+v", env)
	}
	if status, env, _ := okxGet(t, o, path+"?instType=FUTURES"); status != 200 || env.Code != "50001" {
		t.Errorf("code fault: %d %+v", status, env)
	}
	// The documented limit: 10 requests per 2 s on mark-price.
	o.SetRateLimit(path, 3, time.Hour)
	limited := 0
	for range 5 {
		if status, env, _ := okxGet(t, o, path+"?instType=SWAP"); status == 429 && env.Code == "50011" {
			limited++
		}
	}
	if limited < 3 {
		t.Errorf("%d of 5 requests limited at 3 per hour (after 3 earlier ones)", limited)
	}
}

func TestOKXLiquidationHistory(t *testing.T) {
	o := newTestOKX(t)
	now := time.Now().UnixMilli()
	var orders []OKXOrder
	for i := range 250 {
		orders = append(orders, OKXOrder{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", Side: "sell", PosSide: "net", Sz: strconv.Itoa(i + 1), BkPx: "60000", TS: now - int64(250-i)})
	}
	orders = append(orders,
		OKXOrder{InstType: OKXSwap, InstID: "ETH-USDT-SWAP", Side: "buy", Sz: "1", BkPx: "3000", TS: now},
		OKXOrder{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", Side: "buy", Sz: "1", BkPx: "1", TS: now - (25 * time.Hour).Milliseconds()})
	o.AddHistory(orders...)
	if status, env, _ := okxGet(t, o, "/api/v5/public/liquidation-orders?instType=SWAP&state=filled"); status != 400 || env.Code != "50015" {
		t.Errorf("without instFamily: %d %+v", status, env)
	}
	type item struct {
		InstID  string `json:"instId"`
		Details []struct {
			Sz string `json:"sz"`
			TS string `json:"ts"`
		} `json:"details"`
	}
	page := func(q string) (n int, oldest, newest int64) {
		_, env, _ := okxGet(t, o, "/api/v5/public/liquidation-orders?instType=SWAP&instFamily=BTC-USDT&state=filled"+q)
		for _, raw := range env.Data {
			var it item
			_ = json.Unmarshal(raw, &it)
			if it.InstID != "BTC-USDT-SWAP" {
				t.Errorf("item %s", it.InstID)
			}
			for _, d := range it.Details {
				ts, _ := strconv.ParseInt(d.TS, 10, 64)
				n++
				if oldest == 0 || ts < oldest {
					oldest = ts
				}
				newest = max(newest, ts)
			}
		}
		return n, oldest, newest
	}
	n, oldest, newest := page("&limit=100")
	if n != 100 || newest != now-1 || oldest != now-100 {
		t.Errorf("first page: %d orders, %d..%d", n, oldest, newest)
	}
	n, oldest, newest = page("&limit=100&after=" + strconv.FormatInt(oldest, 10))
	if n != 100 || newest != now-101 || oldest != now-200 {
		t.Errorf("second page: %d orders, %d..%d", n, oldest, newest)
	}
	n, _, _ = page("&after=" + strconv.FormatInt(oldest, 10))
	if n != 50 { // the order older than a day is not served
		t.Errorf("last page: %d orders", n)
	}
	if n, _, _ = page("&before=" + strconv.FormatInt(now-10, 10)); n != 9 {
		t.Errorf("before: %d orders", n)
	}
	if _, env, _ := okxGet(t, o, "/api/v5/public/liquidation-orders?instType=SWAP&instFamily=BTC-USDT&state=unfilled"); len(env.Data) != 0 {
		t.Errorf("unfilled: %+v", env)
	}
	if status, _, _ := okxGet(t, o, "/api/v5/public/liquidation-orders?instType=SWAP&instFamily=BTC-USDT&limit=101"); status != 400 {
		t.Errorf("limit 101: %d", status)
	}
}

func okxDial(t *testing.T, o *OKX) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(o.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func okxRead(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return m
}

const okxSubSwap = `{"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"}]}`

func TestOKXWebSocket(t *testing.T) {
	o := newTestOKX(t)
	o.SetReplay(2, time.Minute)
	now := time.Now().UnixMilli()
	o.AddHistory(
		OKXOrder{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", Side: "sell", Sz: "1", BkPx: "1", TS: now - 3},
		OKXOrder{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", Side: "sell", Sz: "2", BkPx: "1", TS: now - 2},
		OKXOrder{InstType: OKXFutures, InstID: "BTC-USD-250926", Side: "sell", Sz: "3", BkPx: "1", TS: now - 1},
		OKXOrder{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", Side: "buy", Sz: "4", BkPx: "1", TS: now - 1},
		OKXOrder{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", Side: "buy", Sz: "5", BkPx: "1", TS: now - 2*time.Minute.Milliseconds()},
	)
	c := okxDial(t, o)
	// Ping and pong.
	_ = c.WriteMessage(websocket.TextMessage, []byte("ping"))
	if _, data, err := c.ReadMessage(); err != nil || string(data) != "pong" {
		t.Fatalf("pong: %q %v", data, err)
	}
	// Invalid request and unknown channel: error events.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","argss":[]}`))
	if m := okxRead(t, c); m["event"] != "error" || m["code"] != "60012" || m["connId"] == "" {
		t.Errorf("invalid request: %v", m)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SPOT"}]}`))
	if m := okxRead(t, c); m["event"] != "error" || m["code"] != "60018" {
		t.Errorf("bad instType: %v", m)
	}
	// Subscribe: ack, then the replay of the last 2 SWAP orders of the last minute.
	_ = c.WriteMessage(websocket.TextMessage, []byte(okxSubSwap))
	m := okxRead(t, c)
	arg, _ := m["arg"].(map[string]any)
	if m["event"] != "subscribe" || arg["channel"] != "liquidation-orders" || arg["instType"] != "SWAP" {
		t.Errorf("ack: %v", m)
	}
	var sizes []string
	for range 2 {
		m := okxRead(t, c)
		data := m["data"].([]any)[0].(map[string]any)
		sizes = append(sizes, data["details"].([]any)[0].(map[string]any)["sz"].(string))
	}
	if strings.Join(sizes, ",") != "2,4" {
		t.Errorf("replayed sizes %v, want 2,4", sizes)
	}
	if o.Subscriptions() != 1 || o.Replayed() != 2 {
		t.Errorf("subscriptions %d replayed %d", o.Subscriptions(), o.Replayed())
	}
	// Play routes by instType and records the orders.
	swap := OKXLiquidationFrame(OKXSwap, "ETH-USDT-SWAP", "", OKXDetail{Side: "sell", PosSide: "long", Sz: 7, BkPx: 3000})
	fut := OKXLiquidationFrame(OKXFutures, "BTC-USD-250926", "", OKXDetail{Side: "sell", Sz: 8, BkPx: 60000})
	o.SetPlayTimeout(200 * time.Millisecond)
	d := o.Play([]Event{{Frame: swap}, {Frame: fut}})
	if d[0].Conns != 1 || d[1].Conns != 0 {
		t.Errorf("deliveries %+v", d)
	}
	m = okxRead(t, c)
	if m["data"].([]any)[0].(map[string]any)["instId"] != "ETH-USDT-SWAP" {
		t.Errorf("pushed %v", m)
	}
	if h := o.History(OKXFutures); len(h) != 2 || h[1].Sz != "8" {
		t.Errorf("futures history %+v", h)
	}
	if h := o.History(OKXSwap); len(h) != 5 || h[4].Sz != "7" || h[4].PosSide != "long" {
		t.Errorf("swap history %+v", h)
	}
	// Malformed orders do not join the history.
	o.Liquidate([]byte(`{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP","details":[{"side":"sell","sz":"NaN","bkPx":"1","ts":"1"}]}]}`))
	_ = okxRead(t, c)
	if h := o.History(OKXSwap); len(h) != 5 {
		t.Errorf("malformed order recorded: %+v", h[len(h)-1])
	}
	// Unsubscribe.
	_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Replace(okxSubSwap, "subscribe", "unsubscribe", 1)))
	if m := okxRead(t, c); m["event"] != "unsubscribe" {
		t.Errorf("unsubscribe ack %v", m)
	}
	if got := o.Subscribed(); len(got) != 0 {
		t.Errorf("subscribed after unsubscribe: %v", got)
	}
}

func TestOKXIdleDisconnectRejectRefuse(t *testing.T) {
	o := newTestOKX(t)
	o.SetIdleTimeout(200 * time.Millisecond)
	c := okxDial(t, o)
	start := time.Now()
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("idle connection not dropped")
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("dropped after %v", d)
	}
	// Pings keep a connection alive (the pongs are pushed data).
	c = okxDial(t, o)
	for range 8 {
		_ = c.WriteMessage(websocket.TextMessage, []byte("ping"))
		if _, data, err := c.ReadMessage(); err != nil || string(data) != "pong" {
			t.Fatalf("pong: %q %v", data, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.SetIdleTimeout(0)
	o.RejectNextSubscribe(1)
	_ = c.WriteMessage(websocket.TextMessage, []byte(okxSubSwap))
	if m := okxRead(t, c); m["event"] != "error" || m["code"] != "60018" {
		t.Errorf("rejected subscribe: %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.WriteMessage(websocket.TextMessage, []byte(okxSubSwap))
	if err := o.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := o.WaitInstTypes(ctx, OKXSwap); err != nil {
		t.Fatal(err)
	}
	if m := okxRead(t, c); m["event"] != "subscribe" {
		t.Errorf("ack %v", m)
	}
	o.Disconnect()
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("connection survived Disconnect")
	}
	o.SetRefuseConnections(true)
	if _, resp, err := websocket.DefaultDialer.Dial(o.WSURL(), nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("refused dial: %v %v", resp, err)
	}
	o.SetRefuseConnections(false)
	okxDial(t, o)
	// The fake counts a connection once the upgrade answer has gone out,
	// which the dial may return before.
	for deadline := time.Now().Add(5 * time.Second); o.TotalConnections() < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if o.TotalConnections() != 3 {
		t.Errorf("%d connections", o.TotalConnections())
	}
}

func TestOKXPlayAsyncAndClose(t *testing.T) {
	o := NewOKX()
	ch := o.PlayAsync([]Event{{Frame: OKXLiquidationFrame(OKXSwap, "BTC-USDT-SWAP", "", OKXDetail{Side: "sell", Sz: 1, BkPx: 1})}})
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { o.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked by a waiting Play")
	}
	if d := <-ch; len(d) != 0 {
		t.Errorf("delivered %v", d)
	}
}

func TestOKXLongShortAccountRatio(t *testing.T) {
	o := newTestOKX(t)
	o.SetLongShortAccountRatio("BTC", 1.25, 1.3, math.NaN())
	o.SetLongShortAccountRatio("XRP") // supported, no data yet
	path := "/api/v5/rubik/stat/contracts/long-short-account-ratio"

	// The documented limit: 5 requests per 2 s per IP; 429 with code 50011
	// beyond it.
	limited := 0
	for range 6 {
		if status, env, _ := okxGet(t, o, path+"?ccy=BTC"); status == 429 && env.Code == "50011" {
			limited++
		}
	}
	if limited != 1 {
		t.Errorf("%d of 6 back-to-back requests limited, want 1", limited)
	}
	o.SetRateLimit(path, 0, 0)

	// The documented shape: data is an array of [ts, ratio] strings, newest
	// first, one per period.
	status, env, _ := okxGet(t, o, path+"?ccy=BTC&period=5m")
	if status != 200 || env.Code != "0" || len(env.Data) != 3 {
		t.Fatalf("BTC: %d %+v", status, env)
	}
	want := []string{"1.25", "1.3", ""}
	var prev int64
	for i, raw := range env.Data {
		var row []string
		if err := json.Unmarshal(raw, &row); err != nil || len(row) != 2 {
			t.Fatalf("row %d: %s is not a [ts, ratio] string pair", i, raw)
		}
		ts, err := strconv.ParseInt(row[0], 10, 64)
		if err != nil || ts%(5*60*1000) != 0 || ts > time.Now().UnixMilli() {
			t.Errorf("row %d: ts %q", i, row[0])
		}
		if i > 0 && ts != prev-5*60*1000 {
			t.Errorf("row %d: ts %d, want %d (newest first)", i, ts, prev-5*60*1000)
		}
		prev = ts
		if row[1] != want[i] {
			t.Errorf("row %d: ratio %q, want %q", i, row[1], want[i])
		}
	}
	// The period defaults to 5m; 1H and 1D are served on their boundaries.
	if _, env, _ := okxGet(t, o, path+"?ccy=BTC"); len(env.Data) != 3 {
		t.Errorf("default period: %+v", env)
	}
	_, env, _ = okxGet(t, o, path+"?ccy=BTC&period=1D")
	var row []string
	if len(env.Data) == 0 || json.Unmarshal(env.Data[0], &row) != nil || row[0] == "" {
		t.Fatalf("1D: %+v", env)
	}
	if ts, _ := strconv.ParseInt(row[0], 10, 64); ts%(24*3600*1000) != 0 {
		t.Errorf("1D ts %d", ts)
	}
	// begin/end bound the ts.
	end := time.Now().Truncate(5 * time.Minute).Add(-5 * time.Minute).UnixMilli()
	if _, env, _ := okxGet(t, o, path+"?ccy=BTC&end="+strconv.FormatInt(end, 10)); len(env.Data) != 2 {
		t.Errorf("end bound: %d rows, want 2", len(env.Data))
	}
	// A supported ccy without data (set empty, or the base of a listed
	// instrument) is an empty array.
	for _, ccy := range []string{"XRP", "ETH", "PEPE"} {
		if status, env, _ := okxGet(t, o, path+"?ccy="+ccy); status != 200 || env.Code != "0" || len(env.Data) != 0 {
			t.Errorf("%s: %d %+v", ccy, status, env)
		}
	}
	// Errors: no ccy, an unknown ccy, a bad period or bound.
	for q, code := range map[string]string{
		"":                     "50014",
		"?ccy=NOPE":            "51000",
		"?ccy=btc":             "51000",
		"?ccy=BTC&period=5min": "51000",
		"?ccy=BTC&begin=x":     "51000",
	} {
		if status, env, _ := okxGet(t, o, path+q); status != 400 || env.Code != code || env.Msg == "" {
			t.Errorf("%q: %d %+v, want code %s", q, status, env, code)
		}
	}

	// Faults by path or by path and ccy; request counts.
	o.FailNext(path+"?ccy=ETH", 1, 429, 1, "")
	o.FailNextCode(path, 1, "50001", "busy")
	if status, env, hdr := okxGet(t, o, path+"?ccy=ETH"); status != 429 || env.Code != "50011" || hdr.Get("Retry-After") != "1" {
		t.Errorf("scripted 429: %d %+v %v", status, env, hdr)
	}
	if _, env, _ := okxGet(t, o, path+"?ccy=BTC"); env.Code != "50001" {
		t.Errorf("scripted code: %+v", env)
	}
	if n := o.Requests(path + "?ccy=ETH"); n != 2 {
		t.Errorf("ETH requests %d, want 2", n)
	}
}

// okxWaitTotal waits until the fake has accepted n connections in all.
func okxWaitTotal(t *testing.T, o *OKX, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for o.TotalConnections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("TotalConnections = %d, want %d", o.TotalConnections(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOKXStallHandshake(t *testing.T) {
	o := newTestOKX(t)
	// A connection made before the stall keeps working during it.
	live := okxDial(t, o)
	okxWaitTotal(t, o, 1)
	o.SetStallHandshake(true)
	d := websocket.Dialer{HandshakeTimeout: 200 * time.Millisecond}
	start := time.Now()
	if c, resp, err := d.Dial(o.WSURL(), nil); err == nil {
		_ = c.Close()
		t.Fatal("the handshake completed while stalled")
	} else if resp != nil {
		_ = resp.Body.Close()
		t.Errorf("a stalled handshake was answered %d", resp.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the dial took %v, want the handshake timeout", took)
	}
	if n := o.StalledHandshakes(); n != 1 {
		t.Errorf("StalledHandshakes = %d, want 1", n)
	}
	if n := o.TotalConnections(); n != 1 {
		t.Errorf("TotalConnections = %d while stalled, want the one from before", n)
	}
	_ = live.WriteMessage(websocket.TextMessage, []byte("ping"))
	if _, data, err := live.ReadMessage(); err != nil || string(data) != "pong" {
		t.Errorf("live connection during the stall: %q %v", data, err)
	}
	// REST is not stalled.
	if status, env, _ := okxGet(t, o, "/api/v5/public/mark-price?instType=SWAP"); status != http.StatusOK || env.Code != "0" {
		t.Errorf("mark-price during the stall: %d %+v", status, env)
	}
	// The stall comes before a refusal: the request is held, not answered 503.
	o.SetRefuseConnections(true)
	if c, resp, err := d.Dial(o.WSURL(), nil); err == nil {
		_ = c.Close()
		t.Fatal("the handshake completed while stalled and refused")
	} else if resp != nil {
		_ = resp.Body.Close()
		t.Errorf("a stalled handshake was answered %d", resp.StatusCode)
	}
	o.SetRefuseConnections(false)

	o.SetStallHandshake(false)
	okxDial(t, o)
	okxWaitTotal(t, o, 2)
	if n := o.StalledHandshakes(); n != 2 {
		t.Errorf("StalledHandshakes = %d after the stall, want 2", n)
	}

	// A held request does not keep Close waiting.
	o.SetStallHandshake(true)
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		d := websocket.Dialer{HandshakeTimeout: time.Minute}
		if c, resp, err := d.Dial(o.WSURL(), nil); err == nil {
			_ = c.Close()
		} else if resp != nil {
			_ = resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for o.StalledHandshakes() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the handshake was not held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start = time.Now()
	o.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v with a held handshake", took)
	}
	select {
	case <-dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("the held dial did not end after Close")
	}
}
