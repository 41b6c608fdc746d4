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

// Bybit v5 categories the fake serves.
const (
	BybitLinear  = "linear"  // USDT and USDC contracts, /v5/public/linear
	BybitInverse = "inverse" // coin-margined contracts, /v5/public/inverse
)

// Documented Bybit limits and defaults the fake applies (bybit-exchange/docs;
// the project's reference, section 2).
const (
	// BybitArgsCharLimit is the total length of the "args" one public
	// connection may subscribe (21,000 characters).
	BybitArgsCharLimit = 21000
	// BybitIdleTimeout is when Bybit cuts a connection that saw neither a
	// ping nor pushed data (documented as 10 minutes for private
	// connections; applied to public ones here).
	BybitIdleTimeout = 10 * time.Minute
	// BybitDefaultPageSize and BybitMaxPageSize bound instruments-info pages.
	BybitDefaultPageSize = 500
	BybitMaxPageSize     = 1000
	// BybitIPLimit requests per BybitIPWindow per IP; beyond it Bybit
	// answers HTTP 403 and bans the IP for at least BybitBanDuration.
	BybitIPLimit       = 600
	BybitIPWindow      = 5 * time.Second
	BybitBanDuration   = 10 * time.Minute
	BybitTopicPrefix   = "allLiquidation."
	bybitInstrumentsEP = "/v5/market/instruments-info"
	bybitTickersEP     = "/v5/market/tickers"
	bybitAccountRatio  = "/v5/market/account-ratio"
	bybitWSPrefix      = "/v5/public/"
)

// Bybit's error messages as the fake serves them. The subscription error
// shape {"success":false,"ret_msg":"error:handler not found,topic:X",...}
// is seen in public client issue threads; the other wordings are
// UNVERIFIED placeholders in the same style.
const (
	bybitTooManyVisits = "Too many visits!"
	bybitBannedBody    = "access too frequent" // with HTTP 403 (UNVERIFIED body)
)

// BybitSymbol is the state of one fake instrument and its ticker.
type BybitSymbol struct {
	Category   string // BybitLinear or BybitInverse
	Symbol     string // e.g. BTCUSDT, 1000PEPEUSDT, BTC-26DEC25, BTCUSD, BTCUSDH26
	BaseCoin   string // e.g. BTC, 1000PEPE
	QuoteCoin  string // USDT, USDC, USD
	SettleCoin string // USDT, USDC, or the base coin for inverse
	// ContractType: LinearPerpetual, LinearFutures, InversePerpetual, InverseFutures.
	ContractType string
	// Status: Trading, PreLaunch, Delivering, Closed. instruments-info lists
	// Trading only unless asked for a status; tickers list every symbol
	// that is not Closed; subscriptions to Closed symbols are rejected.
	Status string
	// FundingInterval in minutes (instruments-info); tickers serve
	// fundingIntervalHour = FundingInterval / 60 for perpetuals. 0 = 480.
	FundingInterval int
	LaunchTime      int64 // ms; 0 = a fixed date in 2020
	DeliveryTime    int64 // ms; 0 for perpetuals
	PriceScale      int   // decimals of prices; 0 = shortest form

	// Ticker. Numbers are served as strings the way Bybit serves them; a
	// NaN is served as "". Funding fields of dated futures are served as
	// Bybit serves them for futures: fundingRate "", nextFundingTime "0",
	// fundingIntervalHour "".
	LastPrice, IndexPrice, MarkPrice float64
	// OpenInterest and OpenInterestValue are both sides (documented since
	// 2026-06); SingleOpenInterest and SingleOpenInterestValue one side.
	// Linear: *OpenInterest in base coin, *Value in USDT/USDC. Inverse:
	// *OpenInterest in USD, *Value in coin.
	OpenInterest, OpenInterestValue             float64
	SingleOpenInterest, SingleOpenInterestValue float64
	// Linear: Turnover24h in quote, Volume24h in base coin. Inverse:
	// Volume24h in USD contracts, Turnover24h in coin.
	Turnover24h, Volume24h float64
	FundingRate            float64
	NextFundingTime        int64 // ms
	FundingCap             float64
	// LegacyTicker serves the ticker as documented before the additions of
	// 2024-2026: without singleOpenInterest, singleOpenInterestValue,
	// fundingIntervalHour, fundingCap, basis, basisRateYear and the
	// pre-listing fields.
	LegacyTicker bool

	// BuyRatio and SellRatio are what GET /v5/market/account-ratio serves
	// for the symbol (the shares of users with a net long and a net short
	// position, e.g. 0.5777 and 0.4223); both 0 = no data (an empty list).
	// NaN is served as "".
	BuyRatio, SellRatio float64
}

// Bybit is a fake of Bybit's v5 public API: one HTTP server on a loopback
// port serving REST (GET /v5/market/instruments-info with cursor
// pagination, GET /v5/market/tickers and GET /v5/market/account-ratio, in
// Bybit's envelope) and the
// public WebSocket endpoints /v5/public/linear and /v5/public/inverse
// (subscribe and unsubscribe with acks, {"op":"ping"} answered with a pong,
// idle disconnect, scripted allLiquidation pushes delivered only to the
// connections subscribed to the frame's topic). All state is guarded by a
// mutex and may change while clients are connected.
//
// Paths given to FailNext, SetLatency and Requests are either a bare path
// ("/v5/market/tickers", any category) or a path with its category
// ("/v5/market/tickers?category=inverse"); the category-specific entry is
// used first. Account-ratio requests are also counted, and take faults,
// under the path with category and symbol
// ("/v5/market/account-ratio?category=linear&symbol=BTCUSDT"), which comes
// before the other two.
type Bybit struct {
	wsServer[*bybitConn]

	now func() time.Time

	symbols     []BybitSymbol
	pageSize    int
	ipLimit     int
	ipWindow    time.Duration
	ipHits      []time.Time
	banDuration time.Duration
	bannedUntil time.Time

	totals      map[string]int // connections accepted per category
	idleTimeout time.Duration
	idleReset   chan struct{}
	maxArgs     int
	rejectNext  int
	subRequests int
	maxArgsSeen int

	restFaults // FailNext, SetLatency, Requests
}

// NewBybit starts a fake Bybit on 127.0.0.1 with a free port and no
// symbols. It panics if it cannot listen, like httptest.NewServer.
func NewBybit() *Bybit {
	b := &Bybit{
		now:         time.Now,
		ipLimit:     BybitIPLimit,
		ipWindow:    BybitIPWindow,
		banDuration: BybitBanDuration,
		totals:      map[string]int{},
		idleTimeout: BybitIdleTimeout,
		idleReset:   make(chan struct{}, 1),
	}
	b.startWS(b, wsConfig{name: "Bybit fake", listing: listPerStep, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(b.serveHTTP))
	b.spawn(func() {
		watchIdle(&b.wsServer, b.idleReset, func() time.Duration { return b.idleTimeout },
			func(c *bybitConn) time.Time { return c.lastActive })
	})
	return b
}

// RESTURL returns http://127.0.0.1:port (as https://api.bybit.com); clients
// append /v5/market/....
func (b *Bybit) RESTURL() string { return b.url }

// WSURL returns the full public WebSocket URL of a category, e.g.
// ws://127.0.0.1:port/v5/public/linear (as wss://stream.bybit.com/v5/public/linear).
func (b *Bybit) WSURL(category string) string {
	return b.wsURL(bybitWSPrefix + category)
}

// LinearWSURL returns WSURL(BybitLinear).
func (b *Bybit) LinearWSURL() string { return b.WSURL(BybitLinear) }

// InverseWSURL returns WSURL(BybitInverse).
func (b *Bybit) InverseWSURL() string { return b.WSURL(BybitInverse) }

// SetSymbols replaces the instrument list (served in this order).
func (b *Bybit) SetSymbols(syms []BybitSymbol) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.symbols = append([]BybitSymbol(nil), syms...)
}

// Symbols returns a copy of the instrument list.
func (b *Bybit) Symbols() []BybitSymbol {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BybitSymbol(nil), b.symbols...)
}

// UpdateSymbol changes one instrument in place. A symbol that is not listed
// yet is appended as BybitSymbol{Category: category, Symbol: sym} before f runs.
func (b *Bybit) UpdateSymbol(category, sym string, f func(*BybitSymbol)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	updateOrAdd(&b.symbols, func(s BybitSymbol) bool { return s.Category == category && s.Symbol == sym }, BybitSymbol{Category: category, Symbol: sym}, f)
}

// SetPageSize caps the instruments-info page size below the client's limit
// (0 = no cap beyond Bybit's 1000), to exercise pagination with few symbols.
func (b *Bybit) SetPageSize(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pageSize = n
}

// FailNext makes the next n requests to path answer status with body, plus
// a Retry-After header of retryAfter seconds when retryAfter > 0. An empty
// body is replaced by what Bybit serves for the status: 403 the text
// "access too frequent", 429 the envelope with retCode 10006, others an
// envelope with a server error. Calls queue up in order.
func (b *Bybit) FailNext(path string, n, status, retryAfter int, body string) {
	ct := "application/json"
	switch {
	case body == "" && status == http.StatusForbidden:
		body, ct = bybitBannedBody, "text/plain; charset=utf-8"
	case body == "" && status == http.StatusTooManyRequests:
		body = bybitErrorBody(10006, bybitTooManyVisits, time.Now())
	case body == "":
		body = bybitErrorBody(10016, "Internal system error.", time.Now())
	}
	b.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body, contentType: ct})
}

// FailNextRetCode makes the next n requests to path answer HTTP 200 with
// Bybit's error envelope {"retCode":code,"retMsg":msg,"result":{},...}
// (10006 "Too many visits!" is Bybit's documented API rate-limit answer).
func (b *Bybit) FailNextRetCode(path string, n, code int, msg string) {
	b.queue(path, n, restFault{status: http.StatusOK, body: bybitErrorBody(code, msg, time.Now()), contentType: "application/json"})
}

// SetIPLimit changes the REST IP limit (default 600 requests per 5 s);
// beyond it every request is answered 403 for the ban duration.
func (b *Bybit) SetIPLimit(n int, window time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ipLimit, b.ipWindow = n, window
}

// SetBanDuration changes how long an IP stays banned (default 10 minutes).
func (b *Bybit) SetBanDuration(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.banDuration = d
}

// ---------------------------------------------------------------- REST

type bybitEnvelope struct {
	RetCode    int      `json:"retCode"`
	RetMsg     string   `json:"retMsg"`
	Result     any      `json:"result"`
	RetExtInfo struct{} `json:"retExtInfo"`
	Time       int64    `json:"time"`
}

func bybitErrorBody(code int, msg string, now time.Time) string {
	b, _ := json.Marshal(bybitEnvelope{RetCode: code, RetMsg: msg, Result: struct{}{}, Time: now.UnixMilli()})
	return string(b)
}

func (b *Bybit) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if cat, ok := strings.CutPrefix(r.URL.Path, bybitWSPrefix); ok {
		if cat != BybitLinear && cat != BybitInverse {
			http.NotFound(w, r)
			return
		}
		b.serveWS(w, r, nil, func() *bybitConn { return &bybitConn{b: b, category: cat, id: bybitConnID()} })
		return
	}
	b.serveREST(w, r)
}

func (b *Bybit) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	q := r.URL.Query()
	cat := q.Get("category")
	keyed := path + "?category=" + cat
	keys := []string{keyed, path}
	if path == bybitAccountRatio {
		bySymbol := keyed + "&symbol=" + q.Get("symbol")
		keys = append([]string{bySymbol}, keys...)
	}

	b.count(keys...)
	b.mu.Lock()
	now := b.now()
	banned := now.Before(b.bannedUntil)
	if !banned && b.ipLimit > 0 {
		cut := 0
		for cut < len(b.ipHits) && now.Sub(b.ipHits[cut]) >= b.ipWindow {
			cut++
		}
		b.ipHits = append(b.ipHits[cut:], now)
		if len(b.ipHits) > b.ipLimit {
			b.bannedUntil = now.Add(b.banDuration)
			banned = true
		}
	}
	b.mu.Unlock()

	// The symbol key of an account-ratio request takes faults but has no
	// latency of its own.
	if !pause(r, b.done, b.delayOf(keyed, path)) {
		return
	}

	fault, failed := b.take(keys...)
	b.mu.Lock()
	syms := append([]BybitSymbol(nil), b.symbols...)
	pageSize := b.pageSize
	b.mu.Unlock()

	switch {
	case banned:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(bybitBannedBody))
		return
	case failed:
		fault.write(w)
		return
	case r.Method != http.MethodGet:
		writeBybitJSON(w, http.StatusMethodNotAllowed, bybitEnvelope{RetCode: 10004, RetMsg: "method not allowed", Result: struct{}{}, Time: now.UnixMilli()})
		return
	case path != bybitInstrumentsEP && path != bybitTickersEP && path != bybitAccountRatio:
		writeBybitJSON(w, http.StatusNotFound, bybitEnvelope{RetCode: 10001, RetMsg: "path not found", Result: struct{}{}, Time: now.UnixMilli()})
		return
	case cat != BybitLinear && cat != BybitInverse:
		bybitParamError(w, now, "params error: Category is invalid")
		return
	}
	if path == bybitInstrumentsEP {
		b.serveInstruments(w, q, cat, syms, pageSize, now)
		return
	}
	if path == bybitAccountRatio {
		serveBybitAccountRatio(w, q, cat, syms, now)
		return
	}
	b.serveTickers(w, q, cat, syms, now)
}

func bybitParamError(w http.ResponseWriter, now time.Time, msg string) {
	writeBybitJSON(w, http.StatusOK, bybitEnvelope{RetCode: 10001, RetMsg: msg, Result: struct{}{}, Time: now.UnixMilli()})
}

func writeBybitJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(bybitErrorBody(10016, "Internal system error.", time.Now()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Bapi-Limit", "600")
	w.Header().Set("X-Bapi-Limit-Status", "599")
	w.Header().Set("X-Bapi-Limit-Reset-Timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// bybitCursor is the nextPageCursor of a page, in the documented form
// ("first%3DBIOUSDT%26last%3DBIOUSDT": a percent-encoded query string).
func bybitCursor(first, last string) string {
	return url.QueryEscape("first=" + first + "&last=" + last)
}

// bybitCursorLast returns the last symbol a cursor names. The cursor must
// come back exactly as it was issued (still percent-encoded after the
// query is decoded), as Bybit's SDKs send it; whether Bybit also accepts
// the token unescaped is UNVERIFIED, so the fake does not.
func bybitCursorLast(cursor string) (string, bool) {
	raw, err := url.QueryUnescape(cursor)
	if err != nil || url.QueryEscape(raw) != cursor {
		return "", false
	}
	v, err := url.ParseQuery(raw)
	if err != nil || v.Get("last") == "" || v.Get("first") == "" {
		return "", false
	}
	return v.Get("last"), true
}

type bybitInstrumentsResult struct {
	Category       string `json:"category"`
	List           []any  `json:"list"`
	NextPageCursor string `json:"nextPageCursor"`
}

func (b *Bybit) serveInstruments(w http.ResponseWriter, q url.Values, cat string, syms []BybitSymbol, pageSize int, now time.Time) {
	status := q.Get("status")
	if status == "" {
		status = "Trading" // linear and inverse list Trading symbols by default (documented)
	}
	var list []BybitSymbol
	for _, s := range syms {
		if s.Category != cat || s.Status != status {
			continue
		}
		if want := q.Get("symbol"); want != "" && s.Symbol != want {
			continue
		}
		if want := q.Get("baseCoin"); want != "" && s.BaseCoin != want {
			continue
		}
		list = append(list, s)
	}
	limit := BybitDefaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > BybitMaxPageSize {
			bybitParamError(w, now, "params error: limit must be in [1, 1000]")
			return
		}
		limit = n
	}
	if pageSize > 0 {
		limit = min(limit, pageSize)
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		last, ok := bybitCursorLast(c)
		i := slices.IndexFunc(list, func(s BybitSymbol) bool { return s.Symbol == last })
		if !ok || i < 0 {
			bybitParamError(w, now, "params error: cursor is invalid")
			return
		}
		start = i + 1
	}
	end := min(start+limit, len(list))
	res := bybitInstrumentsResult{Category: cat, List: make([]any, 0, end-start)}
	for _, s := range list[start:end] {
		res.List = append(res.List, bybitInstrument(s))
	}
	if end < len(list) && end > start {
		res.NextPageCursor = bybitCursor(list[start].Symbol, list[end-1].Symbol)
	}
	writeBybitJSON(w, http.StatusOK, bybitEnvelope{RetCode: 0, RetMsg: "OK", Result: res, Time: now.UnixMilli()})
}

type bybitLeverageFilter struct {
	MinLeverage  string `json:"minLeverage"`
	MaxLeverage  string `json:"maxLeverage"`
	LeverageStep string `json:"leverageStep"`
}

type bybitPriceFilter struct {
	MinPrice string `json:"minPrice"`
	MaxPrice string `json:"maxPrice"`
	TickSize string `json:"tickSize"`
}

type bybitLotSizeFilter struct {
	MaxOrderQty         string `json:"maxOrderQty"`
	MinOrderQty         string `json:"minOrderQty"`
	QtyStep             string `json:"qtyStep"`
	PostOnlyMaxOrderQty string `json:"postOnlyMaxOrderQty"`
	MaxMktOrderQty      string `json:"maxMktOrderQty"`
	MinNotionalValue    string `json:"minNotionalValue"`
}

type bybitRiskParameters struct {
	PriceLimitRatioX string `json:"priceLimitRatioX"`
	PriceLimitRatioY string `json:"priceLimitRatioY"`
}

// bybitInstrumentJSON is a linear/inverse instruments-info row in the
// documented field order.
type bybitInstrumentJSON struct {
	Symbol             string              `json:"symbol"`
	ContractType       string              `json:"contractType"`
	Status             string              `json:"status"`
	BaseCoin           string              `json:"baseCoin"`
	QuoteCoin          string              `json:"quoteCoin"`
	LaunchTime         string              `json:"launchTime"`
	DeliveryTime       string              `json:"deliveryTime"`
	DeliveryFeeRate    string              `json:"deliveryFeeRate"`
	PriceScale         string              `json:"priceScale"`
	LeverageFilter     bybitLeverageFilter `json:"leverageFilter"`
	PriceFilter        bybitPriceFilter    `json:"priceFilter"`
	LotSizeFilter      bybitLotSizeFilter  `json:"lotSizeFilter"`
	UnifiedMarginTrade bool                `json:"unifiedMarginTrade"`
	FundingInterval    int                 `json:"fundingInterval"`
	SettleCoin         string              `json:"settleCoin"`
	CopyTrading        string              `json:"copyTrading"`
	UpperFundingRate   string              `json:"upperFundingRate"`
	LowerFundingRate   string              `json:"lowerFundingRate"`
	IsPreListing       bool                `json:"isPreListing"`
	PreListingInfo     *struct{}           `json:"preListingInfo"`
	RiskParameters     bybitRiskParameters `json:"riskParameters"`
	SymbolType         string              `json:"symbolType"`
}

const bybitLaunchTime = 1585526400000 // 2020-03-30, as the documented BTCUSDT sample

func bybitInstrument(s BybitSymbol) bybitInstrumentJSON {
	launch := s.LaunchTime
	if launch == 0 {
		launch = bybitLaunchTime
	}
	fi := s.FundingInterval
	if fi == 0 {
		fi = 480
	}
	feeRate := ""
	if bybitIsFuture(s) {
		feeRate = "0.0005"
	}
	tick := "0.10"
	if s.PriceScale > 0 {
		tick = strconv.FormatFloat(math.Pow10(-s.PriceScale), 'f', s.PriceScale, 64)
	}
	return bybitInstrumentJSON{
		Symbol: s.Symbol, ContractType: s.ContractType, Status: s.Status,
		BaseCoin: s.BaseCoin, QuoteCoin: s.QuoteCoin,
		LaunchTime: strconv.FormatInt(launch, 10), DeliveryTime: strconv.FormatInt(s.DeliveryTime, 10),
		DeliveryFeeRate: feeRate, PriceScale: strconv.Itoa(s.PriceScale),
		LeverageFilter: bybitLeverageFilter{MinLeverage: "1", MaxLeverage: "100.00", LeverageStep: "0.01"},
		PriceFilter:    bybitPriceFilter{MinPrice: tick, MaxPrice: "1999999.80", TickSize: tick},
		LotSizeFilter: bybitLotSizeFilter{MaxOrderQty: "1190.000", MinOrderQty: "0.001", QtyStep: "0.001",
			PostOnlyMaxOrderQty: "1190.000", MaxMktOrderQty: "500.000", MinNotionalValue: "5"},
		UnifiedMarginTrade: true, FundingInterval: fi, SettleCoin: s.SettleCoin, CopyTrading: "both",
		UpperFundingRate: "0.00375", LowerFundingRate: "-0.00375",
		RiskParameters: bybitRiskParameters{PriceLimitRatioX: "0.01", PriceLimitRatioY: "0.02"},
	}
}

func bybitIsFuture(s BybitSymbol) bool { return strings.HasSuffix(s.ContractType, "Futures") }

// bybitTickerJSON is a linear/inverse ticker in the order of the documented
// field list; nil pointers are the fields a LegacyTicker leaves out.
type bybitTickerJSON struct {
	Symbol                  string  `json:"symbol"`
	LastPrice               string  `json:"lastPrice"`
	IndexPrice              string  `json:"indexPrice"`
	MarkPrice               string  `json:"markPrice"`
	PrevPrice24h            string  `json:"prevPrice24h"`
	Price24hPcnt            string  `json:"price24hPcnt"`
	HighPrice24h            string  `json:"highPrice24h"`
	LowPrice24h             string  `json:"lowPrice24h"`
	PrevPrice1h             string  `json:"prevPrice1h"`
	OpenInterest            string  `json:"openInterest"`
	OpenInterestValue       string  `json:"openInterestValue"`
	SingleOpenInterest      *string `json:"singleOpenInterest,omitempty"`
	SingleOpenInterestValue *string `json:"singleOpenInterestValue,omitempty"`
	Turnover24h             string  `json:"turnover24h"`
	Volume24h               string  `json:"volume24h"`
	FundingRate             string  `json:"fundingRate"`
	NextFundingTime         string  `json:"nextFundingTime"`
	PredictedDeliveryPrice  string  `json:"predictedDeliveryPrice"`
	BasisRate               string  `json:"basisRate"`
	Basis                   *string `json:"basis,omitempty"`
	DeliveryFeeRate         string  `json:"deliveryFeeRate"`
	DeliveryTime            string  `json:"deliveryTime"`
	Ask1Size                string  `json:"ask1Size"`
	Bid1Price               string  `json:"bid1Price"`
	Ask1Price               string  `json:"ask1Price"`
	Bid1Size                string  `json:"bid1Size"`
	PreOpenPrice            *string `json:"preOpenPrice,omitempty"`
	PreQty                  *string `json:"preQty,omitempty"`
	CurPreListingPhase      *string `json:"curPreListingPhase,omitempty"`
	FundingIntervalHour     *string `json:"fundingIntervalHour,omitempty"`
	FundingCap              *string `json:"fundingCap,omitempty"`
	BasisRateYear           *string `json:"basisRateYear,omitempty"`
}

type bybitTickersResult struct {
	Category string            `json:"category"`
	List     []bybitTickerJSON `json:"list"`
}

func (b *Bybit) serveTickers(w http.ResponseWriter, q url.Values, cat string, syms []BybitSymbol, now time.Time) {
	res := bybitTickersResult{Category: cat, List: []bybitTickerJSON{}}
	want := q.Get("symbol")
	for _, s := range syms {
		if s.Category != cat || s.Status == "Closed" || (want != "" && s.Symbol != want) {
			continue
		}
		res.List = append(res.List, bybitTicker(s))
	}
	if want != "" && len(res.List) == 0 {
		bybitParamError(w, now, "Not supported symbols")
		return
	}
	writeBybitJSON(w, http.StatusOK, bybitEnvelope{RetCode: 0, RetMsg: "OK", Result: res, Time: now.UnixMilli()})
}

// BybitAccountRatioMaxLimit is the largest limit of account-ratio
// (documented: [1, 500], default 50).
const BybitAccountRatioMaxLimit = 500

// bybitRatioPeriods are account-ratio's documented data recording periods.
var bybitRatioPeriods = map[string]time.Duration{
	"5min": 5 * time.Minute, "15min": 15 * time.Minute, "30min": 30 * time.Minute,
	"1h": time.Hour, "4h": 4 * time.Hour, "1d": 24 * time.Hour,
}

type bybitAccountRatioJSON struct {
	Symbol    string `json:"symbol"`
	BuyRatio  string `json:"buyRatio"`
	SellRatio string `json:"sellRatio"`
	Timestamp string `json:"timestamp"`
}

type bybitAccountRatioResult struct {
	List []bybitAccountRatioJSON `json:"list"`
}

// serveBybitAccountRatio answers GET /v5/market/account-ratio as documented
// (bybit-exchange/docs, docs/v5/market/long-short-ratio.mdx):
// {"retCode":0,"retMsg":"OK","result":{"list":[{"symbol":"BTCUSDT",
// "buyRatio":"0.5777","sellRatio":"0.4223","timestamp":"1695772800000"}]},
// "retExtInfo":{},"time":1695785131028}. category, symbol and period are
// required; category linear covers USDT perpetuals only (documented), so a
// USDC perpetual, a dated future, a closed or an unlisted symbol gets the
// invalid-symbol reply (retCode 10001; the wording is UNVERIFIED). The fake
// keeps no history: it serves limit rows (default 50) with the symbol's
// current BuyRatio/SellRatio, newest first, at the period boundaries going
// back from now.
func serveBybitAccountRatio(w http.ResponseWriter, q url.Values, cat string, syms []BybitSymbol, now time.Time) {
	sym, period := q.Get("symbol"), q.Get("period")
	if sym == "" {
		bybitParamError(w, now, "params error: symbol is required")
		return
	}
	step, ok := bybitRatioPeriods[period]
	if !ok {
		bybitParamError(w, now, "params error: period is invalid")
		return
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > BybitAccountRatioMaxLimit {
			bybitParamError(w, now, "params error: limit must be in [1, 500]")
			return
		}
		limit = n
	}
	i := slices.IndexFunc(syms, func(s BybitSymbol) bool {
		if s.Category != cat || s.Symbol != sym || s.Status == "Closed" {
			return false
		}
		return cat == BybitInverse || (s.ContractType == "LinearPerpetual" && s.QuoteCoin == "USDT")
	})
	if i < 0 {
		bybitParamError(w, now, "params error: Symbol Is Invalid")
		return
	}
	s := syms[i]
	res := bybitAccountRatioResult{List: []bybitAccountRatioJSON{}}
	if s.BuyRatio != 0 || s.SellRatio != 0 {
		ts := now.Truncate(step)
		for range limit {
			res.List = append(res.List, bybitAccountRatioJSON{Symbol: s.Symbol, BuyRatio: bybitNum(s.BuyRatio),
				SellRatio: bybitNum(s.SellRatio), Timestamp: strconv.FormatInt(ts.UnixMilli(), 10)})
			ts = ts.Add(-step)
		}
	}
	writeBybitJSON(w, http.StatusOK, bybitEnvelope{RetCode: 0, RetMsg: "OK", Result: res, Time: now.UnixMilli()})
}

// bybitNum formats v as Bybit does: a decimal string, "" for NaN.
func bybitNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// bybitPrice formats a price with the symbol's price scale.
func bybitPrice(s BybitSymbol, v float64) string {
	if s.PriceScale <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return bybitNum(v)
	}
	return strconv.FormatFloat(v, 'f', s.PriceScale, 64)
}

func bybitStr(s string) *string { return &s }

func bybitTicker(s BybitSymbol) bybitTickerJSON {
	last := s.LastPrice
	if last == 0 {
		last = s.MarkPrice
	}
	index := s.IndexPrice
	if index == 0 {
		index = s.MarkPrice
	}
	lastS := bybitPrice(s, last)
	t := bybitTickerJSON{
		Symbol: s.Symbol, LastPrice: lastS, IndexPrice: bybitPrice(s, index), MarkPrice: bybitPrice(s, s.MarkPrice),
		PrevPrice24h: lastS, Price24hPcnt: "0", HighPrice24h: lastS, LowPrice24h: lastS, PrevPrice1h: lastS,
		OpenInterest: bybitNum(s.OpenInterest), OpenInterestValue: bybitNum(s.OpenInterestValue),
		Turnover24h: bybitNum(s.Turnover24h), Volume24h: bybitNum(s.Volume24h),
		FundingRate: bybitNum(s.FundingRate), NextFundingTime: strconv.FormatInt(s.NextFundingTime, 10),
		DeliveryTime: strconv.FormatInt(s.DeliveryTime, 10),
		Ask1Size:     "1", Bid1Price: lastS, Ask1Price: lastS, Bid1Size: "1",
	}
	future := bybitIsFuture(s)
	if future {
		t.FundingRate, t.NextFundingTime = "", "0"
		t.DeliveryFeeRate, t.BasisRate = "0.0005", "0"
	}
	if s.LegacyTicker {
		return t
	}
	fi := s.FundingInterval
	if fi == 0 {
		fi = 480
	}
	hours := bybitNum(float64(fi) / 60)
	if future {
		hours = ""
	}
	t.SingleOpenInterest = bybitStr(bybitNum(s.SingleOpenInterest))
	t.SingleOpenInterestValue = bybitStr(bybitNum(s.SingleOpenInterestValue))
	t.Basis, t.BasisRateYear = bybitStr(""), bybitStr("")
	t.PreOpenPrice, t.PreQty, t.CurPreListingPhase = bybitStr(""), bybitStr(""), bybitStr("")
	t.FundingIntervalHour = bybitStr(hours)
	t.FundingCap = bybitStr(bybitNum(s.FundingCap))
	return t
}

// ---------------------------------------------------------------- WebSocket

// bybitConn is one client connection of one category. topics, chars and
// lastActive are guarded by the fake's mutex.
type bybitConn struct {
	wsConn
	b        *Bybit
	category string
	id       string

	topics     []string // in subscription order
	chars      int      // total length of topics
	lastActive time.Time
}

// bybitRequest is a client request.
type bybitRequest struct {
	ReqID *string         `json:"req_id"`
	Op    *string         `json:"op"`
	Args  json.RawMessage `json:"args"`
}

// bybitReply is the linear/inverse reply to a request (documented shape):
// {"success":true,"ret_msg":"","conn_id":"...","req_id":"","op":"subscribe"}.
type bybitReply struct {
	Success bool   `json:"success"`
	RetMsg  string `json:"ret_msg"`
	ConnID  string `json:"conn_id"`
	ReqID   string `json:"req_id"`
	Op      string `json:"op"`
}

func bybitConnID() string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rand.Uint32(), rand.Uint32()&0xffff, rand.Uint32()&0xffff, rand.Uint32()&0xffff, rand.Uint64()&0xffffffffffff)
}

// registeredLocked counts the connection in its category and starts its
// idle clock.
func (c *bybitConn) registeredLocked() {
	c.lastActive = c.b.now()
	c.b.totals[c.category]++
}

// categoryConnsLocked returns the open connections of a category ("" =
// all).
func (b *Bybit) categoryConnsLocked(category string) []*bybitConn {
	out := make([]*bybitConn, 0, len(b.conns))
	for c := range b.conns {
		if category == "" || c.category == category {
			out = append(out, c)
		}
	}
	return out
}

// serve answers the client's messages.
func (c *bybitConn) serve() { c.readLoop(c.handle) }

func (c *bybitConn) reply(success bool, retMsg, reqID, op string) {
	b, _ := json.Marshal(bybitReply{Success: success, RetMsg: retMsg, ConnID: c.id, ReqID: reqID, Op: op})
	c.write(b)
}

// handle answers one client message: ping, subscribe or unsubscribe.
func (c *bybitConn) handle(data []byte) {
	var req bybitRequest
	if err := json.Unmarshal(data, &req); err != nil || req.Op == nil {
		c.reply(false, "error:request not supported, the request must be a json object with op", "", "")
		return
	}
	reqID := ""
	if req.ReqID != nil {
		reqID = *req.ReqID
	}
	switch op := *req.Op; op {
	case "ping":
		c.b.mu.Lock()
		c.lastActive = c.b.now()
		c.b.mu.Unlock()
		if c.b.appPing() {
			c.reply(true, "pong", reqID, "ping")
		}
	case "subscribe", "unsubscribe":
		var args []string
		if err := json.Unmarshal(req.Args, &args); err != nil || len(args) == 0 {
			c.reply(false, "error:args must be a non-empty array of topic strings", reqID, op)
			return
		}
		if op == "subscribe" {
			c.subscribe(args, reqID)
		} else {
			c.unsubscribe(args, reqID)
		}
	default:
		c.reply(false, "error:unsupported op "+op, reqID, op)
	}
}

// bybitKnownTopic reports whether a topic exists on a category: the
// liquidation topic of a listed, not closed symbol, or another documented
// public topic family (accepted and silent).
func (b *Bybit) knownTopicLocked(category, topic string) bool {
	sym, ok := strings.CutPrefix(topic, BybitTopicPrefix)
	if !ok {
		for _, family := range []string{"tickers.", "publicTrade.", "orderbook.", "kline.", "liquidation.", "insurance.", "adlAlert."} {
			if strings.HasPrefix(topic, family) && len(topic) > len(family) {
				return true
			}
		}
		return false
	}
	for _, s := range b.symbols {
		if s.Category == category && s.Symbol == sym && s.Status != "Closed" {
			return true
		}
	}
	return false
}

func bybitIsLiquidationTopic(t string) bool {
	return strings.HasPrefix(t, BybitTopicPrefix) && len(t) > len(BybitTopicPrefix)
}

func bybitHasLiquidationTopic(topics []string) bool {
	return slices.ContainsFunc(topics, bybitIsLiquidationTopic)
}

// subscribe adds the valid topics and replies while holding the write lock,
// so that the ack precedes any push on them. A request with an unknown
// topic, a topic already subscribed, or topics beyond the connection's
// args limit is answered success:false naming them; its valid topics are
// still subscribed (UNVERIFIED: Bybit's handling of mixed requests).
func (c *bybitConn) subscribe(args []string, reqID string) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	b := c.b
	b.mu.Lock()
	b.subRequests++
	b.maxArgsSeen = max(b.maxArgsSeen, len(args))
	var errs []string
	switch {
	case b.rejectNext > 0:
		b.rejectNext--
		errs = append(errs, "error:handler not found,topic:"+args[0])
	case b.maxArgs > 0 && len(args) > b.maxArgs:
		errs = append(errs, fmt.Sprintf("error:args count %d exceeds the limit of %d", len(args), b.maxArgs))
	default:
		before := bybitHasLiquidationTopic(c.topics)
		for _, t := range args {
			switch {
			case !b.knownTopicLocked(c.category, t):
				errs = append(errs, "error:handler not found,topic:"+t)
			case slices.Contains(c.topics, t):
				errs = append(errs, "error:already subscribed,topic:"+t)
			case c.chars+len(t) > BybitArgsCharLimit:
				errs = append(errs, fmt.Sprintf("error:args length exceeds %d characters,topic:%s", BybitArgsCharLimit, t))
			default:
				c.topics = append(c.topics, t)
				c.chars += len(t)
			}
		}
		if !before && bybitHasLiquidationTopic(c.topics) {
			b.subscribed++
		}
	}
	b.notifyLocked()
	b.mu.Unlock()
	msg, _ := json.Marshal(bybitReply{Success: len(errs) == 0, RetMsg: strings.Join(errs, ";"), ConnID: c.id, ReqID: reqID, Op: "subscribe"})
	c.writeLocked(msg)
}

// unsubscribe removes topics; a topic the connection does not hold is
// answered success:false (UNVERIFIED wording).
func (c *bybitConn) unsubscribe(args []string, reqID string) {
	b := c.b
	b.mu.Lock()
	var errs []string
	for _, t := range args {
		i := slices.Index(c.topics, t)
		if i < 0 {
			errs = append(errs, "error:topic not subscribed,topic:"+t)
			continue
		}
		c.topics = slices.Delete(c.topics, i, i+1)
		c.chars -= len(t)
	}
	b.notifyLocked()
	b.mu.Unlock()
	c.reply(len(errs) == 0, strings.Join(errs, ";"), reqID, "unsubscribe")
}

// SetIdleTimeout changes how long a connection may go without a client
// ping and without pushed data before the fake drops it (default 10
// minutes); 0 disables idle disconnects.
func (b *Bybit) SetIdleTimeout(d time.Duration) {
	b.mu.Lock()
	b.idleTimeout = d
	b.mu.Unlock()
	nudge(b.idleReset)
}

// SetAnswerPings with false makes the fake read pings without answering
// them (a peer that stopped responding); true resumes pongs.
func (b *Bybit) SetAnswerPings(answer bool) { b.setAnswerAppPings(answer) }

// SetMaxArgs rejects subscribe requests with more than n topics (0, the
// default, = no limit, as Bybit documents for futures).
func (b *Bybit) SetMaxArgs(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.maxArgs = n
}

// RejectNextSubscribe answers the next n subscribe requests (any category)
// with success:false and subscribes nothing.
func (b *Bybit) RejectNextSubscribe(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rejectNext = n
}

// Connections returns the number of open client connections of a category
// ("" = all).
func (b *Bybit) Connections(category string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.categoryConnsLocked(category))
}

// TotalConnections returns the number of connections of a category ("" =
// all) accepted so far.
func (b *Bybit) TotalConnections(category string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if category == "" {
		n := 0
		for _, v := range b.totals {
			n += v
		}
		return n
	}
	return b.totals[category]
}

// Pings returns how many {"op":"ping"} requests clients have sent.
func (b *Bybit) Pings() int { return b.pingCount() }

// SubscribeRequests returns how many subscribe requests clients have sent.
func (b *Bybit) SubscribeRequests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subRequests
}

// MaxArgsSeen returns the largest number of topics in one subscribe request.
func (b *Bybit) MaxArgsSeen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxArgsSeen
}

// Subscriptions returns the cumulative number of subscribe events: a
// connection counts once each time it goes from no liquidation topic to at
// least one.
func (b *Bybit) Subscriptions() int { return b.subscriptionCount() }

// Topics returns, for a category ("" = all), every topic held by an open
// connection with the number of connections holding it.
func (b *Bybit) Topics(category string) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for _, c := range b.categoryConnsLocked(category) {
		if c.isDead() {
			continue
		}
		for _, t := range c.topics {
			out[t]++
		}
	}
	return out
}

// ConnTopics returns the topics of every open connection of a category ("" =
// all), each list sorted, the lists sorted by their first topic.
func (b *Bybit) ConnTopics(category string) [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]string
	for _, c := range b.categoryConnsLocked(category) {
		if c.isDead() {
			continue
		}
		out = append(out, slices.Sorted(slices.Values(c.topics)))
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) == 0 || len(out[j]) == 0 {
			return len(out[i]) < len(out[j])
		}
		return out[i][0] < out[j][0]
	})
	return out
}

// WaitSubscribed waits until the cumulative number of subscribe events
// (see Subscriptions) reaches n.
func (b *Bybit) WaitSubscribed(ctx context.Context, n int) error {
	return b.waitSubscriptions(ctx, n, "Bybit")
}

// WaitTopics waits until every topic is held by an open connection.
func (b *Bybit) WaitTopics(ctx context.Context, topics ...string) error {
	return b.waitFor(ctx, func() (bool, string) {
		held := map[string]bool{}
		for c := range b.liveLocked() {
			for _, t := range c.topics {
				held[t] = true
			}
		}
		for _, t := range topics {
			if !held[t] {
				return false, "Bybit topic " + t + " not subscribed"
			}
		}
		return true, ""
	})
}

// WaitNoTopic waits until no open connection holds topic.
func (b *Bybit) WaitNoTopic(ctx context.Context, topic string) error {
	return b.waitFor(ctx, func() (bool, string) {
		for c := range b.liveLocked() {
			if slices.Contains(c.topics, topic) {
				return false, "Bybit topic " + topic + " still subscribed"
			}
		}
		return true, ""
	})
}

// Disconnect abruptly closes every client connection of a category ("" =
// all): a TCP close without a close frame.
func (b *Bybit) Disconnect(category string) {
	b.mu.Lock()
	conns := b.categoryConnsLocked(category)
	b.mu.Unlock()
	for _, c := range conns {
		c.kill()
	}
}

// Play runs a script in the caller's goroutine. A Frame whose "topic" names
// a topic goes to the connections subscribed to that topic; a frame without
// a readable topic (garbage) goes to every connection holding at least one
// liquidation topic. Before every Frame Play waits (up to the play timeout)
// until such a connection exists, then writes the frame to all of them. A
// frame nobody took within the timeout is recorded with Conns 0. Ping sends
// a WebSocket ping frame, CloseCode a close frame, Disconnect drops every
// connection of both categories. Play returns early, with what was
// delivered, when the fake closes.
func (b *Bybit) Play(events []Event) []Delivered { return b.runScript(events) }

// bybitFrameTopic returns the "topic" of a frame (keys matched exactly).
func bybitFrameTopic(frame []byte) (string, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(frame, &fields) != nil {
		return "", false
	}
	var topic string
	if json.Unmarshal(fields["topic"], &topic) != nil || topic == "" {
		return "", false
	}
	return topic, true
}

// deliver waits for a subscriber and writes frame; false if the fake closed.
func (b *Bybit) deliver(frame []byte) (Delivered, bool) {
	topic, routed := bybitFrameTopic(frame)
	return b.deliverTo(frame, func() []*bybitConn {
		var out []*bybitConn
		for c := range b.liveLocked() {
			if (routed && slices.Contains(c.topics, topic)) || (!routed && bybitHasLiquidationTopic(c.topics)) {
				out = append(out, c)
			}
		}
		if len(out) > 0 {
			now := b.now()
			for _, c := range out {
				c.lastActive = now // pushed data keeps a connection alive (documented)
			}
		}
		return out
	}, nil)
}

// BybitLiquidation is one event of an allLiquidation push.
type BybitLiquidation struct {
	Symbol string // s; "" = the frame's symbol
	// Side is S, the side of the POSITION (documented): "Buy" = a long was
	// liquidated, "Sell" = a short. Served as given.
	Side  string
	Size  float64 // v, executed size: linear base coin, inverse USD contracts
	Price float64 // p, bankruptcy price
	Time  int64   // T, ms; 0 = the frame's ts
}

type bybitLiquidationEvent struct {
	Time   int64  `json:"T"`
	Symbol string `json:"s"`
	Side   string `json:"S"`
	Size   string `json:"v"`
	Price  string `json:"p"`
}

type bybitLiquidationFrame struct {
	Topic string                  `json:"topic"`
	Type  string                  `json:"type"`
	TS    int64                   `json:"ts"`
	Data  []bybitLiquidationEvent `json:"data"`
}

// BybitLiquidationFrame builds the allLiquidation push of symbol with the
// given events, as documented:
// {"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,
// "data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}.
// ts 0 = now.
func BybitLiquidationFrame(symbol string, ts int64, events ...BybitLiquidation) []byte {
	if ts == 0 {
		ts = time.Now().UnixMilli()
	}
	f := bybitLiquidationFrame{Topic: BybitTopicPrefix + symbol, Type: "snapshot", TS: ts, Data: make([]bybitLiquidationEvent, 0, len(events))}
	for _, e := range events {
		sym, t := e.Symbol, e.Time
		if sym == "" {
			sym = symbol
		}
		if t == 0 {
			t = ts
		}
		f.Data = append(f.Data, bybitLiquidationEvent{Time: t, Symbol: sym, Side: e.Side, Size: bybitNum(e.Size), Price: bybitNum(e.Price)})
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // strings and integers always marshal
	}
	return b
}

// BybitSampleSymbols returns a small realistic instrument set: linear
// BTCUSDT, ETHUSDT, 1000PEPEUSDT (4 h funding) and BTCPERP (USDC)
// perpetuals plus the BTC USDT quarterly (e.g. BTC-26DEC25); inverse
// BTCUSD and ETHUSD perpetuals plus the BTCUSD quarterly (e.g. BTCUSDZ25).
func BybitSampleSymbols() []BybitSymbol {
	now := time.Now()
	next := now.Truncate(8 * time.Hour).Add(8 * time.Hour).UnixMilli()
	q := binanceNextQuarterly(now) // same schedule: last Friday of the quarter, 08:00 UTC
	linFut := "BTC-" + strings.ToUpper(q.Format("02Jan06"))
	invFut := "BTCUSD" + string("FGHJKMNQUVXZ"[q.Month()-1]) + q.Format("06")
	return []BybitSymbol{
		{Category: BybitLinear, Symbol: "BTCUSDT", BaseCoin: "BTC", QuoteCoin: "USDT", SettleCoin: "USDT", ContractType: "LinearPerpetual", Status: "Trading", PriceScale: 2,
			MarkPrice: 60000.1, IndexPrice: 60001.5, OpenInterest: 100000.5, OpenInterestValue: 6000040000.05, SingleOpenInterest: 50000.25, SingleOpenInterestValue: 3000020000.03,
			Turnover24h: 9000030000, Volume24h: 150000.5, FundingRate: 0.0001, NextFundingTime: next, FundingCap: 0.005},
		{Category: BybitLinear, Symbol: "ETHUSDT", BaseCoin: "ETH", QuoteCoin: "USDT", SettleCoin: "USDT", ContractType: "LinearPerpetual", Status: "Trading", PriceScale: 2,
			MarkPrice: 3000.25, IndexPrice: 3000.5, OpenInterest: 2000000, OpenInterestValue: 6000500000, SingleOpenInterest: 1000000, SingleOpenInterestValue: 3000250000,
			Turnover24h: 9000750000, Volume24h: 3000000, FundingRate: 0.0001, NextFundingTime: next, FundingCap: 0.005},
		{Category: BybitLinear, Symbol: "1000PEPEUSDT", BaseCoin: "1000PEPE", QuoteCoin: "USDT", SettleCoin: "USDT", ContractType: "LinearPerpetual", Status: "Trading", PriceScale: 7,
			FundingInterval: 240, MarkPrice: 0.0123456, IndexPrice: 0.01234, OpenInterest: 18000000000, OpenInterestValue: 222220800, SingleOpenInterest: 9000000000, SingleOpenInterestValue: 111110400,
			Turnover24h: 617280000, Volume24h: 50000000000, FundingRate: 0.00005, NextFundingTime: next, FundingCap: 0.02},
		{Category: BybitLinear, Symbol: "BTCPERP", BaseCoin: "BTC", QuoteCoin: "USDC", SettleCoin: "USDC", ContractType: "LinearPerpetual", Status: "Trading", PriceScale: 1,
			MarkPrice: 60005, IndexPrice: 60001.5, OpenInterest: 2000, OpenInterestValue: 120010000, SingleOpenInterest: 1000, SingleOpenInterestValue: 60005000,
			Turnover24h: 300000000, Volume24h: 5000, FundingRate: 0.00012, NextFundingTime: next, FundingCap: 0.005},
		{Category: BybitLinear, Symbol: linFut, BaseCoin: "BTC", QuoteCoin: "USDT", SettleCoin: "USDT", ContractType: "LinearFutures", Status: "Trading", PriceScale: 1,
			DeliveryTime: q.UnixMilli(), MarkPrice: 61000, IndexPrice: 60001.5, OpenInterest: 300, OpenInterestValue: 18300000, SingleOpenInterest: 150, SingleOpenInterestValue: 9150000,
			Turnover24h: 122000000, Volume24h: 2000},
		{Category: BybitInverse, Symbol: "BTCUSD", BaseCoin: "BTC", QuoteCoin: "USD", SettleCoin: "BTC", ContractType: "InversePerpetual", Status: "Trading", PriceScale: 2,
			MarkPrice: 60000.5, IndexPrice: 60001.5, OpenInterest: 480000000, OpenInterestValue: 7999.93, SingleOpenInterest: 240000000, SingleOpenInterestValue: 3999.97,
			Turnover24h: 230.5, Volume24h: 13830000, FundingRate: 0.0001, NextFundingTime: next, FundingCap: 0.005},
		{Category: BybitInverse, Symbol: "ETHUSD", BaseCoin: "ETH", QuoteCoin: "USD", SettleCoin: "ETH", ContractType: "InversePerpetual", Status: "Trading", PriceScale: 2,
			MarkPrice: 3000.25, IndexPrice: 3000.5, OpenInterest: 60000000, OpenInterestValue: 19998.33, SingleOpenInterest: 30000000, SingleOpenInterestValue: 9999.17,
			Turnover24h: 1500.2, Volume24h: 4500000, FundingRate: 0.0001, NextFundingTime: next, FundingCap: 0.005},
		{Category: BybitInverse, Symbol: invFut, BaseCoin: "BTC", QuoteCoin: "USD", SettleCoin: "BTC", ContractType: "InverseFutures", Status: "Trading", PriceScale: 1,
			DeliveryTime: q.UnixMilli(), MarkPrice: 61000, IndexPrice: 60001.5, OpenInterest: 20000000, OpenInterestValue: 327.87, SingleOpenInterest: 10000000, SingleOpenInterestValue: 163.93,
			Turnover24h: 6.5, Volume24h: 400000},
	}
}
