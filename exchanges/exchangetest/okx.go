package exchangetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OKX v5 instrument types the fake serves.
const (
	OKXSwap    = "SWAP"
	OKXFutures = "FUTURES"
)

// Documented OKX limits and defaults the fake applies (the project's
// reference, section 3).
const (
	// OKXIdleTimeout: "The connection will break automatically if the
	// subscription is not established or data has not been pushed for more
	// than 30 seconds."
	OKXIdleTimeout = 30 * time.Second
	// OKXRateWindow is the window of the REST rate limits (per IP).
	OKXRateWindow = 2 * time.Second
	// OKXHistoryWindow is how far back liquidation-orders serves ("the last
	// day", documented).
	OKXHistoryWindow = 24 * time.Hour
	// OKXMaxLimit is the largest limit of liquidation-orders.
	OKXMaxLimit = 100
	// OKXLiquidationChannel is the liquidation channel.
	OKXLiquidationChannel = "liquidation-orders"
	// OKXDefaultReplay and OKXDefaultReplayWindow: after a subscription the
	// fake sends the last OKXDefaultReplay orders of that instType from the
	// last OKXDefaultReplayWindow. That OKX replays recent orders on
	// (re)subscribe is the project's observation, not documented; the count
	// and window are UNVERIFIED choices.
	OKXDefaultReplay       = 10
	OKXDefaultReplayWindow = time.Minute

	okxWSPath = "/ws/v5/public"

	okxInstrumentsEP  = "/api/v5/public/instruments"
	okxOpenInterestEP = "/api/v5/public/open-interest"
	okxMarkPriceEP    = "/api/v5/public/mark-price"
	okxTickersEP      = "/api/v5/market/tickers"
	okxFundingEP      = "/api/v5/public/funding-rate"
	okxLiquidationsEP = "/api/v5/public/liquidation-orders"
	okxLongShortEP    = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
)

// okxRateLimits are the documented limits per endpoint (requests per
// OKXRateWindow per IP).
var okxRateLimits = map[string]int{
	okxInstrumentsEP:  20,
	okxOpenInterestEP: 20,
	okxMarkPriceEP:    10,
	okxTickersEP:      20,
	okxFundingEP:      10,
	okxLiquidationsEP: 40,
	okxLongShortEP:    5,
}

// OKXInstrument is the state of one fake instrument and its market data.
type OKXInstrument struct {
	InstType   string // OKXSwap or OKXFutures
	InstID     string // e.g. BTC-USDT-SWAP, BTC-USD-SWAP, BTC-USDT-250926
	InstFamily string // e.g. BTC-USDT (also served as uly); "" = the first two segments of InstID
	SettleCcy  string // USDT, USDC, or the base coin for inverse
	CtType     string // linear or inverse
	// CtVal is the contract value: base coin for linear, USD for inverse;
	// CtValCcy its currency ("" = the base coin for linear, USD for
	// inverse). CtMult 0 is served as 1.
	CtVal    float64
	CtMult   float64
	CtValCcy string
	// State: live, suspend, preopen, test. Market data is served for live
	// instruments only.
	State   string
	Alias   string // FUTURES: this_week, next_week, quarter, next_quarter
	ExpTime int64  // ms, FUTURES

	// Market data; numbers are served as strings the way OKX serves them,
	// NaN as "".
	Last, MarkPx      float64
	Vol24h, VolCcy24h float64 // contracts; base coin
	OI, OICcy, OIUsd  float64 // contracts; coin; USD
	// Funding (SWAP): FundingRate is the rate of the settlement at
	// FundingTime (ms); NextFundingTime the one after.
	FundingRate                  float64
	FundingTime, NextFundingTime int64
}

func (i OKXInstrument) family() string {
	if i.InstFamily != "" {
		return i.InstFamily
	}
	return okxFamilyOf(i.InstID)
}

func okxFamilyOf(instID string) string {
	parts := strings.Split(instID, "-")
	if len(parts) < 2 {
		return instID
	}
	return parts[0] + "-" + parts[1]
}

// OKXDetail is one liquidation order of a push ("details" element).
type OKXDetail struct {
	Side    string  // order side: "sell" liquidates a long, "buy" a short; served as given
	PosSide string  // long, short, net, or "" (served as given)
	Sz      float64 // contracts
	BkPx    float64 // bankruptcy price
	BkLoss  float64
	TS      int64 // ms; 0 = now
}

// OKXOrder is one liquidation order as the fake's history holds it, with
// the strings it was pushed with.
type OKXOrder struct {
	InstType, InstID, InstFamily string
	BkLoss, BkPx, Ccy            string
	PosSide, Side, Sz            string
	TS                           int64
}

type okxDetailJSON struct {
	BkLoss  string `json:"bkLoss"`
	BkPx    string `json:"bkPx"`
	Ccy     string `json:"ccy"`
	PosSide string `json:"posSide"`
	Side    string `json:"side"`
	Sz      string `json:"sz"`
	TS      string `json:"ts"`
}

type okxItemJSON struct {
	Details    []okxDetailJSON `json:"details"`
	InstFamily string          `json:"instFamily"`
	InstID     string          `json:"instId"`
	InstType   string          `json:"instType"`
	TotalLoss  *string         `json:"totalLoss,omitempty"` // REST only
	Uly        string          `json:"uly"`
}

type okxArg struct {
	Channel  string `json:"channel"`
	InstType string `json:"instType,omitempty"`
	InstID   string `json:"instId,omitempty"`
}

type okxPushJSON struct {
	Arg  okxArg        `json:"arg"`
	Data []okxItemJSON `json:"data"`
}

// okxNum formats v as OKX does: a decimal string, "" for NaN.
func okxNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// OKXLiquidationFrame builds the liquidation-orders push of one instrument
// as documented:
// {"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":
// [{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy",
// "sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT",
// "instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}.
// instFamily "" = the first two segments of instID; a detail's TS 0 = now.
func OKXLiquidationFrame(instType, instID, instFamily string, details ...OKXDetail) []byte {
	if instFamily == "" {
		instFamily = okxFamilyOf(instID)
	}
	now := time.Now().UnixMilli()
	item := okxItemJSON{InstFamily: instFamily, InstID: instID, InstType: instType, Uly: instFamily, Details: make([]okxDetailJSON, 0, len(details))}
	for _, d := range details {
		ts := d.TS
		if ts == 0 {
			ts = now
		}
		item.Details = append(item.Details, okxDetailJSON{BkLoss: okxNum(d.BkLoss), BkPx: okxNum(d.BkPx), PosSide: d.PosSide,
			Side: d.Side, Sz: okxNum(d.Sz), TS: strconv.FormatInt(ts, 10)})
	}
	b, err := json.Marshal(okxPushJSON{Arg: okxArg{Channel: OKXLiquidationChannel, InstType: instType}, Data: []okxItemJSON{item}})
	if err != nil {
		panic(err) // strings always marshal
	}
	return b
}

type okxLimit struct {
	n      int
	window time.Duration
}

// OKX is a fake of OKX's v5 public API: one HTTP server on a loopback port
// serving REST (instruments, open-interest, mark-price, market/tickers,
// funding-rate, liquidation-orders, rubik long-short-account-ratio, in
// OKX's {"code":"0","msg":"","data":[]}
// envelope with string numbers, rate limited per endpoint as documented and
// answering HTTP 429 with code 50011 beyond the limit) and the public
// WebSocket /ws/v5/public (subscribe and unsubscribe with acks, error
// events, the text ping answered with "pong", the idle disconnect after
// 30 s without pushed data, and a replay of recent liquidation orders on
// every subscription). Every well-formed liquidation order pushed (Play,
// Liquidate) or added (AddHistory) joins the history that liquidation-orders
// serves, so REST backfill and pushes agree. All state is guarded by a
// mutex and may change while clients are connected.
//
// Paths given to FailNext, SetLatency, SetRateLimit and Requests are a bare
// path ("/api/v5/public/open-interest") or, for Requests, FailNext and
// SetLatency, a path with its instType ("/api/v5/public/open-interest?instType=SWAP"),
// which is used first; for the long/short ratio the second form names the
// ccy instead ("/api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=BTC").
type OKX struct {
	wsServer[*okxConn]

	instruments []OKXInstrument
	history     []OKXOrder
	longShort   map[string][]float64 // ccy -> long/short account ratios, newest first
	limits      map[string]okxLimit
	hits        map[string][]time.Time

	idleTimeout time.Duration
	idleReset   chan struct{}
	rejectNext  int
	replayN     int
	replayWin   time.Duration
	replayed    int

	restFaults // FailNext, SetLatency, Requests
}

// NewOKX starts a fake OKX on 127.0.0.1 with a free port and no
// instruments. It panics if it cannot listen, like httptest.NewServer.
func NewOKX() *OKX {
	o := &OKX{
		limits:      map[string]okxLimit{},
		hits:        map[string][]time.Time{},
		longShort:   map[string][]float64{},
		idleTimeout: OKXIdleTimeout,
		idleReset:   make(chan struct{}, 1),
		replayN:     OKXDefaultReplay,
		replayWin:   OKXDefaultReplayWindow,
	}
	for p, n := range okxRateLimits {
		o.limits[p] = okxLimit{n, OKXRateWindow}
	}
	o.startWS(o, wsConfig{name: "OKX fake", listing: listPerStep, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(o.serveHTTP))
	o.spawn(func() {
		watchIdle(&o.wsServer, o.idleReset, func() time.Duration { return o.idleTimeout },
			func(c *okxConn) time.Time { return c.lastActive })
	})
	return o
}

// RESTURL returns http://127.0.0.1:port (as https://www.okx.com); clients
// append /api/v5/....
func (o *OKX) RESTURL() string { return o.url }

// WSURL returns ws://127.0.0.1:port/ws/v5/public (as
// wss://ws.okx.com:8443/ws/v5/public).
func (o *OKX) WSURL() string { return o.wsURL(okxWSPath) }

// SetInstruments replaces the instrument list (served in this order).
func (o *OKX) SetInstruments(list []OKXInstrument) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.instruments = append([]OKXInstrument(nil), list...)
}

// Instruments returns a copy of the instrument list.
func (o *OKX) Instruments() []OKXInstrument {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]OKXInstrument(nil), o.instruments...)
}

// UpdateInstrument changes one instrument in place. An instId that is not
// listed yet is appended as OKXInstrument{InstID: instID} before f runs.
func (o *OKX) UpdateInstrument(instID string, f func(*OKXInstrument)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	updateOrAdd(&o.instruments, func(in OKXInstrument) bool { return in.InstID == instID }, OKXInstrument{InstID: instID}, f)
}

// FailNext makes the next n requests to path answer status with body, plus
// a Retry-After header of retryAfter seconds when retryAfter > 0. An empty
// body is replaced by what OKX serves for the status: 429 the envelope
// with code 50011 "Too Many Requests", others an envelope with code 50001
// "Service temporarily unavailable". Calls queue up in order.
func (o *OKX) FailNext(path string, n, status, retryAfter int, body string) {
	switch {
	case body == "" && status == http.StatusTooManyRequests:
		body = okxErrorBody("50011", "Too Many Requests")
	case body == "":
		body = okxErrorBody("50001", "Service temporarily unavailable. Please try again later.")
	}
	o.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body, contentType: "application/json"})
}

// FailNextCode makes the next n requests to path answer HTTP 200 with OKX's
// error envelope {"code":code,"msg":msg,"data":[]}.
func (o *OKX) FailNextCode(path string, n int, code, msg string) {
	o.queue(path, n, restFault{status: http.StatusOK, body: okxErrorBody(code, msg), contentType: "application/json"})
}

// SetRateLimit changes the limit of a bare path to n requests per window
// (the documented limits are the default); n 0 removes the limit.
func (o *OKX) SetRateLimit(path string, n int, window time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n <= 0 {
		delete(o.limits, path)
		return
	}
	o.limits[path] = okxLimit{n, window}
}

// ---------------------------------------------------------------- REST

type okxEnvelope struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data"`
}

func okxErrorBody(code, msg string) string {
	b, _ := json.Marshal(okxEnvelope{Code: code, Msg: msg, Data: []any{}})
	return string(b)
}

func writeOKXJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(okxErrorBody("50000", "internal error"))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func okxOK(w http.ResponseWriter, data any) {
	writeOKXJSON(w, http.StatusOK, okxEnvelope{Code: "0", Msg: "", Data: data})
}

// okxParamError answers a parameter error (HTTP 400 with the code, as OKX
// serves its 51xxx codes; the status is UNVERIFIED).
func okxParamError(w http.ResponseWriter, code, msg string) {
	writeOKXJSON(w, http.StatusBadRequest, okxEnvelope{Code: code, Msg: msg, Data: []any{}})
}

func (o *OKX) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == okxWSPath {
		o.serveWS(w, r, o.admitUnlessRefused, o.newConn)
		return
	}
	o.serveREST(w, r)
}

// limitedLocked records a request of path and reports whether it is over
// the endpoint's rate limit.
func (o *OKX) limitedLocked(path string, now time.Time) bool {
	l, ok := o.limits[path]
	if !ok {
		return false
	}
	hits := o.hits[path]
	cut := 0
	for cut < len(hits) && now.Sub(hits[cut]) >= l.window {
		cut++
	}
	hits = hits[cut:]
	if len(hits) >= l.n {
		o.hits[path] = hits
		return true
	}
	o.hits[path] = append(hits, now)
	return false
}

func (o *OKX) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	q := r.URL.Query()
	keyed := path + "?instType=" + q.Get("instType")
	if path == okxLongShortEP {
		keyed = path + "?ccy=" + q.Get("ccy")
	}

	o.count(path, keyed)
	o.mu.Lock()
	now := time.Now()
	limited := o.limitedLocked(path, now)
	o.mu.Unlock()

	if !pause(r, o.done, o.delayOf(keyed, path)) {
		return
	}

	fault, failed := o.take(keyed, path)
	o.mu.Lock()
	insts := append([]OKXInstrument(nil), o.instruments...)
	history := append([]OKXOrder(nil), o.history...)
	var ratios []float64
	ratiosKnown := false
	if path == okxLongShortEP {
		ratios, ratiosKnown = o.longShort[q.Get("ccy")]
		ratios = slices.Clone(ratios)
	}
	o.mu.Unlock()

	switch {
	case limited:
		writeOKXJSON(w, http.StatusTooManyRequests, okxEnvelope{Code: "50011", Msg: "Too Many Requests", Data: []any{}})
		return
	case failed:
		fault.write(w)
		return
	case r.Method != http.MethodGet:
		writeOKXJSON(w, http.StatusMethodNotAllowed, okxEnvelope{Code: "50000", Msg: "method not allowed", Data: []any{}})
		return
	}
	switch path {
	case okxInstrumentsEP, okxOpenInterestEP, okxMarkPriceEP, okxTickersEP:
		t := q.Get("instType")
		if t != OKXSwap && t != OKXFutures && t != "SPOT" && t != "MARGIN" && t != "OPTION" {
			okxParamError(w, "51000", "Parameter instType error")
			return
		}
		okxOK(w, okxRows(path, t, insts, now))
	case okxFundingEP:
		o.serveFunding(w, q.Get("instId"), insts)
	case okxLiquidationsEP:
		o.serveLiquidations(w, q, history, now)
	case okxLongShortEP:
		serveOKXLongShort(w, q, insts, ratios, ratiosKnown, now)
	default:
		writeOKXJSON(w, http.StatusNotFound, okxEnvelope{Code: "50000", Msg: "path not found", Data: []any{}})
	}
}

func okxTS(now time.Time) string { return strconv.FormatInt(now.UnixMilli(), 10) }

// okxRows builds the data of instruments, open-interest, mark-price and
// tickers for one instType, in the documented field order.
func okxRows(path, instType string, insts []OKXInstrument, now time.Time) []any {
	rows := []any{}
	for _, in := range insts {
		if in.InstType != instType {
			continue
		}
		if path != okxInstrumentsEP && in.State != "live" {
			continue
		}
		switch path {
		case okxInstrumentsEP:
			rows = append(rows, okxInstrumentRow(in))
		case okxOpenInterestEP:
			rows = append(rows, map[string]string{"instType": in.InstType, "instId": in.InstID, "oi": okxNum(in.OI),
				"oiCcy": okxNum(in.OICcy), "oiUsd": okxNum(in.OIUsd), "ts": okxTS(now)})
		case okxMarkPriceEP:
			rows = append(rows, map[string]string{"instType": in.InstType, "instId": in.InstID, "markPx": okxNum(in.MarkPx), "ts": okxTS(now)})
		case okxTickersEP:
			last := in.Last
			if last == 0 {
				last = in.MarkPx
			}
			l := okxNum(last)
			rows = append(rows, okxTickerRow{InstType: in.InstType, InstID: in.InstID, Last: l, LastSz: "1", AskPx: l, AskSz: "1", BidPx: l, BidSz: "1",
				Open24h: l, High24h: l, Low24h: l, VolCcy24h: okxNum(in.VolCcy24h), Vol24h: okxNum(in.Vol24h), SodUtc0: l, SodUtc8: l, TS: okxTS(now)})
		}
	}
	return rows
}

type okxTickerRow struct {
	InstType  string `json:"instType"`
	InstID    string `json:"instId"`
	Last      string `json:"last"`
	LastSz    string `json:"lastSz"`
	AskPx     string `json:"askPx"`
	AskSz     string `json:"askSz"`
	BidPx     string `json:"bidPx"`
	BidSz     string `json:"bidSz"`
	Open24h   string `json:"open24h"`
	High24h   string `json:"high24h"`
	Low24h    string `json:"low24h"`
	VolCcy24h string `json:"volCcy24h"`
	Vol24h    string `json:"vol24h"`
	SodUtc0   string `json:"sodUtc0"`
	SodUtc8   string `json:"sodUtc8"`
	TS        string `json:"ts"`
}

type okxInstrumentJSON struct {
	InstType     string `json:"instType"`
	InstID       string `json:"instId"`
	Uly          string `json:"uly"`
	InstFamily   string `json:"instFamily"`
	BaseCcy      string `json:"baseCcy"`
	QuoteCcy     string `json:"quoteCcy"`
	SettleCcy    string `json:"settleCcy"`
	CtVal        string `json:"ctVal"`
	CtMult       string `json:"ctMult"`
	CtValCcy     string `json:"ctValCcy"`
	OptType      string `json:"optType"`
	Stk          string `json:"stk"`
	ListTime     string `json:"listTime"`
	ExpTime      string `json:"expTime"`
	Lever        string `json:"lever"`
	TickSz       string `json:"tickSz"`
	LotSz        string `json:"lotSz"`
	MinSz        string `json:"minSz"`
	CtType       string `json:"ctType"`
	Alias        string `json:"alias"`
	State        string `json:"state"`
	MaxLmtSz     string `json:"maxLmtSz"`
	MaxMktSz     string `json:"maxMktSz"`
	RuleType     string `json:"ruleType"`
	InstIDCode   int64  `json:"instIdCode"`
	ContTdSwTime string `json:"contTdSwTime"`
}

func okxInstrumentRow(in OKXInstrument) okxInstrumentJSON {
	fam := in.family()
	mult := in.CtMult
	if mult == 0 {
		mult = 1
	}
	ccy := in.CtValCcy
	if ccy == "" {
		ccy = strings.SplitN(fam, "-", 2)[0]
		if in.CtType == "inverse" {
			ccy = "USD"
		}
	}
	exp := ""
	if in.ExpTime > 0 {
		exp = strconv.FormatInt(in.ExpTime, 10)
	}
	return okxInstrumentJSON{
		InstType: in.InstType, InstID: in.InstID, Uly: fam, InstFamily: fam, SettleCcy: in.SettleCcy,
		CtVal: okxNum(in.CtVal), CtMult: okxNum(mult), CtValCcy: ccy, ListTime: "1606468572000", ExpTime: exp,
		Lever: "100", TickSz: "0.1", LotSz: "0.01", MinSz: "0.01", CtType: in.CtType, Alias: in.Alias, State: in.State,
		MaxLmtSz: "100000000", MaxMktSz: "12000", RuleType: "normal", InstIDCode: int64(len(in.InstID)) * 1000,
	}
}

func (o *OKX) serveFunding(w http.ResponseWriter, instID string, insts []OKXInstrument) {
	if instID == "" {
		okxParamError(w, "50014", "Parameter instId can not be empty")
		return
	}
	rows := []any{}
	for _, in := range insts {
		if in.InstType != OKXSwap || in.State != "live" || (instID != "ANY" && in.InstID != instID) {
			continue
		}
		rows = append(rows, map[string]string{
			"formulaType": "noRate", "fundingRate": okxNum(in.FundingRate), "fundingTime": strconv.FormatInt(in.FundingTime, 10),
			"impactValue": "", "instId": in.InstID, "instType": "SWAP", "interestRate": "", "maxFundingRate": "0.00375",
			"method": "current_period", "minFundingRate": "-0.00375", "nextFundingRate": "",
			"nextFundingTime": strconv.FormatInt(in.NextFundingTime, 10), "premium": "0", "settFundingRate": okxNum(in.FundingRate),
			"settState": "settled", "ts": okxTS(time.Now()),
		})
	}
	if instID != "ANY" && len(rows) == 0 {
		okxParamError(w, "51001", "Instrument ID does not exist")
		return
	}
	okxOK(w, rows)
}

// SetLongShortAccountRatio sets what GET
// /api/v5/rubik/stat/contracts/long-short-account-ratio serves for ccy:
// the ratios (longs/shorts among accounts), newest first, one per period
// going back from the current one; none = an empty data array. NaN is
// served as "". Setting a ccy also makes it a supported currency.
func (o *OKX) SetLongShortAccountRatio(ccy string, ratios ...float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.longShort[ccy] = slices.Clone(ratios)
}

// okxRatioPeriods are the documented periods of the long/short ratio.
var okxRatioPeriods = map[string]time.Duration{"5m": 5 * time.Minute, "1H": time.Hour, "1D": 24 * time.Hour}

// serveOKXLongShort answers GET
// /api/v5/rubik/stat/contracts/long-short-account-ratio as documented (OKX
// v5 "Get long/short ratio"): {"code":"0","msg":"","data":[["1630502100000",
// "1.25"]]}, an array of [ts, ratio] strings, newest first. ccy is
// required (code 50014 without it); period is 5m (default), 1H or 1D;
// begin and end (ms) bound the ts. A ccy is supported when it was set with
// SetLongShortAccountRatio or is the base currency of a live instrument
// (served as an empty array until set); any other ccy gets code 51000
// "Parameter ccy error" (UNVERIFIED wording, in the style of OKX's other
// parameter errors).
func serveOKXLongShort(w http.ResponseWriter, q url.Values, insts []OKXInstrument, ratios []float64, known bool, now time.Time) {
	ccy := q.Get("ccy")
	if ccy == "" {
		okxParamError(w, "50014", "Parameter ccy can not be empty")
		return
	}
	period := q.Get("period")
	if period == "" {
		period = "5m"
	}
	step, ok := okxRatioPeriods[period]
	if !ok {
		okxParamError(w, "51000", "Parameter period error")
		return
	}
	bound := func(name string) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n > 0
	}
	begin, okBegin := bound("begin")
	end, okEnd := bound("end")
	if !okBegin || !okEnd {
		okxParamError(w, "51000", "Parameter begin or end error")
		return
	}
	if !known {
		known = slices.ContainsFunc(insts, func(in OKXInstrument) bool {
			return in.State == "live" && strings.HasPrefix(in.InstID, ccy+"-")
		})
	}
	if !known {
		okxParamError(w, "51000", "Parameter ccy error")
		return
	}
	rows := [][]string{}
	ts := now.Truncate(step)
	for _, r := range ratios {
		ms := ts.UnixMilli()
		ts = ts.Add(-step)
		if (begin > 0 && ms < begin) || (end > 0 && ms > end) {
			continue
		}
		rows = append(rows, []string{strconv.FormatInt(ms, 10), okxNum(r)})
	}
	okxOK(w, rows)
}

// serveLiquidations serves GET /api/v5/public/liquidation-orders from the
// history: instType SWAP or FUTURES needs uly or instFamily (code 50015
// otherwise, as a third-party probe reports); state filled serves the
// history, unfilled nothing; orders of the last day only, newest first;
// after = orders earlier than the ts, before = later than the ts; limit
// (default and maximum 100) counts orders, grouped per instId in the page.
// The pagination semantics are the fake's reading (UNVERIFIED).
func (o *OKX) serveLiquidations(w http.ResponseWriter, q url.Values, history []OKXOrder, now time.Time) {
	instType := q.Get("instType")
	fam := q.Get("instFamily")
	if fam == "" {
		fam = q.Get("uly")
	}
	switch {
	case instType != OKXSwap && instType != OKXFutures && instType != "MARGIN" && instType != "OPTION":
		okxParamError(w, "51000", "Parameter instType error")
		return
	case (instType == OKXSwap || instType == OKXFutures) && fam == "":
		okxParamError(w, "50015", "Either parameter instFamily or uly is required")
		return
	}
	limit := OKXMaxLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > OKXMaxLimit {
			okxParamError(w, "51000", "Parameter limit error")
			return
		}
		limit = n
	}
	bound := func(name string) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	after, ok1 := bound("after")
	before, ok2 := bound("before")
	if !ok1 || !ok2 {
		okxParamError(w, "51000", "Parameter after or before error")
		return
	}
	rows := []any{}
	if s := q.Get("state"); s != "" && s != "filled" {
		okxOK(w, rows)
		return
	}
	oldest := now.Add(-OKXHistoryWindow).UnixMilli()
	var sel []OKXOrder
	for _, h := range history {
		if h.InstType != instType || h.InstFamily != fam || h.TS < oldest ||
			(after > 0 && h.TS >= after) || (before > 0 && h.TS <= before) {
			continue
		}
		sel = append(sel, h)
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].TS > sel[j].TS })
	if len(sel) > limit {
		sel = sel[:limit]
	}
	byID := map[string]*okxItemJSON{}
	var items []*okxItemJSON
	for _, h := range sel {
		it := byID[h.InstID]
		if it == nil {
			zero := "0"
			it = &okxItemJSON{InstFamily: h.InstFamily, InstID: h.InstID, InstType: h.InstType, Uly: h.InstFamily, TotalLoss: &zero}
			byID[h.InstID] = it
			items = append(items, it)
		}
		it.Details = append(it.Details, okxDetailJSON{BkLoss: h.BkLoss, BkPx: h.BkPx, Ccy: h.Ccy, PosSide: h.PosSide, Side: h.Side, Sz: h.Sz,
			TS: strconv.FormatInt(h.TS, 10)})
	}
	for _, it := range items {
		rows = append(rows, it)
	}
	okxOK(w, rows)
}

// ---------------------------------------------------------------- history

// AddHistory adds orders to the liquidation history without pushing them
// (orders that happened before a client connected, or during a gap).
func (o *OKX) AddHistory(orders ...OKXOrder) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, h := range orders {
		if h.InstFamily == "" {
			h.InstFamily = okxFamilyOf(h.InstID)
		}
		o.history = append(o.history, h)
	}
}

// History returns the orders of an instType ("" = all) in the order they
// happened (were pushed or added).
func (o *OKX) History(instType string) []OKXOrder {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []OKXOrder
	for _, h := range o.history {
		if instType == "" || h.InstType == instType {
			out = append(out, h)
		}
	}
	return out
}

// okxOrdersOf returns the well-formed liquidation orders of a push frame
// (side buy/sell, positive sz and bkPx, positive ts; the strings kept as
// pushed), and the frame's instType; ok is false for frames that are not a
// liquidation-orders push.
func okxOrdersOf(frame []byte) (instType string, orders []OKXOrder, ok bool) {
	var p okxPushJSON
	if json.Unmarshal(frame, &p) != nil || p.Arg.Channel != OKXLiquidationChannel || p.Arg.InstType == "" {
		return "", nil, false
	}
	for _, it := range p.Data {
		fam := it.InstFamily
		if fam == "" {
			fam = okxFamilyOf(it.InstID)
		}
		for _, d := range it.Details {
			ts, err := strconv.ParseInt(d.TS, 10, 64)
			sz, err1 := strconv.ParseFloat(d.Sz, 64)
			px, err2 := strconv.ParseFloat(d.BkPx, 64)
			if err != nil || err1 != nil || err2 != nil || ts <= 0 || !(sz > 0) || !(px > 0) || math.IsInf(sz, 0) || math.IsInf(px, 0) ||
				(d.Side != "buy" && d.Side != "sell") || it.InstID == "" {
				continue
			}
			orders = append(orders, OKXOrder{InstType: it.InstType, InstID: it.InstID, InstFamily: fam, BkLoss: d.BkLoss, BkPx: d.BkPx,
				Ccy: d.Ccy, PosSide: d.PosSide, Side: d.Side, Sz: d.Sz, TS: ts})
		}
	}
	return p.Arg.InstType, orders, true
}

// okxOrderFrame is the push of one order (the replay's frame shape).
func okxOrderFrame(h OKXOrder) []byte {
	b, _ := json.Marshal(okxPushJSON{Arg: okxArg{Channel: OKXLiquidationChannel, InstType: h.InstType}, Data: []okxItemJSON{{
		InstFamily: h.InstFamily, InstID: h.InstID, InstType: h.InstType, Uly: h.InstFamily,
		Details: []okxDetailJSON{{BkLoss: h.BkLoss, BkPx: h.BkPx, Ccy: h.Ccy, PosSide: h.PosSide, Side: h.Side, Sz: h.Sz, TS: strconv.FormatInt(h.TS, 10)}},
	}}})
	return b
}

// ---------------------------------------------------------------- WebSocket

// okxConn is one client connection. subs and lastActive are guarded by the
// fake's mutex.
type okxConn struct {
	wsConn
	o          *OKX
	id         string
	subs       []okxArg // liquidation-orders subscriptions, in order
	lastActive time.Time
}

func (o *OKX) newConn() *okxConn { return &okxConn{o: o, id: fmt.Sprintf("%08x", rand.Uint32())} }

// registeredLocked starts the idle clock.
func (c *okxConn) registeredLocked() { c.lastActive = time.Now() }

// serve answers the client's messages.
func (c *okxConn) serve() { c.readLoop(c.handle) }

// write sends one text message; pushed data keeps the connection alive.
func (c *okxConn) write(msg []byte) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(msg)
}

// writeLocked is write with writeMu held.
func (c *okxConn) writeLocked(msg []byte) bool {
	if !c.wsConn.writeLocked(msg) {
		return false
	}
	c.o.mu.Lock()
	c.lastActive = time.Now()
	c.o.mu.Unlock()
	return true
}

type okxEvent struct {
	ID     string  `json:"id,omitempty"`
	Event  string  `json:"event"`
	Arg    *okxArg `json:"arg,omitempty"`
	Code   string  `json:"code,omitempty"`
	Msg    string  `json:"msg,omitempty"`
	ConnID string  `json:"connId"`
}

func (c *okxConn) event(e okxEvent) []byte {
	e.ConnID = c.id
	b, _ := json.Marshal(e)
	return b
}

type okxRequest struct {
	ID   string          `json:"id"`
	Op   *string         `json:"op"`
	Args json.RawMessage `json:"args"`
}

// handle answers one client message: "ping", subscribe or unsubscribe.
func (c *okxConn) handle(data []byte) {
	if string(data) == "ping" {
		if c.o.appPing() {
			c.write([]byte("pong"))
		}
		return
	}
	var req okxRequest
	if err := json.Unmarshal(data, &req); err != nil || req.Op == nil {
		c.write(c.event(okxEvent{Event: "error", Code: "60012", Msg: "Invalid request: " + string(data)}))
		return
	}
	var args []okxArg
	if (*req.Op == "subscribe" || *req.Op == "unsubscribe") && (json.Unmarshal(req.Args, &args) != nil || len(args) == 0) {
		c.write(c.event(okxEvent{ID: req.ID, Event: "error", Code: "60012", Msg: "Invalid request: " + string(data)}))
		return
	}
	switch *req.Op {
	case "subscribe":
		c.subscribe(req.ID, args)
	case "unsubscribe":
		c.unsubscribe(req.ID, args)
	default:
		c.write(c.event(okxEvent{ID: req.ID, Event: "error", Code: "60012", Msg: "Invalid request: " + string(data)}))
	}
}

func okxValidArg(a okxArg) bool {
	if a.Channel != OKXLiquidationChannel {
		return false
	}
	switch a.InstType {
	case OKXSwap, OKXFutures, "MARGIN", "OPTION":
		return true
	}
	return false
}

// subscribe acks every valid argument (an error event for the first invalid
// one, as OKX answers a request with a bad argument), then replays the
// recent orders of each new subscription, all under the write lock so that
// the ack precedes the replay and any push.
func (c *okxConn) subscribe(id string, args []okxArg) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	o := c.o
	o.mu.Lock()
	if o.rejectNext > 0 {
		o.rejectNext--
		o.mu.Unlock()
		c.writeLocked(c.event(okxEvent{ID: id, Event: "error", Code: "60018",
			Msg: "Wrong URL or channel:" + args[0].Channel + ",instType:" + args[0].InstType + " doesn't exist. Please use the correct URL, channel and parameters referring to API document."}))
		return
	}
	var msgs [][]byte
	var added []okxArg
	for _, a := range args {
		if !okxValidArg(a) {
			msgs = append(msgs, c.event(okxEvent{ID: id, Event: "error", Code: "60018",
				Msg: "Wrong URL or channel:" + a.Channel + ",instType:" + a.InstType + " doesn't exist. Please use the correct URL, channel and parameters referring to API document."}))
			break
		}
		arg := a
		msgs = append(msgs, c.event(okxEvent{ID: id, Event: "subscribe", Arg: &arg}))
		if !slices.Contains(c.subs, a) {
			c.subs = append(c.subs, a)
			added = append(added, a)
			o.subscribed++
		}
	}
	var replay [][]byte
	cut := time.Now().Add(-o.replayWin).UnixMilli()
	for _, a := range added {
		var recent []OKXOrder
		for _, h := range o.history {
			if h.InstType == a.InstType && h.TS >= cut {
				recent = append(recent, h)
			}
		}
		if len(recent) > o.replayN {
			recent = recent[len(recent)-o.replayN:]
		}
		for _, h := range recent {
			replay = append(replay, okxOrderFrame(h))
		}
		o.replayed += len(recent)
	}
	o.notifyLocked()
	o.mu.Unlock()
	for _, m := range append(msgs, replay...) {
		if !c.writeLocked(m) {
			return
		}
	}
}

func (c *okxConn) unsubscribe(id string, args []okxArg) {
	o := c.o
	var msgs [][]byte
	o.mu.Lock()
	for _, a := range args {
		arg := a
		if i := slices.Index(c.subs, a); i >= 0 {
			c.subs = slices.Delete(c.subs, i, i+1)
		}
		msgs = append(msgs, c.event(okxEvent{ID: id, Event: "unsubscribe", Arg: &arg}))
	}
	o.notifyLocked()
	o.mu.Unlock()
	for _, m := range msgs {
		c.write(m)
	}
}

// SetIdleTimeout changes how long a connection may go without pushed data
// (acks, pongs, orders) before the fake drops it (default 30 s); 0 disables.
func (o *OKX) SetIdleTimeout(d time.Duration) {
	o.mu.Lock()
	o.idleTimeout = d
	o.mu.Unlock()
	nudge(o.idleReset)
}

// SetAnswerPings with false makes the fake read "ping" without answering.
func (o *OKX) SetAnswerPings(answer bool) { o.setAnswerAppPings(answer) }

// SetRefuseConnections with true answers WebSocket upgrades with HTTP 503
// (a venue that cannot be reached); false accepts them again.
func (o *OKX) SetRefuseConnections(refuse bool) { o.setRefuse(refuse) }

// SetReplay changes the replay after a subscription: the last n orders of
// the instType from the last window (n 0 disables it).
func (o *OKX) SetReplay(n int, window time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.replayN, o.replayWin = n, window
}

// Replayed returns how many orders the fake has replayed so far.
func (o *OKX) Replayed() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.replayed
}

// RejectNextSubscribe answers the next n subscribe requests with an error
// event (code 60018) and subscribes nothing.
func (o *OKX) RejectNextSubscribe(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejectNext = n
}

// Connections returns the number of open client connections.
func (o *OKX) Connections() int { return o.connections() }

// TotalConnections returns the number of connections accepted so far.
func (o *OKX) TotalConnections() int { return o.totalConnections() }

// Pings returns how many "ping" messages clients have sent.
func (o *OKX) Pings() int { return o.pingCount() }

// Subscriptions returns the cumulative number of liquidation-orders
// subscriptions made.
func (o *OKX) Subscriptions() int { return o.subscriptionCount() }

// Subscribed returns, per instType, how many open connections hold a
// liquidation-orders subscription of it.
func (o *OKX) Subscribed() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for c := range o.liveLocked() {
		for _, a := range c.subs {
			out[a.InstType]++
		}
	}
	return out
}

// WaitSubscribed waits until the cumulative number of subscriptions (see
// Subscriptions) reaches n.
func (o *OKX) WaitSubscribed(ctx context.Context, n int) error {
	return o.waitSubscriptions(ctx, n, "OKX")
}

// WaitInstTypes waits until every instType is subscribed on an open connection.
func (o *OKX) WaitInstTypes(ctx context.Context, instTypes ...string) error {
	return o.waitFor(ctx, func() (bool, string) {
		held := map[string]bool{}
		for c := range o.liveLocked() {
			for _, a := range c.subs {
				held[a.InstType] = true
			}
		}
		for _, t := range instTypes {
			if !held[t] {
				return false, "OKX liquidation-orders " + t + " not subscribed"
			}
		}
		return true, ""
	})
}

// Disconnect abruptly closes every client connection (TCP close, no close
// frame).
func (o *OKX) Disconnect() { o.disconnectAll() }

// Liquidate records the well-formed orders of a liquidation-orders push in
// the history and pushes the frame at once to the connections subscribed to
// its instType, without waiting for one: with no subscriber the orders
// happened during a gap and only the replay or the REST history has them.
func (o *OKX) Liquidate(frame []byte) Delivered {
	instType, orders, ok := okxOrdersOf(frame)
	o.mu.Lock()
	if ok {
		o.history = append(o.history, orders...)
	}
	targets := o.targetsLocked(instType, ok)
	o.mu.Unlock()
	return o.push(frame, targets)
}

// targetsLocked returns the connections a frame goes to: those subscribed
// to its instType, or for frames without one every subscribed connection.
func (o *OKX) targetsLocked(instType string, routed bool) []*okxConn {
	var out []*okxConn
	for c := range o.liveLocked() {
		if len(c.subs) == 0 {
			continue
		}
		if !routed || slices.ContainsFunc(c.subs, func(a okxArg) bool { return a.InstType == instType }) {
			out = append(out, c)
		}
	}
	return out
}

// Play runs a script in the caller's goroutine. A liquidation-orders push
// goes to the connections subscribed to its instType, and its well-formed
// orders join the history; any other frame (events, garbage) goes to every
// subscribed connection. Before every Frame Play waits (up to the play
// timeout) until such a connection exists; a frame nobody took is recorded
// with Conns 0 (its orders still join the history). Ping sends a WebSocket
// ping frame, CloseCode a close frame, Disconnect drops every connection.
// Play returns early, with what was delivered, when the fake closes.
func (o *OKX) Play(events []Event) []Delivered { return o.runScript(events) }

// deliver waits for a subscriber and writes frame; false if the fake closed.
func (o *OKX) deliver(frame []byte) (Delivered, bool) {
	instType, orders, routed := okxOrdersOf(frame)
	keep := func() { o.history = append(o.history, orders...) }
	return o.deliverTo(frame, func() []*okxConn { return o.targetsLocked(instType, routed) }, keep)
}

// OKXSampleInstruments returns a small realistic instrument set: linear
// BTC-USDT-SWAP, ETH-USDT-SWAP, BTC-USDC-SWAP and PEPE-USDT-SWAP
// perpetuals, inverse BTC-USD-SWAP, and the BTC-USDT and BTC-USD quarterly
// futures.
func OKXSampleInstruments() []OKXInstrument {
	now := time.Now()
	fund := now.Truncate(8 * time.Hour).Add(8 * time.Hour).UnixMilli()
	next := fund + (8 * time.Hour).Milliseconds()
	q := binanceNextQuarterly(now)
	suffix := q.Format("060102")
	return []OKXInstrument{
		{InstType: OKXSwap, InstID: "BTC-USDT-SWAP", SettleCcy: "USDT", CtType: "linear", CtVal: 0.01, State: "live",
			Last: 60000.5, MarkPx: 60001, Vol24h: 1.5e7, VolCcy24h: 150000, OI: 2.5e6, OICcy: 25000, OIUsd: 1.5e9,
			FundingRate: 0.0001, FundingTime: fund, NextFundingTime: next},
		{InstType: OKXSwap, InstID: "ETH-USDT-SWAP", SettleCcy: "USDT", CtType: "linear", CtVal: 0.1, State: "live",
			Last: 3000.2, MarkPx: 3000.25, Vol24h: 2e7, VolCcy24h: 2e6, OI: 1e7, OICcy: 1e6, OIUsd: 3.00025e9,
			FundingRate: 0.00008, FundingTime: fund, NextFundingTime: next},
		{InstType: OKXSwap, InstID: "BTC-USDC-SWAP", SettleCcy: "USDC", CtType: "linear", CtVal: 0.0001, State: "live",
			Last: 60010, MarkPx: 60005, Vol24h: 3e7, VolCcy24h: 3000, OI: 5e7, OICcy: 5000, OIUsd: 3.00025e8,
			FundingRate: 0.00012, FundingTime: fund, NextFundingTime: next},
		{InstType: OKXSwap, InstID: "PEPE-USDT-SWAP", SettleCcy: "USDT", CtType: "linear", CtVal: 1e7, State: "live",
			Last: 0.0000123, MarkPx: 0.0000123, Vol24h: 5e5, VolCcy24h: 5e12, OI: 1e5, OICcy: 1e12, OIUsd: 1.23e7,
			FundingRate: 0.0002, FundingTime: fund, NextFundingTime: fund + (4 * time.Hour).Milliseconds()},
		{InstType: OKXSwap, InstID: "BTC-USD-SWAP", SettleCcy: "BTC", CtType: "inverse", CtVal: 100, State: "live",
			Last: 60002, MarkPx: 60000.5, Vol24h: 4e6, VolCcy24h: 6666.6, OI: 5e6, OICcy: 8333.3, OIUsd: 5e8,
			FundingRate: 0.0001, FundingTime: fund, NextFundingTime: next},
		{InstType: OKXFutures, InstID: "BTC-USDT-" + suffix, InstFamily: "BTC-USDT", SettleCcy: "USDT", CtType: "linear", CtVal: 0.01, State: "live",
			Alias: "quarter", ExpTime: q.UnixMilli(), Last: 61000, MarkPx: 61000.5, Vol24h: 2e5, VolCcy24h: 2000, OI: 3e5, OICcy: 3000, OIUsd: 1.83e8},
		{InstType: OKXFutures, InstID: "BTC-USD-" + suffix, InstFamily: "BTC-USD", SettleCcy: "BTC", CtType: "inverse", CtVal: 100, State: "live",
			Alias: "quarter", ExpTime: q.UnixMilli(), Last: 61050, MarkPx: 61040, Vol24h: 1e5, VolCcy24h: 163.8, OI: 2e5, OICcy: 327.7, OIUsd: 2e7},
	}
}
