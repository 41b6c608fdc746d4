package kraken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Feeds and events of the Kraken Futures WebSocket (reference section 10).
const (
	feedTrade         = "trade"
	feedTradeSnapshot = "trade_snapshot" // history sent first on subscribe: never counted
	feedHeartbeat     = "heartbeat"

	eventSubscribed   = "subscribed"
	eventSubFailed    = "subscribed_failed"
	eventError        = "error"
	eventAlert        = "alert" // UNVERIFIED: Kraken's wording for some refusals
	eventUnsubscribed = "unsubscribed"

	typeLiquidation = "liquidation"
)

// kind classifies a frame.
type kind uint8

const (
	kindOther       kind = iota // info, heartbeat, trade_snapshot, unsubscribed, other feeds
	kindSubscribed              // a trade feed subscription was acknowledged
	kindFailed                  // subscribed_failed, error or alert
	kindTrade                   // a trade that is not a liquidation
	kindLiquidation             // a live liquidation trade
)

// liquidation is one decoded liquidation trade.
type liquidation struct {
	Product []byte // aliases the frame; valid during the callback only
	Side    exchanges.Side
	Qty     float64 // contracts: PF_ base units, PI_/FI_ USD
	Price   float64 // USD per base unit
}

// frame is what one WebSocket frame held.
type frame struct {
	kind     kind
	products []byte // a subscription reply's raw "product_ids" array
	message  []byte // a refusal's "message" (raw when not a string)
	feed     []byte
}

var (
	errNotObject = errors.New("frame is not a JSON object with an event or a feed")
	errProduct   = errors.New(`"product_id" is missing or not a string`)
	errType      = errors.New(`trade "type" is missing or not a string`)
	errSide      = errors.New(`side is neither "buy" nor "sell"`)
	errQty       = errors.New("qty is missing, not a number, or not positive")
	errPrice     = errors.New("price is missing, not a number, or not positive")
)

// decodeFrame decodes one Kraken Futures frame. Keys are matched exactly.
// Only "trade" feed messages of type "liquidation" yield a liquidation;
// trade_snapshot (the history sent first on every subscription) is never
// decoded. A non-nil error means the frame was dropped as malformed.
//
// Side: the trade's side is the TAKER's side and the liquidated account is
// ASSUMED (UNVERIFIED) to be the taker, so "sell" = a long was liquidated
// and "buy" = a short was liquidated.
func decodeFrame(data []byte) (f frame, ev liquidation, err error) {
	var event, feed, product, products, side, typ, qty, price, message []byte
	err = jsonx.ObjectEach(data, func(k, v []byte) bool {
		switch string(k) {
		case "event":
			event = v
		case "feed":
			feed = v
		case "product_id":
			product = v
		case "product_ids":
			products = v
		case "side":
			side = v
		case "type":
			typ = v
		case "qty":
			qty = v
		case "price":
			price = v
		case "message":
			message = v
		}
		return true
	})
	if err != nil {
		return f, ev, err
	}
	f.feed, _ = jsonx.String(feed)
	if e, ok := jsonx.String(event); ok {
		switch string(e) {
		case eventSubscribed:
			if string(f.feed) == feedTrade {
				f.kind, f.products = kindSubscribed, products
			}
		case eventSubFailed, eventError, eventAlert:
			f.kind, f.products, f.message = kindFailed, products, message
			if s, ok := jsonx.String(message); ok {
				f.message = s
			}
		}
		return f, ev, nil
	}
	if f.feed == nil {
		return f, ev, errNotObject
	}
	if string(f.feed) != feedTrade {
		return f, ev, nil // heartbeat, trade_snapshot, anything new
	}
	var ok bool
	if ev.Product, ok = jsonx.String(product); !ok || len(ev.Product) == 0 {
		return f, ev, errProduct
	}
	t, ok := jsonx.String(typ)
	if !ok {
		return f, ev, errType
	}
	if string(t) != typeLiquidation {
		f.kind = kindTrade
		return f, ev, nil
	}
	switch string(side) {
	case `"sell"`:
		ev.Side = exchanges.Long // ASSUMED: the taker is liquidated; a sell closes a long
	case `"buy"`:
		ev.Side = exchanges.Short
	default:
		return f, ev, errSide
	}
	if ev.Qty, err = jsonx.Float(qty); err != nil || !(ev.Qty > 0) {
		return f, ev, errQty
	}
	if ev.Price, err = jsonx.Float(price); err != nil || !(ev.Price > 0) {
		return f, ev, errPrice
	}
	f.kind = kindLiquidation
	return f, ev, nil
}

// notional is the USD notional of a liquidation by the project's rule:
// linear (PF_) qty x contractSize x price (contractSize 1: qty x price);
// inverse (PI_/FI_) qty x contractSize USD (contractSize 1: qty).
func notional(inst *exchanges.Instrument, ev liquidation) float64 {
	if inst.Market == exchanges.Inverse {
		return ev.Qty * inst.ContractSize
	}
	return ev.Qty * inst.ContractSize * ev.Price
}

// tradeStream is the one trade feed connection. Every (re)connect
// subscribes the heartbeat feed and the whole current product set in
// batches of ProductsPerMessage; products discovered later are subscribed
// (and removed ones unsubscribed) live on the current connection. The
// stream is up once every product subscribed on connect is acknowledged.
//
// Keep-alive: Kraken drops a connection that sends nothing for 60 s. The
// heartbeat hook sends {"event":"subscribe","feed":"heartbeat"} every
// PingInterval (30 s): an application message (the documented heartbeat
// subscription) that the server answers with "subscribed", so both
// directions stay busy; the heartbeat feed's own frames refresh the read
// deadline as well. Repeating the subscription as the "ping request" is the
// project's choice (UNVERIFIED that the venue needs no other ping).
type tradeStream struct {
	v   *Venue
	obs exchanges.StreamObserver

	mu      sync.Mutex
	want    map[string]bool // products to carry
	have    map[string]bool // products requested on the current connection
	pending map[string]bool // subscribed on connect and not yet acknowledged
	sess    *wsconn.Session
}

// request is a subscribe or unsubscribe message (documented shape).
type request struct {
	Event      string   `json:"event"`
	Feed       string   `json:"feed"`
	ProductIDs []string `json:"product_ids,omitempty"`
}

var heartbeatSubscribe = mustJSON(request{Event: "subscribe", Feed: feedHeartbeat})

func mustJSON(r request) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // strings always marshal
	}
	return b
}

func (ts *tradeStream) streamConfig() wsconn.Config {
	c := wsconn.Config{
		Name:         StreamTrades,
		URL:          func() string { return ts.v.cfg.WS },
		PingInterval: DefaultKeepAlive,
		OnConnect:    ts.onConnect,
		OnMessage:    ts.onMessage,
		Heartbeat:    func(s *wsconn.Session) error { return s.Send(heartbeatSubscribe) },
		Observer:     ts.obs,
		Logger:       ts.v.log,
	}
	if ts.v.cfg.Stream != nil {
		ts.v.cfg.Stream(&c)
	}
	return c
}

// batches splits products into subscription messages.
func (ts *tradeStream) batches(event string, products []string) [][]byte {
	per := ts.v.cfg.ProductsPerMessage
	var out [][]byte
	for chunk := range slices.Chunk(products, per) {
		out = append(out, mustJSON(request{Event: event, Feed: feedTrade, ProductIDs: chunk}))
	}
	return out
}

// assign moves the subscriptions to a new sorted product list.
func (ts *tradeStream) assign(products []string) {
	ts.mu.Lock()
	want := make(map[string]bool, len(products))
	for _, p := range products {
		want[p] = true
	}
	ts.want = want
	var add, del []string
	if ts.sess != nil {
		for _, p := range products {
			if !ts.have[p] {
				add = append(add, p)
			}
		}
		for p := range ts.have {
			if !want[p] {
				del = append(del, p)
				delete(ts.pending, p)
			}
		}
		ts.have = maps.Clone(want)
	}
	sess := ts.sess
	allAcked := ts.pending != nil && len(ts.pending) == 0
	ts.mu.Unlock()
	if sess == nil {
		return
	}
	if allAcked {
		sess.Subscribed() // e.g. the only unacknowledged products were removed
	}
	slices.Sort(del)
	if len(del) > 0 {
		ts.v.log.Info("unsubscribing removed products", "count", len(del))
	}
	if len(add) > 0 {
		ts.v.log.Info("subscribing new products", "count", len(add))
	}
	for _, msg := range append(ts.batches("unsubscribe", del), ts.batches("subscribe", add)...) {
		if sess.Send(msg) != nil {
			return // the connection ended; the next one subscribes the whole set
		}
	}
}

// onConnect subscribes the heartbeat feed and the whole product set.
func (ts *tradeStream) onConnect(_ context.Context, s *wsconn.Session) error {
	ts.mu.Lock()
	ts.sess = s
	ts.have = maps.Clone(ts.want)
	ts.pending = maps.Clone(ts.want)
	products := slices.Sorted(maps.Keys(ts.have))
	ts.mu.Unlock()
	if err := s.Send(heartbeatSubscribe); err != nil {
		return err
	}
	for _, msg := range ts.batches("subscribe", products) {
		if err := s.Send(msg); err != nil {
			return err
		}
	}
	if len(products) == 0 {
		s.Subscribed()
	}
	return nil
}

// onMessage is the frame handler of the trade connection.
func (ts *tradeStream) onMessage(s *wsconn.Session, data []byte) {
	f, ev, err := decodeFrame(data)
	switch {
	case err != nil:
		ts.obs.DecodeError()
		if ts.v.logThrottle.Allow("decode") {
			ts.v.log.Warn("dropped a malformed frame (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
				"stream", StreamTrades, "err", err, "frame", exchanges.Truncate(data, 256))
		}
	case f.kind == kindLiquidation:
		ts.handle(ev)
	case f.kind == kindSubscribed:
		ts.acked(s, f.products)
	case f.kind == kindFailed:
		ts.onFailed(s, f)
	}
}

// handle counts one decoded liquidation.
func (ts *tradeStream) handle(ev liquidation) {
	v := ts.v
	inst, known := v.lookup(ev.Product)
	if inst == nil {
		if known {
			return // excluded by the coin allowlist
		}
		ts.obs.DecodeError()
		v.requestRefresh()
		if v.logThrottle.Allow("unknown:" + string(ev.Product)) {
			v.log.Warn("liquidation for a product not in the instrument list was dropped; refreshing instruments", "product", string(ev.Product))
		}
		return
	}
	n := notional(inst, ev)
	if !v.sink.Liquidation(exchanges.Liquidation{Instrument: inst, Side: ev.Side, NotionalUSD: n}) {
		ts.obs.DecodeError()
		if v.logThrottle.Allow("implausible") {
			v.log.Warn("liquidation with an implausible notional was dropped", "symbol", inst.Symbol, "notional_usd", n)
		}
	}
}

// acked records a trade subscription acknowledgement.
func (ts *tradeStream) acked(s *wsconn.Session, products []byte) {
	ts.mu.Lock()
	if ts.sess != s || ts.pending == nil {
		ts.mu.Unlock()
		return
	}
	_ = jsonx.ArrayEach(products, func(p []byte) bool {
		if name, ok := jsonx.String(p); ok {
			delete(ts.pending, string(name))
		}
		return true
	})
	done := len(ts.pending) == 0
	ts.mu.Unlock()
	if done {
		s.Subscribed()
	}
}

// onFailed handles subscribed_failed, error and alert: counted as a decode
// error, logged, a fresh instrument list is requested (the usual cause is a
// product that is no longer listed) and the connection is closed; the runner
// reconnects after back-off and subscribes the current set again.
func (ts *tradeStream) onFailed(s *wsconn.Session, f frame) {
	ts.obs.DecodeError()
	ts.v.log.Error("Kraken refused a subscription or request; reconnecting", "stream", StreamTrades,
		"feed", string(f.feed), "product_ids", exchanges.Truncate(f.products, 256), "message", exchanges.Truncate(f.message, 512))
	ts.v.requestRefresh()
	s.Close(fmt.Errorf("kraken refused: %s", exchanges.Truncate(f.message, 256)))
}
