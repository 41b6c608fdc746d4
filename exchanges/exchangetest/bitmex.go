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
)

// BitMEX paths and table names the fake serves (the project's reference,
// section 4).
const (
	BitMEXInstrumentActivePath = "/api/v1/instrument/active"
	BitMEXLiquidationPath      = "/api/v1/liquidation"
	BitMEXLiquidationTable     = "liquidation"
	BitMEXPerpetual            = "FFWCSX"
	BitMEXFuture               = "FFCCSX"

	bitmexWSPath     = "/realtime"
	bitmexTimeLayout = "2006-01-02T15:04:05.000Z"
)

// BitMEXInstrument is the state of one fake instrument, served by
// instrument/active with BitMEX's field names. NaN numbers, zero times and
// zero durations are served as null.
type BitMEXInstrument struct {
	Symbol        string // XBTUSD, XBTUSDT, ETHUSD, XBTZ25
	RootSymbol    string // XBT, ETH
	State         string // Open, Closed, Unlisted, Settled; "" = Open
	Typ           string // FFWCSX perpetual, FFCCSX future, IFXXXP spot, MRCXXX index ...
	Underlying    string // XBT, ETH
	QuoteCurrency string // USD, USDT
	SettlCurrency string // XBt, USDt
	IsQuanto      bool
	IsInverse     bool
	// Multiplier: -100000000 for XBTUSD, 1 for XBTUSDT, 100 for ETHUSD.
	Multiplier float64
	// UnderlyingToPositionMultiplier: 1e6 for XBTUSDT; NaN or 0 = null.
	UnderlyingToPositionMultiplier float64

	FundingRate        float64       // NaN = null (futures)
	FundingTimestamp   time.Time     // the next funding; zero = null
	FundingInterval    time.Duration // served as 2000-01-01T08:00:00.000Z for 8 h; 0 = null
	OpenInterest       float64       // contracts
	OpenValue          float64       // settlement minor units
	MarkPrice          float64
	LastPrice          float64
	ForeignNotional24h float64 // 24 h volume in the quote currency
	HomeNotional24h    float64 // 24 h volume in the underlying
	Turnover24h        float64
	Volume24h          float64
}

// BitMEXOrder is one liquidation order of the liquidation table.
type BitMEXOrder struct {
	OrderID   string
	Symbol    string
	Side      string // the engine's order side: "Sell" liquidates a long, "Buy" a short; served as given
	Price     float64
	LeavesQty float64 // contracts
}

type bitmexOrderJSON struct {
	OrderID   string   `json:"orderID"`
	Symbol    string   `json:"symbol"`
	Side      string   `json:"side,omitempty"`
	Price     *float64 `json:"price,omitempty"`
	LeavesQty *float64 `json:"leavesQty,omitempty"`
}

type bitmexTableJSON struct {
	Table  string            `json:"table"`
	Action string            `json:"action"`
	Keys   []string          `json:"keys,omitempty"`
	Types  map[string]string `json:"types,omitempty"`
	Filter map[string]string `json:"filter,omitempty"`
	Data   []bitmexOrderJSON `json:"data"`
}

func bitmexOrderRow(action string, o BitMEXOrder) bitmexOrderJSON {
	row := bitmexOrderJSON{OrderID: o.OrderID, Symbol: o.Symbol}
	switch action {
	case "insert", "partial":
		px, qty := o.Price, o.LeavesQty
		row.Side, row.Price, row.LeavesQty = o.Side, &px, &qty
	case "update":
		qty := o.LeavesQty
		row.LeavesQty = &qty
	}
	return row
}

// BitMEXLiquidationFrame builds a liquidation table frame as BitMEX pushes
// it: insert and partial rows carry orderID, symbol, side, price and
// leavesQty; update rows orderID, leavesQty and symbol; delete rows orderID
// and symbol (the reference's real messages:
// {"table":"liquidation","action":"insert","data":[{"orderID":"98ae1dad-...",
// "symbol":"XBTUSD","side":"Buy","price":13854.5,"leavesQty":314930}]}).
func BitMEXLiquidationFrame(action string, orders ...BitMEXOrder) []byte {
	t := bitmexTableJSON{Table: BitMEXLiquidationTable, Action: action, Data: make([]bitmexOrderJSON, 0, len(orders))}
	if action == "partial" {
		t.Keys = []string{"orderID"}
		t.Types = map[string]string{"orderID": "guid", "symbol": "symbol", "side": "symbol", "price": "float", "leavesQty": "long"}
		t.Filter = map[string]string{}
	}
	for _, o := range orders {
		t.Data = append(t.Data, bitmexOrderRow(action, o))
	}
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // NaN prices are a test bug
	}
	return b
}

// bitmexFrameOrders reads the action and orders of a liquidation frame;
// ok is false for anything else.
func bitmexFrameOrders(frame []byte) (action string, orders []BitMEXOrder, ok bool) {
	var t struct {
		Table  string `json:"table"`
		Action string `json:"action"`
		Data   []struct {
			OrderID   string   `json:"orderID"`
			Symbol    string   `json:"symbol"`
			Side      string   `json:"side"`
			Price     *float64 `json:"price"`
			LeavesQty *float64 `json:"leavesQty"`
		} `json:"data"`
	}
	if json.Unmarshal(frame, &t) != nil || t.Table != BitMEXLiquidationTable {
		return "", nil, false
	}
	for _, d := range t.Data {
		o := BitMEXOrder{OrderID: d.OrderID, Symbol: d.Symbol, Side: d.Side}
		if d.Price != nil {
			o.Price = *d.Price
		}
		if d.LeavesQty != nil {
			o.LeavesQty = *d.LeavesQty
		} else {
			o.LeavesQty = math.NaN()
		}
		orders = append(orders, o)
	}
	return t.Action, orders, true
}

// BitMEX is a fake of BitMEX's public API: one HTTP server on a loopback
// port serving REST (GET /api/v1/instrument/active, GET /api/v1/liquidation,
// errors as {"error":{"message":..,"name":..}}) and the WebSocket
// /realtime: the welcome message on connect, {"op":"subscribe","args":[...]}
// answered with {"success":true,"subscribe":..} and, for the liquidation
// table, a partial of the orders resting in the fake's book; unknown topics
// and malformed requests answered with {"status":400,"error":..}; the text
// "ping" answered with "pong". Liquidation frames played through the fake
// keep its book current (insert adds, update changes leavesQty, delete
// removes), so partials and GET /api/v1/liquidation agree with what was
// pushed. All state is guarded by a mutex and may change while clients are
// connected.
type BitMEX struct {
	wsServer[*bitmexConn]

	instruments []BitMEXInstrument
	book        []BitMEXOrder
	limitN      int
	limitWin    time.Duration
	hits        []time.Time

	partials   int
	rejectNext int

	restFaults // FailNext, SetLatency, Requests
}

// NewBitMEX starts a fake BitMEX on 127.0.0.1 with a free port and no
// instruments. It panics if it cannot listen, like httptest.NewServer.
func NewBitMEX() *BitMEX {
	b := &BitMEX{}
	b.startWS(b, wsConfig{name: "BitMEX fake", listing: listPerStep, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(b.serveHTTP))
	return b
}

// RESTURL returns http://127.0.0.1:port (as https://www.bitmex.com);
// clients append /api/v1/....
func (b *BitMEX) RESTURL() string { return b.url }

// WSURL returns ws://127.0.0.1:port/realtime (as wss://ws.bitmex.com/realtime).
func (b *BitMEX) WSURL() string { return b.wsURL(bitmexWSPath) }

// SetInstruments replaces the instrument list (served in this order).
func (b *BitMEX) SetInstruments(list []BitMEXInstrument) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.instruments = append([]BitMEXInstrument(nil), list...)
}

// Instruments returns a copy of the instrument list.
func (b *BitMEX) Instruments() []BitMEXInstrument {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BitMEXInstrument(nil), b.instruments...)
}

// UpdateInstrument changes one instrument in place. A symbol that is not
// listed yet is appended as BitMEXInstrument{Symbol: symbol} before f runs.
func (b *BitMEX) UpdateInstrument(symbol string, f func(*BitMEXInstrument)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	updateOrAdd(&b.instruments, func(in BitMEXInstrument) bool { return in.Symbol == symbol }, BitMEXInstrument{Symbol: symbol}, f)
}

// Book returns the liquidation orders resting in the fake's book.
func (b *BitMEX) Book() []BitMEXOrder {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BitMEXOrder(nil), b.book...)
}

// SetBook replaces the resting liquidation orders (sent in the next partials).
func (b *BitMEX) SetBook(orders ...BitMEXOrder) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.book = append([]BitMEXOrder(nil), orders...)
}

// applyLocked keeps the book current with one played frame.
func (b *BitMEX) applyLocked(action string, orders []BitMEXOrder) {
	for _, o := range orders {
		i := slices.IndexFunc(b.book, func(r BitMEXOrder) bool { return r.OrderID == o.OrderID })
		switch action {
		case "insert":
			if i < 0 && o.OrderID != "" {
				b.book = append(b.book, o)
			}
		case "update":
			if i >= 0 && !math.IsNaN(o.LeavesQty) {
				b.book[i].LeavesQty = o.LeavesQty
			}
		case "delete":
			if i >= 0 {
				b.book = slices.Delete(b.book, i, i+1)
			}
		}
	}
}

// FailNext makes the next n requests to path answer status with body, plus
// a Retry-After header of retryAfter seconds when retryAfter > 0. An empty
// body is replaced by BitMEX's error object for the status. Calls queue up
// in order.
func (b *BitMEX) FailNext(path string, n, status, retryAfter int, body string) {
	if body == "" {
		body = bitmexErrorBody(status)
	}
	b.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body, contentType: bitmexContentType})
}

func bitmexErrorBody(status int) string {
	name, msg := "HTTPError", http.StatusText(status)
	if status == http.StatusTooManyRequests {
		name, msg = "RateLimitError", "Rate limit exceeded, retry in 1 seconds."
	}
	out, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg, "name": name}})
	return string(out)
}

// SetRateLimit limits REST to n requests per window across all paths,
// answering 429 with Retry-After beyond it (BitMEX's unauthenticated limit
// is 30 per minute, UNVERIFIED; the fake applies none unless asked); n 0
// removes the limit.
func (b *BitMEX) SetRateLimit(n int, window time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limitN, b.limitWin, b.hits = n, window, nil
}

func (b *BitMEX) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == bitmexWSPath {
		b.serveWS(w, r, b.admitUnlessRefused, b.newConn)
		return
	}
	b.serveREST(w, r)
}

// limitedLocked records a request and reports whether it is over the limit,
// with the seconds until a slot frees.
func (b *BitMEX) limitedLocked(now time.Time) (bool, int) {
	if b.limitN <= 0 {
		return false, 0
	}
	cut := 0
	for cut < len(b.hits) && now.Sub(b.hits[cut]) >= b.limitWin {
		cut++
	}
	b.hits = b.hits[cut:]
	if len(b.hits) >= b.limitN {
		wait := b.limitWin - now.Sub(b.hits[0])
		return true, max(1, int(math.Ceil(wait.Seconds())))
	}
	b.hits = append(b.hits, now)
	return false, 0
}

const bitmexContentType = "application/json; charset=utf-8"

func writeBitMEX(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", bitmexContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (b *BitMEX) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	b.count(path)
	b.mu.Lock()
	limited, retry := b.limitedLocked(time.Now())
	b.mu.Unlock()

	if !pause(r, b.done, b.delayOf(path)) {
		return
	}

	fault, failed := b.take(path)
	b.mu.Lock()
	insts := append([]BitMEXInstrument(nil), b.instruments...)
	book := append([]BitMEXOrder(nil), b.book...)
	b.mu.Unlock()

	switch {
	case limited:
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeBitMEX(w, http.StatusTooManyRequests, []byte(bitmexErrorBody(http.StatusTooManyRequests)))
		return
	case failed:
		fault.write(w)
		return
	case r.Method != http.MethodGet:
		writeBitMEX(w, http.StatusMethodNotAllowed, []byte(bitmexErrorBody(http.StatusMethodNotAllowed)))
		return
	}
	var rows []any
	switch path {
	case BitMEXInstrumentActivePath:
		for _, in := range insts {
			if in.State == "" || in.State == "Open" {
				rows = append(rows, bitmexInstrumentRow(in))
			}
		}
	case BitMEXLiquidationPath:
		for _, o := range book {
			rows = append(rows, bitmexOrderRow("partial", o))
		}
	default:
		writeBitMEX(w, http.StatusNotFound, []byte(bitmexErrorBody(http.StatusNotFound)))
		return
	}
	if rows == nil {
		rows = []any{}
	}
	body, err := json.Marshal(rows)
	if err != nil {
		writeBitMEX(w, http.StatusInternalServerError, []byte(bitmexErrorBody(http.StatusInternalServerError)))
		return
	}
	writeBitMEX(w, http.StatusOK, body)
}

// bitmexNum serves NaN and infinities as null.
func bitmexNum(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func bitmexTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(bitmexTimeLayout)
}

// bitmexInstrumentRow is one instrument/active row with BitMEX's field
// names (a subset of the documented Instrument).
func bitmexInstrumentRow(in BitMEXInstrument) map[string]any {
	state := in.State
	if state == "" {
		state = "Open"
	}
	var interval any
	if in.FundingInterval > 0 {
		interval = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(in.FundingInterval).Format(bitmexTimeLayout)
	}
	var utpm any
	if in.UnderlyingToPositionMultiplier > 0 {
		utpm = in.UnderlyingToPositionMultiplier
	}
	return map[string]any{
		"symbol": in.Symbol, "rootSymbol": in.RootSymbol, "state": state, "typ": in.Typ,
		"underlying": in.Underlying, "quoteCurrency": in.QuoteCurrency, "settlCurrency": in.SettlCurrency,
		"positionCurrency": "", "isQuanto": in.IsQuanto, "isInverse": in.IsInverse,
		"multiplier": bitmexNum(in.Multiplier), "underlyingToPositionMultiplier": utpm,
		"fundingRate": bitmexNum(in.FundingRate), "indicativeFundingRate": bitmexNum(in.FundingRate),
		"fundingTimestamp": bitmexTime(in.FundingTimestamp), "fundingInterval": interval,
		"openInterest": bitmexNum(in.OpenInterest), "openValue": bitmexNum(in.OpenValue),
		"markPrice": bitmexNum(in.MarkPrice), "lastPrice": bitmexNum(in.LastPrice),
		"volume24h": bitmexNum(in.Volume24h), "turnover24h": bitmexNum(in.Turnover24h),
		"homeNotional24h": bitmexNum(in.HomeNotional24h), "foreignNotional24h": bitmexNum(in.ForeignNotional24h),
		"lotSize": 1, "timestamp": time.Now().UTC().Format(bitmexTimeLayout),
	}
}

// ---------------------------------------------------------------- WebSocket

// bitmexConn is one client connection. subs is guarded by the fake's mutex.
type bitmexConn struct {
	wsConn
	b    *BitMEX
	subs []string // liquidation or liquidation:SYMBOL
}

func (b *BitMEX) newConn() *bitmexConn { return &bitmexConn{b: b} }

// serve sends the welcome message, then answers the client's messages.
func (c *bitmexConn) serve() {
	welcome, _ := json.Marshal(map[string]any{"info": "Welcome to the BitMEX Realtime API.", "version": "2.0.0",
		"timestamp": time.Now().UTC().Format(bitmexTimeLayout), "docs": "https://www.bitmex.com/app/wsAPI",
		"heartbeatEnabled": false, "limit": map[string]int{"remaining": 39}})
	if c.write(welcome) {
		c.readLoop(c.handle)
	}
}

func bitmexWSError(status int, msg string, request json.RawMessage) []byte {
	if len(request) == 0 || !json.Valid(request) {
		request = json.RawMessage(`{}`)
	}
	out, _ := json.Marshal(map[string]any{"status": status, "error": msg, "meta": map[string]any{}, "request": request})
	return out
}

// handle answers one client message: "ping", or an op request.
func (c *bitmexConn) handle(data []byte) {
	if string(data) == "ping" {
		if c.b.appPing() {
			c.write([]byte("pong"))
		}
		return
	}
	var req struct {
		Op   string          `json:"op"`
		Args json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(data, &req); err != nil || req.Op == "" {
		c.write(bitmexWSError(400, "Unrecognized request. See the docs or send 'help' for more details.", nil))
		return
	}
	var args []string
	if len(req.Args) > 0 && req.Args[0] == '"' {
		var one string
		_ = json.Unmarshal(req.Args, &one)
		args = []string{one}
	} else if json.Unmarshal(req.Args, &args) != nil {
		args = nil
	}
	switch req.Op {
	case "subscribe":
		if len(args) == 0 {
			c.write(bitmexWSError(400, "Invalid args", data))
			return
		}
		c.subscribe(args, data)
	case "unsubscribe":
		c.unsubscribe(args, data)
	default:
		c.write(bitmexWSError(400, "Unknown or unsupported op: "+req.Op, data))
	}
}

func bitmexValidTopic(t string) bool {
	table, sym, hasSym := strings.Cut(t, ":")
	return table == BitMEXLiquidationTable && (!hasSym || sym != "")
}

// subscribe acks each valid topic and sends its partial, all under the
// write lock so that the ack and the partial precede any push; an unknown
// topic gets an error and subscribes nothing after it.
func (c *bitmexConn) subscribe(args []string, request []byte) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	b := c.b
	b.mu.Lock()
	var msgs [][]byte
	if b.rejectNext > 0 {
		b.rejectNext--
		msgs = append(msgs, bitmexWSError(400, "Unknown table: "+args[0], request))
		args = nil
	}
	for _, a := range args {
		if !bitmexValidTopic(a) {
			msgs = append(msgs, bitmexWSError(400, "Unknown table: "+a, request))
			break
		}
		if slices.Contains(c.subs, a) {
			msgs = append(msgs, bitmexWSError(400, "You are already subscribed to this topic: "+a, request))
			continue
		}
		ack, _ := json.Marshal(map[string]any{"success": true, "subscribe": a, "request": json.RawMessage(request)})
		msgs = append(msgs, ack)
		_, sym, hasSym := strings.Cut(a, ":")
		var rest []BitMEXOrder
		for _, o := range b.book {
			if !hasSym || o.Symbol == sym {
				rest = append(rest, o)
			}
		}
		msgs = append(msgs, BitMEXLiquidationFrame("partial", rest...))
		c.subs = append(c.subs, a)
		b.subscribed++
		b.partials++
	}
	b.notifyLocked()
	b.mu.Unlock()
	for _, m := range msgs {
		if !c.writeLocked(m) {
			return
		}
	}
}

func (c *bitmexConn) unsubscribe(args []string, request []byte) {
	b := c.b
	var msgs [][]byte
	b.mu.Lock()
	for _, a := range args {
		if i := slices.Index(c.subs, a); i >= 0 {
			c.subs = slices.Delete(c.subs, i, i+1)
		}
		ack, _ := json.Marshal(map[string]any{"success": true, "unsubscribe": a, "request": json.RawMessage(request)})
		msgs = append(msgs, ack)
	}
	b.notifyLocked()
	b.mu.Unlock()
	for _, m := range msgs {
		c.write(m)
	}
}

// SetAnswerPings with false makes the fake read "ping" without answering.
func (b *BitMEX) SetAnswerPings(answer bool) { b.setAnswerAppPings(answer) }

// SetRefuseConnections with true answers WebSocket upgrades with HTTP 503
// (a venue that cannot be reached); false accepts them again.
func (b *BitMEX) SetRefuseConnections(refuse bool) { b.setRefuse(refuse) }

// RejectNextSubscribe answers the next n subscribe requests with an error
// ({"status":400,"error":"Unknown table: ..."}) and subscribes nothing.
func (b *BitMEX) RejectNextSubscribe(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rejectNext = n
}

// Connections returns the number of open client connections.
func (b *BitMEX) Connections() int { return b.connections() }

// TotalConnections returns the number of connections accepted so far.
func (b *BitMEX) TotalConnections() int { return b.totalConnections() }

// Pings returns how many "ping" messages clients have sent.
func (b *BitMEX) Pings() int { return b.pingCount() }

// Subscriptions returns the cumulative number of liquidation subscriptions
// made (each was followed by a partial).
func (b *BitMEX) Subscriptions() int { return b.subscriptionCount() }

// WaitSubscribed waits until the cumulative number of subscriptions reaches n.
func (b *BitMEX) WaitSubscribed(ctx context.Context, n int) error {
	return b.waitSubscriptions(ctx, n, "BitMEX")
}

// Disconnect abruptly closes every client connection (TCP close, no close
// frame).
func (b *BitMEX) Disconnect() { b.disconnectAll() }

// targetsLocked returns the subscribed connections a frame goes to: for a
// liquidation frame those subscribed to the whole table or to a symbol of
// its rows; for any other frame every subscribed connection.
func (b *BitMEX) targetsLocked(orders []BitMEXOrder, routed bool) []*bitmexConn {
	var out []*bitmexConn
	for c := range b.liveLocked() {
		if len(c.subs) == 0 {
			continue
		}
		if !routed || slices.ContainsFunc(c.subs, func(s string) bool {
			_, sym, hasSym := strings.Cut(s, ":")
			return !hasSym || slices.ContainsFunc(orders, func(o BitMEXOrder) bool { return o.Symbol == sym })
		}) {
			out = append(out, c)
		}
	}
	return out
}

// Push applies a liquidation frame to the book and writes it at once to the
// subscribed connections, without waiting for one: with no subscriber the
// orders changed during a gap and only the next partial shows the result.
func (b *BitMEX) Push(frame []byte) Delivered {
	action, orders, routed := bitmexFrameOrders(frame)
	b.mu.Lock()
	if routed {
		b.applyLocked(action, orders)
	}
	targets := b.targetsLocked(orders, routed)
	b.mu.Unlock()
	return b.push(frame, targets)
}

// Play runs a script in the caller's goroutine. Before every Frame it waits
// (up to the play timeout) until a subscribed connection exists, applies a
// liquidation frame to the book and writes the frame (a frame nobody took
// is recorded with Conns 0, and still changes the book). Ping sends a
// WebSocket ping frame, CloseCode a close frame, Disconnect drops every
// connection. Play returns early, with what was delivered, when the fake
// closes.
func (b *BitMEX) Play(events []Event) []Delivered { return b.runScript(events) }

// deliver waits for a subscriber, applies the frame and writes it; false if
// the fake closed.
func (b *BitMEX) deliver(frame []byte) (Delivered, bool) {
	action, orders, routed := bitmexFrameOrders(frame)
	apply := func() {
		if routed {
			b.applyLocked(action, orders)
		}
	}
	return b.deliverTo(frame, func() []*bitmexConn { return b.targetsLocked(orders, routed) }, apply)
}

// BitMEXSampleInstruments returns a small realistic instrument set: the
// inverse XBTUSD perpetual (1 USD per contract), the linear XBTUSDT and
// ETHUSDT perpetuals (quantities in millionths of a coin), the quanto
// ETHUSD perpetual (100 satoshi per contract and USD of price), the inverse
// XBT quarterly future, and an index and a spot pair that are not
// contracts.
func BitMEXSampleInstruments() []BitMEXInstrument {
	now := time.Now().UTC()
	next := now.Truncate(8 * time.Hour).Add(8 * time.Hour)
	q := binanceNextQuarterly(now)
	month := "FGHJKMNQUVXZ"[q.Month()-1 : q.Month()]
	return []BitMEXInstrument{
		{Symbol: "XBTUSD", RootSymbol: "XBT", Typ: BitMEXPerpetual, Underlying: "XBT", QuoteCurrency: "USD", SettlCurrency: "XBt",
			IsInverse: true, Multiplier: -100000000, UnderlyingToPositionMultiplier: math.NaN(),
			FundingRate: 0.0001, FundingTimestamp: next, FundingInterval: 8 * time.Hour,
			OpenInterest: 3e8, OpenValue: 5e11, MarkPrice: 60000.5, LastPrice: 60001, ForeignNotional24h: 4.5e8, HomeNotional24h: 7500,
			Volume24h: 4.5e8, Turnover24h: 7.5e11},
		{Symbol: "XBTUSDT", RootSymbol: "XBT", Typ: BitMEXPerpetual, Underlying: "XBT", QuoteCurrency: "USDT", SettlCurrency: "USDt",
			Multiplier: 1, UnderlyingToPositionMultiplier: 1e6,
			FundingRate: 0.00005, FundingTimestamp: next, FundingInterval: 8 * time.Hour,
			OpenInterest: 2.5e9, OpenValue: 1.5e14, MarkPrice: 60010, LastPrice: 60012, ForeignNotional24h: 9e7, HomeNotional24h: 1500,
			Volume24h: 1.5e9, Turnover24h: 9e13},
		{Symbol: "ETHUSDT", RootSymbol: "ETH", Typ: BitMEXPerpetual, Underlying: "ETH", QuoteCurrency: "USDT", SettlCurrency: "USDt",
			Multiplier: 1, UnderlyingToPositionMultiplier: 1e4,
			FundingRate: -0.0001, FundingTimestamp: next, FundingInterval: 8 * time.Hour,
			OpenInterest: 5e7, MarkPrice: 3000.5, LastPrice: 3001, ForeignNotional24h: 2e7},
		{Symbol: "ETHUSD", RootSymbol: "ETH", Typ: BitMEXPerpetual, Underlying: "ETH", QuoteCurrency: "USD", SettlCurrency: "XBt",
			IsQuanto: true, Multiplier: 100,
			FundingRate: 0.0002, FundingTimestamp: next, FundingInterval: 8 * time.Hour,
			OpenInterest: 2e5, MarkPrice: 3000.25, LastPrice: 3000, ForeignNotional24h: 3e7},
		{Symbol: "XBT" + month + q.Format("06"), RootSymbol: "XBT", Typ: BitMEXFuture, Underlying: "XBT", QuoteCurrency: "USD", SettlCurrency: "XBt",
			IsInverse: true, Multiplier: -100000000, FundingRate: math.NaN(),
			OpenInterest: 2e7, MarkPrice: 61000, LastPrice: 61050, ForeignNotional24h: 1e7},
		{Symbol: ".BXBT", RootSymbol: "XBT", Typ: "MRCXXX", Underlying: "XBT", QuoteCurrency: "USD", FundingRate: math.NaN(),
			MarkPrice: 60000},
		{Symbol: "XBT_USDT", RootSymbol: "XBT", Typ: "IFXXXP", Underlying: "XBT", QuoteCurrency: "USDT", SettlCurrency: "USDt",
			Multiplier: 1, UnderlyingToPositionMultiplier: 1e6, FundingRate: math.NaN(), MarkPrice: 60005},
	}
}
