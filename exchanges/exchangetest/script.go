// Package exchangetest holds protocol-faithful fakes of the venues the
// exporter reads, for unit tests, the end-to-end test and the offline
// simulator. Every fake listens on 127.0.0.1 only and shuts down completely
// on Close. The package does not import testing, so ordinary programs can
// use it.
package exchangetest

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Event is one scripted step of a fake WebSocket feed. The parts of one
// event run in this order: Delay, Frame, Ping, CloseCode, Disconnect.
type Event struct {
	Delay time.Duration // wait before this step
	// Frame is the raw payload pushed to every subscribed client connection
	// (for Binance: the forceOrder event JSON; when a client uses the
	// combined /stream endpoint the fake wraps it as
	// {"stream":"<name>","data":<payload>}). Bytes that are not valid JSON
	// are allowed and are sent verbatim as a text frame.
	Frame      []byte
	Disconnect bool   // abruptly close every client connection (TCP close, no close frame)
	CloseCode  int    // if non-zero: send a close frame with this code, then close
	Ping       []byte // if non-nil: send a server ping frame with this payload
}

// Delivered records one scripted frame and how many client connections it
// was written to successfully.
type Delivered struct {
	Frame []byte
	Conns int
}

// FrameEvents returns one Event per frame, each waiting delay before it.
func FrameEvents(delay time.Duration, frames ...[]byte) []Event {
	out := make([]Event, 0, len(frames))
	for _, f := range frames {
		out = append(out, Event{Delay: delay, Frame: f})
	}
	return out
}

// ForceOrder describes one Binance liquidation order event. Quantities and
// prices are served as decimal strings the way Binance formats them.
// USDⓈ-M quantities are in base asset, COIN-M quantities in contracts.
type ForceOrder struct {
	Symbol        string // o.s, e.g. BTCUSDT or BTCUSD_PERP
	Pair          string // o.ps, COIN-M only (e.g. BTCUSD); omitted when empty
	Side          string // o.S: "SELL" liquidates a long, "BUY" a short; served as given
	OrderType     string // o.o; "" = LIMIT
	TimeInForce   string // o.f; "" = IOC
	Qty           float64
	Price         float64
	AvgPrice      float64
	FilledQty     float64 // o.z, accumulated filled quantity
	LastFilledQty float64 // o.l
	EventTime     int64   // E, ms; 0 = now
	TradeTime     int64   // o.T, ms; 0 = EventTime
	Status        string  // o.X; "" = FILLED
}

// forceOrderEvent is the forceOrder event in Binance's field order.
type forceOrderEvent struct {
	Type  string          `json:"e"`
	Time  int64           `json:"E"`
	Order forceOrderOrder `json:"o"`
}

type forceOrderOrder struct {
	Symbol      string `json:"s"`
	Pair        string `json:"ps,omitempty"`
	Side        string `json:"S"`
	OrderType   string `json:"o"`
	TimeInForce string `json:"f"`
	Qty         string `json:"q"`
	Price       string `json:"p"`
	AvgPrice    string `json:"ap"`
	Status      string `json:"X"`
	LastFilled  string `json:"l"`
	Filled      string `json:"z"`
	TradeTime   int64  `json:"T"`
}

// ForceOrderFrame builds the forceOrder event JSON Binance pushes on
// !forceOrder@arr and <symbol>@forceOrder. Set Pair for COIN-M, whose events
// carry o.ps.
func ForceOrderFrame(o ForceOrder) []byte {
	if o.EventTime == 0 {
		o.EventTime = time.Now().UnixMilli()
	}
	if o.TradeTime == 0 {
		o.TradeTime = o.EventTime
	}
	ev := forceOrderEvent{
		Type: "forceOrder",
		Time: o.EventTime,
		Order: forceOrderOrder{
			Symbol:      o.Symbol,
			Pair:        o.Pair,
			Side:        o.Side,
			OrderType:   binanceOr(o.OrderType, "LIMIT"),
			TimeInForce: binanceOr(o.TimeInForce, "IOC"),
			Qty:         binanceDecimal(o.Qty),
			Price:       binanceDecimal(o.Price),
			AvgPrice:    binanceDecimal(o.AvgPrice),
			Status:      binanceOr(o.Status, "FILLED"),
			LastFilled:  binanceDecimal(o.LastFilledQty),
			Filled:      binanceDecimal(o.FilledQty),
			TradeTime:   o.TradeTime,
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // strings and integers always marshal
	}
	return b
}

// BinanceCombinedFrame wraps payload in the envelope of Binance's combined
// stream endpoint, {"stream":"<stream>","data":<payload>}. payload must be
// valid JSON.
func BinanceCombinedFrame(stream string, payload []byte) []byte {
	name, _ := json.Marshal(stream)
	out := make([]byte, 0, len(payload)+len(name)+20)
	out = append(out, `{"stream":`...)
	out = append(out, name...)
	out = append(out, `,"data":`...)
	out = append(out, payload...)
	return append(out, '}')
}

// binanceDecimal formats v as a plain decimal string without exponent, the
// way Binance serves quantities and prices; NaN and infinities are served
// as "" (Binance serves "" for values that do not apply, such as the
// funding rate of a delivery contract).
func binanceDecimal(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// binanceFixed formats v with a fixed number of decimals, as Binance serves
// mark prices and funding rates ("11793.63104562", "0.00010000").
func binanceFixed(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func binanceOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
