package exchangetest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func bitgetGet(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestBitgetREST(t *testing.T) {
	g := NewBitget()
	defer g.Close()
	g.SetInstruments(BitgetSampleInstruments())
	st, body := bitgetGet(t, g.RESTURL()+"/api/v2/mix/market/tickers?productType=USDT-FUTURES")
	if st != 200 || body["code"] != "00000" || body["msg"] != "success" {
		t.Fatalf("tickers: %d %v", st, body)
	}
	rows := body["data"].([]any)
	if len(rows) != 3 || rows[0].(map[string]any)["holdingAmount"] != "50000" {
		t.Fatalf("tickers rows: %v", rows)
	}
	_, body = bitgetGet(t, g.RESTURL()+"/api/v2/mix/market/contracts?productType=coin-futures")
	if rows := body["data"].([]any); len(rows) != 2 || rows[1].(map[string]any)["symbolType"] != "delivery" {
		t.Fatalf("contracts: %v", body)
	}
	_, body = bitgetGet(t, g.RESTURL()+"/api/v2/mix/market/funding-time?symbol=PEPEUSDT&productType=USDT-FUTURES")
	if rows := body["data"].([]any); len(rows) != 1 || rows[0].(map[string]any)["ratePeriod"] != "4" {
		t.Fatalf("funding-time: %v", body)
	}
	if st, _ := bitgetGet(t, g.RESTURL()+"/api/v2/mix/market/tickers?productType=NOPE"); st != 400 {
		t.Errorf("bad productType: %d", st)
	}
	g.FailNext("/api/v2/mix/market/tickers", 1, 429, 2, "")
	if st, body := bitgetGet(t, g.RESTURL()+"/api/v2/mix/market/tickers?productType=USDT-FUTURES"); st != 429 || body["code"] != "429" {
		t.Errorf("FailNext: %d %v", st, body)
	}
	// The documented 20 requests per second per endpoint.
	for range 25 {
		bitgetGet(t, g.RESTURL()+"/api/v2/mix/market/contracts?productType=USDT-FUTURES")
	}
	if g.RateLimited() == 0 {
		t.Error("25 requests within a second were not rate limited")
	}
	if n := g.Requests("/api/v2/mix/market/tickers?productType=USDT-FUTURES"); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestBitgetWebSocket(t *testing.T) {
	g := NewBitget()
	defer g.Close()
	ws, _, err := websocket.DefaultDialer.Dial(g.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	read := func() string {
		t.Helper()
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("ping"))
	if m := read(); m != "pong" {
		t.Fatalf("ping answered %q", m)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"},{"instType":"nope","topic":"liquidation"}]}`))
	if m := read(); m != `{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"}}` {
		t.Fatalf("ack %s", m)
	}
	if m := read(); !strings.Contains(m, `"event":"error"`) || !strings.Contains(m, "30001") {
		t.Fatalf("error event %s", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	frame := BitgetLiquidationFrame(BitgetUSDTFutures, BitgetLiquidation{Symbol: "BTCUSDT", Side: "sell", Amount: 0.5, Price: 60000, TS: 1002})
	other := BitgetLiquidationFrame(BitgetCoinFutures, BitgetLiquidation{Symbol: "BTCUSD", Side: "buy", Amount: 1, Price: 60000})
	g.SetPlayTimeout(100 * time.Millisecond)
	got := g.Play([]Event{{Frame: frame}, {Frame: other}})
	if len(got) != 2 || got[0].Conns != 1 || got[1].Conns != 0 {
		t.Fatalf("deliveries %+v", got)
	}
	if m := read(); m != `{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[{"symbol":"BTCUSDT","price":"60000","amount":"0.5","side":"sell","ts":"1002"}]}` {
		t.Fatalf("push %s", m)
	}
	g.Disconnect()
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("connection survived Disconnect")
	}
}
