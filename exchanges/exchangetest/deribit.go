package exchangetest

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Deribit paths and documented values the fake applies (the project's
// reference, section 5).
const (
	DeribitWSPath            = "/ws/api/v2"
	DeribitInstrumentsPath   = "/api/v2/public/get_instruments"
	DeribitBookSummaryPath   = "/api/v2/public/get_book_summary_by_currency"
	DeribitMinHeartbeat      = 10 // seconds, documented minimum of public/set_heartbeat
	deribitDefaultTestWait   = 5 * time.Second
	deribitCodeTooManyReqs   = 10028  // too_many_requests (Deribit error list; UNVERIFIED here)
	deribitCodeInvalidParams = -32602 // JSON-RPC "Invalid params"
	deribitCodeNoMethod      = -32601 // JSON-RPC "Method not found"
	deribitCodeParse         = -32700 // JSON-RPC "Parse error"
	deribitCodeBadRequest    = 11050  // bad_request (UNVERIFIED for subscribe errors)
)

// DeribitInstrument is the state of one fake instrument and its book summary.
type DeribitInstrument struct {
	Name               string // instrument_name, e.g. BTC-PERPETUAL, BTC_USDC-PERPETUAL, BTC-26DEC25
	Currency           string // the currency it is listed under (get_instruments?currency=): BTC, ETH, USDC
	Kind               string // "" = future
	BaseCurrency       string
	QuoteCurrency      string
	SettlementCurrency string
	InstrumentType     string // reversed (inverse) or linear
	SettlementPeriod   string // perpetual, month, week, day
	ContractSize       float64
	Expiration         int64 // ms; 0 = the perpetual's far date
	Inactive           bool  // served as is_active false

	// Book summary. Funding8h and CurrentFunding are served for perpetuals
	// only (omitted for dated futures); NaN values are served as null.
	MarkPrice, LastPrice, OpenInterest, Volume, VolumeUSD float64
	Funding8h, CurrentFunding                             float64
}

// DeribitTrade is one trade of a trades notification.
type DeribitTrade struct {
	InstrumentName string
	Direction      string // taker side: buy or sell
	Amount         float64
	Price          float64
	Liquidation    string // "", M, T or MT; omitted when empty
	TradeID        string // "" = generated
	TradeSeq       int64
	Timestamp      int64 // ms; 0 = now
	Contracts      float64
	MarkPrice      float64
	IndexPrice     float64
}

type deribitTradeJSON struct {
	TradeSeq       int64    `json:"trade_seq"`
	TradeID        string   `json:"trade_id"`
	Timestamp      int64    `json:"timestamp"`
	TickDirection  int      `json:"tick_direction"`
	Price          float64  `json:"price"`
	MarkPrice      float64  `json:"mark_price"`
	IndexPrice     float64  `json:"index_price"`
	InstrumentName string   `json:"instrument_name"`
	Direction      string   `json:"direction"`
	Amount         float64  `json:"amount"`
	Contracts      *float64 `json:"contracts,omitempty"`
	Liquidation    string   `json:"liquidation,omitempty"`
}

var deribitTradeSeq struct {
	mu sync.Mutex
	n  int64
}

// DeribitTradesChannel returns trades.{kind}.{currency}.100ms.
func DeribitTradesChannel(kind, currency string) string {
	return "trades." + kind + "." + currency + ".100ms"
}

// DeribitTradesFrame builds the notification Deribit pushes on a trades
// channel: {"jsonrpc":"2.0","method":"subscription","params":{"channel":..,
// "data":[trades]}}.
func DeribitTradesFrame(channel string, trades ...DeribitTrade) []byte {
	rows := make([]deribitTradeJSON, 0, len(trades))
	for _, t := range trades {
		deribitTradeSeq.mu.Lock()
		deribitTradeSeq.n++
		seq := deribitTradeSeq.n
		deribitTradeSeq.mu.Unlock()
		if t.TradeID == "" {
			t.TradeID = strconv.FormatInt(480000000+seq, 10)
		}
		if t.TradeSeq == 0 {
			t.TradeSeq = seq
		}
		if t.Timestamp == 0 {
			t.Timestamp = time.Now().UnixMilli()
		}
		r := deribitTradeJSON{TradeSeq: t.TradeSeq, TradeID: t.TradeID, Timestamp: t.Timestamp, Price: t.Price,
			MarkPrice: t.MarkPrice, IndexPrice: t.IndexPrice, InstrumentName: t.InstrumentName,
			Direction: t.Direction, Amount: t.Amount, Liquidation: t.Liquidation}
		if t.Contracts != 0 {
			c := t.Contracts
			r.Contracts = &c
		}
		rows = append(rows, r)
	}
	b, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "method": "subscription",
		"params": map[string]any{"channel": channel, "data": rows},
	})
	if err != nil {
		panic(err) // finite numbers and strings always marshal
	}
	return b
}

// DeribitSampleInstruments returns a small realistic set: inverse
// BTC-PERPETUAL (10 USD contracts), ETH-PERPETUAL (1 USD), a BTC quarterly
// future, and the linear BTC_USDC-PERPETUAL and ETH_USDC-PERPETUAL listed
// under USDC.
func DeribitSampleInstruments() []DeribitInstrument {
	q := binanceNextQuarterly(time.Now())
	name := "BTC-" + strings.ToUpper(q.Format("2Jan06"))
	inv := func(name, cur string, cs, mark, oi, volUSD, f8 float64) DeribitInstrument {
		return DeribitInstrument{Name: name, Currency: cur, BaseCurrency: cur, QuoteCurrency: "USD", SettlementCurrency: cur,
			InstrumentType: "reversed", SettlementPeriod: "perpetual", ContractSize: cs, MarkPrice: mark, LastPrice: mark,
			OpenInterest: oi, VolumeUSD: volUSD, Volume: volUSD / mark, Funding8h: f8, CurrentFunding: f8 / 8}
	}
	lin := func(name, base string, cs, mark, oi, volUSD, f8 float64) DeribitInstrument {
		return DeribitInstrument{Name: name, Currency: "USDC", BaseCurrency: base, QuoteCurrency: "USDC", SettlementCurrency: "USDC",
			InstrumentType: "linear", SettlementPeriod: "perpetual", ContractSize: cs, MarkPrice: mark, LastPrice: mark,
			OpenInterest: oi, VolumeUSD: volUSD, Volume: volUSD / mark, Funding8h: f8, CurrentFunding: f8 / 8}
	}
	fut := inv(name, "BTC", 10, 61000.5, 2.5e7, 4e7, math.NaN())
	fut.SettlementPeriod, fut.Expiration = "month", q.UnixMilli()
	return []DeribitInstrument{
		inv("BTC-PERPETUAL", "BTC", 10, 60000.5, 1.2e9, 8e8, 0.00012),
		inv("ETH-PERPETUAL", "ETH", 1, 3000.25, 6e8, 3e8, -0.00005),
		fut,
		lin("BTC_USDC-PERPETUAL", "BTC", 0.001, 60010, 150.5, 2e7, 0.0001),
		lin("ETH_USDC-PERPETUAL", "ETH", 0.01, 3001, 2000, 5e6, 0.00002),
	}
}

// Deribit is a fake of Deribit's public API v2: one HTTP server on a
// loopback port serving the JSON-RPC-over-HTTP GET methods
// /api/v2/public/get_instruments and /api/v2/public/get_book_summary_by_currency
// (currency and kind parameters, {"jsonrpc":"2.0","result":..,"usIn":..}
// envelope, JSON-RPC errors with HTTP 400) and the JSON-RPC WebSocket at
// /ws/api/v2: public/subscribe and public/unsubscribe with results and
// errors, public/set_heartbeat (a test_request every interval; a connection
// that does not call public/test before the next one is closed),
// public/test, and scripted pushes delivered to the connections subscribed
// to the frame's channel.
//
// Paths given to FailNext, SetLatency and Requests are a bare path (any
// currency) or a path with its currency ("...?currency=BTC"); the
// currency-specific entry is used first.
type Deribit struct {
	wsServer[*deribitConn]

	instruments []DeribitInstrument

	rejectNext    int
	hbPeriod      time.Duration // overrides the requested interval when > 0
	testWait      time.Duration
	testRequests  int
	tests         int
	heartbeatSets int
	hbClosed      int

	restFaults // FailNext, SetLatency, Requests
}

// deribitConn is one client connection.
type deribitConn struct {
	wsConn
	d      *Deribit
	subs   []string // guarded by d.mu
	tested chan struct{}
	hbOnce sync.Once
}

// NewDeribit starts a fake Deribit on 127.0.0.1 with a free port and no
// instruments. It panics if it cannot listen, like httptest.NewServer.
func NewDeribit() *Deribit {
	d := &Deribit{testWait: deribitDefaultTestWait}
	d.startWS(d, wsConfig{name: "Deribit fake", listing: listPerEvent, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(d.serveHTTP))
	return d
}

// RESTURL returns http://127.0.0.1:port (as https://www.deribit.com).
func (d *Deribit) RESTURL() string { return d.url }

// WSURL returns ws://127.0.0.1:port/ws/api/v2 (as wss://www.deribit.com/ws/api/v2).
func (d *Deribit) WSURL() string { return d.wsURL(DeribitWSPath) }

// SetInstruments replaces the instrument list (served in this order).
func (d *Deribit) SetInstruments(list []DeribitInstrument) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.instruments = slices.Clone(list)
}

// Instruments returns a copy of the instrument list.
func (d *Deribit) Instruments() []DeribitInstrument {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.instruments)
}

// UpdateInstrument changes one instrument in place.
func (d *Deribit) UpdateInstrument(name string, f func(*DeribitInstrument)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.instruments {
		if d.instruments[i].Name == name {
			f(&d.instruments[i])
		}
	}
}

// FailNext makes the next n requests of path fail with status, an optional
// Retry-After in seconds (0 = none) and body ("" = a JSON-RPC error body
// fitting the status: too_many_requests (10028) for 429, else an internal
// error).
func (d *Deribit) FailNext(path string, n, status, retryAfter int, body string) {
	d.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body})
}

// SetLatency delays every answer to path by dur. The entry is kept even
// when dur is 0, so a currency-specific path set to 0 is not delayed by a
// latency of its bare path.
func (d *Deribit) SetLatency(path string, dur time.Duration) {
	d.pinLatency(path, dur)
}

func deribitEnvelope(id any, result any, rpcErr *deribitError, usIn int64) []byte {
	now := time.Now().UnixMicro()
	m := map[string]any{"jsonrpc": "2.0", "usIn": usIn, "usOut": now, "usDiff": now - usIn, "testnet": false}
	if id != nil {
		m["id"] = id
	}
	if rpcErr != nil {
		m["error"] = rpcErr
	} else {
		m["result"] = result
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

type deribitError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (d *Deribit) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == DeribitWSPath {
		d.serveWS(w, r, nil, d.newConn)
		return
	}
	d.serveREST(w, r)
}

func (d *Deribit) serveREST(w http.ResponseWriter, r *http.Request) {
	usIn := time.Now().UnixMicro()
	path := r.URL.Path
	cur := r.URL.Query().Get("currency")
	keys := []string{path + "?currency=" + cur, path}
	d.count(keys...)
	lat := d.delayOf(keys...)
	// The fault is taken before the latency: a request that gives up while
	// delayed still uses one up.
	fault, failed := d.take(keys...)
	d.mu.Lock()
	insts := slices.Clone(d.instruments)
	d.mu.Unlock()
	if !pause(r, d.done, lat) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if failed {
		if fault.body == "" {
			// The default body is built now, with the request's usIn.
			e := &deribitError{Code: 11094, Message: "internal_server_error"}
			if fault.status == http.StatusTooManyRequests {
				e = &deribitError{Code: deribitCodeTooManyReqs, Message: "too_many_requests"}
			}
			fault.body = string(deribitEnvelope(nil, nil, e, usIn))
		}
		fault.write(w)
		return
	}
	fail := func(e *deribitError) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(deribitEnvelope(nil, nil, e, usIn))
	}
	q := r.URL.Query()
	kind := q.Get("kind")
	if cur == "" {
		fail(&deribitError{Code: deribitCodeInvalidParams, Message: "Invalid params", Data: map[string]string{"reason": "must be present", "param": "currency"}})
		return
	}
	switch kind {
	case "", "future", "option", "spot", "future_combo", "option_combo":
	default:
		fail(&deribitError{Code: deribitCodeInvalidParams, Message: "Invalid params", Data: map[string]string{"reason": "wrong format", "param": "kind"}})
		return
	}
	var rows []map[string]any
	for _, in := range insts {
		k := in.Kind
		if k == "" {
			k = "future"
		}
		if (cur != "any" && in.Currency != cur) || (kind != "" && k != kind) {
			continue
		}
		switch path {
		case DeribitInstrumentsPath:
			if in.Inactive {
				continue // get_instruments lists active instruments unless expired=true
			}
			rows = append(rows, deribitInstrumentRow(in, k))
		case DeribitBookSummaryPath:
			if !in.Inactive {
				rows = append(rows, deribitSummaryRow(in, usIn/1000))
			}
		}
	}
	switch path {
	case DeribitInstrumentsPath, DeribitBookSummaryPath:
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(deribitEnvelope(nil, nil, &deribitError{Code: deribitCodeNoMethod, Message: "Method not found"}, usIn))
		return
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	_, _ = w.Write(deribitEnvelope(nil, rows, nil, usIn))
}

func deribitNum(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func deribitInstrumentRow(in DeribitInstrument, kind string) map[string]any {
	exp := in.Expiration
	if exp == 0 {
		exp = 32503708800000 // 3000-01-01, what perpetuals carry
	}
	counter := in.QuoteCurrency
	return map[string]any{
		"instrument_name": in.Name, "instrument_id": len(in.Name), "kind": kind,
		"base_currency": in.BaseCurrency, "quote_currency": in.QuoteCurrency, "counter_currency": counter,
		"settlement_currency": in.SettlementCurrency, "settlement_period": in.SettlementPeriod,
		"instrument_type": in.InstrumentType, "contract_size": in.ContractSize,
		"is_active": !in.Inactive, "expiration_timestamp": exp, "creation_timestamp": 1534167754000,
		"tick_size": 0.5, "min_trade_amount": in.ContractSize, "maker_commission": 0.0, "taker_commission": 0.0005,
		"max_leverage": 50, "rfq": false, "price_index": strings.ToLower(in.BaseCurrency) + "_usd",
	}
}

func deribitSummaryRow(in DeribitInstrument, nowMs int64) map[string]any {
	row := map[string]any{
		"instrument_name": in.Name, "mark_price": deribitNum(in.MarkPrice), "last": deribitNum(in.LastPrice),
		"open_interest": deribitNum(in.OpenInterest), "volume": deribitNum(in.Volume), "volume_usd": deribitNum(in.VolumeUSD),
		"volume_notional": deribitNum(in.VolumeUSD), "base_currency": in.BaseCurrency, "quote_currency": in.QuoteCurrency,
		"estimated_delivery_price": deribitNum(in.MarkPrice), "creation_timestamp": nowMs,
		"bid_price": deribitNum(in.MarkPrice), "ask_price": deribitNum(in.MarkPrice), "mid_price": deribitNum(in.MarkPrice),
		"high": deribitNum(in.LastPrice), "low": deribitNum(in.LastPrice), "price_change": 0.0,
	}
	if in.SettlementPeriod == "perpetual" {
		row["funding_8h"] = deribitNum(in.Funding8h)
		row["current_funding"] = deribitNum(in.CurrentFunding)
	}
	return row
}

func (d *Deribit) newConn() *deribitConn {
	return &deribitConn{d: d, tested: make(chan struct{}, 1)}
}

// serve answers the client's JSON-RPC requests.
func (c *deribitConn) serve() { c.readLoop(c.handle) }

type deribitRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// deribitValidChannel accepts trades.{kind}.{currency}.{interval} and
// trades.{instrument}.{interval} with interval 100ms, raw or agg2.
func deribitValidChannel(ch string) bool {
	parts := strings.Split(ch, ".")
	if len(parts) < 3 || parts[0] != "trades" {
		return false
	}
	iv := parts[len(parts)-1]
	if iv != "100ms" && iv != "raw" && iv != "agg2" {
		return false
	}
	switch len(parts) {
	case 3:
		return parts[1] != ""
	case 4:
		switch parts[1] {
		case "future", "option", "spot", "future_combo", "option_combo":
			return parts[2] != ""
		}
	}
	return false
}

func (c *deribitConn) handle(data []byte) {
	d := c.d
	usIn := time.Now().UnixMicro()
	var req deribitRequest
	if err := json.Unmarshal(data, &req); err != nil {
		c.write(deribitEnvelope(nil, nil, &deribitError{Code: deribitCodeParse, Message: "Parse error"}, usIn))
		return
	}
	var id any
	if len(req.ID) > 0 {
		id = req.ID
	}
	reply := func(result any) { c.write(deribitEnvelope(id, result, nil, usIn)) }
	fail := func(e *deribitError) { c.write(deribitEnvelope(id, nil, e, usIn)) }
	invalid := func(param string) {
		fail(&deribitError{Code: deribitCodeInvalidParams, Message: "Invalid params", Data: map[string]string{"reason": "wrong format", "param": param}})
	}
	switch req.Method {
	case "public/test":
		d.mu.Lock()
		d.tests++
		d.notifyLocked()
		d.mu.Unlock()
		select {
		case c.tested <- struct{}{}:
		default:
		}
		reply(map[string]string{"version": "1.2.26"})
	case "public/set_heartbeat":
		var p struct {
			Interval *float64 `json:"interval"`
		}
		if json.Unmarshal(req.Params, &p) != nil || p.Interval == nil || *p.Interval < DeribitMinHeartbeat {
			invalid("interval")
			return
		}
		d.mu.Lock()
		d.heartbeatSets++
		period := d.hbPeriod
		if period <= 0 {
			period = time.Duration(*p.Interval * float64(time.Second))
		}
		d.bg.Add(1)
		d.mu.Unlock()
		reply("ok")
		go func() {
			defer d.bg.Done()
			c.heartbeatLoop(period)
		}()
	case "public/subscribe", "public/unsubscribe":
		var p struct {
			Channels []string `json:"channels"`
		}
		if json.Unmarshal(req.Params, &p) != nil || len(p.Channels) == 0 {
			invalid("channels")
			return
		}
		d.mu.Lock()
		if req.Method == "public/subscribe" && d.rejectNext > 0 {
			d.rejectNext--
			d.mu.Unlock()
			fail(&deribitError{Code: deribitCodeBadRequest, Message: "bad_request"})
			return
		}
		var out []string
		for _, ch := range p.Channels {
			if !deribitValidChannel(ch) {
				continue // Deribit answers with the channels it did subscribe
			}
			out = append(out, ch)
			if req.Method == "public/subscribe" {
				if !slices.Contains(c.subs, ch) {
					c.subs = append(c.subs, ch)
				}
			} else {
				c.subs = slices.DeleteFunc(c.subs, func(s string) bool { return s == ch })
			}
		}
		if req.Method == "public/subscribe" && len(out) > 0 {
			d.subscribed++
		}
		d.notifyLocked()
		d.mu.Unlock()
		if out == nil {
			out = []string{}
		}
		reply(out)
	default:
		fail(&deribitError{Code: deribitCodeNoMethod, Message: "Method not found"})
	}
}

// heartbeatLoop sends a test_request every period; a connection that has
// not called public/test by the next tick is closed (documented: "If your
// software fails to do so, the API server will immediately close the
// connection"; the fake allows the test wait).
func (c *deribitConn) heartbeatLoop(period time.Duration) {
	started := false
	c.hbOnce.Do(func() { started = true })
	if !started {
		return // one loop per connection; a second set_heartbeat keeps the first period
	}
	c.every(period, c.testRequest) // a half-open peer sends no test_request
}

// testRequest sends one test_request and waits for public/test; it closes
// the connection and reports false when none arrives in time.
func (c *deribitConn) testRequest() bool {
	d := c.d
	select {
	case <-c.tested: // drop a reply to an earlier request
	default:
	}
	if !c.write([]byte(`{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}`)) {
		return false
	}
	d.mu.Lock()
	d.testRequests++
	wait := d.testWait
	d.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.tested:
		return true
	case <-c.dead:
		return false
	case <-d.done:
		return false
	case <-t.C:
		d.mu.Lock()
		d.hbClosed++
		d.notifyLocked()
		d.mu.Unlock()
		c.kill()
		return false
	}
}

// SendTestRequest sends a test_request to every open connection now (in
// the background) and closes those that do not call public/test within
// the test wait.
func (d *Deribit) SendTestRequest() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	conns := d.connListLocked()
	d.bg.Add(len(conns))
	d.mu.Unlock()
	for _, c := range conns {
		go func() {
			defer d.bg.Done()
			c.testRequest()
		}()
	}
}

// SetAnswerHeartbeats with false turns every connection into a half-open
// peer: the fake keeps the TCP connections open but ignores whatever
// clients send (public/test, subscriptions, protocol pings) and sends no
// test_request of its own. Scripted events still go out. true resumes
// normal service.
func (d *Deribit) SetAnswerHeartbeats(answer bool) { d.quiet.set(!answer) }

// SendHeartbeat sends a plain heartbeat notification to every open connection.
func (d *Deribit) SendHeartbeat() {
	for _, c := range d.openConns() {
		c.write([]byte(`{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}`))
	}
}

// SetHeartbeatPeriod makes test_requests come every dur instead of the
// interval the client asked for (0 = the client's interval).
func (d *Deribit) SetHeartbeatPeriod(dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hbPeriod = dur
}

// SetTestWait sets how long a connection has to answer a test_request
// (default 5 s).
func (d *Deribit) SetTestWait(dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.testWait = dur
}

// RejectNextSubscribe makes the next n public/subscribe requests fail
// with a JSON-RPC error (code 11050 bad_request; the error code Deribit
// uses here is UNVERIFIED).
func (d *Deribit) RejectNextSubscribe(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rejectNext += n
}

// Connections returns the number of open client connections.
func (d *Deribit) Connections() int { return d.connections() }

// TotalConnections returns the number of connections accepted so far.
func (d *Deribit) TotalConnections() int { return d.totalConnections() }

// Subscriptions returns the number of successful public/subscribe requests.
func (d *Deribit) Subscriptions() int { return d.subscriptionCount() }

// HeartbeatStats returns the number of public/set_heartbeat calls accepted,
// test_requests sent, public/test calls received, and connections closed
// for not answering a test_request.
func (d *Deribit) HeartbeatStats() (sets, testRequests, tests, closedUnanswered int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.heartbeatSets, d.testRequests, d.tests, d.hbClosed
}

// Channels returns, per channel, how many open connections hold it.
func (d *Deribit) Channels() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for c := range d.liveLocked() {
		for _, ch := range c.subs {
			out[ch]++
		}
	}
	return out
}

// WaitSubscribed waits until every channel is held by an open connection.
func (d *Deribit) WaitSubscribed(ctx context.Context, channels ...string) error {
	return d.WaitFor(ctx, func() (bool, string) {
		for _, ch := range channels {
			held := false
			for c := range d.liveLocked() {
				if slices.Contains(c.subs, ch) {
					held = true
				}
			}
			if !held {
				return false, "Deribit channel " + ch + " not subscribed"
			}
		}
		return true, ""
	})
}

// WaitFor waits until cond (called with the fake's lock held) holds.
func (d *Deribit) WaitFor(ctx context.Context, cond func() (bool, string)) error {
	return d.waitFor(ctx, cond)
}

// Disconnect abruptly closes every client connection (TCP close, no close
// frame).
func (d *Deribit) Disconnect() { d.disconnectAll() }

// deribitChannelOf returns params.channel of a notification ("" if none).
func deribitChannelOf(frame []byte) string {
	var n struct {
		Method string `json:"method"`
		Params struct {
			Channel string `json:"channel"`
		} `json:"params"`
	}
	if json.Unmarshal(frame, &n) != nil || n.Method != "subscription" {
		return ""
	}
	return n.Params.Channel
}

func (d *Deribit) targetsLocked(channel string) []*deribitConn {
	var out []*deribitConn
	for c := range d.liveLocked() {
		if len(c.subs) == 0 {
			continue
		}
		if channel == "" || slices.Contains(c.subs, channel) {
			out = append(out, c)
		}
	}
	return out
}

// Play runs a script in the caller's goroutine. A subscription
// notification goes to the connections subscribed to its channel; any
// other frame to every subscribed connection. Before every Frame Play waits
// (up to the play timeout) until such a connection exists; a frame nobody
// took is recorded with Conns 0. Ping sends a WebSocket ping, CloseCode a
// close frame, Disconnect drops every connection. Play returns early when
// the fake closes.
func (d *Deribit) Play(events []Event) []Delivered { return d.runScript(events) }

func (d *Deribit) deliver(frame []byte) (Delivered, bool) {
	channel := deribitChannelOf(frame)
	return d.deliverTo(frame, func() []*deribitConn { return d.targetsLocked(channel) }, nil)
}
