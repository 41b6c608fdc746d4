package exchangetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func bybitNew(t *testing.T) *Bybit {
	t.Helper()
	b := NewBybit()
	b.SetSymbols(BybitSampleSymbols())
	t.Cleanup(b.Close)
	return b
}

func bybitGet(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
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

// bybitResult fetches u, expects HTTP 200 with retCode 0 and returns result.
func bybitResult(t *testing.T, u string) map[string]any {
	t.Helper()
	status, _, body := bybitGet(t, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", u, status, body)
	}
	var env map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
	if env["retCode"] != 0.0 || env["retMsg"] != "OK" {
		t.Fatalf("GET %s: envelope %v", u, env)
	}
	if _, ok := env["time"].(float64); !ok {
		t.Errorf("envelope without time: %v", env)
	}
	if _, ok := env["retExtInfo"].(map[string]any); !ok {
		t.Errorf("envelope without retExtInfo: %v", env)
	}
	res, ok := env["result"].(map[string]any)
	if !ok {
		t.Fatalf("GET %s: result %T", u, env["result"])
	}
	return res
}

// bybitRetCode fetches u and returns HTTP status, retCode and retMsg.
func bybitRetCode(t *testing.T, u string) (int, float64, string) {
	t.Helper()
	status, _, body := bybitGet(t, u)
	var env struct {
		RetCode float64 `json:"retCode"`
		RetMsg  string  `json:"retMsg"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
	return status, env.RetCode, env.RetMsg
}

func bybitList(t *testing.T, res map[string]any) []map[string]any {
	t.Helper()
	raw, ok := res["list"].([]any)
	if !ok {
		t.Fatalf("list %T", res["list"])
	}
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		out = append(out, r.(map[string]any))
	}
	return out
}

func bybitWantString(t *testing.T, obj map[string]any, key, want string) {
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

func TestBybitURLs(t *testing.T) {
	b := bybitNew(t)
	if !strings.HasPrefix(b.RESTURL(), "http://127.0.0.1:") {
		t.Errorf("REST URL %s", b.RESTURL())
	}
	if got, want := b.LinearWSURL(), "ws"+strings.TrimPrefix(b.RESTURL(), "http")+"/v5/public/linear"; got != want {
		t.Errorf("linear WS URL %s, want %s", got, want)
	}
	if !strings.HasSuffix(b.InverseWSURL(), "/v5/public/inverse") {
		t.Errorf("inverse WS URL %s", b.InverseWSURL())
	}
	if status, _, _ := bybitGet(t, b.RESTURL()+"/v5/public/spot"); status != http.StatusNotFound {
		t.Errorf("spot endpoint status %d", status)
	}
}

func TestBybitInstrumentsPagination(t *testing.T) {
	b := bybitNew(t)
	b.SetPageSize(2)
	base := b.RESTURL() + "/v5/market/instruments-info?category=linear&limit=1000"
	var symbols []string
	cursor := ""
	for page := 0; page < 10; page++ {
		u := base
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		res := bybitResult(t, u)
		if res["category"] != "linear" {
			t.Errorf("category %v", res["category"])
		}
		rows := bybitList(t, res)
		if len(rows) > 2 {
			t.Fatalf("page of %d rows with page size 2", len(rows))
		}
		for _, r := range rows {
			symbols = append(symbols, r["symbol"].(string))
			bybitWantString(t, r, "status", "Trading")
			bybitWantString(t, r, "contractType", "*")
			bybitWantString(t, r, "baseCoin", "*")
			bybitWantString(t, r, "launchTime", "*")
			if _, ok := r["fundingInterval"].(float64); !ok {
				t.Errorf("fundingInterval %T, want a number", r["fundingInterval"])
			}
			if _, ok := r["lotSizeFilter"].(map[string]any); !ok {
				t.Errorf("lotSizeFilter missing")
			}
		}
		cursor, _ = res["nextPageCursor"].(string)
		if cursor == "" {
			break
		}
		// The documented form: a percent-encoded query string.
		if !strings.HasPrefix(cursor, "first%3D") || !strings.Contains(cursor, "%26last%3D") {
			t.Errorf("cursor %q", cursor)
		}
	}
	if got := strings.Join(symbols, ","); !strings.HasPrefix(got, "BTCUSDT,ETHUSDT,1000PEPEUSDT,BTCPERP,BTC-") || len(symbols) != 5 {
		t.Errorf("paged symbols %s", got)
	}
	// A cursor that is not escaped as a query value is not the token.
	if _, code, _ := bybitRetCode(t, base+"&cursor="+bybitCursor("BTCUSDT", "ETHUSDT")); code != 10001 {
		t.Errorf("unescaped cursor: retCode %v, want 10001", code)
	}
	if _, code, _ := bybitRetCode(t, base+"&cursor=bogus"); code != 10001 {
		t.Errorf("bogus cursor: retCode %v", code)
	}
	if _, code, _ := bybitRetCode(t, b.RESTURL()+"/v5/market/instruments-info?category=linear&limit=1001"); code != 10001 {
		t.Errorf("limit 1001: retCode %v", code)
	}
	if status, code, _ := bybitRetCode(t, b.RESTURL()+"/v5/market/instruments-info?category=spotx"); status != 200 || code != 10001 {
		t.Errorf("bad category: %d %v", status, code)
	}
	// Only Trading symbols by default; other statuses on request.
	b.UpdateSymbol(BybitLinear, "ETHUSDT", func(s *BybitSymbol) { s.Status = "PreLaunch" })
	b.SetPageSize(0)
	rows := bybitList(t, bybitResult(t, base))
	if len(rows) != 4 {
		t.Errorf("%d Trading rows, want 4", len(rows))
	}
	rows = bybitList(t, bybitResult(t, base+"&status=PreLaunch"))
	if len(rows) != 1 || rows[0]["symbol"] != "ETHUSDT" {
		t.Errorf("PreLaunch rows %v", rows)
	}
	rows = bybitList(t, bybitResult(t, b.RESTURL()+"/v5/market/instruments-info?category=inverse"))
	if len(rows) != 3 || rows[0]["contractType"] != "InversePerpetual" || rows[0]["settleCoin"] != "BTC" {
		t.Errorf("inverse rows %v", rows)
	}
}

func TestBybitTickers(t *testing.T) {
	b := bybitNew(t)
	res := bybitResult(t, b.RESTURL()+"/v5/market/tickers?category=linear")
	rows := bybitList(t, res)
	if len(rows) != 5 {
		t.Fatalf("%d linear tickers", len(rows))
	}
	btc := rows[0]
	bybitWantString(t, btc, "symbol", "BTCUSDT")
	bybitWantString(t, btc, "markPrice", "60000.10")
	bybitWantString(t, btc, "openInterest", "100000.5")
	bybitWantString(t, btc, "singleOpenInterest", "50000.25")
	bybitWantString(t, btc, "singleOpenInterestValue", "3000020000.03")
	bybitWantString(t, btc, "turnover24h", "9000030000")
	bybitWantString(t, btc, "fundingRate", "0.0001")
	bybitWantString(t, btc, "fundingIntervalHour", "8")
	bybitWantString(t, btc, "nextFundingTime", "*")
	pepe := rows[2]
	bybitWantString(t, pepe, "fundingIntervalHour", "4")
	fut := rows[4]
	bybitWantString(t, fut, "fundingRate", "")
	bybitWantString(t, fut, "nextFundingTime", "0")
	bybitWantString(t, fut, "fundingIntervalHour", "")

	b.UpdateSymbol(BybitLinear, "BTCUSDT", func(s *BybitSymbol) { s.LegacyTicker = true })
	btc = bybitList(t, bybitResult(t, b.RESTURL()+"/v5/market/tickers?category=linear&symbol=BTCUSDT"))[0]
	for _, k := range []string{"singleOpenInterest", "singleOpenInterestValue", "fundingIntervalHour", "fundingCap"} {
		if _, ok := btc[k]; ok {
			t.Errorf("legacy ticker has %s", k)
		}
	}
	if _, code, msg := bybitRetCode(t, b.RESTURL()+"/v5/market/tickers?category=linear&symbol=NOPE"); code != 10001 || msg == "" {
		t.Errorf("unknown symbol: %v %q", code, msg)
	}
	inv := bybitList(t, bybitResult(t, b.RESTURL()+"/v5/market/tickers?category=inverse"))
	if len(inv) != 3 || inv[0]["volume24h"] != "13830000" || inv[0]["openInterest"] != "480000000" {
		t.Errorf("inverse tickers %v", inv)
	}
}

func TestBybitFaultsAndRequests(t *testing.T) {
	b := bybitNew(t)
	tick := b.RESTURL() + "/v5/market/tickers?category="
	b.FailNext("/v5/market/tickers?category=inverse", 1, 429, 2, "")
	b.FailNext("/v5/market/tickers", 1, 503, 0, "<html>maintenance</html>")
	b.FailNextRetCode("/v5/market/tickers", 1, 10006, "Too many visits!")

	status, _, body := bybitGet(t, tick+"linear")
	if status != 503 || string(body) != "<html>maintenance</html>" {
		t.Errorf("linear: %d %s", status, body)
	}
	status, hdr, body := bybitGet(t, tick+"inverse")
	if status != 429 || hdr.Get("Retry-After") != "2" || !strings.Contains(string(body), `"retCode":10006`) {
		t.Errorf("inverse: %d %v %s", status, hdr, body)
	}
	if status, code, msg := bybitRetCode(t, tick+"inverse"); status != 200 || code != 10006 || msg != "Too many visits!" {
		t.Errorf("retCode fault: %d %v %q", status, code, msg)
	}
	bybitResult(t, tick+"inverse")
	if n := b.Requests("/v5/market/tickers"); n != 4 {
		t.Errorf("Requests = %d, want 4", n)
	}
	if n := b.Requests("/v5/market/tickers?category=inverse"); n != 3 {
		t.Errorf("inverse requests = %d, want 3", n)
	}
	b.FailNext("/v5/market/tickers", 1, 403, 0, "")
	if status, _, body := bybitGet(t, tick+"linear"); status != 403 || string(body) != "access too frequent" {
		t.Errorf("403: %d %s", status, body)
	}

	b.SetLatency("/v5/market/tickers", 200*time.Millisecond)
	start := time.Now()
	bybitResult(t, tick+"linear")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("latency not applied: %v", d)
	}
	b.SetLatency("/v5/market/tickers", 0)
}

func TestBybitIPLimit(t *testing.T) {
	b := bybitNew(t)
	b.SetIPLimit(3, time.Minute)
	b.SetBanDuration(300 * time.Millisecond)
	u := b.RESTURL() + "/v5/market/tickers?category=linear"
	for i := range 3 {
		if status, _, _ := bybitGet(t, u); status != 200 {
			t.Fatalf("request %d: status %d", i, status)
		}
	}
	if status, _, body := bybitGet(t, u); status != 403 || string(body) != "access too frequent" {
		t.Fatalf("over the limit: %d %s", status, body)
	}
	b.SetIPLimit(100, time.Minute)
	if status, _, _ := bybitGet(t, u); status != 403 {
		t.Errorf("during the ban: %d", status)
	}
	time.Sleep(350 * time.Millisecond)
	if status, _, _ := bybitGet(t, u); status != 200 {
		t.Errorf("after the ban: %d", status)
	}
}

func bybitDial(t *testing.T, u string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	c, resp, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func bybitRead(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	mt, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		t.Fatalf("message type %d", mt)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	return v
}

func bybitSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func bybitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bybitWantReply checks the documented linear/inverse reply shape.
func bybitWantReply(t *testing.T, v map[string]any, success bool, retMsg, reqID, op string) {
	t.Helper()
	if v["success"] != success {
		t.Errorf("success = %v, want %v (%v)", v["success"], success, v)
	}
	bybitWantString(t, v, "ret_msg", retMsg)
	bybitWantString(t, v, "conn_id", "*")
	bybitWantString(t, v, "req_id", reqID)
	bybitWantString(t, v, "op", op)
	if len(v) != 5 {
		t.Errorf("reply has %d members, want 5: %v", len(v), v)
	}
}

func TestBybitWSSubscribeAndPing(t *testing.T) {
	b := bybitNew(t)
	c := bybitDial(t, b.LinearWSURL())
	bybitSend(t, c, `{"req_id":"test","op":"subscribe","args":["allLiquidation.BTCUSDT","allLiquidation.ETHUSDT"]}`)
	bybitWantReply(t, bybitRead(t, c), true, "", "test", "subscribe")
	if err := b.WaitSubscribed(bybitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	bybitSend(t, c, `{"op":"ping"}`)
	bybitWantReply(t, bybitRead(t, c), true, "pong", "", "ping")
	bybitSend(t, c, `{"req_id":"100001","op":"ping"}`)
	bybitWantReply(t, bybitRead(t, c), true, "pong", "100001", "ping")
	if b.Pings() != 2 {
		t.Errorf("pings %d", b.Pings())
	}

	// Errors: an inverse symbol on the linear endpoint, an unknown topic
	// family, a topic already held.
	bybitSend(t, c, `{"req_id":"e1","op":"subscribe","args":["allLiquidation.BTCUSD"]}`)
	bybitWantReply(t, bybitRead(t, c), false, "error:handler not found,topic:allLiquidation.BTCUSD", "e1", "subscribe")
	bybitSend(t, c, `{"req_id":"e2","op":"subscribe","args":["nosuch.BTCUSDT"]}`)
	bybitWantReply(t, bybitRead(t, c), false, "error:handler not found,topic:nosuch.BTCUSDT", "e2", "subscribe")
	bybitSend(t, c, `{"req_id":"e3","op":"subscribe","args":["allLiquidation.BTCUSDT","tickers.BTCUSDT"]}`)
	bybitWantReply(t, bybitRead(t, c), false, "error:already subscribed,topic:allLiquidation.BTCUSDT", "e3", "subscribe")
	bybitSend(t, c, `{"op":"subscribe","args":[]}`)
	bybitWantReply(t, bybitRead(t, c), false, "*", "", "subscribe")
	bybitSend(t, c, `not json`)
	if v := bybitRead(t, c); v["success"] != false {
		t.Errorf("garbage request: %v", v)
	}
	topics := b.Topics(BybitLinear)
	if len(topics) != 3 || topics["allLiquidation.BTCUSDT"] != 1 || topics["tickers.BTCUSDT"] != 1 {
		t.Errorf("topics %v", topics)
	}

	// Too many args per request when a limit is set.
	b.SetMaxArgs(1)
	bybitSend(t, c, `{"req_id":"m","op":"subscribe","args":["allLiquidation.1000PEPEUSDT","allLiquidation.BTCPERP"]}`)
	bybitWantReply(t, bybitRead(t, c), false, "error:args count 2 exceeds the limit of 1", "m", "subscribe")
	if b.MaxArgsSeen() != 2 {
		t.Errorf("MaxArgsSeen %d", b.MaxArgsSeen())
	}
	b.SetMaxArgs(0)

	// Scripted rejection.
	b.RejectNextSubscribe(1)
	bybitSend(t, c, `{"req_id":"r","op":"subscribe","args":["allLiquidation.BTCPERP"]}`)
	bybitWantReply(t, bybitRead(t, c), false, "error:handler not found,topic:allLiquidation.BTCPERP", "r", "subscribe")
	bybitSend(t, c, `{"req_id":"r2","op":"subscribe","args":["allLiquidation.BTCPERP"]}`)
	bybitWantReply(t, bybitRead(t, c), true, "", "r2", "subscribe")

	// Unsubscribe.
	bybitSend(t, c, `{"req_id":"u","op":"unsubscribe","args":["allLiquidation.ETHUSDT"]}`)
	bybitWantReply(t, bybitRead(t, c), true, "", "u", "unsubscribe")
	bybitSend(t, c, `{"req_id":"u2","op":"unsubscribe","args":["allLiquidation.ETHUSDT"]}`)
	bybitWantReply(t, bybitRead(t, c), false, "error:topic not subscribed,topic:allLiquidation.ETHUSDT", "u2", "unsubscribe")
	if err := b.WaitNoTopic(bybitCtx(t), "allLiquidation.ETHUSDT"); err != nil {
		t.Error(err)
	}
	if got := b.ConnTopics(BybitLinear); len(got) != 1 || strings.Join(got[0], ",") != "allLiquidation.BTCPERP,allLiquidation.BTCUSDT,tickers.BTCUSDT" {
		t.Errorf("ConnTopics %v", got)
	}
	if b.Connections(BybitLinear) != 1 || b.Connections(BybitInverse) != 0 || b.TotalConnections("") != 1 {
		t.Errorf("connections %d/%d/%d", b.Connections(BybitLinear), b.Connections(BybitInverse), b.TotalConnections(""))
	}
}

func TestBybitArgsCharLimit(t *testing.T) {
	b := NewBybit()
	t.Cleanup(b.Close)
	var syms []BybitSymbol
	var args []string
	for i := range 700 {
		s := fmt.Sprintf("S%04dXXXXXXXXXXUSDT", i)
		syms = append(syms, BybitSymbol{Category: BybitLinear, Symbol: s, BaseCoin: "SYM", ContractType: "LinearPerpetual", Status: "Trading"})
		args = append(args, BybitTopicPrefix+s)
	}
	b.SetSymbols(syms)
	c := bybitDial(t, b.LinearWSURL())
	msg, _ := json.Marshal(map[string]any{"req_id": "big", "op": "subscribe", "args": args})
	bybitSend(t, c, string(msg))
	v := bybitRead(t, c)
	if v["success"] != false || !strings.Contains(v["ret_msg"].(string), "exceeds 21000 characters") {
		t.Errorf("reply %v", v["success"])
	}
	chars := 0
	for topic := range b.Topics(BybitLinear) {
		chars += len(topic)
	}
	if chars > BybitArgsCharLimit || chars < BybitArgsCharLimit-100 {
		t.Errorf("held %d characters of args", chars)
	}
}

func TestBybitPlayRoutesByTopic(t *testing.T) {
	b := bybitNew(t)
	b.SetPlayTimeout(300 * time.Millisecond)
	btc := bybitDial(t, b.LinearWSURL())
	eth := bybitDial(t, b.LinearWSURL())
	inv := bybitDial(t, b.InverseWSURL())
	bybitSend(t, btc, `{"op":"subscribe","args":["allLiquidation.BTCUSDT"]}`)
	bybitRead(t, btc)
	bybitSend(t, eth, `{"op":"subscribe","args":["allLiquidation.ETHUSDT"]}`)
	bybitRead(t, eth)
	bybitSend(t, inv, `{"op":"subscribe","args":["allLiquidation.BTCUSD"]}`)
	bybitRead(t, inv)
	if err := b.WaitTopics(bybitCtx(t), "allLiquidation.BTCUSDT", "allLiquidation.ETHUSDT", "allLiquidation.BTCUSD"); err != nil {
		t.Fatal(err)
	}

	btcFrame := BybitLiquidationFrame("BTCUSDT", 1703485237953, BybitLiquidation{Side: "Buy", Size: 0.003, Price: 43511.7})
	invFrame := BybitLiquidationFrame("BTCUSD", 0, BybitLiquidation{Side: "Sell", Size: 12000, Price: 60000}, BybitLiquidation{Side: "Buy", Size: 5, Price: 60001})
	garbage := []byte(`{"topic":`)
	nobody := BybitLiquidationFrame("BTCPERP", 0, BybitLiquidation{Side: "Buy", Size: 1, Price: 1})
	got := b.Play([]Event{{Frame: btcFrame}, {Frame: invFrame}, {Frame: garbage}, {Frame: nobody}})
	want := []int{1, 1, 3, 0}
	if len(got) != len(want) {
		t.Fatalf("delivered %v", got)
	}
	for i, d := range got {
		if d.Conns != want[i] {
			t.Errorf("frame %d (%s) went to %d connections, want %d", i, d.Frame, d.Conns, want[i])
		}
	}
	if v := bybitRead(t, btc); v["topic"] != "allLiquidation.BTCUSDT" {
		t.Errorf("btc conn got %v", v)
	}
	if v := bybitRead(t, inv); v["topic"] != "allLiquidation.BTCUSD" || len(v["data"].([]any)) != 2 {
		t.Errorf("inverse conn got %v", v)
	}
	for _, c := range []*websocket.Conn{btc, eth, inv} {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, data, err := c.ReadMessage(); err != nil || string(data) != string(garbage) {
			t.Errorf("garbage: %q %v", data, err)
		}
	}
	if n := len(b.Deliveries()); n != 4 {
		t.Errorf("%d deliveries recorded", n)
	}
}

func TestBybitIdleDisconnect(t *testing.T) {
	b := bybitNew(t)
	b.SetIdleTimeout(150 * time.Millisecond)
	quiet := bybitDial(t, b.LinearWSURL())
	pinging := bybitDial(t, b.LinearWSURL())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(40 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if pinging.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)) != nil {
					return
				}
			}
		}
	}()
	_ = quiet.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := quiet.ReadMessage(); err == nil {
		t.Error("a connection without pings was not dropped")
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-done
	if n := b.Connections(BybitLinear); n != 1 {
		t.Errorf("%d connections left, want the pinging one", n)
	}
	// Pongs can be switched off; pings are still counted.
	b.SetIdleTimeout(0)
	b.SetAnswerPings(false)
	mute := bybitDial(t, b.LinearWSURL())
	n := b.Pings()
	bybitSend(t, mute, `{"op":"ping"}`)
	deadline := time.Now().Add(2 * time.Second)
	for b.Pings() != n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("pings %d, want %d", b.Pings(), n+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = mute.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, data, err := mute.ReadMessage(); err == nil {
		t.Errorf("a reply while pongs are off: %s", data)
	}
}

func TestBybitDisconnectAndCloseCode(t *testing.T) {
	b := bybitNew(t)
	lin := bybitDial(t, b.LinearWSURL())
	inv := bybitDial(t, b.InverseWSURL())
	// The client's handshake can finish before the fake has registered
	// the connection; wait for the fake's side.
	bybitWaitConns(t, b, BybitLinear, 1)
	bybitWaitConns(t, b, BybitInverse, 1)
	b.Disconnect(BybitInverse)
	_ = inv.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := inv.ReadMessage(); err == nil {
		t.Error("inverse connection survived Disconnect(inverse)")
	}
	b.Play([]Event{{CloseCode: websocket.CloseGoingAway}})
	_ = lin.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _, err := lin.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("close code: %v", err)
	}
	bybitWaitConns(t, b, BybitLinear, 0)
	again := bybitDial(t, b.LinearWSURL())
	bybitWaitConns(t, b, BybitLinear, 1)
	b.Play([]Event{{Disconnect: true}})
	_ = again.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := again.ReadMessage(); err == nil {
		t.Error("connection survived a Disconnect event")
	}
}

func TestBybitLiquidationFrame(t *testing.T) {
	f := BybitLiquidationFrame("ROSEUSDT", 1739502303204, BybitLiquidation{Side: "Sell", Size: 20000, Price: 0.04499, Time: 1739502302929})
	want := `{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}`
	if string(f) != want {
		t.Errorf("frame\n%s\nwant (documented sample)\n%s", f, want)
	}
	f = BybitLiquidationFrame("BTCUSDT", 5, BybitLiquidation{Side: "Buy", Size: 0.003, Price: 43511.7}, BybitLiquidation{Symbol: "X", Side: "Sell", Size: 1, Price: 2, Time: 7})
	want = `{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":5,"data":[{"T":5,"s":"BTCUSDT","S":"Buy","v":"0.003","p":"43511.7"},{"T":7,"s":"X","S":"Sell","v":"1","p":"2"}]}`
	if string(f) != want {
		t.Errorf("frame\n%s\nwant\n%s", f, want)
	}
}

func TestBybitCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewBybit()
	b.SetSymbols(BybitSampleSymbols())
	c := bybitDial(t, b.LinearWSURL())
	bybitSend(t, c, `{"op":"subscribe","args":["allLiquidation.BTCUSDT"]}`)
	bybitRead(t, c)
	b.SetLatency("/v5/market/tickers", time.Minute)
	reqDone := make(chan error, 1)
	go func() {
		resp, err := http.Get(b.RESTURL() + "/v5/market/tickers?category=linear")
		if err == nil {
			resp.Body.Close()
		}
		reqDone <- err
	}()
	played := b.PlayAsync([]Event{{Delay: time.Minute}})
	deadline := time.Now().Add(3 * time.Second)
	for b.Requests("/v5/market/tickers") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow request did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	b.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got, ok := <-played; ok && len(got) != 0 {
		t.Errorf("aborted script delivered %+v", got)
	}
	select {
	case <-reqDone:
	case <-time.After(3 * time.Second):
		t.Fatal("the slow request did not end")
	}
	b.Close() // idempotent
	c.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline = time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bybitWaitConns waits until the fake holds n connections of category.
func bybitWaitConns(t *testing.T, b *Bybit, category string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for b.Connections(category) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s connections %d, want %d", category, b.Connections(category), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBybitAccountRatio(t *testing.T) {
	b := bybitNew(t)
	b.UpdateSymbol(BybitLinear, "BTCUSDT", func(s *BybitSymbol) { s.BuyRatio, s.SellRatio = 0.5777, 0.4223 })
	b.UpdateSymbol(BybitLinear, "ETHUSDT", func(s *BybitSymbol) { s.BuyRatio, s.SellRatio = math.NaN(), 0.5 })
	b.UpdateSymbol(BybitInverse, "BTCUSD", func(s *BybitSymbol) { s.BuyRatio, s.SellRatio = 0.6, 0.4 })
	u := b.RESTURL() + "/v5/market/account-ratio?"

	// The documented shape: result.list of string fields, newest first, at
	// period boundaries.
	before := time.Now()
	list := bybitList(t, bybitResult(t, u+"category=linear&symbol=BTCUSDT&period=5min&limit=3"))
	if len(list) != 3 {
		t.Fatalf("%d rows, want 3", len(list))
	}
	var prev int64
	for i, row := range list {
		bybitWantString(t, row, "symbol", "BTCUSDT")
		bybitWantString(t, row, "buyRatio", "0.5777")
		bybitWantString(t, row, "sellRatio", "0.4223")
		bybitWantString(t, row, "timestamp", "*")
		ts, err := strconv.ParseInt(row["timestamp"].(string), 10, 64)
		if err != nil || ts%(5*60*1000) != 0 {
			t.Errorf("row %d: timestamp %v not on a 5-minute boundary", i, row["timestamp"])
		}
		if i == 0 && (ts > time.Now().UnixMilli() || ts <= before.Add(-5*time.Minute).UnixMilli()) {
			t.Errorf("newest timestamp %d is not the current period", ts)
		}
		if i > 0 && ts != prev-5*60*1000 {
			t.Errorf("row %d: timestamp %d, want %d (newest first)", i, ts, prev-5*60*1000)
		}
		prev = ts
	}
	if n := len(bybitList(t, bybitResult(t, u+"category=linear&symbol=BTCUSDT&period=1d"))); n != 50 {
		t.Errorf("default limit served %d rows, want 50", n)
	}
	if list := bybitList(t, bybitResult(t, u+"category=inverse&symbol=BTCUSD&period=1h&limit=1")); len(list) != 1 {
		t.Errorf("inverse: %v", list)
	}
	// NaN is served as "", no data as an empty list.
	list = bybitList(t, bybitResult(t, u+"category=linear&symbol=ETHUSDT&period=5min&limit=1"))
	if len(list) != 1 {
		t.Fatalf("ETHUSDT: %v", list)
	}
	bybitWantString(t, list[0], "buyRatio", "")
	if list := bybitList(t, bybitResult(t, u+"category=linear&symbol=1000PEPEUSDT&period=5min&limit=1")); len(list) != 0 {
		t.Errorf("no data: %v", list)
	}

	// Parameter errors and symbols the endpoint does not serve: retCode
	// 10001 in an HTTP 200 answer.
	for _, q := range []string{
		"category=linear&symbol=NOPEUSDT&period=5min",                            // not listed
		"category=linear&symbol=BTCPERP&period=5min",                             // USDC perpetual: linear is USDT perpetuals only
		"category=linear&symbol=BTCUSD&period=5min",                              // inverse symbol in linear
		"category=linear&period=5min",                                            // no symbol
		"category=linear&symbol=BTCUSDT",                                         // no period
		"category=linear&symbol=BTCUSDT&period=5m",                               // Binance's spelling
		"category=linear&symbol=BTCUSDT&period=5min&limit=0",                     // limit below 1
		"category=linear&symbol=BTCUSDT&period=5min&limit=501",                   // limit above 500
		"category=spot&symbol=BTCUSDT&period=5min",                               // category
		"category=linear&symbol=" + url.QueryEscape(" BTCUSDT") + "&period=5min", // exact names only
	} {
		if status, code, msg := bybitRetCode(t, u+q); status != 200 || code != 10001 || msg == "" {
			t.Errorf("%s: %d %v %q, want retCode 10001", q, status, code, msg)
		}
	}
	if _, _, msg := bybitRetCode(t, u+"category=linear&symbol=NOPEUSDT&period=5min"); !strings.Contains(msg, "Symbol") {
		t.Errorf("unknown symbol message %q", msg)
	}

	// Faults and request counts by path, category and symbol.
	b.FailNext("/v5/market/account-ratio?category=linear&symbol=ETHUSDT", 1, 429, 1, "")
	b.FailNextRetCode("/v5/market/account-ratio", 1, 10006, "Too many visits!")
	if status, hdr, _ := bybitGet(t, u+"category=linear&symbol=ETHUSDT&period=5min"); status != 429 || hdr.Get("Retry-After") != "1" {
		t.Errorf("scripted 429: %d %v", status, hdr)
	}
	if _, code, _ := bybitRetCode(t, u+"category=linear&symbol=BTCUSDT&period=5min"); code != 10006 {
		t.Errorf("scripted retCode %v", code)
	}
	bybitResult(t, u+"category=linear&symbol=ETHUSDT&period=5min")
	if n := b.Requests("/v5/market/account-ratio?category=linear&symbol=ETHUSDT"); n != 3 {
		t.Errorf("ETHUSDT requests %d, want 3", n)
	}
	if n := b.Requests("/v5/market/account-ratio?category=linear"); n < 15 {
		t.Errorf("linear requests %d", n)
	}
	if n, m := b.Requests("/v5/market/account-ratio"), b.Requests("/v5/market/account-ratio?category=inverse"); n != b.Requests("/v5/market/account-ratio?category=linear")+m+1 {
		t.Errorf("requests %d (inverse %d)", n, m)
	}
}

// bybitStalledDial dials u with a short handshake timeout and fails the
// test if the handshake completes.
func bybitStalledDial(t *testing.T, u string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 200 * time.Millisecond}
	start := time.Now()
	c, resp, err := d.Dial(u, nil)
	if err == nil {
		c.Close()
		t.Fatalf("the handshake of %s completed while stalled", u)
	}
	if resp != nil {
		resp.Body.Close()
		t.Errorf("a stalled handshake of %s was answered %d", u, resp.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the dial of %s took %v, want the handshake timeout", u, took)
	}
}

func TestBybitStallHandshake(t *testing.T) {
	b := bybitNew(t)
	// A connection made before the stall keeps working during it.
	live := bybitDial(t, b.LinearWSURL())
	bybitWaitConns(t, b, BybitLinear, 1)
	b.SetStallHandshake(true)
	for _, u := range []string{b.LinearWSURL(), b.InverseWSURL()} {
		bybitStalledDial(t, u)
	}
	if n := b.StalledHandshakes(); n != 2 {
		t.Errorf("StalledHandshakes = %d, want 2 (both categories)", n)
	}
	if n, m := b.TotalConnections(BybitLinear), b.TotalConnections(BybitInverse); n != 1 || m != 0 {
		t.Errorf("TotalConnections = %d linear, %d inverse while stalled, want the one from before", n, m)
	}
	bybitSend(t, live, `{"req_id":"s","op":"subscribe","args":["allLiquidation.BTCUSDT"]}`)
	bybitWantReply(t, bybitRead(t, live), true, "", "s", "subscribe")
	// REST is not stalled.
	if status, _, body := bybitGet(t, b.RESTURL()+"/v5/market/tickers?category=linear"); status != http.StatusOK {
		t.Errorf("tickers during the stall: %d %s", status, body)
	}

	b.SetStallHandshake(false)
	bybitDial(t, b.InverseWSURL())
	bybitWaitConns(t, b, BybitInverse, 1)
	if n := b.TotalConnections(BybitInverse); n != 1 {
		t.Errorf("inverse TotalConnections = %d after the stall, want 1", n)
	}
	if n := b.StalledHandshakes(); n != 2 {
		t.Errorf("StalledHandshakes = %d after the stall, want 2", n)
	}

	// A held request does not keep Close waiting.
	b.SetStallHandshake(true)
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		d := websocket.Dialer{HandshakeTimeout: time.Minute}
		if c, resp, err := d.Dial(b.LinearWSURL(), nil); err == nil {
			c.Close()
		} else if resp != nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for b.StalledHandshakes() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the handshake was not held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	b.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v with a held handshake", took)
	}
	select {
	case <-dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("the held dial did not end after Close")
	}
}
