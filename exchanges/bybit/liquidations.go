package bybit

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// TopicPrefix starts every liquidation topic: allLiquidation.{symbol}
// (documented; there is no wildcard, so every symbol has its own topic).
const TopicPrefix = "allLiquidation."

// Topic returns the liquidation topic of a symbol.
func Topic(symbol string) string { return TopicPrefix + symbol }

// liquidation is one decoded event of an allLiquidation frame.
type liquidation struct {
	Symbol []byte // s (aliases the frame; valid during the callback only)
	Side   exchanges.Side
	Size   float64 // v, executed size: linear base coin, inverse USD contracts
	Price  float64 // p, bankruptcy price
}

// frame is what one WebSocket frame held besides its events.
type frame struct {
	events int // events passed to emit
	bad    int // events or frames dropped as malformed

	// A reply to a request: a subscription ack, an unsubscription ack or a
	// pong, {"success":..,"ret_msg":..,"conn_id":..,"req_id":..,"op":..}.
	ack     bool
	success bool
	op      []byte
	reqID   []byte
	retMsg  []byte
}

var (
	errNotLiquidation = errors.New("neither an allLiquidation push nor a reply")
	errWrongTopic     = errors.New("topic is not allLiquidation.{symbol}")
	errBadData        = errors.New("data is not an array of events")
	errBadSide        = errors.New(`side (S) is neither "Buy" nor "Sell"`)
	errBadSize        = errors.New("v is missing, not a number, or not positive")
	errBadPrice       = errors.New("p is missing, not a number, or not positive")
	errBadSymbol      = errors.New("s is missing or not a plain string")
	errOtherSymbol    = errors.New("s differs from the topic's symbol")
	errBadSuccess     = errors.New("success is not a boolean")
)

// decodeFrame decodes one frame of a liquidation connection: an
// allLiquidation push {"topic","type","ts","data":[...]} or a reply to a
// request (identified by its "success" member). Keys are matched exactly
// (the events carry both "s" and "S"). Valid events go to emit; each invalid
// event or unusable frame adds one to bad and, with its reason, to lastErr.
// emit must not retain the event's Symbol slice. "type" is not checked
// (documented as always "snapshot"), nor are "ts" and "T": every pushed
// event counts once. That Bybit replays no earlier events after a
// (re)subscribe is not documented either way (UNVERIFIED).
func decodeFrame(data []byte, emit func(liquidation)) (f frame, lastErr error) {
	var topic, payload, success, op, reqID, retMsg []byte
	err := jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "topic":
			topic = v
		case "data":
			payload = v
		case "success":
			success = v
		case "op":
			op = v
		case "req_id":
			reqID = v
		case "ret_msg":
			retMsg = v
		}
		return true
	})
	switch {
	case err != nil:
		return frame{bad: 1}, err
	case success != nil:
		f.ack = true
		switch string(success) {
		case "true":
			f.success = true
		case "false":
		default:
			return frame{bad: 1}, errBadSuccess
		}
		f.op, _ = jsonx.String(op)
		f.reqID, _ = jsonx.String(reqID)
		f.retMsg = retMsg
		if s, ok := jsonx.String(retMsg); ok {
			f.retMsg = s
		}
		return f, nil
	case topic == nil:
		return frame{bad: 1}, errNotLiquidation
	}
	name, ok := jsonx.String(topic)
	sym, isLiq := bytes.CutPrefix(name, []byte(TopicPrefix))
	if !ok || !isLiq || len(sym) == 0 {
		return frame{bad: 1}, errWrongTopic
	}
	each := func(v []byte) bool {
		if err := decodeEvent(v, sym, emit); err != nil {
			f.bad++
			lastErr = err
		} else {
			f.events++
		}
		return true
	}
	switch jsonx.KindOf(payload) {
	case jsonx.KindArray:
		if err := jsonx.ArrayEach(payload, each); err != nil {
			f.bad++
			lastErr = err
		}
	case jsonx.KindObject: // the shape of the retired liquidation.{symbol} topic
		each(payload)
	default:
		return frame{bad: 1}, errBadData
	}
	return f, lastErr
}

// decodeEvent decodes one event {"T","s","S","v","p"} of the topic's symbol.
func decodeEvent(v, topicSym []byte, emit func(liquidation)) error {
	var (
		ev                liquidation
		sym, side, sz, px []byte
		haveSym, symOK    bool
	)
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		switch string(k) {
		case "s":
			sym, symOK = jsonx.String(val)
			haveSym = true
		case "S":
			side = val
		case "v":
			sz = val
		case "p":
			px = val
		}
		return true
	}); err != nil {
		return err
	}
	if !haveSym || !symOK || len(sym) == 0 {
		return errBadSymbol
	}
	if !bytes.Equal(sym, topicSym) {
		return errOtherSymbol
	}
	ev.Symbol = sym
	// S is the side of the POSITION (documented): "Buy" means a long
	// position was liquidated, the opposite of Binance's order side.
	switch string(side) {
	case `"Buy"`:
		ev.Side = exchanges.Long
	case `"Sell"`:
		ev.Side = exchanges.Short
	default:
		return errBadSide
	}
	var err error
	if ev.Size, err = jsonx.Float(sz); err != nil || !(ev.Size > 0) {
		return errBadSize
	}
	if ev.Price, err = jsonx.Float(px); err != nil || !(ev.Price > 0) {
		return errBadPrice
	}
	emit(ev)
	return nil
}

// notional returns the USD notional of a liquidation per the project's
// rules: linear v x p (bankruptcy price; USDT and USDC at par), inverse v
// (USD contracts of ContractSize USD each, INFERRED).
func notional(inst *exchanges.Instrument, ev liquidation) float64 {
	if inst.Market == exchanges.Inverse {
		return ev.Size * inst.ContractSize
	}
	return ev.Size * ev.Price
}

// onMessage is the frame handler of one liquidation connection.
func (sh *shard) onMessage(s *wsconn.Session, data []byte) {
	m := sh.m
	f, err := decodeFrame(data, sh.emit)
	if f.ack {
		sh.onReply(s, f)
	}
	for range f.bad {
		sh.obs.DecodeError()
	}
	if f.bad > 0 && m.logThrottle.Allow("decode") {
		m.log.Warn("dropped malformed liquidation frame or event (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"stream", sh.name, "err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// onReply handles an ack or a pong. A rejected request is counted as a
// decode error, logged, asks for a fresh instrument list (the usual cause is
// a symbol that is no longer listed) and closes the connection; the runner
// reconnects after back-off and subscribes the current topic set again.
func (sh *shard) onReply(s *wsconn.Session, f frame) {
	if !f.success {
		sh.obs.DecodeError()
		sh.m.log.Error("Bybit rejected a request; reconnecting", "stream", sh.name,
			"op", string(f.op), "req_id", string(f.reqID), "ret_msg", exchanges.Truncate(f.retMsg, 512))
		sh.m.requestRefresh()
		s.Close(fmt.Errorf("%s rejected: %s", f.op, exchanges.Truncate(f.retMsg, 256)))
		return
	}
	// Acks of the subscriptions sent on connect mark the stream up once all
	// have arrived. Bybit echoes req_id (documented samples show it, or ""),
	// so an ack without one counts as well.
	if string(f.op) == "subscribe" && sh.pending > 0 && (len(f.reqID) == 0 || bytes.HasPrefix(f.reqID, []byte(reqInit))) {
		sh.pending--
		if sh.pending == 0 {
			s.Subscribed()
		}
	}
}

// handle counts one decoded event.
func (sh *shard) handle(ev liquidation) {
	m := sh.m
	inst, known := m.lookup(ev.Symbol)
	if inst == nil {
		if known {
			return // excluded by the coin allowlist
		}
		sh.obs.DecodeError()
		m.requestRefresh()
		if m.logThrottle.Allow("unknown:" + string(ev.Symbol)) {
			m.log.Warn("liquidation for a symbol not in the instrument list was dropped; refreshing instruments", "stream", sh.name, "symbol", string(ev.Symbol))
		}
		return
	}
	n := notional(inst, ev)
	if !m.sink.Liquidation(exchanges.Liquidation{Instrument: inst, Side: ev.Side, NotionalUSD: n}) {
		sh.obs.DecodeError()
		if m.logThrottle.Allow("implausible") {
			m.log.Warn("liquidation with an implausible notional was dropped", "symbol", inst.Symbol, "notional_usd", n)
		}
	}
}
