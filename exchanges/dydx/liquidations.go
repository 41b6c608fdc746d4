package dydx

import (
	"errors"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
)

// Channel is the Indexer's trade channel (documented).
const Channel = "v4_trades"

// Message types of the Indexer WebSocket (documented, except
// channel_batch_data whose shape is UNVERIFIED).
const (
	typeConnected    = "connected"
	typeSubscribed   = "subscribed"
	typeUnsubscribed = "unsubscribed"
	typeChannelData  = "channel_data"
	typeBatchData    = "channel_batch_data"
	typeError        = "error"
)

// kind classifies a frame.
type kind uint8

const (
	kindOther kind = iota // connected, pong, anything the venue ignores
	kindSubscribed
	kindUnsubscribed
	kindData
	kindError
)

// liquidation is one decoded liquidation trade.
type liquidation struct {
	Market []byte // the frame's "id" (aliases the frame; valid during the callback only)
	Side   exchanges.Side
	Size   float64 // base asset
	Price  float64 // USD
}

// frame is what one WebSocket frame held besides its liquidations.
type frame struct {
	kind    kind
	id      []byte // the market ("id"), aliases the frame
	message []byte // an error's "message" (raw when not a string)
	events  int    // liquidations passed to emit
	trades  int    // trades seen (liquidations or not)
	bad     int    // trades or frames dropped as malformed
}

var (
	errNotObject   = errors.New("frame is not a JSON object with a type")
	errNoID        = errors.New(`"id" is missing or not a market string`)
	errWrongChan   = errors.New(`channel is not "v4_trades"`)
	errBadContents = errors.New(`contents is not {"trades":[...]}`)
	errBadTrade    = errors.New("trade is not an object")
	errBadLiqFlag  = errors.New(`"liquidation" is not a boolean`)
	errBadSide     = errors.New(`side is neither "BUY" nor "SELL"`)
	errBadSize     = errors.New("size is missing, not a number, or not positive")
	errBadPrice    = errors.New("price is missing, not a number, or not positive")
)

// decodeFrame decodes one Indexer frame. Keys are matched exactly. Only
// channel_data (and channel_batch_data) trades are passed to emit:
// the contents of "subscribed" are the market's recent trades (history) and
// are not decoded at all. Each malformed trade or unusable frame adds one
// to bad and, with its reason, sets lastErr.
func decodeFrame(data []byte, emit func(liquidation)) (f frame, lastErr error) {
	var typ, id, channel, contents, message []byte
	err := jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "type":
			typ = v
		case "id":
			id = v
		case "channel":
			channel = v
		case "contents":
			contents = v
		case "message":
			message = v
		}
		return true
	})
	t, ok := jsonx.String(typ)
	if err != nil || !ok {
		if err == nil {
			err = errNotObject
		}
		return frame{bad: 1}, err
	}
	switch string(t) {
	case typeError:
		f.kind = kindError
		f.message = message
		if s, ok := jsonx.String(message); ok {
			f.message = s
		}
		f.id, _ = jsonx.String(id)
		return f, nil
	case typeSubscribed, typeUnsubscribed, typeChannelData, typeBatchData:
	default:
		return frame{kind: kindOther}, nil // connected and anything new
	}
	if s, ok := jsonx.String(channel); !ok || string(s) != Channel {
		return frame{bad: 1}, errWrongChan
	}
	if f.id, ok = jsonx.String(id); !ok || len(f.id) == 0 {
		return frame{bad: 1}, errNoID
	}
	switch string(t) {
	case typeSubscribed:
		f.kind = kindSubscribed
		return f, nil
	case typeUnsubscribed:
		f.kind = kindUnsubscribed
		return f, nil
	}
	f.kind = kindData
	one := func(c []byte) {
		if err := decodeContents(c, &f, emit); err != nil {
			var counted errCounted
			if !errors.As(err, &counted) {
				f.bad++
			}
			lastErr = err
		}
	}
	if string(t) == typeBatchData {
		// Batched: contents is an array of channel_data contents (UNVERIFIED).
		if jsonx.KindOf(contents) != jsonx.KindArray {
			f.bad++
			return f, errBadContents
		}
		if err := jsonx.ArrayEach(contents, func(c []byte) bool { one(c); return true }); err != nil {
			f.bad++
			lastErr = err
		}
		return f, lastErr
	}
	one(contents)
	return f, lastErr
}

// decodeContents decodes {"trades":[...]}; bad trades are counted in f.
func decodeContents(c []byte, f *frame, emit func(liquidation)) error {
	var trades []byte
	if jsonx.KindOf(c) != jsonx.KindObject {
		return errBadContents
	}
	if err := jsonx.ObjectEach(c, func(k, v []byte) bool {
		if string(k) == "trades" {
			trades = v
		}
		return true
	}); err != nil {
		return err
	}
	if jsonx.KindOf(trades) != jsonx.KindArray {
		return errBadContents
	}
	var lastErr error
	err := jsonx.ArrayEach(trades, func(v []byte) bool {
		f.trades++
		ev, isLiq, err := decodeTrade(v)
		switch {
		case err != nil:
			f.bad++
			lastErr = err
		case isLiq:
			f.events++
			ev.Market = f.id
			emit(ev)
		}
		return true
	})
	if err != nil {
		return err
	}
	if lastErr != nil && f.bad > 0 {
		// bad trades are already counted; report the reason without
		// counting the contents again.
		return errCounted{lastErr}
	}
	return nil
}

// errCounted wraps an error whose drops are already counted.
type errCounted struct{ error }

func (e errCounted) Unwrap() error { return e.error }

// decodeTrade decodes one TradeContent {id, size, price, side, createdAt,
// liquidation[, type]}. A trade is a liquidation when liquidation is true
// or type is LIQUIDATED (DELEVERAGED trades are deleveraging, not
// liquidations). Fields of other trades are not checked.
func decodeTrade(v []byte) (ev liquidation, isLiq bool, err error) {
	if jsonx.KindOf(v) != jsonx.KindObject {
		return ev, false, errBadTrade
	}
	var side, size, price, flag, typ []byte
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		switch string(k) {
		case "side":
			side = val
		case "size":
			size = val
		case "price":
			price = val
		case "liquidation":
			flag = val
		case "type":
			typ = val
		}
		return true
	}); err != nil {
		return ev, false, err
	}
	switch string(flag) {
	case "true":
		isLiq = true
	case "", "false", "null":
	default:
		return ev, false, errBadLiqFlag
	}
	if string(typ) == `"LIQUIDATED"` {
		isLiq = true
	}
	if !isLiq {
		return ev, false, nil
	}
	// side is the taker's, and the taker is the liquidated account: a
	// SELL closes a long.
	switch string(side) {
	case `"SELL"`:
		ev.Side = exchanges.Long
	case `"BUY"`:
		ev.Side = exchanges.Short
	default:
		return ev, true, errBadSide
	}
	if ev.Size, err = jsonx.Float(size); err != nil || !(ev.Size > 0) {
		return ev, true, errBadSize
	}
	if ev.Price, err = jsonx.Float(price); err != nil || !(ev.Price > 0) {
		return ev, true, errBadPrice
	}
	return ev, true, nil
}

// notional is the USD notional of a liquidation: size x price (the
// project's rule; USD-quoted, USDC at par).
func notional(ev liquidation) float64 { return ev.Size * ev.Price }
