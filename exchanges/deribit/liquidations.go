package deribit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Channel returns the trades channel of a currency's futures,
// trades.future.{currency}.100ms (documented form
// trades.{kind}.{currency}.{interval}).
func Channel(currency string) string { return "trades.future." + currency + ".100ms" }

// trade is one decoded liquidation trade. Byte slices alias the frame and
// are valid during the callback only.
type trade struct {
	Instrument []byte // instrument_name
	TradeID    []byte // trade_id (raw text), may be empty
	Sides      [2]exchanges.Side
	NSides     int     // 1, or 2 for MT
	Amount     float64 // inverse: USD; linear: base coin (documented)
	Price      float64
	Timestamp  int64 // ms
}

// frameKind says what a frame was.
type frameKind uint8

const (
	kindOther        frameKind = iota
	kindReply                  // a reply to a request: id with result or error
	kindHeartbeat              // method heartbeat
	kindSubscription           // method subscription: trades
)

// frame is what one WebSocket frame held besides its events.
type frame struct {
	kind   frameKind
	events int // liquidation trades passed to emit (MT counts once here)
	bad    int // trades or frames dropped as malformed

	id       int64  // reply id (kindReply)
	result   []byte // raw result (kindReply)
	errCode  int64  // error.code (kindReply with an error)
	errMsg   []byte // error.message
	isError  bool
	hbType   []byte // params.type of a heartbeat: heartbeat or test_request
	currency []byte // the currency of a trades channel (kindSubscription)
}

var (
	errUnknownFrame   = errors.New("neither a reply, a heartbeat nor a subscription notification")
	errBadID          = errors.New("id is not an integer")
	errBadChannel     = errors.New("channel is not trades.{kind}.{currency}.{interval}")
	errBadData        = errors.New("data is not an array of trades")
	errBadParams      = errors.New("params is not an object")
	errBadLiquidation = errors.New(`liquidation is not "M", "T" or "MT"`)
	errBadDirection   = errors.New(`direction is neither "buy" nor "sell"`)
	errBadAmount      = errors.New("amount is missing, not a number, or not positive")
	errBadPrice       = errors.New("price is missing, not a number, or not positive")
	errBadInstrument  = errors.New("instrument_name is missing or not a plain string")
	errBadTimestamp   = errors.New("timestamp is missing or not an integer")
	errBadError       = errors.New("error is not an object with an integer code")
)

// decodeFrame decodes one frame of the trades connection: a JSON-RPC reply
// {"id":..,"result":..} or {"id":..,"error":{..}}, a heartbeat notification
// {"method":"heartbeat","params":{"type":..}}, or a subscription
// notification {"method":"subscription","params":{"channel":..,"data":[..]}}.
// Keys are matched exactly. Liquidation trades go to emit; trades without a
// liquidation member are ignored without error. Each invalid trade or
// unusable frame adds one to bad and, with its reason, to lastErr.
//
// A well-formed notification of up to maxFastTrades valid trades, the
// frame nearly every message is, is decoded by decodeNotification in one
// pass; anything else, and every frame with something wrong in it, by
// decodeGeneric, which defines the results (decodeNotification gives the
// same ones or declines; FuzzDecodeNotification checks it).
func decodeFrame(data []byte, emit func(trade)) (f frame, lastErr error) {
	if f, ok := decodeNotification(data, emit); ok {
		return f, nil
	}
	return decodeGeneric(data, emit)
}

// maxFastTrades is the number of liquidation trades decodeNotification
// holds back until the whole frame has been read.
const maxFastTrades = 8

// decodeNotification decodes a trades notification walking every byte
// once: nested values are parsed where they stand instead of being skipped
// first and walked again, and trades are emitted only after the whole
// frame has proved well-formed, so that nothing is emitted from a frame
// decodeGeneric would reject. It declines (ok false, nothing emitted)
// anything else: replies, heartbeats, repeated keys, unknown members that
// are not scalars (decodeGeneric alone bounds their depth), invalid trades,
// and frames of more than maxFastTrades liquidation trades.
func decodeNotification(data []byte, emit func(trade)) (f frame, ok bool) {
	var (
		method, channel            []byte
		haveMethod, haveParams     bool
		haveChannel, haveData, bad bool
		trades                     [maxFastTrades]trade
		n                          int
	)
	parseTrade := func(rest []byte) int {
		var tf tradeFields
		end, err := jsonx.ScalarMembers(rest, tf.set)
		if err != nil {
			return 0
		}
		t, liq, err := tf.trade()
		switch {
		case err != nil, liq && n == maxFastTrades:
			return 0
		case liq:
			trades[n] = t
			n++
		}
		return end
	}
	parseParams := func(rest []byte) int {
		end, err := jsonx.Members(rest, func(k, v []byte) int {
			switch string(k) {
			case "channel":
				return takeOnce(&channel, &haveChannel, v)
			case "data":
				if haveData {
					return -1
				}
				haveData = true
				if l := jsonx.Elements(v, parseTrade); l > 0 {
					return l
				}
				return -1
			}
			return jsonx.Scalar(v)
		})
		if err != nil {
			return -1
		}
		return end
	}
	end, err := jsonx.Members(data, func(k, rest []byte) int {
		switch string(k) {
		case "method":
			return takeOnce(&method, &haveMethod, rest)
		case "params":
			if haveParams {
				return -1
			}
			haveParams = true
			return parseParams(rest)
		case "id", "result", "error":
			bad = true // a reply, or a notification carrying reply members
			return -1
		}
		return jsonx.Scalar(rest)
	})
	if err != nil || bad || len(jsonx.TrimSpace(data[end:])) != 0 || string(method) != `"subscription"` ||
		!haveParams || !haveData {
		return frame{}, false
	}
	ch, chOK := jsonx.String(channel)
	cur, curOK := channelCurrency(ch)
	if !chOK || !curOK {
		return frame{}, false
	}
	for _, t := range trades[:n] {
		emit(t)
	}
	return frame{kind: kindSubscription, events: n, currency: cur}, true
}

// takeOnce takes the scalar at the start of rest into *dst and returns its
// length; -1 (decline) for a nested value or when the member came before
// (decodeGeneric lets the last one count).
func takeOnce(dst *[]byte, seen *bool, rest []byte) int {
	if *seen {
		return -1
	}
	*seen = true
	n := jsonx.Scalar(rest)
	if n > 0 {
		*dst = rest[:n]
	}
	return n
}

// decodeGeneric is decodeFrame for any frame, each nested value skipped
// first and then walked.
func decodeGeneric(data []byte, emit func(trade)) (f frame, lastErr error) {
	var id, result, rpcErr, method, params []byte
	err := jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "id":
			id = v
		case "result":
			result = v
		case "error":
			rpcErr = v
		case "method":
			method = v
		case "params":
			params = v
		}
		return true
	})
	if err != nil {
		return frame{bad: 1}, err
	}
	switch {
	case id != nil && (result != nil || rpcErr != nil):
		n, err := jsonx.Int(id)
		if err != nil || jsonx.KindOf(id) != jsonx.KindNumber {
			return frame{bad: 1}, errBadID
		}
		f.kind, f.id, f.result = kindReply, n, result
		if rpcErr != nil {
			f.isError = true
			if err := decodeError(rpcErr, &f); err != nil {
				return frame{bad: 1}, err
			}
		}
		return f, nil
	case string(method) == `"heartbeat"`:
		f.kind = kindHeartbeat
		if jsonx.KindOf(params) != jsonx.KindObject {
			return frame{bad: 1}, errBadParams
		}
		if err := jsonx.ObjectEach(params, func(k, v []byte) bool {
			if string(k) == "type" {
				f.hbType, _ = jsonx.String(v)
			}
			return true
		}); err != nil {
			return frame{bad: 1}, err
		}
		return f, nil
	case string(method) == `"subscription"`:
	default:
		return frame{bad: 1}, errUnknownFrame
	}
	f.kind = kindSubscription
	var channel, payload []byte
	if jsonx.KindOf(params) != jsonx.KindObject {
		return frame{kind: kindSubscription, bad: 1}, errBadParams
	}
	if err := jsonx.ObjectEach(params, func(k, v []byte) bool {
		switch string(k) {
		case "channel":
			channel = v
		case "data":
			payload = v
		}
		return true
	}); err != nil {
		return frame{kind: kindSubscription, bad: 1}, err
	}
	ch, ok := jsonx.String(channel)
	cur, ok2 := channelCurrency(ch)
	if !ok || !ok2 {
		return frame{kind: kindSubscription, bad: 1}, errBadChannel
	}
	f.currency = cur
	if jsonx.KindOf(payload) != jsonx.KindArray {
		return frame{kind: kindSubscription, bad: 1, currency: cur}, errBadData
	}
	if err := jsonx.ArrayEach(payload, func(v []byte) bool {
		liq, err := decodeTrade(v, emit)
		switch {
		case err != nil:
			f.bad++
			lastErr = err
		case liq:
			f.events++
		}
		return true
	}); err != nil {
		f.bad++
		lastErr = err
	}
	return f, lastErr
}

// channelCurrency returns the currency of trades.{kind}.{currency}.{interval}
// (empty for the per-instrument form trades.{instrument}.{interval}).
// It cuts the channel in place rather than splitting it, which would
// allocate on every notification.
func channelCurrency(ch []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(ch, []byte("trades."))
	if !ok {
		return nil, false
	}
	first, rest, _ := bytes.Cut(rest, []byte("."))
	second, third, three := bytes.Cut(rest, []byte("."))
	switch {
	case len(first) == 0 || len(second) == 0:
		return nil, false
	case !three: // trades.{instrument}.{interval}
		return nil, true
	case len(third) > 0 && bytes.IndexByte(third, '.') < 0:
		return second, true
	}
	return nil, false
}

func decodeError(v []byte, f *frame) error {
	haveCode := false
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		switch string(k) {
		case "code":
			n, err := jsonx.Int(val)
			if err == nil && jsonx.KindOf(val) == jsonx.KindNumber {
				f.errCode, haveCode = n, true
			}
		case "message":
			f.errMsg, _ = jsonx.String(val)
		}
		return true
	}); err != nil {
		return err
	}
	if !haveCode {
		return errBadError
	}
	return nil
}

// tradeFields are the raw values of one trade's members, as decodeTrade
// and decodeNotification collect them (the last of repeated keys counts).
type tradeFields struct {
	name, liq, dir, amt, px, ts, id []byte
	haveName, nameOK, hasLiq        bool
}

// set records one member of a trade.
func (tf *tradeFields) set(k, val []byte) {
	switch string(k) {
	case "instrument_name":
		tf.name, tf.nameOK = jsonx.String(val)
		tf.haveName = true
	case "liquidation":
		tf.liq, tf.hasLiq = val, true
	case "direction":
		tf.dir = val
	case "amount":
		tf.amt = val
	case "price":
		tf.px = val
	case "timestamp":
		tf.ts = val
	case "trade_id":
		tf.id = val
	}
}

// decodeTrade decodes one trade; it reports whether the trade was a
// liquidation that went to emit.
func decodeTrade(v []byte, emit func(trade)) (bool, error) {
	var tf tradeFields
	if err := jsonx.ObjectEach(v, func(k, val []byte) bool {
		tf.set(k, val)
		return true
	}); err != nil {
		return false, err
	}
	t, liq, err := tf.trade()
	if liq && err == nil {
		emit(t)
	}
	return liq && err == nil, err
}

// trade validates the fields: a liquidation trade (liq true), an ordinary
// trade (false, nil), or an invalid one (an error).
func (tf *tradeFields) trade() (t trade, liq bool, err error) {
	if !tf.hasLiq || string(tf.liq) == "null" {
		return t, false, nil // an ordinary trade
	}
	if !tf.haveName || !tf.nameOK || len(tf.name) == 0 {
		return t, false, errBadInstrument
	}
	t.Instrument = tf.name
	// direction is the taker's side (documented). T: the taker was
	// liquidated, so a sell closed a long. M: the maker took the other
	// side, so a taker buy closed a maker's long. MT: both.
	var buy bool
	switch string(tf.dir) {
	case `"buy"`:
		buy = true
	case `"sell"`:
	default:
		return t, false, errBadDirection
	}
	takerSide, makerSide := exchanges.Short, exchanges.Long // taker buys: taker was short, maker long
	if !buy {
		takerSide, makerSide = exchanges.Long, exchanges.Short
	}
	switch string(tf.liq) {
	case `"T"`:
		t.Sides[0], t.NSides = takerSide, 1
	case `"M"`:
		t.Sides[0], t.NSides = makerSide, 1
	case `"MT"`:
		t.Sides, t.NSides = [2]exchanges.Side{exchanges.Long, exchanges.Short}, 2
	default:
		return t, false, errBadLiquidation
	}
	if t.Amount, err = jsonx.Float(tf.amt); err != nil || !(t.Amount > 0) {
		return t, false, errBadAmount
	}
	if t.Price, err = jsonx.Float(tf.px); err != nil || !(t.Price > 0) {
		return t, false, errBadPrice
	}
	if t.Timestamp, err = jsonx.Int(tf.ts); err != nil || jsonx.KindOf(tf.ts) != jsonx.KindNumber {
		return t, false, errBadTimestamp
	}
	if s, ok := jsonx.String(tf.id); ok {
		t.TradeID = s
	} else if jsonx.KindOf(tf.id) == jsonx.KindNumber {
		t.TradeID = tf.id
	}
	return t, true, nil
}

// notional returns the USD notional of one liquidated side per the
// project's rules: inverse amount (USD), linear amount x price (USDC at
// par).
func notional(inst *exchanges.Instrument, t trade) float64 {
	if inst.Market == exchanges.Inverse {
		return t.Amount
	}
	return t.Amount * t.Price
}

// seenCapacity bounds the set of counted trade ids.
const seenCapacity = 8192

// seenSet is a bounded set of counted trade keys, oldest evicted first.
// Keys are kept as 64-bit hashes, so adding one allocates nothing; two
// trade ids colliding among the last seenCapacity is a 1-in-2^50 event.
type seenSet struct {
	seed maphash.Seed
	keys map[uint64]struct{}
	ring []uint64
	used int // slots of ring filled so far
	next int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{seed: maphash.MakeSeed(), keys: make(map[uint64]struct{}, n), ring: make([]uint64, n)}
}

func (s *seenSet) has(k []byte) bool { _, ok := s.keys[maphash.Bytes(s.seed, k)]; return ok }

func (s *seenSet) add(k []byte) {
	h := maphash.Bytes(s.seed, k)
	if s.used == len(s.ring) {
		delete(s.keys, s.ring[s.next])
	} else {
		s.used++
	}
	s.ring[s.next] = h
	s.keys[h] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

// stream is the one trades connection. Fields below obs are touched by the
// connection's runner goroutine only (OnConnect and OnMessage run there).
type stream struct {
	v   *Venue
	obs exchanges.StreamObserver

	nextID atomic.Int64 // request ids; the heartbeat goroutine sends too

	hbID, subID int64
	channels    []string
	seen        *seenSet
	key         []byte // scratch for seen keys
}

// config returns the wsconn configuration of the trades stream.
func (st *stream) config() wsconn.Config {
	v := st.v
	cfg := wsconn.Config{
		Name:         StreamName,
		URL:          func() string { return v.cfg.WS },
		PingInterval: PingInterval,
		OnConnect:    st.onConnect,
		OnMessage:    st.onMessage,
		Heartbeat:    st.heartbeat,
		Observer:     st.obs,
		Logger:       v.log,
	}
	if v.cfg.Stream != nil {
		v.cfg.Stream(&cfg)
	}
	return cfg
}

func (st *stream) request(method, params string) (int64, []byte) {
	id := st.nextID.Add(1)
	return id, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
}

// onConnect asks for server heartbeats and subscribes the trades channel
// of every currency; the stream is up when the subscribe reply arrives.
func (st *stream) onConnect(_ context.Context, s *wsconn.Session) error {
	st.channels = st.channels[:0]
	for _, c := range st.v.currencies {
		st.channels = append(st.channels, Channel(c.name))
	}
	id, msg := st.request("public/set_heartbeat", `{"interval":`+strconv.Itoa(HeartbeatInterval)+`}`)
	st.hbID = id
	if err := s.Send(msg); err != nil {
		return err
	}
	chans := []byte(`{"channels":[`)
	for i, ch := range st.channels {
		if i > 0 {
			chans = append(chans, ',')
		}
		chans = strconv.AppendQuote(chans, ch)
	}
	chans = append(chans, "]}"...)
	id, msg = st.request("public/subscribe", string(chans))
	st.subID = id
	return s.Send(msg)
}

// heartbeat calls public/test; its reply keeps the read deadline fresh
// even between server heartbeats.
func (st *stream) heartbeat(s *wsconn.Session) error {
	_, msg := st.request("public/test", `{}`)
	return s.Send(msg)
}

// onMessage is the frame handler of the trades connection.
func (st *stream) onMessage(s *wsconn.Session, data []byte) {
	v := st.v
	f, err := decodeFrame(data, st.handle)
	switch f.kind {
	case kindReply:
		st.onReply(s, f)
	case kindHeartbeat:
		// Documented: answer every test_request with public/test, or the
		// server closes the connection.
		if string(f.hbType) == "test_request" {
			_, msg := st.request("public/test", `{}`)
			_ = s.Send(msg)
		}
	}
	for range f.bad {
		st.obs.DecodeError()
	}
	if f.bad > 0 && v.throttle.Allow("decode") {
		v.log.Warn("dropped malformed trades frame or trade (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"stream", StreamName, "err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// onReply handles a JSON-RPC reply. An error on set_heartbeat or subscribe
// is a subscription error: counted as a decode error, logged, and the
// connection is closed (the runner reconnects after back-off). A subscribe
// result marks the stream up; channels missing from it are counted and
// logged. Errors on public/test are counted and logged.
func (st *stream) onReply(s *wsconn.Session, f frame) {
	v := st.v
	if f.isError {
		st.obs.DecodeError()
		what := "public/test"
		switch f.id {
		case st.subID:
			what = "public/subscribe"
		case st.hbID:
			what = "public/set_heartbeat"
		}
		v.log.Error("Deribit rejected a request", "stream", StreamName, "method", what, "code", f.errCode, "message", exchanges.Truncate(f.errMsg, 256))
		if f.id == st.subID || f.id == st.hbID {
			s.Close(fmt.Errorf("%s rejected: error %d: %s", what, f.errCode, exchanges.Truncate(f.errMsg, 256)))
		}
		return
	}
	if f.id != st.subID {
		return // set_heartbeat "ok", public/test
	}
	got := map[string]bool{}
	if err := jsonx.ArrayEach(f.result, func(v []byte) bool {
		if ch, ok := jsonx.String(v); ok {
			got[string(ch)] = true
		}
		return true
	}); err != nil {
		st.obs.DecodeError()
		v.log.Error("unexpected public/subscribe result; reconnecting", "stream", StreamName, "result", exchanges.Truncate(f.result, 256))
		s.Close(errors.New("public/subscribe: result is not a list of channels"))
		return
	}
	var missing []string
	for _, ch := range st.channels {
		if !got[ch] {
			missing = append(missing, ch)
		}
	}
	if len(missing) == len(st.channels) {
		st.obs.DecodeError()
		v.log.Error("public/subscribe subscribed no channel; reconnecting", "stream", StreamName, "channels", st.channels)
		s.Close(errors.New("public/subscribe subscribed no channel"))
		return
	}
	for range missing {
		st.obs.DecodeError()
	}
	if len(missing) > 0 {
		v.log.Error("public/subscribe left channels out", "stream", StreamName, "missing", missing)
	}
	s.Subscribed()
}

// handle counts one liquidation trade: once per liquidated side, never
// twice for the same trade, never for trades before the venue started.
func (st *stream) handle(t trade) {
	v := st.v
	if time.UnixMilli(t.Timestamp).Before(v.epoch) {
		return // history
	}
	if len(t.TradeID) > 0 {
		st.key = append(append(append(st.key[:0], t.Instrument...), ':'), t.TradeID...)
		if st.seen.has(st.key) {
			return
		}
	}
	inst, known := v.lookup(t.Instrument)
	if inst == nil {
		if known {
			return // excluded by the coin allowlist
		}
		st.obs.DecodeError()
		v.requestRefresh(currencyOf(t.Instrument))
		if v.throttle.Allow("unknown:" + string(t.Instrument)) {
			v.log.Warn("liquidation for an instrument not in the instrument list was dropped; refreshing instruments",
				"stream", StreamName, "instrument", string(t.Instrument))
		}
		return
	}
	if len(t.TradeID) > 0 {
		st.seen.add(st.key)
	}
	n := notional(inst, t)
	for i := range t.NSides {
		if !v.sink.Liquidation(exchanges.Liquidation{Instrument: inst, Side: t.Sides[i], NotionalUSD: n}) {
			st.obs.DecodeError()
			if v.throttle.Allow("implausible") {
				v.log.Warn("liquidation with an implausible notional was dropped", "instrument", inst.Symbol, "notional_usd", n)
			}
		}
	}
}

// currencyOf guesses the currency an unknown instrument is listed under:
// the settlement part of BTC_USDC-PERPETUAL, else the base of BTC-PERPETUAL.
func currencyOf(name []byte) []byte {
	head, _, _ := bytes.Cut(name, []byte("-"))
	if _, settle, ok := bytes.Cut(head, []byte("_")); ok {
		return settle
	}
	return head
}
