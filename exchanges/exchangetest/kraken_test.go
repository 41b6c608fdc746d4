package exchangetest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func krakenRead(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func krakenGet(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp
}

func TestKrakenFakeREST(t *testing.T) {
	k := NewKraken()
	defer k.Close()
	k.SetProducts(KrakenSampleProducts())
	var inst struct {
		Result      string           `json:"result"`
		Instruments []map[string]any `json:"instruments"`
	}
	krakenGet(t, k.RESTURL()+KrakenInstrumentsPath, &inst)
	if inst.Result != "success" || len(inst.Instruments) != 7 || inst.Instruments[0]["symbol"] != "PF_XBTUSD" ||
		inst.Instruments[0]["contractSize"] != 1.0 || inst.Instruments[0]["type"] != "flexible_futures" || inst.Instruments[5]["tradeable"] != false {
		t.Fatalf("instruments %+v", inst)
	}
	var tick struct {
		Result  string           `json:"result"`
		Tickers []map[string]any `json:"tickers"`
	}
	krakenGet(t, k.RESTURL()+KrakenTickersPath, &tick)
	if tick.Result != "success" || len(tick.Tickers) != 7 || tick.Tickers[0]["relativeFundingRate"] != 0.00001 ||
		tick.Tickers[0]["markPrice"] != 65000.5 || tick.Tickers[3]["fundingRate"] != nil || tick.Tickers[4]["suspended"] != true {
		t.Fatalf("tickers %+v", tick.Tickers)
	}
	if _, ok := tick.Tickers[1]["relativeFundingRate"]; ok {
		t.Error("PF_ETHUSD serves relativeFundingRate")
	}
	k.FailNext(KrakenTickersPath, 1, http.StatusTooManyRequests, 3, "")
	resp := krakenGet(t, k.RESTURL()+KrakenTickersPath, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || k.Requests(KrakenTickersPath) != 2 {
		t.Fatalf("fault %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestKrakenFakeWS(t *testing.T) {
	k := NewKraken()
	defer k.Close()
	k.SetProducts(KrakenSampleProducts())
	k.SetHistory("PI_XBTUSD", []KrakenTrade{{Side: "sell", Type: "liquidation", Qty: 10, Price: 2}})
	k.SetHeartbeatInterval(50 * time.Millisecond)
	c, _, err := websocket.DefaultDialer.Dial(k.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := krakenRead(t, c); m["event"] != "info" || m["version"] != 1.0 {
		t.Fatalf("greeting %v", m)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"subscribe","feed":"trade","product_ids":["PI_XBTUSD"]}`))
	if m := krakenRead(t, c); m["event"] != "subscribed" || m["feed"] != "trade" {
		t.Fatalf("ack %v", m)
	}
	if m := krakenRead(t, c); m["feed"] != "trade_snapshot" || m["product_id"] != "PI_XBTUSD" || len(m["trades"].([]any)) != 1 {
		t.Fatalf("snapshot %v", m)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"subscribe","feed":"trade","product_ids":["PI_NOPEUSD"]}`))
	if m := krakenRead(t, c); m["event"] != "error" {
		t.Fatalf("unknown product %v", m)
	}
	k.RejectNextSubscribe(1)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"subscribe","feed":"trade","product_ids":["PF_XBTUSD"]}`))
	if m := krakenRead(t, c); m["event"] != "subscribed_failed" {
		t.Fatalf("rejection %v", m)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"subscribe","feed":"heartbeat"}`))
	if m := krakenRead(t, c); m["event"] != "subscribed" || m["feed"] != "heartbeat" {
		t.Fatalf("heartbeat ack %v", m)
	}
	if m := krakenRead(t, c); m["feed"] != "heartbeat" {
		t.Fatalf("heartbeat %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.WaitSubscribed(ctx, "PI_XBTUSD"); err != nil {
		t.Fatal(err)
	}
	done := k.PlayAsync([]Event{
		{Frame: KrakenTradeFrame(KrakenTrade{Product: "PF_XBTUSD", Side: "buy", Type: "liquidation", Qty: 1, Price: 2})}, // nobody subscribed
		{Frame: KrakenTradeFrame(KrakenTrade{Product: "PI_XBTUSD", Side: "buy", Type: "liquidation", Qty: 1000, Price: 65000, Seq: 7})},
	})
	k.SetPlayTimeout(100 * time.Millisecond)
	for {
		m := krakenRead(t, c)
		if m["feed"] == "heartbeat" {
			continue
		}
		if m["feed"] != "trade" || m["product_id"] != "PI_XBTUSD" || m["type"] != "liquidation" || m["qty"] != 1000.0 || m["seq"] != 7.0 {
			t.Fatalf("trade %v", m)
		}
		break
	}
	dl := <-done
	if len(dl) != 2 || dl[1].Conns != 1 {
		t.Fatalf("deliveries %+v", dl)
	}
}

func TestKrakenFakeIdleDisconnect(t *testing.T) {
	k := NewKraken()
	defer k.Close()
	k.SetIdleTimeout(200 * time.Millisecond)
	c, _, err := websocket.DefaultDialer.Dial(k.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	krakenRead(t, c) // info
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("connection stayed open without client messages")
	}
	if k.IdleDisconnects() != 1 {
		t.Errorf("idle disconnects %d", k.IdleDisconnects())
	}
}

// A killed connection neither counts as subscribed nor receives frames,
// even before its read loop has ended and removed it.
func TestKrakenFakeDisconnectForgetsSubscriptions(t *testing.T) {
	k := NewKraken()
	defer k.Close()
	k.SetProducts(KrakenSampleProducts())
	c, _, err := websocket.DefaultDialer.Dial(k.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	krakenRead(t, c) // info
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"subscribe","feed":"trade","product_ids":["PI_XBTUSD"]}`))
	if m := krakenRead(t, c); m["event"] != "subscribed" {
		t.Fatalf("ack %v", m)
	}
	k.Disconnect()
	if s := k.Subscriptions(); len(s) != 0 {
		t.Errorf("subscriptions right after Disconnect: %v", s)
	}
	k.SetPlayTimeout(50 * time.Millisecond)
	if dl := k.Play([]Event{{Frame: KrakenTradeFrame(KrakenTrade{Product: "PI_XBTUSD", Side: "sell", Type: "liquidation", Qty: 1, Price: 2})}}); len(dl) != 1 || dl[0].Conns != 0 {
		t.Errorf("a frame after Disconnect was delivered: %+v", dl)
	}
}
