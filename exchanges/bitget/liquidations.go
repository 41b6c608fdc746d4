package bitget

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Topic is the v3 liquidation topic (UNVERIFIED: community code, not
// Bitget's documentation); one subscription per instType covers every
// symbol.
const Topic = "liquidation"

// event is one decoded liquidation.
type event struct {
	InstType []byte // the push's arg.instType; aliases the frame, as Symbol
	Symbol   []byte // aliases the frame; valid during the callback only
	Side     exchanges.Side
	Amount   float64 // base coin (UNVERIFIED)
	Price    float64
	TS       int64 // ms (UNVERIFIED)
}

// frameKind tells what a frame was.
type frameKind uint8

const (
	kindPush  frameKind = iota // {"arg":{...},"data":[...]}
	kindEvent                  // {"event":"subscribe"|"error"|...}
	kindPong                   // the text "pong"
	kindPing                   // the text "ping"
)

// frame is what one frame held besides its liquidations.
type frame struct {
	kind     frameKind
	events   int
	bad      int
	event    []byte
	code     []byte
	msg      []byte
	topic    []byte // arg.topic
	instType []byte // arg.instType
}

var (
	errBadArg     = errors.New("arg is not an object with a topic and an instType")
	errWrongTopic = errors.New("arg.topic is not liquidation")
	errBadData    = errors.New("data is not an array")
	errBadSymbol  = errors.New("symbol is missing or not a string")
	errBadSide    = errors.New(`side is neither "buy" nor "sell"`)
	errBadAmount  = errors.New("amount is missing, not a number, or not positive")
	errBadPrice   = errors.New("price is missing, not a number, or not positive")
	errBadTime    = errors.New("ts is missing or not a positive integer")
)

// decodeFrame decodes one frame: "pong"/"ping", an event or a push. Keys
// are matched exactly. Valid liquidations go to emit; every invalid one (or
// an unusable frame) adds one to bad, with its reason in lastErr.
func decodeFrame(data []byte, emit func(event)) (f frame, lastErr error) {
	env, err := exchanges.DecodeEnvelope(data)
	if err != nil {
		return frame{bad: 1}, err
	}
	if env.Arg != nil {
		if f.topic, f.instType, err = decodeArg(env.Arg); err != nil {
			return frame{bad: 1}, err
		}
	}
	switch env.Kind {
	case exchanges.EnvelopePong:
		return frame{kind: kindPong}, nil
	case exchanges.EnvelopePing:
		return frame{kind: kindPing}, nil
	case exchanges.EnvelopeEvent:
		f.kind, f.event, f.code, f.msg = kindEvent, env.Event, env.Code, env.Msg
		return f, nil
	}
	payload := env.Data
	switch {
	case env.Arg == nil:
		return frame{bad: 1}, errBadArg
	case string(f.topic) != Topic:
		return frame{bad: 1}, errWrongTopic
	case jsonx.KindOf(payload) != jsonx.KindArray:
		return frame{bad: 1}, errBadData
	}
	if err := jsonx.ArrayEach(payload, func(item []byte) bool {
		if err := decodeEvent(item, f.instType, emit); err != nil {
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

// decodeArg reads {"instType":"usdt-futures","topic":"liquidation"}.
func decodeArg(arg []byte) (topic, instType []byte, err error) {
	var okT, okI bool
	if err := jsonx.ObjectEach(arg, func(k, v []byte) bool {
		switch string(k) {
		case "topic":
			topic, okT = jsonx.String(v)
		case "instType":
			instType, okI = jsonx.String(v)
		}
		return true
	}); err != nil {
		return nil, nil, err
	}
	if !okT || !okI || len(topic) == 0 || len(instType) == 0 {
		return nil, nil, errBadArg
	}
	return topic, instType, nil
}

// decodeEvent decodes {"symbol","price","amount","side","ts"}.
func decodeEvent(v, instType []byte, emit func(event)) error {
	e := event{InstType: instType}
	var sym, side, amount, price, ts []byte
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		switch string(k) {
		case "symbol":
			sym = val
		case "side":
			side = val
		case "amount":
			amount = val
		case "price":
			price = val
		case "ts":
			ts = val
		}
		return true
	}); err != nil {
		return err
	}
	var ok bool
	if e.Symbol, ok = jsonx.String(sym); !ok || len(e.Symbol) == 0 {
		return errBadSymbol
	}
	// The side of the liquidation order: a sell closes a long position
	// (UNVERIFIED, the project's reading).
	switch string(side) {
	case `"sell"`:
		e.Side = exchanges.Long
	case `"buy"`:
		e.Side = exchanges.Short
	default:
		return errBadSide
	}
	var err error
	if e.Amount, err = jsonx.Float(amount); err != nil || !(e.Amount > 0) {
		return errBadAmount
	}
	if e.Price, err = jsonx.Float(price); err != nil || !(e.Price > 0) {
		return errBadPrice
	}
	if e.TS, err = jsonx.Int(ts); err != nil || e.TS <= 0 {
		return errBadTime
	}
	emit(e)
	return nil
}

// notional is amount x price for every product type: amount is taken to
// be in base coin, inverse (COIN-FUTURES) included (UNVERIFIED).
func notional(e event) float64 { return e.Amount * e.Price }

// Dedupe bounds: a liquidation is counted at most once, so a replay of
// recent liquidations after a (re)subscribe (whether Bitget sends one is
// UNVERIFIED) is not counted twice; liquidations older than the window
// (or before the venue started) are history and never counted.
const (
	dedupeWindow  = 10 * time.Minute
	dedupeMaxKeys = 50_000
)

// handle counts one decoded liquidation of the given product type.
func (v *Venue) handle(k *kind, e event) {
	in, known := (*k.instruments.Load())[string(e.Symbol)]
	switch {
	case !known:
		v.streamObs.DecodeError()
		k.requestRefresh()
		if v.throttle.Allow("unknown:" + string(e.Symbol)) {
			k.log.Warn("liquidation for a symbol not in the contract list was dropped; refreshing contracts", "symbol", string(e.Symbol))
		}
		return
	case in.inst == nil:
		return // excluded by the coin allowlist
	}
	// Bitget's liquidation push carries no id: the liquidation is named by
	// what it carries.
	name := v.dedupe.Hash(in.symbol, uint64(k.index), uint64(e.Side), exchanges.FloatWord(e.Amount), exchanges.FloatWord(e.Price), uint64(e.TS))
	if v.dedupe.Admit(name, e.TS, time.Now()) != exchanges.Admitted {
		v.history.Add(1)
		return
	}
	n := notional(e)
	if !v.sink.Liquidation(exchanges.Liquidation{Instrument: in.inst, Side: e.Side, NotionalUSD: n}) {
		v.streamObs.DecodeError()
		if v.throttle.Allow("implausible") {
			k.log.Warn("liquidation with an implausible notional was dropped", "symbol", in.symbol, "notional_usd", n)
		}
		return
	}
	v.counted.Add(1)
}

var (
	pingFrame = []byte("ping")
	pongFrame = []byte("pong")
)

// subscribeRequest subscribes the liquidation topic of every product type
// (the request shape is UNVERIFIED, see the package comment).
func (v *Venue) subscribeRequest() []byte {
	var b strings.Builder
	b.WriteString(`{"op":"subscribe","args":[`)
	for i, k := range v.kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"instType":"` + k.wsInstType + `","topic":"` + Topic + `"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// streamState is the state of the current connection; the runner's
// goroutine (OnConnect, OnMessage) is its only user.
type streamState struct {
	acked map[*kind]bool
	up    bool
}

// streamConfig returns the runner configuration of the liquidation stream.
func (v *Venue) streamConfig() wsconn.Config {
	st := &streamState{}
	emit := func(e event) {
		if k := v.kindOf(e.InstType); k != nil {
			v.handle(k, e)
		}
	}
	c := wsconn.Config{
		Name:         StreamLiquidations,
		URL:          func() string { return v.cfg.WS },
		PingInterval: PingInterval,
		MaxLifetime:  MaxConnectionLifetime,
		OnConnect: func(_ context.Context, s *wsconn.Session) error {
			st.acked, st.up = map[*kind]bool{}, false
			return s.Send(v.subscribeRequest())
		},
		OnMessage: func(s *wsconn.Session, data []byte) { v.onMessage(s, st, data, emit) },
		Heartbeat: func(s *wsconn.Session) error { return s.Send(pingFrame) },
		Observer:  v.streamObs,
		Logger:    v.log.With("stream", StreamLiquidations),
	}
	if v.cfg.Stream != nil {
		v.cfg.Stream(&c)
	}
	return c
}

func (v *Venue) onMessage(s *wsconn.Session, st *streamState, data []byte, emit func(event)) {
	f, err := decodeFrame(data, emit)
	switch f.kind {
	case kindPing:
		_ = s.Send(pongFrame)
	case kindEvent:
		v.onEvent(s, st, f)
	case kindPush:
		if f.events > 0 && v.kindOf(f.instType) == nil {
			// Liquidations of an instType the venue does not know.
			f.bad += f.events
			err = fmt.Errorf("unknown instType %q", f.instType)
		}
	}
	for range f.bad {
		v.streamObs.DecodeError()
	}
	if f.bad > 0 && v.throttle.Allow("decode") {
		v.log.Warn("dropped malformed liquidation frame or event (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// onEvent marks the stream up once every product type's subscription is
// acknowledged. An error event is counted, logged, and closes the
// connection; the runner reconnects after back-off and subscribes again.
func (v *Venue) onEvent(s *wsconn.Session, st *streamState, f frame) {
	switch string(f.event) {
	case "subscribe":
		k := v.kindOf(f.instType)
		if k == nil || string(f.topic) != Topic || st.up {
			return
		}
		st.acked[k] = true
		if len(st.acked) == len(v.kinds) {
			st.up = true
			s.Subscribed()
		}
	case "error":
		v.streamObs.DecodeError()
		v.log.Error("Bitget answered with an error event; reconnecting", "code", string(f.code), "msg", exchanges.Truncate(f.msg, 512))
		s.Close(fmt.Errorf("error event %s: %s", f.code, exchanges.Truncate(f.msg, 256)))
	}
}
