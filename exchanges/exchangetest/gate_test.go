package exchangetest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func gateGet(t *testing.T, g *Gate, path string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(g.RESTURL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

func gateRows(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal(body, &rows); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return rows
}

func gateLabel(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Label   string `json:"label"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Label == "" || e.Message == "" {
		t.Fatalf("not a Gate error body: %s", body)
	}
	return e.Label
}

func newTestGate(t *testing.T) *Gate {
	t.Helper()
	g := NewGate()
	g.SetContracts(GateSampleContracts())
	t.Cleanup(g.Close)
	return g
}

func TestGateREST(t *testing.T) {
	g := newTestGate(t)
	status, body, _ := gateGet(t, g, "/api/v4/futures/usdt/contracts")
	rows := gateRows(t, body)
	if status != 200 || len(rows) != 4 {
		t.Fatalf("usdt contracts: %d, %d rows", status, len(rows))
	}
	for k, want := range map[string]any{"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "mark_price": "60000.5",
		"funding_interval": float64(28800), "in_delisting": false} {
		if rows[0][k] != want {
			t.Errorf("contract %s = %v, want %v", k, rows[0][k], want)
		}
	}
	_, body, _ = gateGet(t, g, "/api/v4/futures/btc/contracts")
	if rows := gateRows(t, body); len(rows) != 1 || rows[0]["type"] != "inverse" {
		t.Errorf("btc contracts %v", rows)
	}
	_, body, _ = gateGet(t, g, "/api/v4/futures/usdt/tickers")
	rows = gateRows(t, body)
	if len(rows) != 3 {
		t.Fatalf("%d tickers, want 3 (no delisting contract)", len(rows))
	}
	for k, want := range map[string]any{"contract": "BTC_USDT", "total_size": "250000000", "mark_price": "60000.5", "funding_rate": "0.0001",
		"volume_24h_quote": "3200000000", "last": "60001"} {
		if rows[0][k] != want {
			t.Errorf("ticker %s = %v, want %v", k, rows[0][k], want)
		}
	}
	for _, tc := range []struct {
		path, label string
		status      int
	}{
		{"/api/v4/futures/eth/tickers", "INVALID_PARAM_VALUE", 400},
		{"/api/v4/futures/usdt/nothing", "NOT_FOUND", 404},
		{"/api/v4/futures/usdt/liq_orders?from=1000&to=4601", "INVALID_PARAM_VALUE", 400},
		{"/api/v4/futures/usdt/liq_orders?from=5000&to=4000", "INVALID_PARAM_VALUE", 400},
		{"/api/v4/futures/usdt/liq_orders?limit=1001", "INVALID_PARAM_VALUE", 400},
		{"/api/v4/futures/usdt/liq_orders?limit=0", "INVALID_PARAM_VALUE", 400},
		{"/api/v4/futures/usdt/liq_orders?from=x", "INVALID_PARAM_VALUE", 400},
		{"/api/v4/futures/usdt/liq_orders?contract=BTC_USD", "CONTRACT_NOT_FOUND", 400},
	} {
		status, body, _ := gateGet(t, g, tc.path)
		if status != tc.status || gateLabel(t, body) != tc.label {
			t.Errorf("%s: %d %s, want %d %s", tc.path, status, body, tc.status, tc.label)
		}
	}
	if status, _, _ := gateGet(t, g, "/api/v4/futures/usdt/liq_orders?from=1000&to=4600"); status != 200 {
		t.Errorf("a 3600 s window answered %d", status)
	}
	if n := g.Requests("/api/v4/futures/usdt/liq_orders"); n != 7 {
		t.Errorf("Requests = %d, want 7", n)
	}
}

func TestGateFaultsAndRateLimit(t *testing.T) {
	g := newTestGate(t)
	path := "/api/v4/futures/usdt/tickers"
	g.FailNext(path, 1, 429, 3, "")
	g.FailNext(path, 1, 502, 0, "")
	status, body, hdr := gateGet(t, g, path)
	if status != 429 || hdr.Get("Retry-After") != "3" || gateLabel(t, body) != "TOO_MANY_REQUESTS" {
		t.Errorf("first: %d %s %v", status, body, hdr)
	}
	if status, body, _ := gateGet(t, g, path); status != 502 || gateLabel(t, body) != "SERVER_ERROR" {
		t.Errorf("second: %d %s", status, body)
	}
	if status, _, _ := gateGet(t, g, path); status != 200 {
		t.Errorf("third: %d", status)
	}
	g.SetRateLimit(path, 2, time.Hour)
	status, body, _ = gateGet(t, g, path)
	if status != 429 || gateLabel(t, body) != "TOO_MANY_REQUESTS" {
		t.Errorf("over the limit: %d %s", status, body)
	}
	g.SetRateLimit(path, 0, 0)
	if status, _, _ := gateGet(t, g, path); status != 200 {
		t.Errorf("limit removed: %d", status)
	}
	g.SetLatency(path, 200*time.Millisecond)
	start := time.Now()
	gateGet(t, g, path)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("latency %v", d)
	}
}

type gateTestClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialGate(t *testing.T, g *Gate, settle string) *gateTestClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(g.WSURL(settle), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &gateTestClient{t, ws}
}

func (c *gateTestClient) send(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *gateTestClient) read() map[string]any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("%v: %s", err, data)
	}
	return m
}

const gateSubscribe = `{"time":1,"channel":"futures.public_liquidates","event":"subscribe","payload":["!all"]}`

func TestGateWebSocket(t *testing.T) {
	g := newTestGate(t)
	usdt := dialGate(t, g, GateUSDT)
	btc := dialGate(t, g, GateBTC)

	usdt.send(`{"time":1,"channel":"futures.ping"}`)
	if m := usdt.read(); m["channel"] != "futures.pong" || m["result"] != nil {
		t.Errorf("pong %v", m)
	}
	usdt.send(`{"time":1,"channel":"futures.public_liquidates","event":"subscribe","payload":["BTC_USD"]}`)
	if m := usdt.read(); m["error"] == nil || m["result"].(map[string]any)["status"] != "fail" {
		t.Errorf("a contract of another settle: %v", m)
	}
	g.RejectNextSubscribe(1)
	usdt.send(gateSubscribe)
	if m := usdt.read(); m["error"] == nil {
		t.Errorf("rejected subscribe: %v", m)
	}
	usdt.send(gateSubscribe)
	if m := usdt.read(); m["error"] != nil || m["result"].(map[string]any)["status"] != "success" || m["event"] != "subscribe" {
		t.Errorf("ack %v", m)
	}
	btc.send(`{"time":1,"channel":"futures.public_liquidates","event":"subscribe","payload":["BTC_USD"]}`)
	btc.read()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.WaitSubscribed(ctx, GateUSDT, GateBTC); err != nil {
		t.Fatal(err)
	}
	if g.Subscriptions() != 2 || g.Pings() != 1 {
		t.Errorf("subscriptions %d pings %d", g.Subscriptions(), g.Pings())
	}

	// Pushes go to the connection of their settle only.
	ms := time.Now().UnixMilli()
	d := g.Play([]Event{
		{Frame: GateLiquidationFrame(GateLiquidation{Contract: "BTC_USDT", Size: -5, Price: 60000, TimeMs: ms},
			GateLiquidation{Contract: "ETH_USDT", Size: 7, Price: 3000, TimeMs: ms + 1})},
		{Frame: GateLiquidationFrame(GateLiquidation{Contract: "BTC_USD", Size: 100, Price: 60010, TimeMs: ms + 2})},
	})
	if len(d) != 2 || d[0].Conns != 1 || d[1].Conns != 1 {
		t.Fatalf("delivered %+v", d)
	}
	m := usdt.read()
	res := m["result"].([]any)
	if m["event"] != "update" || len(res) != 2 || res[0].(map[string]any)["size"] != float64(-5) {
		t.Errorf("usdt push %v", m)
	}
	if m := btc.read(); m["result"].([]any)[0].(map[string]any)["contract"] != "BTC_USD" {
		t.Errorf("btc push %v", m)
	}

	// The history serves what was pushed.
	if h := g.History(GateUSDT); len(h) != 2 || h[0].Size != -5 || h[0].Settle != GateUSDT {
		t.Errorf("history %+v", h)
	}
	sec := ms / 1000
	_, body, _ := gateGet(t, g, "/api/v4/futures/usdt/liq_orders?from="+strconv.FormatInt(sec-10, 10)+"&to="+strconv.FormatInt(sec+10, 10))
	rows := gateRows(t, body)
	if len(rows) != 2 {
		t.Fatalf("liq_orders %s", body)
	}
	for _, r := range rows {
		if r["contract"] == "BTC_USDT" && (r["order_size"] != float64(-5) || r["size"] != float64(5) || r["order_price"] != "60000" || r["time"] != float64(sec)) {
			t.Errorf("row %v", r)
		}
	}
	_, body, _ = gateGet(t, g, "/api/v4/futures/usdt/liq_orders?contract=ETH_USDT&limit=1")
	if rows := gateRows(t, body); len(rows) != 1 || rows[0]["contract"] != "ETH_USDT" {
		t.Errorf("filtered %s", body)
	}

	// A gap: orders without subscribers still join the history.
	g.Disconnect()
	deadline := time.Now().Add(5 * time.Second)
	for g.Connections() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := g.Liquidate(GateLiquidationFrame(GateLiquidation{Contract: "PEPE_USDT", Size: -1, Price: 0.00001})); d.Conns != 0 {
		t.Errorf("gap push delivered to %d", d.Conns)
	}
	g.SetPlayTimeout(50 * time.Millisecond)
	ch := g.PlayAsync([]Event{{Frame: GateLiquidationFrame(GateLiquidation{Contract: "BTC_USDT", Size: 1, Price: 1})}})
	if d := <-ch; len(d) != 1 || d[0].Conns != 0 {
		t.Errorf("PlayAsync without subscribers %+v", d)
	}
	if n := len(g.History(GateUSDT)); n != 4 {
		t.Errorf("history holds %d usdt orders, want 4", n)
	}
	if n := len(g.Deliveries()); n != 4 {
		t.Errorf("%d deliveries", n)
	}
}

func TestGateRefuseAndAnswerPings(t *testing.T) {
	g := newTestGate(t)
	g.SetRefuseConnections(true)
	if _, resp, err := websocket.DefaultDialer.Dial(g.WSURL(GateUSDT), nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("refused dial: %v", err)
	}
	g.SetRefuseConnections(false)
	c := dialGate(t, g, GateUSDT)
	g.SetAnswerPings(false)
	c.send(`{"time":1,"channel":"futures.ping"}`)
	c.send(`garbage`)
	if m := c.read(); m["error"] == nil {
		t.Errorf("garbage answered %v", m)
	}
	if g.Pings() != 1 || g.TotalConnections() != 1 {
		t.Errorf("pings %d connections %d", g.Pings(), g.TotalConnections())
	}
}

func TestGateLiquidationFrame(t *testing.T) {
	f := GateLiquidationFrame(GateLiquidation{Contract: "BTC_USD", Size: -124, Price: 215.1, TimeMs: 1541486601123})
	want := `"result":[{"price":215.1,"size":-124,"time_ms":1541486601123,"contract":"BTC_USD"}]`
	if !strings.Contains(string(f), want) || !strings.Contains(string(f), `"channel":"futures.public_liquidates","event":"update"`) {
		t.Errorf("frame %s", f)
	}
	orders, ok := gateOrdersOf([]byte(`{"channel":"futures.public_liquidates","event":"update","result":[{"price":1,"size":"NaN","time_ms":1,"contract":"A"},{"price":1,"size":0,"time_ms":1,"contract":"A"},{"price":2,"size":3,"time_ms":4,"contract":"B"}]}`))
	if !ok || len(orders) != 1 || orders[0].Contract != "B" {
		t.Errorf("orders %+v", orders)
	}
}

func TestGateCloseStopsPlay(t *testing.T) {
	g := NewGate()
	g.SetContracts(GateSampleContracts())
	ch := g.PlayAsync([]Event{{Frame: GateLiquidationFrame(GateLiquidation{Contract: "BTC_USDT", Size: 1, Price: 1})}})
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { g.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked by a waiting Play")
	}
	<-ch
}
