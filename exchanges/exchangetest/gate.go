package exchangetest

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Gate futures settle currencies the fake serves.
const (
	GateUSDT = "usdt"
	GateBTC  = "btc"
)

// Documented Gate limits and names the fake applies (the project's
// reference, section 7).
const (
	GateLiquidationChannel = "futures.public_liquidates"
	// GateMaxLiqWindow is the longest to-from span of liq_orders, in
	// seconds ("The time interval between from and to is maximum 3600").
	GateMaxLiqWindow = 3600
	// GateMaxLiqLimit and GateDefaultLiqLimit are liq_orders' page size
	// bounds (Gate's API documentation: default 100, maximum 1000).
	GateMaxLiqLimit     = 1000
	GateDefaultLiqLimit = 100
	// GateRateLimit requests per GateRateWindow per endpoint (public REST).
	GateRateLimit  = 200
	GateRateWindow = 10 * time.Second

	gateWSPrefix   = "/v4/ws/"
	gateRESTPrefix = "/api/v4/futures/"
)

// GateContract is the state of one fake contract and its market data.
type GateContract struct {
	Settle           string  // usdt or btc
	Name             string  // BTC_USDT, BTC_USD
	Type             string  // direct (USDT-settled) or inverse (BTC-settled)
	QuantoMultiplier float64 // base coin per contract (direct); served as "0" for inverse when 0
	MarkPrice        float64
	LastPrice        float64 // 0 = MarkPrice
	IndexPrice       float64 // 0 = MarkPrice
	FundingRate      float64
	FundingInterval  int64 // s
	FundingNextApply int64 // unix s
	TotalSize        float64
	Volume24hQuote   float64
	InDelisting      bool
}

// GateLiquidation is one liquidation order as pushed: signed size in
// contracts (negative = sell order = long liquidated), order price, time.
type GateLiquidation struct {
	Contract string
	Size     float64
	Price    float64
	TimeMs   int64 // 0 = now
}

// GateOrder is one liquidation order in the fake's history.
type GateOrder struct {
	Settle string
	GateLiquidation
}

type gateItemJSON struct {
	Price    float64 `json:"price"`
	Size     float64 `json:"size"`
	TimeMs   int64   `json:"time_ms"`
	Contract string  `json:"contract"`
}

type gatePushJSON struct {
	Channel string         `json:"channel"`
	Event   string         `json:"event"`
	Time    int64          `json:"time"`
	TimeMs  int64          `json:"time_ms"`
	Result  []gateItemJSON `json:"result"`
}

// GateLiquidationFrame builds the futures.public_liquidates update Gate
// pushes, with one result element per order (documented shape: price,
// size, time_ms, contract as JSON numbers and string).
func GateLiquidationFrame(orders ...GateLiquidation) []byte {
	now := time.Now()
	p := gatePushJSON{Channel: GateLiquidationChannel, Event: "update", Time: now.Unix(), TimeMs: now.UnixMilli(), Result: []gateItemJSON{}}
	for _, o := range orders {
		if o.TimeMs == 0 {
			o.TimeMs = now.UnixMilli()
		}
		p.Result = append(p.Result, gateItemJSON{Price: o.Price, Size: o.Size, TimeMs: o.TimeMs, Contract: o.Contract})
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // finite numbers and strings always marshal
	}
	return b
}

// gateOrdersOf returns the well-formed orders of a push (non-empty contract,
// finite non-zero size, positive price, positive time_ms); ok is false for
// frames that are not a futures.public_liquidates update.
func gateOrdersOf(frame []byte) (orders []GateLiquidation, ok bool) {
	var p struct {
		Channel string            `json:"channel"`
		Event   string            `json:"event"`
		Result  []json.RawMessage `json:"result"`
	}
	if json.Unmarshal(frame, &p) != nil || p.Channel != GateLiquidationChannel || p.Event != "update" {
		return nil, false
	}
	for _, raw := range p.Result {
		var it gateItemJSON
		if json.Unmarshal(raw, &it) != nil || it.Contract == "" || it.Size == 0 || !(it.Price > 0) || it.TimeMs <= 0 ||
			math.IsInf(it.Size, 0) || math.IsInf(it.Price, 0) {
			continue
		}
		orders = append(orders, it.toOrder())
	}
	return orders, true
}

func (it gateItemJSON) toOrder() GateLiquidation {
	return GateLiquidation{Contract: it.Contract, Size: it.Size, Price: it.Price, TimeMs: it.TimeMs}
}

type gateLimit struct {
	n      int
	window time.Duration
}

// Gate is a fake of Gate's futures API v4: one HTTP server on a loopback
// port serving REST (/api/v4/futures/{settle}/contracts, tickers and
// liq_orders, plain JSON arrays with string numbers, errors as
// {"label":..,"message":..}, 200 requests per 10 s per endpoint and HTTP 429
// TOO_MANY_REQUESTS beyond) and one WebSocket per settle currency
// (/v4/ws/usdt, /v4/ws/btc: futures.public_liquidates subscribe and
// unsubscribe with "!all" or contract names, acks with result.status
// success, error answers, futures.ping answered with futures.pong). Every
// well-formed order pushed (Play, Liquidate) or added (AddHistory) joins
// the history that liquidation_orders serves, so backfill and pushes agree.
// All state is guarded by a mutex and may change while clients are
// connected. Paths given to FailNext, SetLatency, SetRateLimit and Requests
// are full paths such as "/api/v4/futures/usdt/tickers".
type Gate struct {
	wsServer[*gateConn]

	contracts []GateContract
	history   []GateOrder
	limit     gateLimit
	limits    map[string]gateLimit
	hits      map[string][]time.Time

	rejectNext int

	restFaults // FailNext, SetLatency, Requests
}

// NewGate starts a fake Gate on 127.0.0.1 with a free port and no
// contracts. It panics if it cannot listen, like httptest.NewServer.
func NewGate() *Gate {
	g := &Gate{
		limit:  gateLimit{GateRateLimit, GateRateWindow},
		limits: map[string]gateLimit{},
		hits:   map[string][]time.Time{},
	}
	g.startWS(g, wsConfig{name: "Gate fake", listing: listPerStep, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(g.serveHTTP))
	return g
}

// RESTURL returns http://127.0.0.1:port (as https://api.gateio.ws); clients
// append /api/v4/....
func (g *Gate) RESTURL() string { return g.url }

// WSURL returns ws://127.0.0.1:port/v4/ws/{settle} (as
// wss://fx-ws.gateio.ws/v4/ws/usdt and .../btc).
func (g *Gate) WSURL(settle string) string {
	return g.wsURL(gateWSPrefix + settle)
}

// SetContracts replaces the contract list (served in this order).
func (g *Gate) SetContracts(list []GateContract) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.contracts = append([]GateContract(nil), list...)
}

// Contracts returns a copy of the contract list.
func (g *Gate) Contracts() []GateContract {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GateContract(nil), g.contracts...)
}

// UpdateContract changes one contract in place. A name not listed yet is
// appended as GateContract{Name: name} before f runs.
func (g *Gate) UpdateContract(name string, f func(*GateContract)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	updateOrAdd(&g.contracts, func(c GateContract) bool { return c.Name == name }, GateContract{Name: name}, f)
}

// FailNext makes the next n requests to path answer status with body, plus
// a Retry-After header of retryAfter seconds when retryAfter > 0. An empty
// body is replaced by Gate's error body for the status: 429
// TOO_MANY_REQUESTS, others SERVER_ERROR. Calls queue up in order.
func (g *Gate) FailNext(path string, n, status, retryAfter int, body string) {
	if body == "" {
		body = gateErrorBody("SERVER_ERROR", "Internal server error")
		if status == http.StatusTooManyRequests {
			body = gateErrorBody("TOO_MANY_REQUESTS", "Request Rate limit Exceeded")
		}
	}
	g.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body, contentType: "application/json"})
}

// SetRateLimit changes the limit of path to n requests per window (the
// documented 200 per 10 s is the default); n 0 removes the limit.
func (g *Gate) SetRateLimit(path string, n int, window time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limits[path] = gateLimit{n, window}
}

// ---------------------------------------------------------------- REST

func gateErrorBody(label, msg string) string {
	b, _ := json.Marshal(map[string]string{"label": label, "message": msg})
	return string(b)
}

func writeGateJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func gateError(w http.ResponseWriter, status int, label, msg string) {
	writeGateJSON(w, status, []byte(gateErrorBody(label, msg)))
}

func (g *Gate) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if settle, ok := strings.CutPrefix(r.URL.Path, gateWSPrefix); ok {
		g.serveSettleWS(w, r, settle)
		return
	}
	g.serveREST(w, r)
}

// limitedLocked records a request of path and reports whether it is over
// the endpoint's rate limit.
func (g *Gate) limitedLocked(path string, now time.Time) bool {
	l, ok := g.limits[path]
	if !ok {
		l = g.limit
	}
	if l.n <= 0 {
		return false
	}
	hits := g.hits[path]
	cut := 0
	for cut < len(hits) && now.Sub(hits[cut]) >= l.window {
		cut++
	}
	hits = hits[cut:]
	if len(hits) >= l.n {
		g.hits[path] = hits
		return true
	}
	g.hits[path] = append(hits, now)
	return false
}

func (g *Gate) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	g.count(path)
	g.mu.Lock()
	now := time.Now()
	limited := g.limitedLocked(path, now)
	g.mu.Unlock()
	if !pause(r, g.done, g.delayOf(path)) {
		return
	}
	fault, failed := g.take(path)
	g.mu.Lock()
	contracts := append([]GateContract(nil), g.contracts...)
	history := append([]GateOrder(nil), g.history...)
	g.mu.Unlock()

	switch {
	case limited:
		w.Header().Set("X-Gate-RateLimit-Limit", strconv.Itoa(GateRateLimit))
		w.Header().Set("X-Gate-RateLimit-Requests-Remain", "0")
		gateError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Request Rate limit Exceeded")
		return
	case failed:
		fault.write(w)
		return
	case r.Method != http.MethodGet:
		gateError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed")
		return
	}
	rest, ok := strings.CutPrefix(path, gateRESTPrefix)
	settle, ep, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		gateError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	if settle != GateUSDT && settle != GateBTC && settle != "usd" {
		gateError(w, http.StatusBadRequest, "INVALID_PARAM_VALUE", "Invalid settle: "+settle)
		return
	}
	var body any
	switch ep {
	case "contracts":
		rows := []any{}
		for _, c := range contracts {
			if c.Settle == settle {
				rows = append(rows, gateContractRow(c))
			}
		}
		body = rows
	case "tickers":
		rows := []any{}
		for _, c := range contracts {
			if c.Settle == settle && !c.InDelisting {
				rows = append(rows, gateTickerRow(c))
			}
		}
		body = rows
	case "liq_orders":
		var status int
		var label, msg string
		body, status, label, msg = gateLiqOrders(r.URL.Query(), settle, contracts, history, now)
		if status != 0 {
			gateError(w, status, label, msg)
			return
		}
	default:
		gateError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		gateError(w, http.StatusInternalServerError, "SERVER_ERROR", err.Error())
		return
	}
	writeGateJSON(w, http.StatusOK, b)
}

func gateNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func gateOr(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// gateContractRow is one element of the contracts answer, with the
// documented fields the exporter reads and a few it ignores.
func gateContractRow(c GateContract) map[string]any {
	return map[string]any{
		"name": c.Name, "type": c.Type, "quanto_multiplier": gateNum(c.QuantoMultiplier), "leverage_min": "1", "leverage_max": "100",
		"maintenance_rate": "0.005", "mark_type": "index", "mark_price": gateNum(c.MarkPrice), "index_price": gateNum(gateOr(c.IndexPrice, c.MarkPrice)),
		"last_price": gateNum(gateOr(c.LastPrice, c.MarkPrice)), "maker_fee_rate": "-0.00025", "taker_fee_rate": "0.00075",
		"order_price_round": "0.1", "mark_price_round": "0.01", "funding_rate": gateNum(c.FundingRate), "funding_interval": c.FundingInterval,
		"funding_next_apply": c.FundingNextApply, "risk_limit_base": "1000000", "order_size_min": 1, "order_size_max": 1000000,
		"position_size": int64(c.TotalSize), "in_delisting": c.InDelisting, "orders_limit": 50,
	}
}

// gateTickerRow is one element of the tickers answer.
func gateTickerRow(c GateContract) map[string]any {
	last := gateNum(gateOr(c.LastPrice, c.MarkPrice))
	return map[string]any{
		"contract": c.Name, "last": last, "low_24h": last, "high_24h": last, "change_percentage": "0",
		"total_size": gateNum(c.TotalSize), "volume_24h": "1000", "volume_24h_base": "10", "volume_24h_quote": gateNum(c.Volume24hQuote),
		"volume_24h_settle": gateNum(c.Volume24hQuote), "mark_price": gateNum(c.MarkPrice), "funding_rate": gateNum(c.FundingRate),
		"funding_rate_indicative": gateNum(c.FundingRate), "index_price": gateNum(gateOr(c.IndexPrice, c.MarkPrice)),
		"highest_bid": last, "lowest_ask": last,
	}
}

// gateLiqOrders serves liq_orders from the history: contract optional (must
// exist when given), from/to unix seconds with to-from at most 3600
// (INVALID_PARAM_VALUE otherwise), to defaulting to now and from to to-3600,
// limit 1..1000 (default 100); orders with from <= time <= to, newest
// first. The inclusive bounds and the order are the fake's reading
// (UNVERIFIED). A non-zero status is an error answer.
func gateLiqOrders(q map[string][]string, settle string, contracts []GateContract, history []GateOrder, now time.Time) (rows []any, status int, label, msg string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	intParam := func(k string, def int64) (int64, bool) {
		v := get(k)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	to, ok1 := intParam("to", now.Unix())
	from, ok2 := intParam("from", to-GateMaxLiqWindow)
	limit, ok3 := intParam("limit", GateDefaultLiqLimit)
	switch {
	case !ok1 || !ok2 || !ok3:
		return nil, http.StatusBadRequest, "INVALID_PARAM_VALUE", "Invalid parameter value"
	case limit < 1 || limit > GateMaxLiqLimit:
		return nil, http.StatusBadRequest, "INVALID_PARAM_VALUE", "limit must be between 1 and 1000"
	case to < from:
		return nil, http.StatusBadRequest, "INVALID_PARAM_VALUE", "from must not be later than to"
	case to-from > GateMaxLiqWindow:
		return nil, http.StatusBadRequest, "INVALID_PARAM_VALUE", "The time interval between from and to is maximum 3600"
	}
	contract := get("contract")
	if contract != "" {
		found := false
		for _, c := range contracts {
			found = found || (c.Settle == settle && c.Name == contract)
		}
		if !found {
			return nil, http.StatusBadRequest, "CONTRACT_NOT_FOUND", "Contract not found"
		}
	}
	var sel []GateOrder
	for _, h := range history {
		sec := h.TimeMs / 1000
		if h.Settle == settle && (contract == "" || h.Contract == contract) && sec >= from && sec <= to {
			sel = append(sel, h)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].TimeMs > sel[j].TimeMs })
	if int64(len(sel)) > limit {
		sel = sel[:limit]
	}
	rows = []any{}
	for _, h := range sel {
		px := gateNum(h.Price)
		rows = append(rows, map[string]any{
			"time": h.TimeMs / 1000, "contract": h.Contract, "size": -h.Size, "order_size": h.Size,
			"order_price": px, "fill_price": px, "left": 0,
		})
	}
	return rows, 0, "", ""
}

// ---------------------------------------------------------------- history

// AddHistory adds orders to the liquidation history without pushing them
// (orders that happened before a client connected, or during a gap). An
// order without Settle takes its contract's settle currency.
func (g *Gate) AddHistory(orders ...GateOrder) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range orders {
		if o.Settle == "" {
			o.Settle = g.settleOfLocked(o.Contract)
		}
		g.history = append(g.history, o)
	}
}

// History returns the orders of a settle currency ("" = all) in the order
// they happened (were pushed or added).
func (g *Gate) History(settle string) []GateOrder {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []GateOrder
	for _, h := range g.history {
		if settle == "" || h.Settle == settle {
			out = append(out, h)
		}
	}
	return out
}

// settleOfLocked returns a contract's settle currency: from the contract
// list, else btc for names ending in _USD and usdt otherwise.
func (g *Gate) settleOfLocked(contract string) string {
	for _, c := range g.contracts {
		if c.Name == contract {
			return c.Settle
		}
	}
	if strings.HasSuffix(contract, "_USD") {
		return GateBTC
	}
	return GateUSDT
}

// ---------------------------------------------------------------- WebSocket

// gateConn is one client connection of one settle currency. all and subs
// are guarded by the fake's mutex.
type gateConn struct {
	wsConn
	g      *Gate
	settle string

	all  bool            // subscribed with "!all"
	subs map[string]bool // subscribed contracts
}

// serveSettleWS serves the WebSocket of a settle currency. Gate answers an
// unknown settle currency 404 and, while SetRefuseConnections is on, every
// upgrade 503 before the handshake stall would hold it.
func (g *Gate) serveSettleWS(w http.ResponseWriter, r *http.Request, settle string) {
	if settle != GateUSDT && settle != GateBTC {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if g.refused(w) {
		return
	}
	g.serveWS(w, r, nil, func() *gateConn { return &gateConn{g: g, settle: settle, subs: map[string]bool{}} })
}

// serve answers the client's messages.
func (c *gateConn) serve() { c.readLoop(c.handle) }

type gateRequest struct {
	Time    *int64          `json:"time"`
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

type gateWSError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type gateAnswer struct {
	Time    int64           `json:"time"`
	TimeMs  int64           `json:"time_ms"`
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *gateWSError    `json:"error"`
	Result  any             `json:"result"`
}

func gateAnswerJSON(a gateAnswer) []byte {
	now := time.Now()
	a.Time, a.TimeMs = now.Unix(), now.UnixMilli()
	b, _ := json.Marshal(a)
	return b
}

type gateStatus struct {
	Status string `json:"status"`
}

// handle answers one client message: futures.ping, or subscribe and
// unsubscribe of futures.public_liquidates. The error codes and messages
// are the fake's choice (UNVERIFIED).
func (c *gateConn) handle(data []byte) {
	var req gateRequest
	if err := json.Unmarshal(data, &req); err != nil || req.Channel == "" {
		c.write(gateAnswerJSON(gateAnswer{Error: &gateWSError{Code: 1, Message: "invalid argument provided"}}))
		return
	}
	g := c.g
	if req.Channel == "futures.ping" {
		if g.appPing() {
			c.write(gateAnswerJSON(gateAnswer{Channel: "futures.pong", Event: ""}))
		}
		return
	}
	fail := func(code int, msg string) {
		c.write(gateAnswerJSON(gateAnswer{Channel: req.Channel, Event: req.Event, Payload: req.Payload,
			Error: &gateWSError{Code: code, Message: msg}, Result: gateStatus{"fail"}}))
	}
	if req.Channel != GateLiquidationChannel || (req.Event != "subscribe" && req.Event != "unsubscribe") {
		fail(2, "unknown channel or event "+req.Channel+" "+req.Event)
		return
	}
	var payload []string
	if json.Unmarshal(req.Payload, &payload) != nil || len(payload) == 0 {
		fail(2, "invalid payload")
		return
	}
	g.mu.Lock()
	if req.Event == "subscribe" && g.rejectNext > 0 {
		g.rejectNext--
		g.mu.Unlock()
		fail(2, "Server error, please retry later")
		return
	}
	for _, p := range payload {
		if p != "!all" && g.settleOfLocked(p) != c.settle {
			g.mu.Unlock()
			fail(2, "unknown contract "+p)
			return
		}
	}
	for _, p := range payload {
		switch {
		case req.Event == "unsubscribe" && p == "!all":
			c.all = false
		case req.Event == "unsubscribe":
			delete(c.subs, p)
		case p == "!all":
			c.all = true
		default:
			c.subs[p] = true
		}
	}
	if req.Event == "subscribe" {
		g.subscribed++
	}
	g.notifyLocked()
	g.mu.Unlock()
	c.write(gateAnswerJSON(gateAnswer{Channel: req.Channel, Event: req.Event, Payload: req.Payload, Result: gateStatus{"success"}}))
}

// SetAnswerPings with false makes the fake read futures.ping without answering.
func (g *Gate) SetAnswerPings(answer bool) { g.setAnswerAppPings(answer) }

// SetRefuseConnections with true answers WebSocket upgrades with HTTP 503;
// false accepts them again.
func (g *Gate) SetRefuseConnections(refuse bool) { g.setRefuse(refuse) }

// RejectNextSubscribe answers the next n subscribe requests with an error
// (result.status fail) and subscribes nothing.
func (g *Gate) RejectNextSubscribe(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rejectNext = n
}

// Connections returns the number of open client connections.
func (g *Gate) Connections() int { return g.connections() }

// TotalConnections returns the number of connections accepted so far.
func (g *Gate) TotalConnections() int { return g.totalConnections() }

// Pings returns how many futures.ping requests clients have sent.
func (g *Gate) Pings() int { return g.pingCount() }

// Subscriptions returns the cumulative number of successful subscribe requests.
func (g *Gate) Subscriptions() int { return g.subscriptionCount() }

// WaitSubscribed waits until every settle currency given has an open
// connection subscribed to futures.public_liquidates.
func (g *Gate) WaitSubscribed(ctx context.Context, settles ...string) error {
	return g.waitFor(ctx, func() (bool, string) {
		held := map[string]bool{}
		for c := range g.liveLocked() {
			if c.all || len(c.subs) > 0 {
				held[c.settle] = true
			}
		}
		for _, s := range settles {
			if !held[s] {
				return false, "Gate " + s + " liquidations not subscribed"
			}
		}
		return true, ""
	})
}

// Disconnect abruptly closes every client connection (TCP close, no close
// frame).
func (g *Gate) Disconnect() { g.disconnectAll() }

// route returns the settle currency of a push (that of its first order's
// contract) and its well-formed orders; routed is false for other frames.
func (g *Gate) routeLocked(frame []byte) (settle string, orders []GateOrder, routed bool) {
	liqs, ok := gateOrdersOf(frame)
	if !ok {
		return "", nil, false
	}
	var p struct {
		Result []struct {
			Contract string `json:"contract"`
		} `json:"result"`
	}
	_ = json.Unmarshal(frame, &p)
	if len(p.Result) > 0 {
		settle = g.settleOfLocked(p.Result[0].Contract)
	}
	for _, l := range liqs {
		orders = append(orders, GateOrder{Settle: g.settleOfLocked(l.Contract), GateLiquidation: l})
	}
	return settle, orders, true
}

// targetsLocked returns the subscribed connections a frame goes to: those
// of its settle currency subscribed to "!all" or to one of its contracts,
// or for frames that are not a push every subscribed connection.
func (g *Gate) targetsLocked(settle string, orders []GateOrder, routed bool) []*gateConn {
	var out []*gateConn
	for c := range g.liveLocked() {
		if !c.all && len(c.subs) == 0 {
			continue
		}
		if !routed {
			out = append(out, c)
			continue
		}
		if c.settle != settle {
			continue
		}
		wants := c.all
		for _, o := range orders {
			wants = wants || c.subs[o.Contract]
		}
		if wants {
			out = append(out, c)
		}
	}
	return out
}

// Liquidate records the well-formed orders of a push in the history and
// pushes the frame at once to the connections that want it, without waiting
// for one: with no subscriber the orders happened during a gap and only the
// REST history has them.
func (g *Gate) Liquidate(frame []byte) Delivered {
	g.mu.Lock()
	settle, orders, routed := g.routeLocked(frame)
	g.history = append(g.history, orders...)
	targets := g.targetsLocked(settle, orders, routed)
	g.mu.Unlock()
	return g.push(frame, targets)
}

// Play runs a script in the caller's goroutine. A liquidation push goes to
// the connections of its contracts' settle currency and its well-formed
// orders join the history; any other frame (answers, garbage) goes to
// every subscribed connection. Before every Frame Play waits (up to the
// play timeout) until such a connection exists; a frame nobody took is
// recorded with Conns 0 (its orders still join the history). Ping sends a
// WebSocket ping frame, CloseCode a close frame, Disconnect drops every
// connection. Play returns early when the fake closes.
func (g *Gate) Play(events []Event) []Delivered { return g.runScript(events) }

// deliver waits for a subscriber and writes frame; false if the fake closed.
func (g *Gate) deliver(frame []byte) (Delivered, bool) {
	g.mu.Lock()
	settle, orders, routed := g.routeLocked(frame)
	g.mu.Unlock()
	keep := func() { g.history = append(g.history, orders...) }
	return g.deliverTo(frame, func() []*gateConn { return g.targetsLocked(settle, orders, routed) }, keep)
}

// GateSampleContracts returns a small realistic contract set: USDT-settled
// BTC_USDT (quanto_multiplier 0.0001), ETH_USDT (0.01), 1000PEPE-style
// PEPE_USDT (10,000,000) and a delisting LUNA_USDT; BTC-settled inverse
// BTC_USD. Funding every 8 h (PEPE 4 h), next at the next boundary.
func GateSampleContracts() []GateContract {
	now := time.Now()
	next := now.Truncate(8 * time.Hour).Add(8 * time.Hour).Unix()
	next4 := now.Truncate(4 * time.Hour).Add(4 * time.Hour).Unix()
	return []GateContract{
		{Settle: GateUSDT, Name: "BTC_USDT", Type: "direct", QuantoMultiplier: 0.0001, MarkPrice: 60000.5, LastPrice: 60001,
			FundingRate: 0.0001, FundingInterval: 28800, FundingNextApply: next, TotalSize: 2.5e8, Volume24hQuote: 3.2e9},
		{Settle: GateUSDT, Name: "ETH_USDT", Type: "direct", QuantoMultiplier: 0.01, MarkPrice: 3000.25,
			FundingRate: -0.00005, FundingInterval: 28800, FundingNextApply: next, TotalSize: 4e7, Volume24hQuote: 1.1e9},
		{Settle: GateUSDT, Name: "PEPE_USDT", Type: "direct", QuantoMultiplier: 1e7, MarkPrice: 0.0000123,
			FundingRate: 0.0002, FundingInterval: 14400, FundingNextApply: next4, TotalSize: 5e5, Volume24hQuote: 4.5e7},
		{Settle: GateUSDT, Name: "LUNA_USDT", Type: "direct", QuantoMultiplier: 1, MarkPrice: 0.5, FundingInterval: 28800,
			FundingNextApply: next, TotalSize: 10, InDelisting: true},
		{Settle: GateBTC, Name: "BTC_USD", Type: "inverse", QuantoMultiplier: 0, MarkPrice: 60010,
			FundingRate: 0.00008, FundingInterval: 28800, FundingNextApply: next, TotalSize: 3e7, Volume24hQuote: 2e8},
	}
}
