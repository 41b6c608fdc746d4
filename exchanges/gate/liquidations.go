package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Channel is the liquidation channel (documented); the payload "!all"
// subscribes every contract of the connection's settle currency.
const Channel = "futures.public_liquidates"

// Application heartbeat channels (documented).
const (
	pingChannel = "futures.ping"
	pongChannel = "futures.pong"
)

// liq is one decoded liquidation order (an element of "result").
type liq struct {
	Contract []byte // aliases the frame; valid during the callback only
	Side     exchanges.Side
	Size     float64 // signed contracts: negative = sell order = long liquidated
	Price    float64 // the order price
	TimeMs   int64
}

// frameKind tells what a frame was.
type frameKind uint8

const (
	kindOther    frameKind = iota // another channel's or event's frame (ignored)
	kindPush                      // a futures.public_liquidates update
	kindAck                       // subscribe answered with result.status success
	kindSubError                  // subscribe answered with an error
	kindPong                      // futures.pong
)

// frame is what one WebSocket frame held besides its orders.
type frame struct {
	kind   frameKind
	events int // orders passed to emit
	bad    int // orders or frames dropped as malformed
	// For kindSubError: the error's code and message, or the status.
	errText string
}

var (
	errNotObject   = errors.New("frame is not a JSON object with a channel")
	errBadResult   = errors.New("result of an update is not an array")
	errBadContract = errors.New("contract is missing or not a string")
	errBadSize     = errors.New("size is missing, not a number, or zero")
	errBadPrice    = errors.New("price is missing, not a number, or not positive")
	errBadTime     = errors.New("time_ms is missing or not a positive integer")
	errBadItem     = errors.New("a result element is not an object")
)

// decodeFrame decodes one frame of a liquidation connection. Keys are matched
// exactly. Valid orders go to emit; each invalid order or unusable frame adds
// one to bad and, with its reason, to lastErr. emit must not retain
// liq.Contract.
func decodeFrame(data []byte, emit func(liq)) (f frame, lastErr error) {
	var channel, event, result, errv []byte
	err := jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "channel":
			channel = v
		case "event":
			event = v
		case "result":
			result = v
		case "error":
			errv = v
		}
		return true
	})
	if err != nil {
		return frame{bad: 1}, err
	}
	ch, ok := jsonx.String(channel)
	if !ok {
		return frame{bad: 1}, errNotObject
	}
	ev, _ := jsonx.String(event)
	switch string(ch) {
	case pongChannel:
		return frame{kind: kindPong}, nil
	case Channel:
	default:
		return frame{kind: kindOther}, nil
	}
	switch string(ev) {
	case "update":
	case "subscribe":
		return subscribeAnswer(result, errv), nil
	default:
		return frame{kind: kindOther}, nil
	}
	if jsonx.KindOf(result) != jsonx.KindArray {
		return frame{kind: kindPush, bad: 1}, errBadResult
	}
	f.kind = kindPush
	if err := jsonx.ArrayEach(result, func(item []byte) bool {
		if err := decodeItem(item, emit); err != nil {
			f.bad++
			lastErr = err
		} else {
			f.events++
		}
		return true
	}); err != nil {
		f.bad++
		lastErr = err
	}
	return f, lastErr
}

// subscribeAnswer reads the answer to a subscribe request: success is
// {"error":null,"result":{"status":"success"}} (documented); anything else
// is an error, e.g. {"error":{"code":2,"message":"..."},"result":{"status":"fail"}}.
func subscribeAnswer(result, errv []byte) frame {
	f := frame{kind: kindSubError}
	var status []byte
	if jsonx.KindOf(result) == jsonx.KindObject {
		_ = jsonx.ObjectEach(result, func(k, v []byte) bool {
			if string(k) == "status" {
				status, _ = jsonx.String(v)
			}
			return true
		})
	}
	hasErr := len(errv) > 0 && string(errv) != "null"
	if !hasErr && string(status) == "success" {
		return frame{kind: kindAck}
	}
	if hasErr {
		var code, msg []byte
		if jsonx.KindOf(errv) == jsonx.KindObject {
			_ = jsonx.ObjectEach(errv, func(k, v []byte) bool {
				switch string(k) {
				case "code":
					code = v
				case "message":
					msg, _ = jsonx.String(v)
				}
				return true
			})
			f.errText = "code " + exchanges.Truncate(code, 32) + ": " + exchanges.Truncate(msg, 256)
		} else {
			f.errText = exchanges.Truncate(errv, 256)
		}
	} else {
		f.errText = "status " + exchanges.Truncate(status, 64)
	}
	return f
}

// decodeItem decodes {"price":215.1,"size":-124,"time_ms":1541486601123,"contract":"BTC_USD"}.
func decodeItem(item []byte, emit func(liq)) error {
	if jsonx.KindOf(item) != jsonx.KindObject {
		return errBadItem
	}
	var contract, size, price, ts []byte
	if err := jsonx.ObjectEach(item, func(k, v []byte) bool {
		switch string(k) {
		case "contract":
			contract = v
		case "size":
			size = v
		case "price":
			price = v
		case "time_ms":
			ts = v
		}
		return true
	}); err != nil {
		return err
	}
	l := liq{}
	var ok bool
	if l.Contract, ok = jsonx.String(contract); !ok || len(l.Contract) == 0 {
		return errBadContract
	}
	var err error
	if l.Size, err = jsonx.Float(size); err != nil || l.Size == 0 || math.IsInf(l.Size, 0) {
		return errBadSize
	}
	if l.Price, err = jsonx.Float(price); err != nil || !(l.Price > 0) || math.IsInf(l.Price, 0) {
		return errBadPrice
	}
	if l.TimeMs, err = jsonx.Int(ts); err != nil || l.TimeMs <= 0 {
		return errBadTime
	}
	l.Side = sideOf(l.Size)
	emit(l)
	return nil
}

// sideOf maps the signed order size to the liquidated position: a sell
// order (negative size) closes a long (INFERRED from Gate's REST sample,
// the project's rule).
func sideOf(size float64) exchanges.Side {
	if size < 0 {
		return exchanges.Long
	}
	return exchanges.Short
}

// notional returns the USD notional of an order per the project's rules:
// USDT-settled |size| x quanto_multiplier x price (USDT at par),
// BTC-settled |size| x 1 USD (assumed, UNVERIFIED).
func notional(c *contract, l liq) float64 {
	if c.inst.Market == exchanges.Inverse {
		return math.Abs(l.Size) * c.size
	}
	return math.Abs(l.Size) * c.size * l.Price
}

// source says where an order came from.
type source uint8

const (
	fromStream source = iota
	fromBackfill
)

// handle counts one decoded order unless it was counted before or is too
// old (see dedupe). REST orders carry whole seconds (TimeMs a multiple of
// 1000).
func (s *settle) handle(l liq, src source) {
	v := s.v
	c := v.lookup(l.Contract)
	switch {
	case c == nil:
		s.obs.DecodeError()
		s.requestRefresh()
		if v.throttle.Allow("unknown:" + string(l.Contract)) {
			s.log.Warn("liquidation for a contract not in the contract list was dropped; refreshing contracts", "contract", string(l.Contract))
		}
		return
	case c.settle != s.name:
		s.obs.DecodeError()
		if v.throttle.Allow("settle:" + string(l.Contract)) {
			s.log.Warn("liquidation for a contract of another settle currency was dropped", "contract", string(l.Contract))
		}
		return
	case c.inst == nil:
		return // excluded by the coin allowlist
	}
	switch v.dedupe.admit(c.name, l.Size, l.Price, l.TimeMs, time.Now()) {
	case exchanges.Duplicate:
		v.stats.duplicates.Add(1)
		return
	case exchanges.TooOld:
		v.stats.history.Add(1)
		return
	}
	n := notional(c, l)
	if !v.sink.Liquidation(exchanges.Liquidation{Instrument: c.inst, Side: l.Side, NotionalUSD: n}) {
		s.obs.DecodeError()
		if v.throttle.Allow("implausible") {
			s.log.Warn("liquidation with an implausible notional was dropped", "contract", c.name, "notional_usd", n)
		}
		return
	}
	v.stats.counted.Add(1)
	if src == fromBackfill {
		v.stats.backfilled.Add(1)
	}
}

// emitLive is handle for pushed orders, bound once so that decoding does
// not allocate a closure per frame.
func (s *settle) emitLive(l liq) { s.handle(l, fromStream) }

// streamConfig returns the runner configuration of the settle's stream.
func (s *settle) streamConfig() wsconn.Config {
	emit := s.emitLive
	c := wsconn.Config{
		Name:         s.streamName(),
		URL:          s.wsURL,
		PingInterval: PingInterval,
		OnConnect:    s.onConnect,
		OnMessage:    func(ss *wsconn.Session, data []byte) { s.onMessage(ss, data, emit) },
		Heartbeat:    func(ss *wsconn.Session) error { return ss.Send(pingRequest(time.Now())) },
		Observer:     s.obs,
		Logger:       s.log,
	}
	if s.v.cfg.Stream != nil {
		s.v.cfg.Stream(&c)
	}
	return c
}

// pingRequest is the application-level ping (documented).
func pingRequest(now time.Time) []byte {
	return []byte(`{"time":` + strconv.FormatInt(now.Unix(), 10) + `,"channel":"` + pingChannel + `"}`)
}

// subscribeRequest subscribes every contract of the connection (documented
// "!all" payload).
func subscribeRequest(now time.Time) []byte {
	return []byte(`{"time":` + strconv.FormatInt(now.Unix(), 10) + `,"channel":"` + Channel + `","event":"subscribe","payload":["!all"]}`)
}

// onConnect subscribes the connection and remembers when the previous
// subscribed connection last heard from Gate: the start of the gap to
// backfill once this one is subscribed.
func (s *settle) onConnect(_ context.Context, ss *wsconn.Session) error {
	s.sessionUp = false
	s.gapStart = s.lastLive
	return ss.Send(subscribeRequest(time.Now()))
}

// onMessage is the frame handler of a liquidation connection.
func (s *settle) onMessage(ss *wsconn.Session, data []byte, emit func(liq)) {
	f, err := decodeFrame(data, emit)
	if s.sessionUp {
		s.lastLive = time.Now()
	}
	switch f.kind {
	case kindAck:
		s.onSubscribed(ss)
	case kindSubError:
		s.obs.DecodeError()
		s.log.Error("Gate rejected the liquidation subscription; reconnecting", "error", f.errText)
		ss.Close(fmt.Errorf("subscribe error: %s", f.errText))
	}
	for range f.bad {
		s.obs.DecodeError()
	}
	if f.bad > 0 && s.v.throttle.Allow("decode:"+s.name) {
		s.log.Warn("dropped malformed liquidation frame or order (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// onSubscribed marks the stream up and asks for a backfill of the gap: from
// the venue's start after the first subscription, else from BackfillSlack
// before the last frame the previous connection received.
func (s *settle) onSubscribed(ss *wsconn.Session) {
	if s.sessionUp {
		return
	}
	s.sessionUp = true
	s.lastLive = time.Now()
	ss.Subscribed()
	from := s.v.epoch
	if s.subscribedOnce {
		from = s.gapStart.Add(-s.v.cfg.BackfillSlack)
	}
	s.subscribedOnce = true
	if !s.v.cfg.DisableBackfill {
		s.backfill.request(from)
	}
}
