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

	var e, o, stream, payload, id, result, venueErr []byte
	err := jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "e":
			e = v
		case "o":
			o = v
		case "stream":
			stream = v
		case "data":
			payload = v
		case "id":
			id = v
		case "result":
			result = v
		case "error":
			venueErr = v
		}
		return true
	})
	switch {
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
		if err := decodeForceOrder(e, o, emit); err != nil {
			return frame{bad: 1}, err
		}
		return frame{events: 1}, nil
	}
	return frame{bad: 1}, errNotForceOrder
}

// decodeEvent decodes one raw forceOrder event object.
func decodeEvent(v []byte, emit func(forceOrder)) error {
	var e, o []byte
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		switch string(k) {
		case "e":
			e = val
		case "o":
			o = val
		}
		return true
	}); err != nil {
		return err
	}
	return decodeForceOrder(e, o, emit)
}

func decodeForceOrder(e, o []byte, emit func(forceOrder)) error {
	if name, ok := jsonx.String(e); !ok || string(name) != "forceOrder" || o == nil {
		return errNotForceOrder
	}
	var (
		fo                 forceOrder
		side, z, ap        []byte
		haveSym, haveSide  bool
		symOK, qtyOK, pxOK bool
	)
	if err := jsonx.ObjectEach(o, func(k, v []byte) bool {
		switch string(k) {
		case "s":
			fo.Symbol, symOK = jsonx.String(v)
			haveSym = true
		case "S":
			side, haveSide = jsonx.String(v)
		case "z":
			z = v
		case "ap":
			ap = v
		}
		return true
	}); err != nil {
		return err
	}
	if !haveSym || !symOK || len(fo.Symbol) == 0 {
		return errBadSymbol
	}
	switch {
	case !haveSide:
		return errBadSide
	case string(side) == "SELL": // the engine sells a long position
		fo.Side = exchanges.Long
	case string(side) == "BUY":
		fo.Side = exchanges.Short
	default:
		return errBadSide
	}
	var err error
	if fo.FilledQty, err = jsonx.Float(z); err == nil && fo.FilledQty > 0 {
		qtyOK = true
	}
	if !qtyOK {
		return errBadQty
	}
	if fo.AvgPrice, err = jsonx.Float(ap); err == nil && fo.AvgPrice > 0 {
		pxOK = true
	}
	if !pxOK {
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
			"err", err, "frame", truncate(data, 256))
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

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
