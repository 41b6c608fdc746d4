package exchangetest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func newTestBitMEX(t *testing.T) *BitMEX {
	t.Helper()
	b := NewBitMEX()
	b.SetInstruments(BitMEXSampleInstruments())
	t.Cleanup(b.Close)
	return b
}

func bitmexGet(t *testing.T, b *BitMEX, path string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(b.RESTURL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

func TestBitMEXREST(t *testing.T) {
	b := newTestBitMEX(t)
	b.UpdateInstrument("XBTU25", func(in *BitMEXInstrument) {
		*in = BitMEXInstrument{Symbol: "XBTU25", Typ: BitMEXFuture, State: "Settled"}
	})
	status, body, _ := bitmexGet(t, b, BitMEXInstrumentActivePath)
	var rows []map[string]any
	if err := json.Unmarshal(body, &rows); status != 200 || err != nil {
		t.Fatalf("instrument/active: %d %v %s", status, err, body)
	}
	if len(rows) != len(BitMEXSampleInstruments()) {
		t.Errorf("%d rows; the settled future must not be active", len(rows))
	}
	xbt := rows[0]
	for k, want := range map[string]any{"symbol": "XBTUSD", "typ": "FFWCSX", "state": "Open", "isInverse": true, "isQuanto": false,
		"multiplier": -1e8, "underlyingToPositionMultiplier": nil, "settlCurrency": "XBt", "quoteCurrency": "USD",
		"fundingInterval": "2000-01-01T08:00:00.000Z", "markPrice": 60000.5, "foreignNotional24h": 4.5e8} {
		if xbt[k] != want {
			t.Errorf("XBTUSD %s = %#v, want %#v", k, xbt[k], want)
		}
	}
	if ts, _ := xbt["fundingTimestamp"].(string); !strings.HasSuffix(ts, ".000Z") {
		t.Errorf("fundingTimestamp %q", ts)
	}
	for _, r := range rows {
		if r["typ"] == BitMEXFuture && r["fundingRate"] != nil {
			t.Errorf("future with a funding rate: %v", r)
		}
	}

	b.FailNext(BitMEXInstrumentActivePath, 1, 429, 3, "")
	status, body, hdr := bitmexGet(t, b, BitMEXInstrumentActivePath)
	if status != 429 || hdr.Get("Retry-After") != "3" || !strings.Contains(string(body), "RateLimitError") {
		t.Errorf("fault: %d %q %s", status, hdr.Get("Retry-After"), body)
	}
	b.SetRateLimit(1, time.Minute)
	if status, _, _ := bitmexGet(t, b, BitMEXInstrumentActivePath); status != 200 {
		t.Errorf("first request within the limit: %d", status)
	}
	if status, _, hdr := bitmexGet(t, b, BitMEXInstrumentActivePath); status != 429 || hdr.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %q", status, hdr.Get("Retry-After"))
	}
	b.SetRateLimit(0, 0)
	if n := b.Requests(BitMEXInstrumentActivePath); n != 4 {
		t.Errorf("%d requests counted", n)
	}
	if status, body, _ := bitmexGet(t, b, "/api/v1/nothing"); status != 404 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("unknown path: %d %s", status, body)
	}
	b.SetBook(BitMEXOrder{OrderID: "a", Symbol: "XBTUSD", Side: "Sell", Price: 1, LeavesQty: 2})
	if _, body, _ := bitmexGet(t, b, BitMEXLiquidationPath); !strings.Contains(string(body), `"orderID":"a"`) {
		t.Errorf("liquidation: %s", body)
	}
}

type bitmexClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialBitMEX(t *testing.T, b *BitMEX) *bitmexClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(b.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &bitmexClient{t, ws}
	if m := c.read(); !strings.Contains(m, `"info":"Welcome to the BitMEX Realtime API."`) {
		t.Fatalf("welcome: %s", m)
	}
	return c
}

func (c *bitmexClient) send(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *bitmexClient) read() string {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, m, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	return string(m)
}

func TestBitMEXWebSocket(t *testing.T) {
	b := newTestBitMEX(t)
	resting := BitMEXOrder{OrderID: "r1", Symbol: "XBTUSD", Side: "Sell", Price: 60000, LeavesQty: 100}
	b.SetBook(resting)
	c := dialBitMEX(t, b)
	c.send("ping")
	if m := c.read(); m != "pong" {
		t.Fatalf("ping answered %q", m)
	}
	c.send(`{"op":"subscribe","args":["liquidation"]}`)
	if m := c.read(); !strings.Contains(m, `"success":true`) || !strings.Contains(m, `"subscribe":"liquidation"`) {
		t.Fatalf("ack: %s", m)
	}
	action, orders, ok := bitmexFrameOrders([]byte(c.read()))
	if !ok || action != "partial" || len(orders) != 1 || orders[0].OrderID != "r1" || orders[0].LeavesQty != 100 {
		t.Fatalf("partial: %s %+v", action, orders)
	}
	c.send(`{"op":"subscribe","args":["orderBookL2"]}`)
	if m := c.read(); !strings.Contains(m, `"status":400`) || !strings.Contains(m, "Unknown table: orderBookL2") {
		t.Fatalf("unknown table: %s", m)
	}
	c.send(`garbage`)
	if m := c.read(); !strings.Contains(m, `"error"`) {
		t.Fatalf("garbage: %s", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// Played frames keep the book current.
	ins := BitMEXOrder{OrderID: "i1", Symbol: "ETHUSD", Side: "Buy", Price: 3000, LeavesQty: 7}
	done := b.PlayAsync(FrameEvents(0,
		BitMEXLiquidationFrame("insert", ins),
		BitMEXLiquidationFrame("update", BitMEXOrder{OrderID: "r1", Symbol: "XBTUSD", LeavesQty: 40}),
		BitMEXLiquidationFrame("delete", ins),
	))
	for i, want := range []string{`"action":"insert"`, `"action":"update"`, `"action":"delete"`} {
		if m := c.read(); !strings.Contains(m, want) {
			t.Errorf("frame %d: %s", i, m)
		}
	}
	for _, d := range <-done {
		if d.Conns != 1 {
			t.Errorf("delivered to %d", d.Conns)
		}
	}
	if book := b.Book(); len(book) != 1 || book[0].LeavesQty != 40 {
		t.Errorf("book %+v", book)
	}
	if b.Pings() != 1 || b.Connections() != 1 || b.TotalConnections() != 1 || len(b.Deliveries()) != 3 {
		t.Errorf("pings %d conns %d total %d deliveries %d", b.Pings(), b.Connections(), b.TotalConnections(), len(b.Deliveries()))
	}

	// A symbol subscription gets that symbol's frames only.
	c2 := dialBitMEX(t, b)
	c2.send(`{"op":"subscribe","args":["liquidation:ETHUSD"]}`)
	c2.read() // ack
	if _, orders, _ := bitmexFrameOrders([]byte(c2.read())); len(orders) != 0 {
		t.Errorf("ETHUSD partial %+v", orders)
	}
	if d := b.Push(BitMEXLiquidationFrame("insert", BitMEXOrder{OrderID: "x", Symbol: "XBTUSD", Side: "Sell", Price: 1, LeavesQty: 1})); d.Conns != 1 {
		t.Errorf("XBTUSD insert reached %d connections", d.Conns)
	}
	if d := b.Push(BitMEXLiquidationFrame("insert", BitMEXOrder{OrderID: "y", Symbol: "ETHUSD", Side: "Sell", Price: 1, LeavesQty: 1})); d.Conns != 2 {
		t.Errorf("ETHUSD insert reached %d connections", d.Conns)
	}

	b.RejectNextSubscribe(1)
	c3 := dialBitMEX(t, b)
	c3.send(`{"op":"subscribe","args":["liquidation"]}`)
	if m := c3.read(); !strings.Contains(m, `"status":400`) {
		t.Errorf("rejected subscribe: %s", m)
	}

	b.SetAnswerPings(false)
	c.send("ping")
	b.Disconnect()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, m, err := c.ws.ReadMessage(); err != nil {
			break
		} else if string(m) == "pong" {
			t.Fatal("pong with SetAnswerPings(false)")
		}
	}
}

func TestBitMEXPlayWaitsAndCloses(t *testing.T) {
	b := NewBitMEX()
	b.SetPlayTimeout(100 * time.Millisecond)
	d := b.Play(FrameEvents(0, BitMEXLiquidationFrame("insert", BitMEXOrder{OrderID: "a", Symbol: "XBTUSD", Side: "Buy", Price: 1, LeavesQty: 1})))
	if len(d) != 1 || d[0].Conns != 0 || len(b.Book()) != 1 {
		t.Errorf("play without subscribers: %+v, book %+v", d, b.Book())
	}
	b.SetPlayTimeout(time.Minute)
	done := b.PlayAsync(FrameEvents(0, []byte(`x`)))
	time.Sleep(50 * time.Millisecond)
	b.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Play did not return on Close")
	}
	b.Close() // idempotent
}
