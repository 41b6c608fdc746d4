package bitmex

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Table is the liquidation table (documented); one subscription covers
// every instrument.
const Table = "liquidation"

// action is a table frame's action.
type action uint8

const (
	actNone    action = iota
	actPartial        // the snapshot sent on subscribe: history
	actInsert         // a new liquidation order: counted
	actUpdate         // fill progress
	actDelete         // the order left the book
)

// frameKind tells what a frame was.
type frameKind uint8

const (
	kindTable frameKind = iota // {"table":..,"action":..,"data":[...]}
	kindAck                    // {"success":true,"subscribe":"liquidation",...}
	kindError                  // {"status":400,"error":"..."} or {"success":false,...}
	kindInfo                   // the welcome message {"info":..,"version":..}
	kindPong                   // the text "pong"
	kindPing                   // the text "ping"
)

// frame is one decoded WebSocket frame; byte slices alias the input.
type frame struct {
	kind      frameKind
	table     []byte
	action    action
	data      []byte // the raw data array of a table frame
	subscribe []byte // the acknowledged subscription
	status    []byte // error status
	errMsg    []byte // error text
}

// order is one liquidation order of a table frame; byte slices alias the
// frame and are valid during the callback only.
type order struct {
	OrderID []byte
	Symbol  []byte
	Side    exchanges.Side
	Price   float64 // 0 when absent
	Qty     float64 // leavesQty
}

var (
	errUnknownFrame = errors.New("neither a table frame, an acknowledgement, an error nor the welcome message")
	errBadTable     = errors.New("table is not a plain string")
	errBadAction    = errors.New(`action is not "partial", "insert", "update" or "delete"`)
	errBadData      = errors.New("data is not an array")
	errWrongTable   = errors.New("table is not liquidation")
	errBadItem      = errors.New("a data element is not an object")
	errBadOrderID   = errors.New("orderID is missing or not a string")
	errBadSymbol    = errors.New("symbol is missing or not a string")
	errBadSide      = errors.New(`side is neither "Buy" nor "Sell"`)
	errBadQty       = errors.New("leavesQty is missing, not a number, or not positive")
	errBadPrice     = errors.New("price is not a positive number")
)

// decodeFrame reads the envelope of one frame (keys matched exactly). A
// table frame's orders are read afterwards with eachOrder.
func decodeFrame(data []byte) (f frame, err error) {
	switch string(jsonx.TrimSpace(data)) {
	case "pong":
		return frame{kind: kindPong}, nil
	case "ping":
		return frame{kind: kindPing}, nil
	}
	var table, act, payload, success, subscribe, status, errv, info []byte
	err = jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "table":
			table = v
		case "action":
			act = v
		case "data":
			payload = v
		case "success":
			success = v
		case "subscribe":
			subscribe = v
		case "status":
			status = v
		case "error":
			errv = v
		case "info":
			info = v
		}
		return true
	})
	if err != nil {
		return frame{}, err
	}
	switch {
	case errv != nil || string(success) == "false":
		return frame{kind: kindError, status: status, errMsg: jsonx.Unquote(errv), subscribe: jsonx.Unquote(subscribe)}, nil
	case string(success) == "true":
		return frame{kind: kindAck, subscribe: jsonx.Unquote(subscribe)}, nil
	case table != nil:
	case info != nil:
		return frame{kind: kindInfo}, nil
	default:
		return frame{}, errUnknownFrame
	}
	f.kind = kindTable
	var ok bool
	if f.table, ok = jsonx.String(table); !ok {
		return frame{}, errBadTable
	}
	switch string(act) {
	case `"partial"`:
		f.action = actPartial
	case `"insert"`:
		f.action = actInsert
	case `"update"`:
		f.action = actUpdate
	case `"delete"`:
		f.action = actDelete
	default:
		return frame{}, errBadAction
	}
	if jsonx.KindOf(payload) != jsonx.KindArray {
		return frame{}, errBadData
	}
	f.data = payload
	return f, nil
}

// eachOrder walks the data array of a liquidation table frame. For inserts
// every element must be a complete order (orderID, symbol, side, a
// positive leavesQty, and price when present a positive number); for the
// other actions only orderID is read and elements without one are skipped.
// Good orders go to fn; each bad one adds to bad with its reason in lastErr.
func eachOrder(data []byte, act action, fn func(order)) (good, bad int, lastErr error) {
	err := jsonx.ArrayEach(data, func(item []byte) bool {
		o, err := decodeOrder(item, act == actInsert)
		switch {
		case err != nil && act == actInsert:
			bad++
			lastErr = err
		case err == nil:
			good++
			fn(o)
		}
		return true
	})
	if err != nil {
		bad++
		lastErr = err
	}
	return good, bad, lastErr
}

// decodeOrder reads one Liquidation {"orderID","symbol","side","price",
// "leavesQty"}; full asks for every field of an insert.
func decodeOrder(item []byte, full bool) (order, error) {
	if jsonx.KindOf(item) != jsonx.KindObject {
		return order{}, errBadItem
	}
	var o order
	var id, sym, side, px, qty []byte
	if err := jsonx.ObjectEach(item, func(k, v []byte) bool {
		switch string(k) {
		case "orderID":
			id = v
		case "symbol":
			sym = v
		case "side":
			side = v
		case "price":
			px = v
		case "leavesQty":
			qty = v
		}
		return true
	}); err != nil {
		return order{}, err
	}
	var ok bool
	if o.OrderID, ok = jsonx.String(id); !ok || len(o.OrderID) == 0 {
		return order{}, errBadOrderID
	}
	if !full {
		return o, nil
	}
	if o.Symbol, ok = jsonx.String(sym); !ok || len(o.Symbol) == 0 {
		return order{}, errBadSymbol
	}
	// The side of the liquidation engine's order: a Sell closes a long
	// (INFERRED, the reference section 4).
	switch string(side) {
	case `"Sell"`:
		o.Side = exchanges.Long
	case `"Buy"`:
		o.Side = exchanges.Short
	default:
		return order{}, errBadSide
	}
	var err error
	if o.Qty, err = jsonx.Float(qty); err != nil || !(o.Qty > 0) {
		return order{}, errBadQty
	}
	if px != nil && string(px) != "null" {
		if o.Price, err = jsonx.Float(px); err != nil || !(o.Price > 0) {
			return order{}, errBadPrice
		}
	}
	return o, nil
}

var (
	pingFrame        = []byte("ping")
	pongFrame        = []byte("pong")
	subscribeRequest = []byte(`{"op":"subscribe","args":["` + Table + `"]}`)
)

// streamConfig returns the runner configuration of the liquidation stream.
func (v *Venue) streamConfig() wsconn.Config {
	insert, rest, remove := v.insert, v.rest, v.remove
	c := wsconn.Config{
		Name:         StreamLiquidation,
		URL:          func() string { return v.cfg.WS },
		PingInterval: PingInterval,
		OnConnect:    v.onConnect,
		OnMessage:    func(s *wsconn.Session, data []byte) { v.onMessage(s, data, insert, rest, remove) },
		Heartbeat:    func(s *wsconn.Session) error { return s.Send(pingFrame) },
		Observer:     v.obs,
		Logger:       v.log,
	}
	if v.cfg.Stream != nil {
		v.cfg.Stream(&c)
	}
	return c
}

// onConnect forgets the resting orders of the previous connection (the
// partial that follows the subscription lists the current ones) and
// subscribes.
func (v *Venue) onConnect(_ context.Context, s *wsconn.Session) error {
	clear(v.active)
	return s.Send(subscribeRequest)
}

// onMessage is the frame handler of the liquidation connection. insert,
// rest and remove are the venue's methods, bound once.
func (v *Venue) onMessage(s *wsconn.Session, data []byte, insert, rest, remove func(order)) {
	f, err := decodeFrame(data)
	bad := 0
	if err != nil {
		bad = 1
	}
	switch f.kind {
	case kindPing:
		_ = s.Send(pongFrame)
	case kindAck:
		if isLiquidationTopic(f.subscribe) {
			s.Subscribed()
		}
	case kindError:
		v.obs.DecodeError()
		v.log.Error("BitMEX answered with an error; reconnecting", "status", string(f.status), "error", exchanges.Truncate(f.errMsg, 512))
		s.Close(fmt.Errorf("BitMEX error %s: %s", f.status, exchanges.Truncate(f.errMsg, 256)))
	case kindTable:
		if err != nil {
			break
		}
		if string(f.table) != Table {
			bad, err = 1, errWrongTable
			break
		}
		var fn func(order)
		switch f.action {
		case actPartial:
			// The snapshot on subscribe: history, never counted; it
			// replaces the resting set and proves the subscription.
			clear(v.active)
			s.Subscribed()
			fn = rest
		case actInsert:
			fn = insert
		case actDelete:
			fn = remove
		default:
			return // update: fill progress of a counted order
		}
		var b int
		var e error
		if _, b, e = eachOrder(f.data, f.action, fn); b > 0 {
			bad, err = b, e
		}
	}
	for range bad {
		v.obs.DecodeError()
	}
	if bad > 0 && v.throttle.Allow("decode") {
		v.log.Warn("dropped malformed liquidation frame or order (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// isLiquidationTopic reports whether an acknowledged subscription is the
// liquidation table ("liquidation" or "liquidation:SYMBOL").
func isLiquidationTopic(sub []byte) bool {
	s := string(sub)
	return s == Table || (len(s) > len(Table) && s[:len(Table)+1] == Table+":")
}

// orderKey is the key of an orderID in the set of resting orders: its
// 64-bit hash. Two of the at most maxActive orderIDs held share a key with
// a probability of about 3 in 10^12.
func (v *Venue) orderKey(id []byte) uint64 { return maphash.Bytes(v.seed, id) }

// rest records an order of the partial as resting (not counted).
func (v *Venue) rest(o order) { v.restKey(v.orderKey(o.OrderID)) }

// restKey records the key of a resting order.
func (v *Venue) restKey(k uint64) {
	if len(v.active) >= maxActive {
		clear(v.active)
	}
	v.active[k] = struct{}{}
}

// remove forgets an order that left the book.
func (v *Venue) remove(o order) { delete(v.active, v.orderKey(o.OrderID)) }

// insert counts a new liquidation order once: an orderID already resting
// (sent in the partial or inserted before) is not counted again.
func (v *Venue) insert(o order) {
	k := v.orderKey(o.OrderID)
	if _, dup := v.active[k]; dup {
		return
	}
	in := (*v.instruments.Load())[string(o.Symbol)]
	switch {
	case in == nil:
		v.obs.DecodeError()
		v.requestRefresh()
		if v.throttle.Allow("unknown:" + string(o.Symbol)) {
			v.log.Warn("liquidation for an instrument not in the instrument list was dropped; refreshing instruments", "symbol", string(o.Symbol))
		}
		return
	case in.inst == nil:
		v.restKey(k)
		return // excluded by the coin allowlist
	}
	n, ok := in.notional(o.Qty, o.Price, v.btcPrice())
	if !ok || !v.sink.Liquidation(exchanges.Liquidation{Instrument: in.inst, Side: o.Side, NotionalUSD: n}) {
		v.obs.DecodeError()
		if v.throttle.Allow("implausible:" + in.symbol) {
			v.log.Warn("liquidation whose USD notional cannot be computed or is implausible was dropped",
				"symbol", in.symbol, "leaves_qty", o.Qty, "price", o.Price, "notional_usd", n)
		}
		return
	}
	v.restKey(k)
	v.counted.Add(1)
}
