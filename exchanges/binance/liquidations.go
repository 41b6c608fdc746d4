package binance

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// StreamName is the all-market liquidation stream of both markets.
const StreamName = "!forceOrder@arr"

// subscribeID is the id of the SUBSCRIBE request; its reply marks the stream up.
const subscribeID = 1

var subscribeMsg = []byte(fmt.Sprintf(`{"method":"SUBSCRIBE","params":[%q],"id":%d}`, StreamName, subscribeID))

func (m *market) subscribe(_ context.Context, s *wsconn.Session) error {
	return s.Send(subscribeMsg)
}

// forceOrder is the part of a forceOrder event the exporter uses.
type forceOrder struct {
	Symbol    []byte // o.s (aliases the frame; valid during the callback only)
	Side      exchanges.Side
	FilledQty float64 // o.z, accumulated filled quantity (USDⓈ-M: base asset; COIN-M: contracts)
	AvgPrice  float64 // o.ap
}

// frame is what one WebSocket frame held besides its events.
type frame struct {
	events   int    // forceOrder events passed to emit
	bad      int    // events or frames dropped as malformed
	ack      bool   // a reply to a request
	ackID    int64  // its id
	venueErr []byte // the error object of an error reply
}

var (
	errNotForceOrder = errors.New("not a forceOrder event")
	errBadSide       = errors.New("o.S is neither BUY nor SELL")
	errBadQty        = errors.New("o.z is missing, not a number, or not positive")
	errBadPrice      = errors.New("o.ap is missing, not a number, or not positive")
	errBadSymbol     = errors.New("o.s is missing or not a plain string")
)

// decodeFrame decodes one frame of the liquidation stream: a raw forceOrder
// event, an array of them, a combined-stream envelope {"stream","data"}, or a
// reply {"result","id"} / {"error","id"}. Valid events go to emit; each
// invalid event or unusable frame adds one to bad and, with its reason, to
// lastErr. emit must not retain the event's Symbol slice.
func decodeFrame(data []byte, emit func(forceOrder)) (f frame, lastErr error) {
	data = jsonx.TrimSpace(data)
	if len(data) == 0 {
		return frame{bad: 1}, errors.New("empty frame")
	}
	switch data[0] {
	case '[':
		err := jsonx.ArrayEach(data, func(v []byte) bool {
			if err := decodeEvent(v, emit); err != nil {
				f.bad++
				lastErr = err
			} else {
				f.events++
			}
			return true
		})
		if err != nil {
			f.bad++
			lastErr = err
		}
		return f, lastErr
	case '{':
	default:
		return frame{bad: 1}, jsonx.ErrSyntax
	}

	var (
		e, stream, payload, id, result, venueErr []byte
		o                                        orderFields
		oErr                                     error
	)
	end, err := jsonx.Members(data, func(k, rest []byte) int {
		switch string(k) {
		case "o": // parsed in place: the largest part of the frame is walked once
			n, err := o.parse(rest)
			if err != nil {
				oErr = err
				return -1
			}
			return n
		case "e":
			e = valuePrefix(rest)
			return len(e)
		case "stream":
			stream = valuePrefix(rest)
			return len(stream)
		case "data":
			payload = valuePrefix(rest)
			return len(payload)
		case "id":
			id = valuePrefix(rest)
			return len(id)
		case "result":
			result = valuePrefix(rest)
			return len(result)
		case "error":
			venueErr = valuePrefix(rest)
			return len(venueErr)
		}
		return 0
	})
	if err == nil && end != len(data) { // data is trimmed: nothing may follow the object
		err = jsonx.ErrSyntax
	}
	switch {
	case oErr != nil:
		return frame{bad: 1}, oErr
	case err != nil:
		return frame{bad: 1}, err
	case stream != nil && payload != nil: // combined stream envelope
		return decodeFrame(payload, emit)
	case id != nil && (result != nil || venueErr != nil):
		f.ack = true
		f.ackID, _ = jsonx.Int(id)
		if venueErr != nil && !bytes.Equal(venueErr, []byte("null")) {
			f.venueErr = venueErr
		}
		return f, nil
	case e != nil:
		if err := o.forceOrder(e, emit); err != nil {
			return frame{bad: 1}, err
		}
		return frame{events: 1}, nil
	}
	return frame{bad: 1}, errNotForceOrder
}

// valuePrefix returns the JSON value at the start of rest, or nil if it is
// malformed (the caller's walk then fails on the same bytes).
func valuePrefix(rest []byte) []byte {
	n, err := jsonx.Skip(rest)
	if err != nil {
		return nil
	}
	return rest[:n]
}

// orderFields are the raw values of the "o" object the exporter uses.
type orderFields struct {
	present           bool
	sym, side, z, ap  []byte
	haveSym, haveSide bool
	symOK             bool
}

// parse walks the "o" object at the start of rest and returns its length.
func (o *orderFields) parse(rest []byte) (int, error) {
	*o = orderFields{present: true}
	return jsonx.Members(rest, func(k, v []byte) int {
		switch string(k) {
		case "s":
			o.haveSym = true
			val := valuePrefix(v)
			o.sym, o.symOK = jsonx.String(val)
			return len(val)
		case "S":
			val := valuePrefix(v)
			o.side, o.haveSide = jsonx.String(val)
			return len(val)
		case "z":
			o.z = valuePrefix(v)
			return len(o.z)
		case "ap":
			o.ap = valuePrefix(v)
			return len(o.ap)
		}
		return 0
	})
}

// decodeEvent decodes one raw forceOrder event object (an element of an
// array frame).
func decodeEvent(v []byte, emit func(forceOrder)) error {
	var (
		e    []byte
		o    orderFields
		oErr error
	)
	end, err := jsonx.Members(v, func(k, rest []byte) int {
		switch string(k) {
		case "e":
			e = valuePrefix(rest)
			return len(e)
		case "o":
			n, err := o.parse(rest)
			if err != nil {
				oErr = err
				return -1
			}
			return n
		}
		return 0
	})
	switch {
	case oErr != nil:
		return oErr
	case err != nil:
		return err
	case len(jsonx.TrimSpace(v[end:])) != 0:
		return jsonx.ErrSyntax
	}
	return o.forceOrder(e, emit)
}

// forceOrder validates the fields of a forceOrder event and emits it.
func (o *orderFields) forceOrder(e []byte, emit func(forceOrder)) error {
	if name, ok := jsonx.String(e); !ok || string(name) != "forceOrder" || !o.present {
		return errNotForceOrder
	}
	var fo forceOrder
	if !o.haveSym || !o.symOK || len(o.sym) == 0 {
		return errBadSymbol
	}
	fo.Symbol = o.sym
	switch {
	case !o.haveSide:
		return errBadSide
	case string(o.side) == "SELL": // the engine sells a long position
		fo.Side = exchanges.Long
	case string(o.side) == "BUY":
		fo.Side = exchanges.Short
	default:
		return errBadSide
	}
	var err error
	if fo.FilledQty, err = jsonx.Float(o.z); err != nil || !(fo.FilledQty > 0) {
		return errBadQty
	}
	if fo.AvgPrice, err = jsonx.Float(o.ap); err != nil || !(fo.AvgPrice > 0) {
		return errBadPrice
	}
	emit(fo)
	return nil
}

// notional returns the USD notional of a liquidation per the project's
// rules: USDⓈ-M z x ap (stablecoins at par), COIN-M z x contractSize.
func notional(kind string, inst *exchanges.Instrument, fo forceOrder) float64 {
	if kind == coinm {
		return fo.FilledQty * inst.ContractSize
	}
	return fo.FilledQty * fo.AvgPrice
}

// onMessage is the stream's frame handler.
func (m *market) onMessage(s *wsconn.Session, data []byte) {
	f, err := decodeFrame(data, m.emit)
	if f.ack {
		switch {
		case f.venueErr != nil:
			m.log.Error("Binance rejected the subscription", "reply", string(f.venueErr))
			s.Close(fmt.Errorf("subscription rejected: %s", f.venueErr))
		case f.ackID == subscribeID:
			s.Subscribed()
		}
	}
	for range f.bad {
		m.stream.DecodeError()
	}
	if f.bad > 0 && m.logThrottle.Allow("decode") {
		m.log.Warn("dropped malformed liquidation frame or event (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// handleForceOrder counts one decoded event.
func (m *market) handleForceOrder(fo forceOrder) {
	inst, known := m.lookup(fo.Symbol)
	if inst == nil {
		if known {
			return // excluded by the coin allowlist
		}
		m.stream.DecodeError()
		m.requestRefresh()
		if m.logThrottle.Allow("unknown:" + string(fo.Symbol)) {
			m.log.Warn("liquidation for a symbol not in the instrument list was dropped; refreshing instruments", "symbol", string(fo.Symbol))
		}
		return
	}
	n := notional(m.kind, inst, fo)
	if !m.sink.Liquidation(exchanges.Liquidation{Instrument: inst, Side: fo.Side, NotionalUSD: n}) {
		m.stream.DecodeError()
		if m.logThrottle.Allow("implausible") {
			m.log.Warn("liquidation with an implausible notional was dropped", "symbol", inst.Symbol, "notional_usd", n)
		}
	}
}
