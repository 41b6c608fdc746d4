package okx

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Channel is the liquidation channel (documented); one subscription per
// instType covers every instrument of that type.
const Channel = "liquidation-orders"

// detail is one decoded liquidation order (an element of "details").
type detail struct {
	InstID  []byte // aliases the frame; valid during the callback only
	Side    exchanges.Side
	side    byte // 'b' buy, 's' sell (the order side)
	posSide byte // 'l', 's', 'n', or 0 when absent
	Sz      float64
	Px      float64 // bkPx, the bankruptcy price
	TS      int64   // ms
}

// frameKind tells what a frame was.
type frameKind uint8

const (
	kindPush  frameKind = iota // {"arg":{...},"data":[...]}
	kindEvent                  // {"event":"subscribe"|"unsubscribe"|"error"|"notice"|...}
	kindPong                   // the text "pong"
	kindPing                   // the text "ping"
)

// frame is what one WebSocket frame held besides its orders.
type frame struct {
	kind   frameKind
	events int // orders passed to emit
	bad    int // orders or frames dropped as malformed

	// Events: {"event":"subscribe","arg":{"channel":..,"instType":..},"connId":..}
	// or {"event":"error","code":"60012","msg":"..","connId":..}.
	event    []byte
	code     []byte
	msg      []byte
	channel  []byte // arg.channel
	instType []byte // arg.instType
}

var (
	errWrongChannel = errors.New("arg.channel is not liquidation-orders")
	errBadArg       = errors.New("arg is not an object with a channel and an instType")
	errBadData      = errors.New("data is not an array of instruments")
	errBadItem      = errors.New("a data element lacks instId or details")
	errOtherType    = errors.New("instType differs from the subscription's")
	errBadSide      = errors.New(`side is neither "buy" nor "sell"`)
	errBadPosSide   = errors.New(`posSide is not "long", "short", "net" or empty`)
	errBadSize      = errors.New("sz is missing, not a number, or not positive")
	errBadPrice     = errors.New("bkPx is missing, not a number, or not positive")
	errBadTime      = errors.New("ts is missing or not a positive integer")
)

// decodeFrame decodes one frame of a liquidation connection: the text
// "pong" (or "ping"), an event, or a push. Keys are matched exactly. Valid
// orders go to emit; each invalid order or unusable frame adds one to bad
// and, with its reason, to lastErr. emit must not retain detail.InstID.
//
// A well-formed push of up to maxPushOrders orders, the frame nearly every
// message is, is decoded by decodePush in one pass; anything else, and
// every frame with something wrong in it, by decodeGeneric, which defines
// the results (decodePush gives the same ones or declines).
func decodeFrame(data []byte, emit func(detail)) (f frame, lastErr error) {
	if f, ok := decodePush(data, emit); ok {
		return f, nil
	}
	return decodeGeneric(data, emit)
}

// maxPushOrders is the number of orders decodePush holds back until the
// whole frame has been read; OKX pushes one instrument's recent orders per
// frame, usually one.
const maxPushOrders = 4

// pushScan is what decodePush collects while it walks a frame.
type pushScan struct {
	haveArg               bool
	channel, instType     []byte // arg's
	channelOK, instTypeOK bool
	payload               []byte
	orders                int
	raw                   [maxPushOrders]detailFields
	items                 int
	item                  [maxPushOrders]pushItem
}

// pushItem is one element of a push's data array.
type pushItem struct {
	instID, typ  []byte
	idOK, typOK  bool
	haveDetails  bool
	first, count int // its orders in pushScan.raw
}

// decodePush decodes a push {"arg":{...},"data":[{..,"details":[...]}]}
// walking every byte once: nested values are parsed where they stand
// instead of being skipped first and walked again, and the orders are
// validated only after the whole frame has proved well-formed, so that
// nothing is emitted from a frame decodeGeneric would reject. It declines
// (ok false, nothing emitted) anything that is not such a push with every
// order valid, and frames of more than maxPushOrders orders or items. A
// push in the documented layout is matched by decodeDocumented first.
func decodePush(data []byte, emit func(detail)) (f frame, ok bool) {
	if f, d, ok := decodeDocumented(data); ok {
		emit(d)
		return f, true
	}
	var sc pushScan
	end, err := jsonx.Members(data, func(k, rest []byte) int {
		switch string(k) {
		case "arg":
			if sc.haveArg {
				return -1
			}
			sc.haveArg = true
			n, err := jsonx.Members(rest, func(k, v []byte) int {
				n := jsonx.Scalar(v)
				switch string(k) {
				case "channel":
					sc.channel, sc.channelOK = jsonx.String(v[:max(n, 0)])
				case "instType":
					sc.instType, sc.instTypeOK = jsonx.String(v[:max(n, 0)])
				}
				return n
			})
			if err != nil {
				return -1
			}
			return n
		case "data":
			if sc.payload != nil {
				return -1
			}
			n := sc.data(rest)
			if n <= 0 {
				return -1
			}
			sc.payload = rest[:n]
			return n
		case "event":
			return -1
		}
		return 0
	})
	if err != nil || len(jsonx.TrimSpace(data[end:])) != 0 || !sc.haveArg || sc.payload == nil ||
		!sc.channelOK || string(sc.channel) != Channel || (sc.instType != nil && !sc.instTypeOK) {
		return frame{}, false // decodeArg's checks, and the channel
	}
	f.channel, f.instType = sc.channel, sc.instType
	var out [maxPushOrders]detail
	for _, it := range sc.item[:sc.items] {
		if !it.haveDetails || checkItem(it.instID, it.idOK, it.typ, it.typOK, f.instType, true) != nil {
			return frame{}, false
		}
		for j := it.first; j < it.first+it.count; j++ {
			if out[j], err = sc.raw[j].detail(it.instID); err != nil {
				return frame{}, false
			}
		}
	}
	for _, d := range out[:sc.orders] {
		emit(d)
	}
	f.kind = kindPush
	f.events = sc.orders
	return f, true
}

// decodeDocumented decodes a push of one order laid out exactly as in the
// documentation's sample, the frame OKX nearly always sends:
//
//	{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0",
//	"bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],
//	"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}
//
// (compact, every value a plain string), by comparing its fixed parts
// instead of walking it member by member. It declines anything else, and
// an order decodeGeneric would reject, emitting nothing.
func decodeDocumented(data []byte) (f frame, d detail, ok bool) {
	const head = `{"arg":{"channel":"` + Channel + `","instType":`
	l := layout{b: data, ok: true}
	l.lit(head)
	instType := l.str()
	l.lit(`},"data":[{"details":[{"bkLoss":`)
	l.str()
	var raw detailFields
	l.lit(`,"bkPx":`)
	raw.px = l.str()
	l.lit(`,"ccy":`)
	l.str()
	l.lit(`,"posSide":`)
	raw.posSide = l.str()
	l.lit(`,"side":`)
	raw.side = l.str()
	l.lit(`,"sz":`)
	raw.sz = l.str()
	l.lit(`,"ts":`)
	raw.ts = l.str()
	l.lit(`}],"instFamily":`)
	l.str()
	l.lit(`,"instId":`)
	instID := l.str()
	l.lit(`,"instType":`)
	typ := l.str()
	l.lit(`,"uly":`)
	l.str()
	l.lit(`}]}`)
	if !l.ok || l.i != len(data) {
		return frame{}, detail{}, false
	}
	channel := data[len(`{"arg":{"channel":"`):][:len(Channel)]
	f = frame{kind: kindPush, events: 1, channel: channel, instType: jsonx.Unquote(instType)}
	id := jsonx.Unquote(instID)
	if checkItem(id, true, jsonx.Unquote(typ), true, f.instType, true) != nil {
		return frame{}, detail{}, false
	}
	d, err := raw.detail(id)
	if err != nil {
		return frame{}, detail{}, false
	}
	return f, d, true
}

// layout matches a frame against a fixed layout, piece by piece; ok turns
// false at the first piece that does not match, and stays false.
type layout struct {
	b  []byte
	i  int // the next byte to match
	ok bool
}

// lit matches the text s.
func (l *layout) lit(s string) {
	if l.ok && len(l.b)-l.i >= len(s) && string(l.b[l.i:l.i+len(s)]) == s {
		l.i += len(s)
		return
	}
	l.ok = false
}

// str matches a plain string (see plainString) and returns it with its
// quotes, as a raw value.
func (l *layout) str() []byte {
	if !l.ok {
		return nil
	}
	n := plainString(l.b, l.i)
	if n < 0 {
		l.ok = false
		return nil
	}
	v := l.b[l.i:n]
	l.i = n
	return v
}

// data parses the data array at the start of rest and returns its length,
// or 0 to decline.
func (sc *pushScan) data(rest []byte) int {
	return jsonx.Elements(rest, func(v []byte) int {
		if sc.items == maxPushOrders {
			return 0
		}
		it := &sc.item[sc.items]
		sc.items++
		*it = pushItem{first: sc.orders}
		n, err := jsonx.Members(v, func(k, rest []byte) int {
			if string(k) == "details" {
				if it.haveDetails {
					return -1 // the last one counts: left to decodeGeneric
				}
				it.haveDetails = true
				return sc.details(rest)
			}
			n := jsonx.Scalar(rest)
			switch string(k) {
			case "instId":
				it.instID, it.idOK = jsonx.String(rest[:max(n, 0)])
			case "instType":
				it.typ, it.typOK = jsonx.String(rest[:max(n, 0)])
			}
			return n
		})
		if err != nil {
			return 0
		}
		it.count = sc.orders - it.first
		return n
	})
}

// details parses a details array at the start of rest into sc.raw and
// returns its length, or -1 to decline.
func (sc *pushScan) details(rest []byte) int {
	n := jsonx.Elements(rest, func(v []byte) int {
		if sc.orders == maxPushOrders {
			return 0
		}
		f := &sc.raw[sc.orders]
		sc.orders++
		*f = detailFields{}
		n, err := jsonx.ScalarMembers(v, func(k, v []byte) { f.set(k, v) })
		if err != nil {
			return 0
		}
		return n
	})
	if n <= 0 {
		return -1
	}
	return n
}

// plainString returns the index just past the JSON string that starts at
// b[i] when it holds neither an escape nor a control character, the strings
// OKX sends; -1 otherwise. It looks at eight bytes at a time.
func plainString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	j := i + 1
	for ; j+8 <= len(b); j += 8 {
		if m := stringStops(binary.LittleEndian.Uint64(b[j:])); m != 0 {
			j += bits.TrailingZeros64(m) / 8
			break
		}
	}
	for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
		j++
	}
	if j < len(b) && b[j] == '"' {
		return j + 1
	}
	return -1
}

// stringStops sets the high bit of the lowest byte of x (little endian)
// that is '"', '\\' or below 0x20, and possibly of higher bytes, or
// returns 0 when there is no such byte (the classic SWAR zero-byte and
// less-than tests; a borrow can mark only bytes above a marked one).
func stringStops(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	e := x ^ (ones * '\\')
	return ((q-ones)&^q | (e-ones)&^e | (x-ones*0x20)&^x) & highs
}

// decodeGeneric is decodeFrame for any frame, each nested value skipped
// first and then walked.
func decodeGeneric(data []byte, emit func(detail)) (f frame, lastErr error) {
	env, err := exchanges.DecodeEnvelope(data)
	if err != nil {
		return frame{bad: 1}, err
	}
	if env.Arg != nil {
		if f.channel, f.instType, err = decodeArg(env.Arg); err != nil {
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
	switch {
	case env.Arg == nil:
		return frame{bad: 1}, errBadArg
	case string(f.channel) != Channel:
		return frame{bad: 1}, errWrongChannel
	}
	f.events, f.bad, lastErr = decodeItems(env.Data, f.instType, emit)
	return f, lastErr
}

// decodeArg reads {"channel":"liquidation-orders","instType":"SWAP"}.
func decodeArg(arg []byte) (channel, instType []byte, err error) {
	var okC, okT bool
	if err := jsonx.ObjectEach(arg, func(k, v []byte) bool {
		switch string(k) {
		case "channel":
			channel, okC = jsonx.String(v)
		case "instType":
			instType, okT = jsonx.String(v)
		}
		return true
	}); err != nil {
		return nil, nil, err
	}
	if !okC || len(channel) == 0 || (instType != nil && !okT) {
		return nil, nil, errBadArg
	}
	return channel, instType, nil
}

// decodeItems decodes the data array of a push or of a REST
// liquidation-orders answer: [{"instId","instType","instFamily","uly",
// "details":[...]}]. instType, when set, must match the elements' own.
func decodeItems(payload, instType []byte, emit func(detail)) (events, bad int, lastErr error) {
	if jsonx.KindOf(payload) != jsonx.KindArray {
		return 0, 1, errBadData
	}
	err := jsonx.ArrayEach(payload, func(item []byte) bool {
		n, b, err := decodeItem(item, instType, emit)
		events += n
		bad += b
		if err != nil {
			lastErr = err
		}
		return true
	})
	if err != nil {
		bad++
		lastErr = err
	}
	return events, bad, lastErr
}

// decodeItem decodes one instrument's element and its details.
func decodeItem(item, instType []byte, emit func(detail)) (events, bad int, lastErr error) {
	var instID, typ, details []byte
	var idOK, typOK bool
	if err := jsonx.ObjectEach(item, func(k, v []byte) bool {
		switch string(k) {
		case "instId":
			instID, idOK = jsonx.String(v)
		case "instType":
			typ, typOK = jsonx.String(v)
		case "details":
			details = v
		}
		return true
	}); err != nil {
		return 0, 1, err
	}
	if err := checkItem(instID, idOK, typ, typOK, instType, jsonx.KindOf(details) == jsonx.KindArray); err != nil {
		return 0, 1, err
	}
	if err := jsonx.ArrayEach(details, func(v []byte) bool {
		if err := decodeDetail(v, instID, emit); err != nil {
			bad++
			lastErr = err
		} else {
			events++
		}
		return true
	}); err != nil {
		bad++
		lastErr = err
	}
	return events, bad, lastErr
}

// checkItem validates what an element says about its instrument: an instId
// that is a plain, non-empty string, details that are an array, and an
// instType, when present, that is a plain string equal to the
// subscription's (when that is known).
func checkItem(instID []byte, idOK bool, typ []byte, typOK bool, instType []byte, detailsArray bool) error {
	switch {
	case !idOK || len(instID) == 0 || !detailsArray:
		return errBadItem
	case typ != nil && (!typOK || (len(instType) > 0 && !bytes.Equal(typ, instType))):
		return errOtherType
	}
	return nil
}

// detailFields are the raw values of a detail object the exporter uses.
type detailFields struct {
	side, posSide, sz, px, ts []byte
}

// set records the raw value v of the detail member k; false for members
// the exporter does not use.
func (f *detailFields) set(k, v []byte) bool {
	switch string(k) {
	case "side":
		f.side = v
	case "posSide":
		f.posSide = v
	case "sz":
		f.sz = v
	case "bkPx":
		f.px = v
	case "ts":
		f.ts = v
	default:
		return false
	}
	return true
}

// decodeDetail decodes {"bkLoss","bkPx","ccy","posSide","side","sz","ts"}.
func decodeDetail(v, instID []byte, emit func(detail)) error {
	var f detailFields
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		f.set(k, val)
		return true
	}); err != nil {
		return err
	}
	d, err := f.detail(instID)
	if err != nil {
		return err
	}
	emit(d)
	return nil
}

// detail validates the raw values of an order of instID.
func (f *detailFields) detail(instID []byte) (detail, error) {
	d := detail{InstID: instID}
	switch string(f.side) {
	case `"buy"`:
		d.side = 'b'
	case `"sell"`:
		d.side = 's'
	default:
		return detail{}, errBadSide
	}
	switch string(f.posSide) {
	case `"long"`:
		d.posSide = 'l'
	case `"short"`:
		d.posSide = 's'
	case `"net"`:
		d.posSide = 'n'
	case "", `""`, "null":
	default:
		return detail{}, errBadPosSide
	}
	// The side of the POSITION: posSide long/short when present (hedge
	// mode); otherwise (net mode or absent) the order side, where a sell
	// closes a long (INFERRED from the documented sample).
	switch {
	case d.posSide == 'l':
		d.Side = exchanges.Long
	case d.posSide == 's':
		d.Side = exchanges.Short
	case d.side == 's':
		d.Side = exchanges.Long
	default:
		d.Side = exchanges.Short
	}
	var err error
	if d.Sz, err = decimal(f.sz); err != nil || !(d.Sz > 0) {
		return detail{}, errBadSize
	}
	if d.Px, err = decimal(f.px); err != nil || !(d.Px > 0) {
		return detail{}, errBadPrice
	}
	if d.TS, err = integer(f.ts); err != nil || d.TS <= 0 {
		return detail{}, errBadTime
	}
	return d, nil
}

// decimal is jsonx.Float with a shortcut for the numbers OKX sends, plain
// decimals ("13", "0.007831") of at most 15 digits, quoted or bare: their
// digits and the power of ten are exact in float64, so one division, which
// rounds correctly, gives what strconv.ParseFloat gives.
func decimal(v []byte) (float64, error) {
	s := v
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	var m uint64
	digits, point := 0, -1
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
		case c == '.' && point < 0 && i > 0 && i < len(s)-1:
			point = i
		default:
			return jsonx.Float(v)
		}
	}
	if digits == 0 || digits > 15 {
		return jsonx.Float(v)
	}
	f := float64(m)
	if point >= 0 {
		f /= pow10[len(s)-1-point]
	}
	return f, nil
}

// pow10 holds the powers of ten that decimal divides by.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// integer is jsonx.Int with a shortcut for ts values, up to 18 digits,
// quoted or bare.
func integer(v []byte) (int64, error) {
	s := v
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if len(s) == 0 || len(s) > 18 {
		return jsonx.Int(v)
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return jsonx.Int(v)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// notional returns the USD notional of an order per the project's rules:
// linear sz x ctVal x ctMult x bkPx (USDT and USDC at par), inverse sz x
// ctVal x ctMult (USD contracts).
func notional(in *instrument, d detail) float64 {
	if in.inst.Market == exchanges.Inverse {
		return d.Sz * in.size
	}
	return d.Sz * in.size * d.Px
}

// source says where an order came from.
type source uint8

const (
	fromStream source = iota
	fromBackfill
)

// handle counts one decoded order, received at now, unless it was counted
// before or is too old (see exchanges.Dedupe).
func (k *kind) handle(d detail, src source, now time.Time) {
	v := k.v
	in, _ := v.lookup(d.InstID)
	switch {
	case in == nil:
		k.obs.DecodeError()
		k.requestRefresh()
		if v.throttle.Allow("unknown:" + string(d.InstID)) {
			k.log.Warn("liquidation for an instrument not in the instrument list was dropped; refreshing instruments", "inst_id", string(d.InstID))
		}
		return
	case in.instType != k.name:
		k.obs.DecodeError()
		if v.throttle.Allow("type:" + string(d.InstID)) {
			k.log.Warn("liquidation for an instrument of another instType was dropped", "inst_id", string(d.InstID))
		}
		return
	case in.inst == nil:
		return // excluded by the coin allowlist
	}
	// OKX sends no order id: the order is named by what it carries, and
	// the same order pushed live, replayed after a (re)subscribe or served
	// by the backfill has the same name (numbers by value: "13" = "13.0").
	name := v.dedupe.Hash(in.id, uint64(d.side)<<8|uint64(d.posSide), exchanges.FloatWord(d.Sz), exchanges.FloatWord(d.Px), uint64(d.TS))
	switch v.dedupe.Admit(name, d.TS, now) {
	case exchanges.Duplicate:
		v.stats.duplicates.Add(1)
		return
	case exchanges.TooOld:
		v.stats.history.Add(1)
		return
	}
	n := notional(in, d)
	if !v.sink.Liquidation(exchanges.Liquidation{Instrument: in.inst, Side: d.Side, NotionalUSD: n}) {
		k.obs.DecodeError()
		if v.throttle.Allow("implausible") {
			k.log.Warn("liquidation with an implausible notional was dropped", "inst_id", in.id, "notional_usd", n)
		}
		return
	}
	v.stats.counted.Add(1)
	if src == fromBackfill {
		v.stats.backfilled.Add(1)
	}
}

// emitLive is handle for pushed orders, bound once so that decoding does
// not allocate a closure per frame. The orders of a frame share the time
// onMessage read when the frame arrived.
func (k *kind) emitLive(d detail) {
	now := k.frameTime
	if now.IsZero() { // decoded outside onMessage (tests)
		now = time.Now()
	}
	k.handle(d, fromStream, now)
}

// streamConfig returns the runner configuration of the kind's stream.
func (k *kind) streamConfig() wsconn.Config {
	emit := k.emitLive
	c := wsconn.Config{
		Name:         k.streamName(),
		URL:          func() string { return k.v.cfg.WS },
		PingInterval: PingInterval,
		OnConnect:    k.onConnect,
		OnMessage:    func(s *wsconn.Session, data []byte) { k.onMessage(s, data, emit) },
		Heartbeat:    func(s *wsconn.Session) error { return s.Send(pingFrame) },
		Observer:     k.obs,
		Logger:       k.log,
	}
	if k.v.cfg.Stream != nil {
		k.v.cfg.Stream(&c)
	}
	return c
}

var (
	pingFrame = []byte("ping")
	pongFrame = []byte("pong")
)

// subscribeRequest returns the subscribe request of an instrument type.
func subscribeRequest(instType string) []byte {
	return []byte(`{"op":"subscribe","args":[{"channel":"` + Channel + `","instType":"` + instType + `"}]}`)
}

// onConnect subscribes the connection and remembers when the previous
// subscribed connection last heard from OKX: the start of the gap to
// backfill once this one is subscribed.
func (k *kind) onConnect(_ context.Context, s *wsconn.Session) error {
	k.sessionUp = false
	k.gapStart = k.lastLive
	return s.Send(subscribeRequest(k.name))
}

// onMessage is the frame handler of a liquidation connection.
func (k *kind) onMessage(s *wsconn.Session, data []byte, emit func(detail)) {
	now := time.Now() // the one clock read per frame
	if k.sessionUp {
		k.lastLive = now
	}
	k.frameTime = now
	f, err := decodeFrame(data, emit)
	k.frameTime = time.Time{}
	switch f.kind {
	case kindPing:
		_ = s.Send(pongFrame)
	case kindEvent:
		k.onEvent(s, f)
	}
	for range f.bad {
		k.obs.DecodeError()
	}
	if f.bad > 0 && k.v.throttle.Allow("decode:"+k.name) {
		k.log.Warn("dropped malformed liquidation frame or order (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// onEvent handles an event. The ack of the liquidation subscription marks
// the stream up and asks for a backfill of the gap: from the venue's start
// after the first subscription, else from BackfillSlack before the last
// frame the previous connection received. An error event is counted as a
// decode error, logged, and closes the connection (the runner reconnects
// after back-off and subscribes again).
func (k *kind) onEvent(s *wsconn.Session, f frame) {
	switch string(f.event) {
	case "subscribe":
		if string(f.channel) != Channel || string(f.instType) != k.name || k.sessionUp {
			return
		}
		k.sessionUp = true
		k.lastLive = time.Now()
		s.Subscribed()
		from := k.v.epoch
		if k.subscribedOnce {
			from = k.gapStart.Add(-k.v.cfg.BackfillSlack)
		}
		k.subscribedOnce = true
		if !k.v.cfg.DisableBackfill {
			k.backfill.request(from.UnixMilli())
		}
	case "error":
		k.obs.DecodeError()
		k.log.Error("OKX answered with an error event; reconnecting", "code", string(f.code), "msg", exchanges.Truncate(f.msg, 512))
		s.Close(fmt.Errorf("error event %s: %s", f.code, exchanges.Truncate(f.msg, 256)))
	case "notice":
		// e.g. code 64008, a service upgrade will close the connection.
		k.log.Info("OKX notice", "code", string(f.code), "msg", exchanges.Truncate(f.msg, 512))
	}
}
