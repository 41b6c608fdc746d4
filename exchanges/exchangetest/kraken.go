package exchangetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Kraken Futures paths and defaults the fake applies.
const (
	// KrakenInstrumentsPath and KrakenTickersPath are the REST paths served.
	KrakenInstrumentsPath = "/derivatives/api/v3/instruments"
	KrakenTickersPath     = "/derivatives/api/v3/tickers"
	// KrakenWSPath is the WebSocket path.
	KrakenWSPath = "/ws/v1"
	// KrakenIdleTimeout is how long the venue keeps a connection that sends
	// nothing (Kraken support: "a ping request at least every 60 seconds").
	KrakenIdleTimeout = 60 * time.Second
)

// KrakenProduct is one product of the fake, served by both REST endpoints:
// the instruments row (symbol, type, tradeable, contractSize, and base/quote
// for flexible futures) and the tickers row (markPrice, openInterest,
// vol24h, suspended, and fundingRate / relativeFundingRate for perpetuals).
type KrakenProduct struct {
	Symbol       string // PF_XBTUSD, PI_XBTUSD, FI_XBTUSD_240628, in_xbtusd
	Type         string // flexible_futures, futures_inverse, futures_vanilla, spot index
	NotTradeable bool
	ContractSize float64 // 0 = 1
	Base, Quote  string  // served when non-empty (flexible futures)

	Suspended    bool
	MarkPrice    float64
	OpenInterest float64 // contracts
	Vol24h       float64 // contracts
	FundingRate  float64 // absolute, perpetuals (symbol P...) only
	// RelativeFundingRate is served when non-nil (Kraken sends it "sometimes").
	RelativeFundingRate *float64
}

// KrakenF returns a pointer to v, for KrakenProduct.RelativeFundingRate.
func KrakenF(v float64) *float64 { return &v }

// KrakenSampleProducts is a small fixture: a linear perpetual with a
// relative funding rate, a linear perpetual without one, an inverse
// perpetual, an inverse dated future, a suspended perpetual, a product that
// is not tradeable and an index.
func KrakenSampleProducts() []KrakenProduct {
	return []KrakenProduct{
		{Symbol: "PF_XBTUSD", Type: "flexible_futures", ContractSize: 1, Base: "XBT", Quote: "USD",
			MarkPrice: 65000.5, OpenInterest: 1200.5, Vol24h: 3500.25, FundingRate: 0.65, RelativeFundingRate: KrakenF(0.00001)},
		{Symbol: "PF_ETHUSD", Type: "flexible_futures", ContractSize: 1, Base: "ETH", Quote: "USD",
			MarkPrice: 3000.25, OpenInterest: 25000, Vol24h: 80000, FundingRate: -0.03},
		{Symbol: "PI_XBTUSD", Type: "futures_inverse", ContractSize: 1,
			MarkPrice: 65010, OpenInterest: 4.5e7, Vol24h: 1.2e8, FundingRate: 1.3e-10, RelativeFundingRate: KrakenF(0.0000084)},
		{Symbol: "FI_XBTUSD_991231", Type: "futures_inverse", ContractSize: 1,
			MarkPrice: 66000, OpenInterest: 3e6, Vol24h: 5e6},
		{Symbol: "PF_OLDUSD", Type: "flexible_futures", ContractSize: 1, Base: "OLD", Quote: "USD", Suspended: true,
			MarkPrice: 1, OpenInterest: 10, Vol24h: 10},
		{Symbol: "PF_GONEUSD", Type: "flexible_futures", ContractSize: 1, Base: "GONE", Quote: "USD", NotTradeable: true, MarkPrice: 1},
		{Symbol: "in_xbtusd", Type: "spot index", NotTradeable: true, MarkPrice: 65000},
	}
}

// KrakenTrade is one message of the trade feed (documented fields).
type KrakenTrade struct {
	Product string // product_id
	Side    string // taker side, buy or sell; served as given
	Type    string // fill, liquidation, assignment, termination, block; "" = fill
	Qty     float64
	Price   float64
	Seq     int64
	Time    int64  // ms; 0 = now
	UID     string // "" = generated
}

type krakenTradeJSON struct {
	Feed    string  `json:"feed,omitempty"`
	Product string  `json:"product_id,omitempty"`
	UID     string  `json:"uid"`
	Side    string  `json:"side"`
	Type    string  `json:"type"`
	Seq     int64   `json:"seq"`
	Time    int64   `json:"time"`
	Qty     float64 `json:"qty"`
	Price   float64 `json:"price"`
}

func krakenTradeOf(t KrakenTrade, feed string, n int) krakenTradeJSON {
	if t.Type == "" {
		t.Type = "fill"
	}
	if t.Time == 0 {
		t.Time = time.Now().UnixMilli()
	}
	if t.UID == "" {
		t.UID = fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	return krakenTradeJSON{Feed: feed, Product: t.Product, UID: t.UID, Side: t.Side, Type: t.Type, Seq: t.Seq, Time: t.Time, Qty: t.Qty, Price: t.Price}
}

// KrakenTradeFrame builds the "trade" feed message in the documented shape,
// e.g. {"feed":"trade","product_id":"PI_XBTUSD","uid":"...","side":"sell",
// "type":"fill","seq":85423,"time":1565342712903,"qty":1135.0,"price":11735.0}.
func KrakenTradeFrame(t KrakenTrade) []byte {
	b, err := json.Marshal(krakenTradeOf(t, "trade", int(t.Seq)))
	if err != nil {
		panic(err) // strings and numbers always marshal
	}
	return b
}

// Kraken is a fake of Kraken Futures: GET /derivatives/api/v3/instruments
// and /derivatives/api/v3/tickers in the {"result":"success",...} envelope,
// and the WebSocket at /ws/v1. On connect it sends {"event":"info",
// "version":1}. {"event":"subscribe","feed":"trade","product_ids":[...]}
// is answered {"event":"subscribed","feed":"trade","product_ids":[...]} and
// then one trade_snapshot per product (its history); unknown products,
// unknown feeds and malformed messages are answered {"event":"error",
// "message":...}; RejectNextSubscribe answers {"event":"subscribed_failed",
// ...} (the wording of refusals is UNVERIFIED). The heartbeat feed sends
// {"feed":"heartbeat","time":ms} every heartbeat interval. A connection
// whose client sends no message for the idle timeout (default 60 s;
// protocol pings do not count) is closed.
type Kraken struct {
	wsServer[*krakenConn]

	products   []KrakenProduct
	history    map[string][]KrakenTrade
	rejectNext int
	idle       time.Duration
	idleDrops  int
	heartbeat  time.Duration
	clientMsgs int

	restFaults // FailNext, SetLatency, Requests
}

// krakenConn is one client connection.
type krakenConn struct {
	wsConn
	k      *Kraken
	trades map[string]bool // subscribed products (guarded by k.mu)
	hb     bool            // heartbeat feed subscribed (guarded by k.mu)
}

// NewKraken starts a fake Kraken Futures on 127.0.0.1 with a free port and
// no products. It panics if it cannot listen.
func NewKraken() *Kraken {
	k := &Kraken{history: map[string][]KrakenTrade{}, idle: KrakenIdleTimeout, heartbeat: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc(KrakenInstrumentsPath, k.serveREST)
	mux.HandleFunc(KrakenTickersPath, k.serveREST)
	mux.HandleFunc(KrakenWSPath, func(w http.ResponseWriter, r *http.Request) { k.serveWS(w, r, nil, k.newConn) })
	k.startWS(k, wsConfig{name: "Kraken fake", listing: listPerStep}, mux)
	return k
}

// RESTURL returns http://127.0.0.1:port (as https://futures.kraken.com).
func (k *Kraken) RESTURL() string { return k.url }

// WSURL returns ws://127.0.0.1:port/ws/v1.
func (k *Kraken) WSURL() string { return k.wsURL(KrakenWSPath) }

// SetProducts replaces the product list.
func (k *Kraken) SetProducts(p []KrakenProduct) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.products = slices.Clone(p)
}

// UpdateProduct changes one product in place; an unknown symbol is appended
// as KrakenProduct{Symbol: symbol} before f runs.
func (k *Kraken) UpdateProduct(symbol string, f func(*KrakenProduct)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	updateOrAdd(&k.products, func(p KrakenProduct) bool { return p.Symbol == symbol }, KrakenProduct{Symbol: symbol}, f)
}

// SetHistory sets the recent trades the trade_snapshot of a product carries.
func (k *Kraken) SetHistory(product string, trades []KrakenTrade) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.history[product] = slices.Clone(trades)
}

// FailNext makes the next n requests to path answer status with the
// Retry-After header (seconds, if > 0) and body (an error envelope if "").
func (k *Kraken) FailNext(path string, n, status, retryAfter int, body string) {
	if body == "" {
		body = `{"result":"error","error":"` + http.StatusText(status) + `","serverTime":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
	}
	k.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body})
}

// RejectNextSubscribe answers the next n trade subscribe messages with
// subscribed_failed.
func (k *Kraken) RejectNextSubscribe(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rejectNext = n
}

// SetIdleTimeout changes how long a connection may stay without a client
// message before the fake closes it (default 60 s; 0 disables).
func (k *Kraken) SetIdleTimeout(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.idle = d
}

// SetHeartbeatInterval changes the period of the heartbeat feed (default 5 s).
func (k *Kraken) SetHeartbeatInterval(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.heartbeat = d
}

func (k *Kraken) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	k.count(path)
	lat := k.delayOf(path)
	fault, failed := k.take(path) // before the latency: a request that gives up still uses one
	k.mu.Lock()
	products := slices.Clone(k.products)
	k.mu.Unlock()
	if !pause(r, k.done, lat) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if failed {
		fault.write(w)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	var rows []map[string]any
	key := "instruments"
	if path == KrakenTickersPath {
		key = "tickers"
	}
	for _, p := range products {
		if key == "instruments" {
			rows = append(rows, krakenInstrumentRow(p))
		} else {
			rows = append(rows, krakenTickerRow(p, now))
		}
	}
	out := map[string]any{"result": "success", key: rows, "serverTime": now}
	_ = json.NewEncoder(w).Encode(out)
}

func krakenInstrumentRow(p KrakenProduct) map[string]any {
	row := map[string]any{"symbol": p.Symbol, "type": p.Type, "tradeable": !p.NotTradeable}
	if strings.HasPrefix(p.Type, "spot") {
		return row
	}
	cs := p.ContractSize
	if cs == 0 {
		cs = 1
	}
	row["contractSize"] = cs
	row["tickSize"] = 0.5
	row["impactMidSize"] = 1
	row["maxPositionSize"] = 1000000
	row["openingDate"] = "2022-01-01T00:00:00.000Z"
	row["marginLevels"] = []map[string]any{{"contracts": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01}}
	if p.Base != "" {
		row["base"] = p.Base
	}
	if p.Quote != "" {
		row["quote"] = p.Quote
		row["pair"] = p.Base + ":" + p.Quote
	}
	if strings.HasPrefix(p.Symbol, "F") {
		row["lastTradingTime"] = "2099-12-31T16:00:00.000Z"
	} else {
		row["fundingRateCoefficient"] = 8
		row["maxRelativeFundingRate"] = 0.001
	}
	if p.Type == "futures_inverse" {
		row["underlying"] = "rr_" + strings.ToLower(strings.SplitN(p.Symbol[3:], "_", 2)[0])
	}
	return row
}

func krakenTickerRow(p KrakenProduct, now string) map[string]any {
	if strings.HasPrefix(p.Type, "spot") {
		return map[string]any{"symbol": p.Symbol, "last": p.MarkPrice, "lastTime": now}
	}
	tag := "perpetual"
	if strings.HasPrefix(p.Symbol, "F") {
		tag = "month"
	}
	row := map[string]any{
		"tag": tag, "symbol": p.Symbol, "markPrice": p.MarkPrice, "bid": p.MarkPrice - 0.5, "ask": p.MarkPrice + 0.5,
		"vol24h": p.Vol24h, "openInterest": p.OpenInterest, "open24h": p.MarkPrice, "indexPrice": p.MarkPrice,
		"last": p.MarkPrice, "lastTime": now, "lastSize": 1, "suspended": p.Suspended, "postOnly": false,
	}
	if p.Base != "" && p.Quote != "" {
		row["pair"] = p.Base + ":" + p.Quote
	}
	if tag == "perpetual" {
		row["fundingRate"] = p.FundingRate
		row["fundingRatePrediction"] = p.FundingRate
		if p.RelativeFundingRate != nil {
			row["relativeFundingRate"] = *p.RelativeFundingRate
			row["relativeFundingRatePrediction"] = *p.RelativeFundingRate
		}
	}
	return row
}

func (k *Kraken) newConn() *krakenConn { return &krakenConn{k: k, trades: map[string]bool{}} }

// serve greets the client with the info event and answers its messages;
// a client that sends nothing for the idle timeout is dropped.
func (c *krakenConn) serve() {
	k := c.k
	c.send(map[string]any{"event": "info", "version": 1})
	for {
		k.mu.Lock()
		idle := k.idle
		k.mu.Unlock()
		if idle > 0 {
			_ = c.ws.SetReadDeadline(time.Now().Add(idle))
		} else {
			_ = c.ws.SetReadDeadline(time.Time{})
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			var nerr net.Error
			if errors.As(err, &nerr) && nerr.Timeout() {
				k.mu.Lock()
				k.idleDrops++
				k.mu.Unlock()
			}
			return
		}
		if c.quiet.on() {
			continue // a half-open peer answers nothing
		}
		c.handle(data)
	}
}

func (c *krakenConn) send(msg any) bool {
	b, err := json.Marshal(msg)
	if err != nil {
		return false
	}
	return c.write(b)
}

type krakenRequest struct {
	Event      string   `json:"event"`
	Feed       string   `json:"feed"`
	ProductIDs []string `json:"product_ids"`
}

// handle answers one client message; a subscription's answer and its
// snapshots are written under the write lock before any push for it.
func (c *krakenConn) handle(data []byte) {
	k := c.k
	var req krakenRequest
	if err := json.Unmarshal(data, &req); err != nil {
		k.mu.Lock()
		k.clientMsgs++
		k.mu.Unlock()
		c.send(map[string]any{"event": "error", "message": "Json Error"})
		return
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	k.mu.Lock()
	k.clientMsgs++
	var replies []any
	startHB := time.Duration(0)
	switch {
	case req.Event == "subscribe" && req.Feed == "heartbeat":
		if !c.hb {
			c.hb = true
			startHB = k.heartbeat
		}
		replies = append(replies, map[string]any{"event": "subscribed", "feed": "heartbeat"})
	case req.Event == "subscribe" && req.Feed == "trade":
		unknown := ""
		for _, p := range req.ProductIDs {
			if !slices.ContainsFunc(k.products, func(kp KrakenProduct) bool { return kp.Symbol == p && !kp.NotTradeable }) {
				unknown = p
				break
			}
		}
		switch {
		case len(req.ProductIDs) == 0:
			replies = append(replies, map[string]any{"event": "error", "message": "Invalid product id"})
		case k.rejectNext > 0:
			k.rejectNext--
			replies = append(replies, map[string]any{"event": "subscribed_failed", "feed": "trade", "product_ids": req.ProductIDs,
				"message": "Internal server error"})
		case unknown != "":
			replies = append(replies, map[string]any{"event": "error", "message": "Invalid product id: " + unknown})
		default:
			replies = append(replies, map[string]any{"event": "subscribed", "feed": "trade", "product_ids": req.ProductIDs})
			for _, p := range req.ProductIDs {
				c.trades[p] = true
				hist := make([]krakenTradeJSON, 0, len(k.history[p]))
				for i, t := range k.history[p] {
					t.Product = p
					hist = append(hist, krakenTradeOf(t, "", i))
				}
				replies = append(replies, map[string]any{"feed": "trade_snapshot", "product_id": p, "trades": hist})
			}
		}
	case req.Event == "unsubscribe" && req.Feed == "trade":
		for _, p := range req.ProductIDs {
			delete(c.trades, p)
		}
		replies = append(replies, map[string]any{"event": "unsubscribed", "feed": "trade", "product_ids": req.ProductIDs})
	default:
		replies = append(replies, map[string]any{"event": "error", "message": "Invalid request: " + req.Event + " " + req.Feed})
	}
	k.notifyLocked()
	k.mu.Unlock()
	for _, r := range replies {
		b, err := json.Marshal(r)
		if err != nil || !c.writeLocked(b) {
			return
		}
	}
	if startHB > 0 {
		go c.every(startHB, func() bool {
			return c.send(map[string]any{"feed": "heartbeat", "time": time.Now().UnixMilli()})
		})
	}
}

// SetAnswerHeartbeats with false turns every connection into a half-open
// peer: the fake keeps the TCP connections open but ignores whatever
// clients send (heartbeat subscriptions, requests, protocol pings) and
// sends no heartbeat feed frame. Scripted events still go out. true
// resumes normal service.
func (k *Kraken) SetAnswerHeartbeats(answer bool) { k.quiet.set(!answer) }

// Disconnect abruptly closes every client connection (TCP close, no close frame).
func (k *Kraken) Disconnect() { k.disconnectAll() }

// Connections returns the number of open connections.
func (k *Kraken) Connections() int { return k.connections() }

// TotalConnections returns the number of connections accepted since start.
func (k *Kraken) TotalConnections() int { return k.totalConnections() }

// IdleDisconnects returns how many connections the fake closed because the
// client sent nothing for the idle timeout.
func (k *Kraken) IdleDisconnects() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.idleDrops
}

// ClientMessages returns how many messages clients sent.
func (k *Kraken) ClientMessages() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clientMsgs
}

// Subscriptions returns, per product, how many open connections hold its
// trade feed.
func (k *Kraken) Subscriptions() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subscriptionsLocked()
}

func (k *Kraken) subscriptionsLocked() map[string]int {
	out := map[string]int{}
	for c := range k.liveLocked() {
		for p := range c.trades {
			out[p]++
		}
	}
	return out
}

// WaitSubscribed waits until every product's trade feed is held by an open
// connection.
func (k *Kraken) WaitSubscribed(ctx context.Context, products ...string) error {
	return k.waitFor(ctx, func() (bool, string) {
		held := k.subscriptionsLocked()
		for _, p := range products {
			if held[p] == 0 {
				return false, "Kraken product " + p + " not subscribed"
			}
		}
		return true, ""
	})
}

// WaitNotSubscribed waits until no open connection holds product.
func (k *Kraken) WaitNotSubscribed(ctx context.Context, product string) error {
	return k.waitFor(ctx, func() (bool, string) {
		return k.subscriptionsLocked()[product] == 0, "Kraken product " + product + " still subscribed"
	})
}

// Play runs a script in the caller's goroutine. A Frame that is a JSON
// object with a "product_id" goes to the connections subscribed to that
// product's trade feed; any other frame goes verbatim to every connection
// with a trade subscription. Before every Frame Play waits (up to the play
// timeout) for such a connection; a frame nobody took is recorded with
// Conns 0. Ping, CloseCode and Disconnect act on every connection.
func (k *Kraken) Play(events []Event) []Delivered { return k.runScript(events) }

func (k *Kraken) deliver(frame []byte) (Delivered, bool) {
	var obj struct {
		Product string `json:"product_id"`
	}
	routed := json.Unmarshal(frame, &obj) == nil && obj.Product != ""
	return k.deliverTo(frame, func() []*krakenConn {
		var out []*krakenConn
		for c := range k.liveLocked() {
			if (routed && c.trades[obj.Product]) || (!routed && len(c.trades) > 0) {
				out = append(out, c)
			}
		}
		return out
	}, nil)
}
