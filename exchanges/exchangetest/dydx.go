package exchangetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// dYdX Indexer paths and limits the fake applies.
const (
	// DydxMarketsPath is the one REST path the fake serves.
	DydxMarketsPath = "/v4/perpetualMarkets"
	// DydxWSPath is the WebSocket path.
	DydxWSPath = "/v4/ws"
	// DydxTradesChannel is the trade channel.
	DydxTradesChannel = "v4_trades"
	// DydxTradesChannelLimit is the Indexer's per-connection limit of
	// v4_trades subscriptions (socks config default V4_TRADES_CHANNEL_LIMIT).
	DydxTradesChannelLimit = 32
)

// DydxMarket is one perpetual market of the fake, served in
// GET /v4/perpetualMarkets as decimal strings (NaN is served as "NaN").
type DydxMarket struct {
	Ticker          string // e.g. BTC-USD
	Status          string // ACTIVE, PAUSED, FINAL_SETTLEMENT, ...; "" = ACTIVE
	OraclePrice     float64
	NextFundingRate float64 // per hour
	OpenInterest    float64 // base units
	Volume24H       float64 // USD
	Trades24H       int
	PriceChange24H  float64
}

// DydxTrade is one TradeContent of v4_trades (documented fields; Type is
// omitted when empty).
type DydxTrade struct {
	ID          string
	Side        string // taker side, BUY or SELL; served as given
	Size, Price float64
	CreatedAt   time.Time // zero = now
	Liquidation bool
	Type        string // LIMIT, MARKET, LIQUIDATED, DELEVERAGED; "" = omitted
}

type dydxTradeJSON struct {
	ID          string `json:"id"`
	Size        string `json:"size"`
	Price       string `json:"price"`
	Side        string `json:"side"`
	CreatedAt   string `json:"createdAt"`
	Liquidation bool   `json:"liquidation"`
	Type        string `json:"type,omitempty"`
}

func dydxTrades(trades []DydxTrade) []dydxTradeJSON {
	out := make([]dydxTradeJSON, len(trades))
	for i, t := range trades {
		at := t.CreatedAt
		if at.IsZero() {
			at = time.Now()
		}
		out[i] = dydxTradeJSON{ID: t.ID, Size: binanceDecimal(t.Size), Price: binanceDecimal(t.Price), Side: t.Side,
			CreatedAt: at.UTC().Format("2006-01-02T15:04:05.000Z"), Liquidation: t.Liquidation, Type: t.Type}
	}
	return out
}

// DydxTradesFrame builds the channel_data message of v4_trades for a market
// in the documented shape. The fake rewrites connection_id and message_id
// per connection when it pushes the frame (and wraps it as
// channel_batch_data for batched subscriptions).
func DydxTradesFrame(market string, trades ...DydxTrade) []byte {
	b, err := json.Marshal(map[string]any{
		"type": "channel_data", "connection_id": "", "message_id": 0, "id": market,
		"channel": DydxTradesChannel, "version": "1.1.0",
		"contents": map[string]any{"trades": dydxTrades(trades)},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// DydxSampleMarkets is a small fixture: three active markets, a paused one
// and one in final settlement.
func DydxSampleMarkets() []DydxMarket {
	return []DydxMarket{
		{Ticker: "BTC-USD", OraclePrice: 65000.5, NextFundingRate: 0.0000125, OpenInterest: 650.25, Volume24H: 4.5e8, Trades24H: 100000},
		{Ticker: "ETH-USD", OraclePrice: 3000.25, NextFundingRate: -0.00001, OpenInterest: 12000, Volume24H: 2e8, Trades24H: 50000},
		{Ticker: "SOL-USD", OraclePrice: 150.5, NextFundingRate: 0, OpenInterest: 90000, Volume24H: 3e7, Trades24H: 9000},
		{Ticker: "OLD-USD", Status: "FINAL_SETTLEMENT", OraclePrice: 1, OpenInterest: 0, Volume24H: 0},
		{Ticker: "PAUSE-USD", Status: "PAUSED", OraclePrice: 2, OpenInterest: 1, Volume24H: 1},
	}
}

// Dydx is a fake of the dYdX v4 Indexer: GET /v4/perpetualMarkets and the
// WebSocket at /v4/ws, on a loopback port. On connect it sends
// {"type":"connected",...}; {"type":"subscribe","channel":"v4_trades",
// "id":M[,"batched":true]} is answered "subscribed" with the market's
// recent trades as contents (history), "unsubscribe" with "unsubscribed";
// unknown channels or markets, repeated subscriptions, subscriptions beyond
// the per-connection limit and malformed messages with
// {"type":"error","message":...} (the wording is UNVERIFIED). The server
// sends protocol pings every ping interval (the Indexer does every 30 s).
type Dydx struct {
	wsServer[*dydxConn]

	markets     []DydxMarket
	history     map[string][]DydxTrade
	limit       int
	rejectNext  int
	pingEvery   time.Duration
	subRequests int

	restFaults // FailNext, SetLatency, Requests
}

// dydxConn is one client connection. subs is guarded by the fake's mutex,
// msgID by the write lock.
type dydxConn struct {
	wsConn
	d     *Dydx
	id    string
	msgID int
	subs  map[string]bool // market -> batched
}

var dydxConnSeq atomic.Uint64

// NewDydx starts a fake dYdX Indexer on 127.0.0.1 with a free port and no
// markets. It panics if it cannot listen.
func NewDydx() *Dydx {
	d := &Dydx{history: map[string][]DydxTrade{}, limit: DydxTradesChannelLimit, pingEvery: 30 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc(DydxMarketsPath, d.serveMarkets)
	mux.HandleFunc(DydxWSPath, func(w http.ResponseWriter, r *http.Request) { d.serveWS(w, r, nil, d.newConn) })
	d.startWS(d, wsConfig{name: "dYdX fake", listing: listPerStep}, mux)
	return d
}

// RESTURL returns http://127.0.0.1:port (as https://indexer.dydx.trade).
func (d *Dydx) RESTURL() string { return d.url }

// WSURL returns ws://127.0.0.1:port/v4/ws.
func (d *Dydx) WSURL() string { return d.wsURL(DydxWSPath) }

// SetMarkets replaces the market list.
func (d *Dydx) SetMarkets(m []DydxMarket) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.markets = slices.Clone(m)
}

// UpdateMarket changes one market in place; an unknown ticker is appended
// as DydxMarket{Ticker: ticker} before f runs.
func (d *Dydx) UpdateMarket(ticker string, f func(*DydxMarket)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	updateOrAdd(&d.markets, func(m DydxMarket) bool { return m.Ticker == ticker }, DydxMarket{Ticker: ticker}, f)
}

// SetHistory sets the recent trades a "subscribed" answer carries for a market.
func (d *Dydx) SetHistory(market string, trades []DydxTrade) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.history[market] = slices.Clone(trades)
}

// FailNext makes the next n requests to path answer status with the
// Retry-After header (seconds, if > 0) and body (a JSON error if "").
func (d *Dydx) FailNext(path string, n, status, retryAfter int, body string) {
	if body == "" {
		body = `{"errors":[{"msg":"` + http.StatusText(status) + `"}]}`
	}
	d.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body})
}

// SetChannelLimit changes the per-connection v4_trades limit (default 32).
func (d *Dydx) SetChannelLimit(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limit = n
}

// SetPingInterval changes how often the server pings each connection
// (default 30 s; 0 disables pings).
func (d *Dydx) SetPingInterval(dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pingEvery = dur
}

// RejectNextSubscribe answers the next n subscribe messages with an error.
func (d *Dydx) RejectNextSubscribe(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rejectNext = n
}

func dydxNum(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func (d *Dydx) serveMarkets(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	d.count(path)
	lat := d.delayOf(path)
	fault, failed := d.take(path) // before the latency: a request that gives up still uses one
	d.mu.Lock()
	markets := slices.Clone(d.markets)
	d.mu.Unlock()
	if !pause(r, d.done, lat) {
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if failed {
		fault.write(w)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	out := map[string]any{}
	for i, m := range markets {
		status := m.Status
		if status == "" {
			status = "ACTIVE"
		}
		out[m.Ticker] = map[string]any{
			"clobPairId": strconv.Itoa(i), "ticker": m.Ticker, "status": status,
			"oraclePrice": dydxNum(m.OraclePrice), "priceChange24H": dydxNum(m.PriceChange24H),
			"volume24H": dydxNum(m.Volume24H), "trades24H": m.Trades24H,
			"nextFundingRate": dydxNum(m.NextFundingRate), "initialMarginFraction": "0.05",
			"maintenanceMarginFraction": "0.03", "openInterest": dydxNum(m.OpenInterest),
			"atomicResolution": -10, "quantumConversionExponent": -9, "tickSize": "1",
			"stepSize": "0.0001", "stepBaseQuantums": 1000000, "subticksPerTick": 100000,
			"marketType": "CROSS", "openInterestLowerCap": "0", "openInterestUpperCap": "0",
			"baseOpenInterest": dydxNum(m.OpenInterest),
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"markets": out})
}

func (d *Dydx) newConn() *dydxConn {
	return &dydxConn{d: d, id: fmt.Sprintf("conn-%d", dydxConnSeq.Add(1)), subs: map[string]bool{}}
}

// serve greets the client with "connected", pings it every ping interval
// and answers its messages.
func (c *dydxConn) serve() {
	c.d.mu.Lock()
	every := c.d.pingEvery
	c.d.mu.Unlock()
	c.send(map[string]any{"type": "connected", "connection_id": c.id})
	if every > 0 {
		go c.every(every, func() bool {
			if c.control(websocket.PingMessage, nil) != nil {
				c.kill()
				return false
			}
			return true
		})
	}
	c.readLoop(c.handle)
}

// send writes one message, setting connection_id and the next message_id.
func (c *dydxConn) send(msg map[string]any) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.sendLocked(msg)
}

func (c *dydxConn) sendLocked(msg map[string]any) bool {
	msg["connection_id"] = c.id
	msg["message_id"] = c.msgID
	c.msgID++
	b, err := json.Marshal(msg)
	if err != nil {
		return false
	}
	return c.writeLocked(b)
}

func (c *dydxConn) fail(message string) {
	c.send(map[string]any{"type": "error", "message": message})
}

type dydxRequest struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	ID      string `json:"id"`
	Batched bool   `json:"batched"`
}

// handle answers one client message; the answer to a subscription is
// written under the write lock before any push for it.
func (c *dydxConn) handle(data []byte) {
	var req dydxRequest
	if err := json.Unmarshal(data, &req); err != nil {
		c.fail("Invalid message: could not parse")
		return
	}
	d := c.d
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	d.mu.Lock()
	known := slices.ContainsFunc(d.markets, func(m DydxMarket) bool { return m.Ticker == req.ID })
	var errMsg string
	var reply map[string]any
	switch req.Type {
	case "subscribe":
		d.subRequests++
		switch {
		case d.rejectNext > 0:
			d.rejectNext--
			errMsg = "Internal error, could not fetch data for subscription: " + req.Channel
		case req.Channel != DydxTradesChannel:
			errMsg = "Invalid subscribe message: channel " + req.Channel + " is not supported by this fake"
		case !known:
			errMsg = "Invalid subscription id for channel: (" + req.Channel + "-" + req.ID + ")"
		case c.subsHas(req.ID):
			errMsg = "Invalid subscribe message: already subscribed (" + req.Channel + "-" + req.ID + ")"
		case len(c.subs) >= d.limit:
			errMsg = "Per-connection subscription limit reached for channel (" + req.Channel + ")"
		default:
			c.subs[req.ID] = req.Batched
			reply = map[string]any{"type": "subscribed", "channel": req.Channel, "id": req.ID,
				"contents": map[string]any{"trades": dydxTrades(d.history[req.ID])}}
		}
	case "unsubscribe":
		if !c.subsHas(req.ID) {
			errMsg = "Invalid unsubscribe message: not subscribed (" + req.Channel + "-" + req.ID + ")"
		} else {
			delete(c.subs, req.ID)
			reply = map[string]any{"type": "unsubscribed", "channel": req.Channel, "id": req.ID}
		}
	default:
		errMsg = "Invalid message type: " + req.Type
	}
	d.notifyLocked()
	d.mu.Unlock()
	if errMsg != "" {
		reply = map[string]any{"type": "error", "message": errMsg, "id": req.ID}
	}
	c.sendLocked(reply)
}

func (c *dydxConn) subsHas(id string) bool { _, ok := c.subs[id]; return ok }

// SetAnswerPings with false turns every connection into a half-open peer:
// the fake keeps the TCP connections open but ignores whatever clients send
// (protocol pings, subscriptions) and sends no ping of its own. Scripted
// events still go out. true resumes normal service.
func (d *Dydx) SetAnswerPings(answer bool) { d.quiet.set(!answer) }

// Disconnect abruptly closes every client connection (TCP close, no close frame).
func (d *Dydx) Disconnect() { d.disconnectAll() }

// Connections returns the number of open connections.
func (d *Dydx) Connections() int { return d.connections() }

// TotalConnections returns the number of connections accepted since start.
func (d *Dydx) TotalConnections() int { return d.totalConnections() }

// Pongs returns how many pongs clients sent to the server's pings.
func (d *Dydx) Pongs() int { return d.pongCount() }

// SubscribeRequests returns the number of subscribe messages received.
func (d *Dydx) SubscribeRequests() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subRequests
}

// Subscriptions returns, per market, how many open connections hold it.
func (d *Dydx) Subscriptions() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subscriptionsLocked()
}

func (d *Dydx) subscriptionsLocked() map[string]int {
	out := map[string]int{}
	for c := range d.liveLocked() {
		for m := range c.subs {
			out[m]++
		}
	}
	return out
}

// ConnMarkets returns the sorted markets of each open connection.
func (d *Dydx) ConnMarkets() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][]string
	for c := range d.conns {
		out = append(out, slices.Sorted(maps.Keys(c.subs)))
	}
	return out
}

// WaitSubscribed waits until at least n market subscriptions are held by
// open connections.
func (d *Dydx) WaitSubscribed(ctx context.Context, n int) error {
	return d.waitFor(ctx, func() (bool, string) {
		got := 0
		for _, k := range d.subscriptionsLocked() {
			got += k
		}
		return got >= n, fmt.Sprintf("%d of %d dYdX subscriptions", got, n)
	})
}

// WaitMarkets waits until every market is held by an open connection.
func (d *Dydx) WaitMarkets(ctx context.Context, markets ...string) error {
	return d.waitFor(ctx, func() (bool, string) {
		held := d.subscriptionsLocked()
		for _, m := range markets {
			if held[m] == 0 {
				return false, "dYdX market " + m + " not subscribed"
			}
		}
		return true, ""
	})
}

// WaitNoMarket waits until no open connection holds market.
func (d *Dydx) WaitNoMarket(ctx context.Context, market string) error {
	return d.waitFor(ctx, func() (bool, string) {
		return d.subscriptionsLocked()[market] == 0, "dYdX market " + market + " still subscribed"
	})
}

// Play runs a script in the caller's goroutine. A Frame that is a JSON
// object with an "id" goes to the connections subscribed to that market
// (with their connection_id and message_id, as channel_batch_data for
// batched subscriptions); any other frame goes verbatim to every
// connection with a subscription. Before every Frame Play waits (up to the
// play timeout) for such a connection; a frame nobody took is recorded
// with Conns 0. Ping, CloseCode and Disconnect act on every connection.
func (d *Dydx) Play(events []Event) []Delivered { return d.runScript(events) }

// dydxTarget is a connection a frame goes to, and whether its
// subscription is batched.
type dydxTarget struct {
	c       *dydxConn
	batched bool
}

func (d *Dydx) deliver(frame []byte) (Delivered, bool) {
	var obj map[string]json.RawMessage
	var market string
	routed := json.Unmarshal(frame, &obj) == nil && json.Unmarshal(obj["id"], &market) == nil && market != ""
	targets, ok := awaitTargets(&d.wsServer, func() []dydxTarget {
		var out []dydxTarget
		for c := range d.liveLocked() {
			if b, ok := c.subs[market]; (routed && ok) || (!routed && len(c.subs) > 0) {
				out = append(out, dydxTarget{c, b})
			}
		}
		return out
	}, nil)
	if !ok {
		return Delivered{}, false
	}
	dl := Delivered{Frame: frame}
	for _, t := range targets {
		c, ok := t.c, false
		c.writeMu.Lock()
		if routed {
			msg := map[string]any{}
			for k, v := range obj {
				msg[k] = v
			}
			if t.batched && strings.Contains(string(obj["type"]), "channel_data") {
				msg["type"] = "channel_batch_data"
				msg["contents"] = []json.RawMessage{obj["contents"]}
			}
			ok = c.sendLocked(msg)
		} else {
			ok = c.writeLocked(frame)
		}
		c.writeMu.Unlock()
		if ok {
			dl.Conns++
		}
	}
	d.record(dl)
	return dl, true
}
