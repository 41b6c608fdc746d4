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

func deribitGet(t *testing.T, url string) (int, map[string]json.RawMessage, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v: %s", url, err, b)
	}
	return resp.StatusCode, m, resp.Header
}

func TestDeribitREST(t *testing.T) {
	d := NewDeribit()
	defer d.Close()
	d.SetInstruments(DeribitSampleInstruments())

	st, m, _ := deribitGet(t, d.RESTURL()+DeribitInstrumentsPath+"?currency=BTC&kind=future")
	if st != 200 || string(m["jsonrpc"]) != `"2.0"` || m["usIn"] == nil || m["testnet"] == nil {
		t.Fatalf("envelope %d %v", st, m)
	}
	var rows []map[string]any
	if err := json.Unmarshal(m["result"], &rows); err != nil || len(rows) != 2 {
		t.Fatalf("BTC instruments: %v %v", rows, err)
	}
	if rows[0]["instrument_name"] != "BTC-PERPETUAL" || rows[0]["instrument_type"] != "reversed" || rows[0]["contract_size"] != 10.0 ||
		rows[0]["settlement_period"] != "perpetual" || rows[0]["kind"] != "future" {
		t.Errorf("row %v", rows[0])
	}
	_, m, _ = deribitGet(t, d.RESTURL()+DeribitInstrumentsPath+"?currency=USDC&kind=future")
	_ = json.Unmarshal(m["result"], &rows)
	if len(rows) != 2 || rows[0]["instrument_type"] != "linear" || rows[0]["base_currency"] != "BTC" {
		t.Errorf("USDC rows %v", rows)
	}
	_, m, _ = deribitGet(t, d.RESTURL()+DeribitInstrumentsPath+"?currency=BTC&kind=option")
	if string(m["result"]) != "[]" {
		t.Errorf("options: %s", m["result"])
	}
	_, m, _ = deribitGet(t, d.RESTURL()+DeribitBookSummaryPath+"?currency=BTC&kind=future")
	_ = json.Unmarshal(m["result"], &rows)
	if len(rows) != 2 || rows[0]["funding_8h"] != 0.00012 || rows[0]["open_interest"] != 1.2e9 {
		t.Errorf("summary %v", rows)
	}
	if _, ok := rows[1]["funding_8h"]; ok {
		t.Errorf("dated future has funding: %v", rows[1])
	}
	st, m, _ = deribitGet(t, d.RESTURL()+DeribitBookSummaryPath+"?kind=future")
	if st != 400 || !strings.Contains(string(m["error"]), `-32602`) {
		t.Errorf("missing currency: %d %v", st, m)
	}
	d.FailNext(DeribitBookSummaryPath+"?currency=ETH", 1, 429, 3, "")
	st, m, h := deribitGet(t, d.RESTURL()+DeribitBookSummaryPath+"?currency=ETH&kind=future")
	if st != 429 || h.Get("Retry-After") != "3" || !strings.Contains(string(m["error"]), "10028") {
		t.Errorf("fault: %d %v %v", st, h, m)
	}
	if d.Requests(DeribitBookSummaryPath) != 3 || d.Requests(DeribitBookSummaryPath+"?currency=ETH") != 1 {
		t.Errorf("requests %d", d.Requests(DeribitBookSummaryPath))
	}
}

func deribitDial(t *testing.T, d *Deribit) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(d.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func deribitRead(t *testing.T, c *websocket.Conn) map[string]json.RawMessage {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

func TestDeribitWebSocket(t *testing.T) {
	d := NewDeribit()
	defer d.Close()
	c := deribitDial(t, d)
	ch := DeribitTradesChannel("future", "BTC")
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":7,"method":"public/subscribe","params":{"channels":["`+ch+`","nonsense"]}}`))
	m := deribitRead(t, c)
	if string(m["id"]) != "7" || string(m["result"]) != `["`+ch+`"]` {
		t.Fatalf("subscribe reply %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.WaitSubscribed(ctx, ch); err != nil {
		t.Fatal(err)
	}
	d.RejectNextSubscribe(1)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":8,"method":"public/subscribe","params":{"channels":["`+ch+`"]}}`))
	if m := deribitRead(t, c); string(m["id"]) != "8" || !strings.Contains(string(m["error"]), "11050") {
		t.Errorf("rejected subscribe %v", m)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":9,"method":"public/set_heartbeat","params":{"interval":5}}`))
	if m := deribitRead(t, c); !strings.Contains(string(m["error"]), "-32602") {
		t.Errorf("interval 5 accepted: %v", m)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":10,"method":"nope","params":{}}`))
	if m := deribitRead(t, c); !strings.Contains(string(m["error"]), "-32601") {
		t.Errorf("unknown method %v", m)
	}

	// Routing: a frame of the subscribed channel arrives; another channel's does not.
	other := DeribitTradesFrame(DeribitTradesChannel("future", "ETH"), DeribitTrade{InstrumentName: "ETH-PERPETUAL", Direction: "buy", Amount: 1, Price: 1})
	mine := DeribitTradesFrame(ch, DeribitTrade{InstrumentName: "BTC-PERPETUAL", Direction: "sell", Amount: 100, Price: 60000, Liquidation: "T"})
	d.SetPlayTimeout(100 * time.Millisecond)
	got := d.Play([]Event{{Frame: other}, {Frame: mine}})
	if len(got) != 2 || got[0].Conns != 0 || got[1].Conns != 1 {
		t.Fatalf("deliveries %+v", got)
	}
	m = deribitRead(t, c)
	var p struct {
		Channel string           `json:"channel"`
		Data    []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(m["params"], &p); err != nil || string(m["method"]) != `"subscription"` || p.Channel != ch ||
		len(p.Data) != 1 || p.Data[0]["liquidation"] != "T" || p.Data[0]["direction"] != "sell" || p.Data[0]["trade_id"] == "" {
		t.Errorf("push %v %+v", m, p)
	}
	if _, ok := deribitTradeFields(other)["liquidation"]; ok {
		t.Error("a non-liquidation trade carries liquidation")
	}
}

func deribitTradeFields(frame []byte) map[string]any {
	var n struct {
		Params struct {
			Data []map[string]any `json:"data"`
		} `json:"params"`
	}
	_ = json.Unmarshal(frame, &n)
	return n.Params.Data[0]
}

func TestDeribitHeartbeat(t *testing.T) {
	d := NewDeribit()
	defer d.Close()
	d.SetHeartbeatPeriod(100 * time.Millisecond)
	d.SetTestWait(300 * time.Millisecond)

	// A client that answers test_request with public/test stays connected.
	good := deribitDial(t, d)
	_ = good.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":10}}`))
	if m := deribitRead(t, good); string(m["result"]) != `"ok"` {
		t.Fatalf("set_heartbeat %v", m)
	}
	for range 3 {
		m := deribitRead(t, good)
		if string(m["method"]) != `"heartbeat"` || !strings.Contains(string(m["params"]), "test_request") {
			t.Fatalf("expected test_request, got %v", m)
		}
		_ = good.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":2,"method":"public/test","params":{}}`))
		if m := deribitRead(t, good); !strings.Contains(string(m["result"]), "version") {
			t.Fatalf("public/test reply %v", m)
		}
	}

	// A client that does not answer is closed.
	bad := deribitDial(t, d)
	_ = bad.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":10}}`))
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	var err error
	for err == nil {
		_, _, err = bad.ReadMessage()
	}
	if strings.Contains(err.Error(), "timeout") {
		t.Fatalf("not closed: %v", err)
	}
	_, reqs, tests, closed := d.HeartbeatStats()
	if closed < 1 || reqs < 4 || tests < 3 {
		t.Errorf("stats requests=%d tests=%d closed=%d", reqs, tests, closed)
	}
}
