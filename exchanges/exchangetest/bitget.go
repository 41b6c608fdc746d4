package exchangetest

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Bitget v2 product types and their v3 WebSocket instType names.
const (
	BitgetUSDTFutures = "USDT-FUTURES"
	BitgetCoinFutures = "COIN-FUTURES"
	BitgetUSDCFutures = "USDC-FUTURES"
	// BitgetLiquidationTopic is the v3 liquidation topic (UNVERIFIED:
	// community code, not Bitget's documentation).
	BitgetLiquidationTopic = "liquidation"
	// BitgetRateLimit is the documented limit of each public mix market
	// endpoint: 20 requests per second per IP.
	BitgetRateLimit  = 20
	BitgetRateWindow = time.Second

	bitgetWSPath        = "/v3/ws/public"
	bitgetContractsEP   = "/api/v2/mix/market/contracts"
	bitgetTickersEP     = "/api/v2/mix/market/tickers"
	bitgetFundingTimeEP = "/api/v2/mix/market/funding-time"
)

// BitgetInstrument is the state of one fake contract and its market data.
type BitgetInstrument struct {
	ProductType    string // BitgetUSDTFutures, BitgetCoinFutures, BitgetUSDCFutures
	Symbol         string // BTCUSDT, BTCUSD, ETHUSD_231229, BTCPERP
	BaseCoin       string
	QuoteCoin      string
	OmitCoins      bool   // serve the contract without baseCoin/quoteCoin
	SymbolType     string // perpetual or delivery
	Status         string // symbolStatus; "" = normal
	SizeMultiplier float64
	MarkPrice      float64
	LastPrice      float64
	FundingRate    float64
	HoldingAmount  float64 // open interest, base coin
	BaseVolume     float64
	QuoteVolume    float64
	USDTVolume     float64 // NaN = served as ""
	DeliveryTime   int64   // ms, delivery contracts
	NextFunding    int64   // ms, funding-time nextFundingTime
	RatePeriod     int     // hours, funding-time ratePeriod
}

// BitgetLiquidation is one liquidation of the v3 liquidation topic.
type BitgetLiquidation struct {
	Symbol string
	Side   string  // "sell" (taken as a long liquidated) or "buy"; served as given
	Amount float64 // base coin (UNVERIFIED)
	Price  float64
	TS     int64 // ms; 0 = now
}

type bitgetArg struct {
	InstType string `json:"instType"`
	Topic    string `json:"topic"`
}

// BitgetInstType returns the v3 instType of a product type (usdt-futures).
func BitgetInstType(productType string) string { return strings.ToLower(productType) }

func bitgetNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// BitgetLiquidationFrame builds a push of the liquidation topic in the shape
// the project's reference quotes: {"arg":{"instType":..,"topic":"liquidation"},
// "data":[{"symbol","price","amount","side","ts"}]} with string numbers.
// instType is the v3 name (usdt-futures) or a product type.
func BitgetLiquidationFrame(instType string, liqs ...BitgetLiquidation) []byte {
	type row struct {
		Symbol string `json:"symbol"`
		Price  string `json:"price"`
		Amount string `json:"amount"`
		Side   string `json:"side"`
		TS     string `json:"ts"`
	}
	rows := make([]row, 0, len(liqs))
	now := time.Now().UnixMilli()
	for _, l := range liqs {
		ts := l.TS
		if ts == 0 {
			ts = now
		}
		rows = append(rows, row{l.Symbol, bitgetNum(l.Price), bitgetNum(l.Amount), l.Side, strconv.FormatInt(ts, 10)})
	}
	b, err := json.Marshal(struct {
		Arg  bitgetArg `json:"arg"`
		Data []row     `json:"data"`
	}{bitgetArg{BitgetInstType(instType), BitgetLiquidationTopic}, rows})
	if err != nil {
		panic(err) // strings always marshal
	}
	return b
}

// Bitget is a fake of Bitget's public API: one HTTP server on a loopback
// port serving the v2 mix REST endpoints contracts, tickers and
// funding-time in Bitget's {"code":"00000","msg":"success","requestTime":..,
// "data":..} envelope with string numbers, limited to the documented 20
// requests per second per endpoint (HTTP 429, code "429", beyond it), and
// the v3 public WebSocket /v3/ws/public: subscribe with one ack per
// argument, error events for unknown instTypes or topics, the text "ping"
// answered with "pong", and scriptable pushes. State is guarded by a mutex
// and may change while clients are connected.
//
// Paths given to FailNext, SetLatency and Requests are a bare path
// ("/api/v2/mix/market/tickers") or a path with its product type
// ("/api/v2/mix/market/tickers?productType=USDT-FUTURES"), used first.
type Bitget struct {
	wsServer[*bitgetConn]

	instruments []BitgetInstrument
	hits        map[string][]time.Time
	limited     int
	rejectNext  int

	restFaults // FailNext, SetLatency, Requests
}

// NewBitget starts a fake Bitget on 127.0.0.1 with a free port and no
// contracts. It panics if it cannot listen, like httptest.NewServer.
func NewBitget() *Bitget {
	g := &Bitget{hits: map[string][]time.Time{}}
	g.startWS(g, wsConfig{name: "Bitget fake", listing: listPerEvent, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(g.serveHTTP))
	return g
}

// RESTURL returns http://127.0.0.1:port (as https://api.bitget.com).
func (g *Bitget) RESTURL() string { return g.url }

// WSURL returns ws://127.0.0.1:port/v3/ws/public.
func (g *Bitget) WSURL() string { return g.wsURL(bitgetWSPath) }

// SetInstruments replaces the contract list.
func (g *Bitget) SetInstruments(list []BitgetInstrument) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.instruments = append([]BitgetInstrument(nil), list...)
}

// Instruments returns a copy of the contract list.
func (g *Bitget) Instruments() []BitgetInstrument {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]BitgetInstrument(nil), g.instruments...)
}

// UpdateInstrument changes one contract in place; an unknown symbol is
// appended as BitgetInstrument{Symbol: symbol} before f runs.
func (g *Bitget) UpdateInstrument(symbol string, f func(*BitgetInstrument)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	updateOrAdd(&g.instruments, func(in BitgetInstrument) bool { return in.Symbol == symbol }, BitgetInstrument{Symbol: symbol}, f)
}

// FailNext makes the next n requests to path answer status with body (and
// a Retry-After of retryAfter seconds when > 0). An empty body becomes
// Bitget's envelope: code "429" "Too Many Requests" for 429, else code
// "40808" "system error".
func (g *Bitget) FailNext(path string, n, status, retryAfter int, body string) {
	switch {
	case body == "" && status == http.StatusTooManyRequests:
		body = bitgetBody("429", "Too Many Requests", nil)
	case body == "":
		body = bitgetBody("40808", "system error", nil)
	}
	g.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body, contentType: "application/json"})
}

// RateLimited returns how many requests were refused for exceeding the
// documented rate limit.
func (g *Bitget) RateLimited() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limited
}

// ---------------------------------------------------------------- REST

func bitgetBody(code, msg string, data any) string {
	b, _ := json.Marshal(struct {
		Code        string `json:"code"`
		Msg         string `json:"msg"`
		RequestTime int64  `json:"requestTime"`
		Data        any    `json:"data"`
	}{code, msg, time.Now().UnixMilli(), data})
	return string(b)
}

func writeBitget(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (g *Bitget) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == bitgetWSPath {
		g.serveWS(w, r, nil, g.newConn)
		return
	}
	g.serveREST(w, r)
}

// productType reads the productType parameter (Bitget accepts either case).
func bitgetProductType(v string) (string, bool) {
	pt := strings.ToUpper(v)
	switch pt {
	case BitgetUSDTFutures, BitgetCoinFutures, BitgetUSDCFutures:
		return pt, true
	}
	return "", false
}

func (g *Bitget) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	q := r.URL.Query()
	pt, ptOK := bitgetProductType(q.Get("productType"))
	keyed := path + "?productType=" + pt

	g.count(path, keyed)
	g.mu.Lock()
	now := time.Now()
	hits := g.hits[path]
	for len(hits) > 0 && now.Sub(hits[0]) >= BitgetRateWindow {
		hits = hits[1:]
	}
	limited := len(hits) >= BitgetRateLimit
	if limited {
		g.limited++
	} else {
		hits = append(hits, now)
	}
	g.hits[path] = hits
	g.mu.Unlock()

	if !pause(r, g.done, g.delayOf(keyed, path)) {
		return
	}
	fault, failed := g.take(keyed, path)
	g.mu.Lock()
	insts := append([]BitgetInstrument(nil), g.instruments...)
	g.mu.Unlock()

	switch {
	case limited:
		writeBitget(w, http.StatusTooManyRequests, bitgetBody("429", "Too Many Requests", nil))
		return
	case failed:
		fault.write(w)
		return
	case path != bitgetContractsEP && path != bitgetTickersEP && path != bitgetFundingTimeEP:
		writeBitget(w, http.StatusNotFound, bitgetBody("40404", "Request URL NOT FOUND", nil))
		return
	case !ptOK:
		writeBitget(w, http.StatusBadRequest, bitgetBody("40034", "Parameter productType does not exist", nil))
		return
	}
	rows := []any{}
	for _, in := range insts {
		if in.ProductType != pt {
			continue
		}
		switch path {
		case bitgetContractsEP:
			rows = append(rows, bitgetContractRow(in))
		case bitgetTickersEP:
			rows = append(rows, bitgetTickerRow(in, now))
		case bitgetFundingTimeEP:
			if in.Symbol == strings.ToUpper(q.Get("symbol")) && in.SymbolType != "delivery" {
				rows = append(rows, map[string]string{"symbol": in.Symbol,
					"nextFundingTime": strconv.FormatInt(in.NextFunding, 10), "ratePeriod": strconv.Itoa(in.RatePeriod)})
			}
		}
	}
	if path == bitgetFundingTimeEP && len(rows) == 0 {
		writeBitget(w, http.StatusBadRequest, bitgetBody("40034", "Parameter symbol does not exist", nil))
		return
	}
	writeBitget(w, http.StatusOK, bitgetBody("00000", "success", rows))
}

func bitgetContractRow(in BitgetInstrument) map[string]any {
	status := in.Status
	if status == "" {
		status = "normal"
	}
	row := map[string]any{
		"symbol": in.Symbol, "buyLimitPriceRatio": "0.01", "sellLimitPriceRatio": "0.01",
		"feeRateUpRatio": "0.005", "makerFeeRate": "0.0002", "takerFeeRate": "0.0006", "openCostUpRatio": "0.01",
		"supportMarginCoins": []string{in.QuoteCoin}, "minTradeNum": "0.001", "priceEndStep": "1",
		"volumePlace": "3", "pricePlace": "1", "sizeMultiplier": bitgetNum(in.SizeMultiplier),
		"symbolType": in.SymbolType, "minTradeUSDT": "5", "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
		"maxPositionNum": "150", "symbolStatus": status, "offTime": "-1", "limitOpenTime": "-1",
		"deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "", "fundInterval": strconv.Itoa(in.RatePeriod),
		"minLever": "1", "maxLever": "125", "posLimit": "0.05", "maintainTime": "",
	}
	if in.DeliveryTime > 0 {
		row["deliveryTime"] = strconv.FormatInt(in.DeliveryTime, 10)
	}
	if !in.OmitCoins {
		row["baseCoin"], row["quoteCoin"] = in.BaseCoin, in.QuoteCoin
	}
	return row
}

func bitgetTickerRow(in BitgetInstrument, now time.Time) map[string]string {
	funding := bitgetNum(in.FundingRate)
	if in.SymbolType == "delivery" {
		funding = "0"
	}
	dt := "0"
	if in.DeliveryTime > 0 {
		dt = strconv.FormatInt(in.DeliveryTime, 10)
	}
	return map[string]string{
		"symbol": in.Symbol, "lastPr": bitgetNum(in.LastPrice), "askPr": bitgetNum(in.LastPrice), "bidPr": bitgetNum(in.LastPrice),
		"bidSz": "1", "askSz": "1", "high24h": bitgetNum(in.LastPrice), "low24h": bitgetNum(in.LastPrice),
		"ts": strconv.FormatInt(now.UnixMilli(), 10), "change24h": "0", "baseVolume": bitgetNum(in.BaseVolume),
		"quoteVolume": bitgetNum(in.QuoteVolume), "usdtVolume": bitgetNum(in.USDTVolume), "openUtc": bitgetNum(in.LastPrice),
		"changeUtc24h": "0", "indexPrice": bitgetNum(in.MarkPrice), "fundingRate": funding,
		"holdingAmount": bitgetNum(in.HoldingAmount), "deliveryStartTime": "0", "deliveryTime": dt,
		"deliveryStatus": "", "open24h": bitgetNum(in.LastPrice), "markPrice": bitgetNum(in.MarkPrice),
	}
}

// ---------------------------------------------------------------- WebSocket

// bitgetConn is one client connection.
type bitgetConn struct {
	wsConn
	g    *Bitget
	subs []bitgetArg // guarded by g.mu
}

func (g *Bitget) newConn() *bitgetConn { return &bitgetConn{g: g} }

// serve answers the client's text messages; binary messages are ignored.
func (c *bitgetConn) serve() {
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage && !c.quiet.on() {
			c.handle(data)
		}
	}
}

type bitgetEvent struct {
	Event string     `json:"event"`
	Arg   *bitgetArg `json:"arg,omitempty"`
	Code  int        `json:"code,omitempty"`
	Msg   string     `json:"msg,omitempty"`
}

func bitgetEventFrame(e bitgetEvent) []byte {
	b, _ := json.Marshal(e)
	return b
}

// handle answers "ping", subscribe and unsubscribe. The v3 error code
// values (30001 and the like, as in v2) are UNVERIFIED.
func (c *bitgetConn) handle(data []byte) {
	g := c.g
	if string(data) == "ping" {
		if g.appPing() {
			c.write([]byte("pong"))
		}
		return
	}
	var req struct {
		Op   string      `json:"op"`
		Args []bitgetArg `json:"args"`
	}
	if err := json.Unmarshal(data, &req); err != nil || (req.Op != "subscribe" && req.Op != "unsubscribe") || len(req.Args) == 0 {
		c.write(bitgetEventFrame(bitgetEvent{Event: "error", Code: 30015, Msg: "param error: " + string(data)}))
		return
	}
	var msgs [][]byte
	g.mu.Lock()
	reject := g.rejectNext > 0 && req.Op == "subscribe"
	if reject {
		g.rejectNext--
	}
	for _, a := range req.Args {
		arg := a
		_, validType := bitgetProductType(a.InstType)
		switch {
		case reject || !validType || a.Topic != BitgetLiquidationTopic:
			msgs = append(msgs, bitgetEventFrame(bitgetEvent{Event: "error", Arg: &arg, Code: 30001,
				Msg: "instType:" + a.InstType + ",topic:" + a.Topic + " doesn't exist"}))
		case req.Op == "subscribe":
			if !slices.Contains(c.subs, a) {
				c.subs = append(c.subs, a)
				g.subscribed++
			}
			msgs = append(msgs, bitgetEventFrame(bitgetEvent{Event: "subscribe", Arg: &arg}))
		default:
			if i := slices.Index(c.subs, a); i >= 0 {
				c.subs = slices.Delete(c.subs, i, i+1)
			}
			msgs = append(msgs, bitgetEventFrame(bitgetEvent{Event: "unsubscribe", Arg: &arg}))
		}
	}
	g.notifyLocked()
	g.mu.Unlock()
	for _, m := range msgs {
		if !c.write(m) {
			return
		}
	}
}

// RejectNextSubscribe answers every argument of the next n subscribe
// requests with an error event and subscribes nothing.
func (g *Bitget) RejectNextSubscribe(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rejectNext = n
}

// SetAnswerPings with false turns every connection into a half-open peer:
// the fake keeps the TCP connections open but ignores whatever clients send
// (no "pong", no answer to a protocol ping or a request). Scripted events
// still go out. true resumes normal service.
func (g *Bitget) SetAnswerPings(answer bool) { g.quiet.set(!answer) }

// TotalConnections returns the number of connections accepted so far.
func (g *Bitget) TotalConnections() int { return g.totalConnections() }

// Pings returns how many "ping" messages clients have sent.
func (g *Bitget) Pings() int { return g.pingCount() }

// Subscriptions returns the cumulative number of subscriptions made.
func (g *Bitget) Subscriptions() int { return g.subscriptionCount() }

// WaitSubscribed waits until the cumulative number of subscriptions reaches n.
func (g *Bitget) WaitSubscribed(ctx context.Context, n int) error {
	return g.waitSubscriptions(ctx, n, "Bitget")
}

// Disconnect abruptly closes every client connection (no close frame).
func (g *Bitget) Disconnect() { g.disconnectAll() }

// bitgetInstTypeOf returns the arg.instType of a push, "" for other frames.
func bitgetInstTypeOf(frame []byte) string {
	var f struct {
		Arg  *bitgetArg      `json:"arg"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(frame, &f) != nil || f.Arg == nil || f.Data == nil {
		return ""
	}
	return strings.ToLower(f.Arg.InstType)
}

// targetsLocked returns the open connections subscribed to instType (any
// subscription when instType is "").
func (g *Bitget) targetsLocked(instType string) []*bitgetConn {
	var out []*bitgetConn
	for c := range g.liveLocked() {
		if len(c.subs) == 0 {
			continue
		}
		if instType == "" || slices.ContainsFunc(c.subs, func(a bitgetArg) bool { return strings.EqualFold(a.InstType, instType) }) {
			out = append(out, c)
		}
	}
	return out
}

// Play runs a script in the caller's goroutine. A push goes to the
// connections subscribed to its arg.instType; any other frame to every
// subscribed connection. Before every Frame Play waits (up to the play
// timeout) for such a connection; a frame nobody took is recorded with
// Conns 0. Ping sends a WebSocket ping, CloseCode a close frame, Disconnect
// drops every connection. Play returns early when the fake closes.
func (g *Bitget) Play(events []Event) []Delivered { return g.runScript(events) }

func (g *Bitget) deliver(frame []byte) (Delivered, bool) {
	instType := bitgetInstTypeOf(frame)
	return g.deliverTo(frame, func() []*bitgetConn { return g.targetsLocked(instType) }, nil)
}

// BitgetSampleInstruments returns a small realistic contract set: linear
// BTCUSDT, ETHUSDT and PEPEUSDT (4 h funding), the USDC perpetual BTCPERP,
// inverse BTCUSD and the ETHUSD_231229 delivery contract.
func BitgetSampleInstruments() []BitgetInstrument {
	return []BitgetInstrument{
		{ProductType: BitgetUSDTFutures, Symbol: "BTCUSDT", BaseCoin: "BTC", QuoteCoin: "USDT", SymbolType: "perpetual", SizeMultiplier: 0.001,
			MarkPrice: 60000, LastPrice: 60010, FundingRate: 0.0001, HoldingAmount: 50000, BaseVolume: 1e5, QuoteVolume: 6e9, USDTVolume: 6e9,
			NextFunding: 1_800_000_000_000, RatePeriod: 8},
		{ProductType: BitgetUSDTFutures, Symbol: "ETHUSDT", BaseCoin: "ETH", QuoteCoin: "USDT", SymbolType: "perpetual", SizeMultiplier: 0.01,
			MarkPrice: 3000, LastPrice: 3001, FundingRate: -0.00005, HoldingAmount: 400000, BaseVolume: 1e6, QuoteVolume: 3e9, USDTVolume: 3e9,
			NextFunding: 1_800_000_000_000, RatePeriod: 8},
		{ProductType: BitgetUSDTFutures, Symbol: "PEPEUSDT", BaseCoin: "PEPE", QuoteCoin: "USDT", SymbolType: "perpetual", SizeMultiplier: 1,
			MarkPrice: 0.00001, LastPrice: 0.00001, FundingRate: 0.0003, HoldingAmount: 5e12, BaseVolume: 1e13, QuoteVolume: 1e8, USDTVolume: 1e8,
			NextFunding: 1_800_000_000_000 + 3_600_000, RatePeriod: 4},
		{ProductType: BitgetUSDCFutures, Symbol: "BTCPERP", BaseCoin: "BTC", QuoteCoin: "USDC", SymbolType: "perpetual", SizeMultiplier: 0.0001,
			MarkPrice: 60005, LastPrice: 60000, FundingRate: 0.0001, HoldingAmount: 300, BaseVolume: 2000, QuoteVolume: 1.2e8, USDTVolume: 1.2e8,
			NextFunding: 1_800_000_000_000, RatePeriod: 8},
		{ProductType: BitgetCoinFutures, Symbol: "BTCUSD", BaseCoin: "BTC", QuoteCoin: "USD", SymbolType: "perpetual", SizeMultiplier: 0.001,
			MarkPrice: 59990, LastPrice: 60000, FundingRate: 0.0002, HoldingAmount: 1200, BaseVolume: 3000, QuoteVolume: 1.8e8, USDTVolume: 1.8e8,
			NextFunding: 1_800_000_000_000, RatePeriod: 8},
		{ProductType: BitgetCoinFutures, Symbol: "ETHUSD_231229", BaseCoin: "ETH", QuoteCoin: "USD", SymbolType: "delivery", SizeMultiplier: 0.01,
			MarkPrice: 3010, LastPrice: 3011, HoldingAmount: 900, BaseVolume: 500, QuoteVolume: 1.5e6, USDTVolume: 1.5e6, DeliveryTime: 1_703_836_800_000},
	}
}
