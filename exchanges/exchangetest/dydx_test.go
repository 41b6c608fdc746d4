package exchangetest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dydxRead(t *testing.T, c *websocket.Conn) map[string]any {
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

func TestDydxFake(t *testing.T) {
	d := NewDydx()
	defer d.Close()
	d.SetMarkets(DydxSampleMarkets())
	d.SetHistory("BTC-USD", []DydxTrade{{ID: "h", Side: "SELL", Size: 1, Price: 2, Liquidation: true}})

	resp, err := http.Get(d.RESTURL() + DydxMarketsPath)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Markets map[string]map[string]any `json:"markets"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	_ = resp.Body.Close()
	if err != nil || len(body.Markets) != 5 || body.Markets["BTC-USD"]["oraclePrice"] != "65000.5" || body.Markets["OLD-USD"]["status"] != "FINAL_SETTLEMENT" {
		t.Fatalf("markets %v %v", err, body.Markets["BTC-USD"])
	}
	d.FailNext(DydxMarketsPath, 1, http.StatusTooManyRequests, 3, "")
	resp, err = http.Get(d.RESTURL() + DydxMarketsPath)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || d.Requests(DydxMarketsPath) != 2 {
		t.Fatalf("fault %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	c, _, err := websocket.DefaultDialer.Dial(d.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if m := dydxRead(t, c); m["type"] != "connected" || m["message_id"] != 0.0 {
		t.Fatalf("greeting %v", m)
	}
	send := func(s string) {
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}`)
	m := dydxRead(t, c)
	trades := m["contents"].(map[string]any)["trades"].([]any)
	if m["type"] != "subscribed" || m["id"] != "BTC-USD" || len(trades) != 1 {
		t.Fatalf("subscribed %v", m)
	}
	send(`{"type":"subscribe","channel":"v4_trades","id":"NOPE-USD"}`)
	if m := dydxRead(t, c); m["type"] != "error" {
		t.Fatalf("unknown market answered %v", m)
	}
	send(`{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}`)
	if m := dydxRead(t, c); m["type"] != "error" {
		t.Fatalf("repeat subscription answered %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := d.PlayAsync([]Event{{Frame: DydxTradesFrame("BTC-USD", DydxTrade{Side: "SELL", Size: 1, Price: 2, Liquidation: true})}})
	m = dydxRead(t, c)
	if m["type"] != "channel_data" || m["id"] != "BTC-USD" || m["connection_id"] == "" || m["message_id"] != 4.0 {
		t.Fatalf("push %v", m)
	}
	if dl := <-got; len(dl) != 1 || dl[0].Conns != 1 {
		t.Fatalf("delivered %v", dl)
	}
	send(`{"type":"unsubscribe","channel":"v4_trades","id":"BTC-USD"}`)
	if m := dydxRead(t, c); m["type"] != "unsubscribed" {
		t.Fatalf("unsubscribe answered %v", m)
	}
	d.SetChannelLimit(0)
	send(`{"type":"subscribe","channel":"v4_trades","id":"ETH-USD"}`)
	if m := dydxRead(t, c); m["type"] != "error" {
		t.Fatalf("over the limit answered %v", m)
	}
	d.Disconnect()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("connection survived Disconnect")
	}
}

func TestDydxFakePings(t *testing.T) {
	d := NewDydx()
	defer d.Close()
	d.SetPingInterval(20 * time.Millisecond)
	c, _, err := websocket.DefaultDialer.Dial(d.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	pinged := make(chan struct{}, 1)
	c.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return c.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pinged:
	case <-time.After(5 * time.Second):
		t.Fatal("no server ping")
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.Pongs() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d.Pongs() == 0 {
		t.Fatal("pong not recorded")
	}
}

// A killed connection neither counts as subscribed nor receives frames,
// even before its read loop has ended and removed it.
func TestDydxFakeDisconnectForgetsSubscriptions(t *testing.T) {
	d := NewDydx()
	defer d.Close()
	d.SetMarkets(DydxSampleMarkets())
	c, _, err := websocket.DefaultDialer.Dial(d.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dydxRead(t, c) // connected
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}`))
	if m := dydxRead(t, c); m["type"] != "subscribed" {
		t.Fatalf("subscribed %v", m)
	}
	d.Disconnect()
	if s := d.Subscriptions(); len(s) != 0 {
		t.Errorf("subscriptions right after Disconnect: %v", s)
	}
	d.SetPlayTimeout(50 * time.Millisecond)
	if dl := d.Play([]Event{{Frame: DydxTradesFrame("BTC-USD", DydxTrade{Side: "SELL", Size: 1, Price: 2, Liquidation: true})}}); len(dl) != 1 || dl[0].Conns != 0 {
		t.Errorf("a frame after Disconnect was delivered: %+v", dl)
	}
}
