package exchangetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// BinanceMarketKind selects one of Binance's two futures markets.
type BinanceMarketKind string

// The Binance futures markets.
const (
	BinanceUSDM  BinanceMarketKind = "usdm"  // USDⓈ-M, fapi / fstream
	BinanceCoinM BinanceMarketKind = "coinm" // COIN-M, dapi / dstream
)

// Documented Binance limits and defaults the fake applies.
const (
	// BinanceWeightLimit is the REQUEST_WEIGHT limit per minute and IP.
	BinanceWeightLimit = 2400
	// BinanceMaxStreams is the number of streams one connection may hold.
	BinanceMaxStreams = 1024
	// BinanceMaxMessagesPerSecond is the incoming message limit per connection.
	BinanceMaxMessagesPerSecond = 10
	// BinanceServerPingInterval is how often Binance pings every connection.
	BinanceServerPingInterval = 3 * time.Minute
	// BinancePongTimeout is how long Binance waits for a pong before it
	// drops the connection.
	BinancePongTimeout = 10 * time.Minute

	// binancePerpetualDeliveryDate is the deliveryDate Binance lists for
	// perpetual contracts (2100-12-25).
	binancePerpetualDeliveryDate = 4133404800000
	// binanceOnboardDate is served when a symbol sets no OnboardDate.
	binanceOnboardDate = 1569398400000
	// binanceInterestRate is the interest rate of perpetual contracts.
	binanceInterestRate = 0.0001
	// binanceFundingRateCap is served in fundingInfo.
	binanceFundingRateCap = 0.02

	binanceAllForceOrder = "!forceOrder@arr"
	binanceForceSuffix   = "@forceOrder"
)

// BinanceSymbol is the state of one fake instrument. Fields that do not
// apply to a market are not served there.
type BinanceSymbol struct {
	Symbol, Pair, BaseAsset, QuoteAsset, MarginAsset string
	ContractType                                     string // PERPETUAL, CURRENT_QUARTER, ...
	// Status is served as "status" (USDⓈ-M) or "contractStatus" (COIN-M):
	// TRADING, SETTLING, PENDING_TRADING, ...
	Status       string
	ContractSize float64 // COIN-M only, served as the number "contractSize" (USD per contract)
	DeliveryDate int64   // ms; 0 = 4133404800000 for perpetuals, as Binance lists them
	OnboardDate  int64   // ms; 0 = a fixed date in 2019

	PricePrecision, QuantityPrecision int

	// premiumIndex. A NaN LastFundingRate is served as lastFundingRate:""
	// with nextFundingTime:0 and interestRate:"", as Binance serves COIN-M
	// delivery contracts.
	MarkPrice, IndexPrice, LastFundingRate float64
	NextFundingTime                        int64 // ms

	OpenInterest float64 // openInterest: USDⓈ-M in base asset, COIN-M in contracts

	// ticker/24hr. USDⓈ-M: Volume in base asset, QuoteVolume in quote
	// asset. COIN-M: Volume in contracts, BaseVolume in coin.
	Volume, QuoteVolume, BaseVolume float64
	LastPrice                       float64 // 0 = MarkPrice

	FundingIntervalHours int // if non-zero, listed in fundingInfo

	// LongShortAccountRatio, when > 0, is served by USDⓈ-M
	// /futures/data/globalLongShortAccountRatio (longs/shorts among accounts).
	LongShortAccountRatio float64
}

// BinanceMarket is one fake Binance futures market: one HTTP server on a
// loopback port serving the public REST API and the market WebSocket
// streams. All state is guarded by a mutex and may change while clients are
// connected.
//
// REST: GET <prefix>/exchangeInfo, premiumIndex, ticker/24hr, openInterest,
// fundingInfo, ping and time, where prefix is /fapi/v1 (USDⓈ-M) or /dapi/v1
// (COIN-M). Every answer carries X-MBX-USED-WEIGHT-1M; a request that takes
// the minute's weight over the limit is answered 429 with Retry-After.
//
// WebSocket: <wsbase>/ws (subscribe by message), <wsbase>/ws/<stream> (raw
// stream) and <wsbase>/stream?streams=a/b (combined stream), where wsbase is
// /market for USDⓈ-M (as wss://fstream.binance.com/market) and empty for
// COIN-M. Only the liquidation streams (!forceOrder@arr and
// <symbol>@forceOrder) carry data; other stream names are accepted and stay
// silent, like a Binance stream without traffic.
type BinanceMarket struct {
	wsServer[*binanceConn]

	kind   BinanceMarketKind
	prefix string // REST path prefix
	wsBase string // WebSocket path prefix
	now    func() time.Time

	symbols     []BinanceSymbol
	weightLimit int
	weightMin   int64 // unix minute of weightUsed
	weightUsed  int

	silent      bool // SetAnswerPings(false)
	pingEvery   time.Duration
	pongTimeout time.Duration
	pingReset   chan struct{}
	lastPong    []byte
	noHistory   bool               // SetKeepHistory(false)
	beforeWrite func(frame []byte) // SetBeforeWrite

	restFaults // FailNext, SetLatency, Requests
}

// NewBinanceMarket starts a fake market on 127.0.0.1 with a free port and
// no symbols. It panics if it cannot listen, like httptest.NewServer.
func NewBinanceMarket(kind BinanceMarketKind) *BinanceMarket {
	m := &BinanceMarket{
		kind:        kind,
		now:         time.Now,
		weightLimit: BinanceWeightLimit,
		pingEvery:   BinanceServerPingInterval,
		pongTimeout: BinancePongTimeout,
		pingReset:   make(chan struct{}, 1),
	}
	switch kind {
	case BinanceUSDM:
		m.prefix, m.wsBase = "/fapi/v1", "/market"
	case BinanceCoinM:
		m.prefix, m.wsBase = "/dapi/v1", ""
	default:
		panic(fmt.Sprintf("exchangetest: unknown Binance market kind %q", kind))
	}
	m.startWS(m, wsConfig{name: "Binance market", listing: listPerStep, upgrader: wsOpenUpgrader, readLimit: wsReadLimit},
		http.HandlerFunc(m.serveHTTP))
	m.spawn(m.pingLoop)
	return m
}

// Kind returns the market kind.
func (m *BinanceMarket) Kind() BinanceMarketKind { return m.kind }

// RESTURL returns http://127.0.0.1:port; clients append /fapi/v1/... or
// /dapi/v1/....
func (m *BinanceMarket) RESTURL() string { return m.url }

// WSURL returns ws://127.0.0.1:port/market for USDⓈ-M (mirroring
// wss://fstream.binance.com/market) and ws://127.0.0.1:port for COIN-M
// (mirroring wss://dstream.binance.com); clients append /ws, /ws/<stream>
// or /stream?streams=....
func (m *BinanceMarket) WSURL() string {
	return m.wsURL(m.wsBase)
}

// SetSymbols replaces the instrument list (served in this order).
func (m *BinanceMarket) SetSymbols(syms []BinanceSymbol) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.symbols = append([]BinanceSymbol(nil), syms...)
}

// Symbols returns a copy of the instrument list.
func (m *BinanceMarket) Symbols() []BinanceSymbol {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]BinanceSymbol(nil), m.symbols...)
}

// UpdateSymbol changes one instrument in place. A symbol that is not listed
// yet is appended as BinanceSymbol{Symbol: sym} before f runs.
func (m *BinanceMarket) UpdateSymbol(sym string, f func(*BinanceSymbol)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	updateOrAdd(&m.symbols, func(s BinanceSymbol) bool { return s.Symbol == sym }, BinanceSymbol{Symbol: sym}, f)
}

// FailNext makes the next n requests to path (e.g. "/fapi/v1/premiumIndex")
// answer status with body, plus a Retry-After header of retryAfter seconds
// when retryAfter > 0. An empty body is replaced by a Binance error body
// matching the status. Calls queue up in order.
func (m *BinanceMarket) FailNext(path string, n, status int, retryAfter int, body string) {
	if n <= 0 {
		return
	}
	if body == "" {
		body = binanceErrorBody(status)
	}
	m.queue(path, n, restFault{status: status, retryAfter: retryAfter, body: body})
}

// UsedWeight returns the request weight used in the current minute, the
// value served in X-MBX-USED-WEIGHT-1M.
func (m *BinanceMarket) UsedWeight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.now().Unix()/60 != m.weightMin {
		return 0
	}
	return m.weightUsed
}

// SetWeightLimit changes the REQUEST_WEIGHT limit per minute (default
// 2400); exchangeInfo lists the new value.
func (m *BinanceMarket) SetWeightLimit(limit int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.weightLimit = limit
}

// ---------------------------------------------------------------- REST

// binanceErrorBody is Binance's error body for a status.
func binanceErrorBody(status int) string {
	code, msg := -1000, "An unknown error occured while processing the request." //nolint:misspell // Binance's own wording
	switch {
	case status == http.StatusTooManyRequests:
		code, msg = -1003, "Too many requests; please use the websocket for live updates to avoid polling the API."
	case status == http.StatusTeapot:
		code, msg = -1003, "Way too many requests; IP banned. Please use the websocket for live updates to avoid bans."
	case status == http.StatusServiceUnavailable:
		code, msg = -1008, "Service Unavailable."
	case status >= 500:
		code, msg = -1001, "Internal error; unable to process your request. Please try again."
	case status == http.StatusBadRequest:
		code, msg = -1121, "Invalid symbol."
	}
	b, _ := json.Marshal(binanceError{Code: code, Msg: msg})
	return string(b)
}

type binanceError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

func (m *BinanceMarket) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, m.prefix+"/") {
		m.serveREST(w, r)
		return
	}
	if m.kind == BinanceUSDM && r.URL.Path == "/futures/data/globalLongShortAccountRatio" {
		m.serveLongShort(w, r)
		return
	}
	if streams, combined, ok := m.wsRoute(r); ok {
		m.serveWS(w, r, binanceStreamLimit(streams), func() *binanceConn {
			return &binanceConn{m: m, streams: streams, combined: combined}
		})
		return
	}
	writeBinanceJSON(w, http.StatusNotFound, binanceError{Code: -5000, Msg: "Path " + r.URL.Path + ", Method " + r.Method + " is invalid"})
}

// weightOf returns the documented request weight of an endpoint and
// whether the endpoint exists.
func (m *BinanceMarket) weightOf(endpoint string, hasSymbol bool) (int, bool) {
	switch endpoint {
	case "/exchangeInfo", "/openInterest", "/ping", "/time":
		return 1, true
	case "/fundingInfo":
		return 0, true
	case "/premiumIndex":
		if m.kind == BinanceCoinM || !hasSymbol {
			return 10, true // COIN-M documents 10 with or without symbol
		}
		return 1, true
	case "/ticker/24hr":
		if hasSymbol {
			return 1, true
		}
		return 40, true
	}
	return 0, false
}

func (m *BinanceMarket) serveREST(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	endpoint := strings.TrimPrefix(path, m.prefix)
	q := r.URL.Query()
	weight, known := m.weightOf(endpoint, q.Get("symbol") != "")

	m.count(path)
	m.mu.Lock()
	now := m.now()
	if minute := now.Unix() / 60; minute != m.weightMin {
		m.weightMin, m.weightUsed = minute, 0
	}
	m.weightUsed += weight
	used, over := m.weightUsed, m.weightUsed > m.weightLimit
	m.mu.Unlock()

	if !pause(r, m.done, m.delayOf(path)) {
		return
	}

	fault, failed := m.take(path)
	m.mu.Lock()
	syms := append([]BinanceSymbol(nil), m.symbols...)
	limit := m.weightLimit
	m.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
	switch {
	case failed:
		fault.write(w)
		return
	case over:
		h.Set("Retry-After", strconv.FormatInt(60-now.Unix()%60, 10))
		writeBinanceJSON(w, http.StatusTooManyRequests, binanceError{Code: -1003,
			Msg: fmt.Sprintf("Too many requests; current limit of IP(127.0.0.1) is %d requests per minute. Please use the websocket for live updates to avoid polling the API.", limit)})
		return
	case !known:
		writeBinanceJSON(w, http.StatusNotFound, binanceError{Code: -5000, Msg: "Path " + path + ", Method " + r.Method + " is invalid"})
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		writeBinanceJSON(w, http.StatusMethodNotAllowed, binanceError{Code: -5000, Msg: "Path " + path + ", Method " + r.Method + " is invalid"})
		return
	}

	ms := now.UnixMilli()
	switch endpoint {
	case "/ping":
		writeBinanceJSON(w, http.StatusOK, struct{}{})
	case "/time":
		writeBinanceJSON(w, http.StatusOK, map[string]int64{"serverTime": ms})
	case "/exchangeInfo":
		writeBinanceJSON(w, http.StatusOK, m.exchangeInfo(syms, ms, limit))
	case "/fundingInfo":
		rows := []binanceFundingInfo{}
		for _, s := range syms {
			if s.FundingIntervalHours != 0 {
				rows = append(rows, binanceFundingInfo{
					Symbol:                   s.Symbol,
					AdjustedFundingRateCap:   binanceFixed(binanceFundingRateCap, 8),
					AdjustedFundingRateFloor: binanceFixed(-binanceFundingRateCap, 8),
					FundingIntervalHours:     s.FundingIntervalHours,
				})
			}
		}
		writeBinanceJSON(w, http.StatusOK, rows)
	case "/premiumIndex":
		m.servePerSymbol(w, q, syms, func(s BinanceSymbol) any { return m.premiumIndex(s, ms) })
	case "/ticker/24hr":
		m.servePerSymbol(w, q, syms, func(s BinanceSymbol) any { return m.ticker24h(s, ms) })
	case "/openInterest":
		sym := q.Get("symbol")
		if sym == "" {
			writeBinanceJSON(w, http.StatusBadRequest, binanceError{Code: -1102, Msg: "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."})
			return
		}
		s, ok := findBinanceSymbol(syms, sym)
		if !ok {
			writeBinanceJSON(w, http.StatusBadRequest, binanceError{Code: -1121, Msg: "Invalid symbol."})
			return
		}
		if m.kind == BinanceCoinM {
			writeBinanceJSON(w, http.StatusOK, binanceOpenInterestCoinM{Symbol: s.Symbol, Pair: s.Pair,
				OpenInterest: binanceDecimal(s.OpenInterest), ContractType: s.ContractType, Time: ms})
			return
		}
		writeBinanceJSON(w, http.StatusOK, binanceOpenInterestUSDM{OpenInterest: binanceDecimal(s.OpenInterest), Symbol: s.Symbol, Time: ms})
	}
}

// servePerSymbol answers an endpoint that lists every symbol, or one symbol
// when symbol is given. USDⓈ-M answers one symbol with an object; COIN-M
// always answers an array and also filters by pair.
func (m *BinanceMarket) servePerSymbol(w http.ResponseWriter, q map[string][]string, syms []BinanceSymbol, row func(BinanceSymbol) any) {
	sym, pair := binanceParam(q["symbol"]), binanceParam(q["pair"])
	if sym != "" {
		s, ok := findBinanceSymbol(syms, sym)
		if !ok {
			writeBinanceJSON(w, http.StatusBadRequest, binanceError{Code: -1121, Msg: "Invalid symbol."})
			return
		}
		if m.kind == BinanceUSDM {
			writeBinanceJSON(w, http.StatusOK, row(s))
			return
		}
		writeBinanceJSON(w, http.StatusOK, []any{row(s)})
		return
	}
	rows := []any{}
	for _, s := range syms {
		if m.kind == BinanceCoinM && pair != "" && s.Pair != pair {
			continue
		}
		rows = append(rows, row(s))
	}
	writeBinanceJSON(w, http.StatusOK, rows)
}

func binanceParam(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func findBinanceSymbol(syms []BinanceSymbol, sym string) (BinanceSymbol, bool) {
	for _, s := range syms {
		if s.Symbol == sym {
			return s, true
		}
	}
	return BinanceSymbol{}, false
}

func writeBinanceJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(binanceErrorBody(http.StatusInternalServerError))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type binanceRateLimit struct {
	RateLimitType string `json:"rateLimitType"`
	Interval      string `json:"interval"`
	IntervalNum   int    `json:"intervalNum"`
	Limit         int    `json:"limit"`
}

type binanceExchangeInfo struct {
	Timezone        string             `json:"timezone"`
	ServerTime      int64              `json:"serverTime"`
	FuturesType     string             `json:"futuresType,omitempty"`
	RateLimits      []binanceRateLimit `json:"rateLimits"`
	ExchangeFilters []any              `json:"exchangeFilters"`
	Symbols         []any              `json:"symbols"`
}

type binanceSymbolUSDM struct {
	Symbol                string   `json:"symbol"`
	Pair                  string   `json:"pair"`
	ContractType          string   `json:"contractType"`
	DeliveryDate          int64    `json:"deliveryDate"`
	OnboardDate           int64    `json:"onboardDate"`
	Status                string   `json:"status"`
	MaintMarginPercent    string   `json:"maintMarginPercent"`
	RequiredMarginPercent string   `json:"requiredMarginPercent"`
	BaseAsset             string   `json:"baseAsset"`
	QuoteAsset            string   `json:"quoteAsset"`
	MarginAsset           string   `json:"marginAsset"`
	PricePrecision        int      `json:"pricePrecision"`
	QuantityPrecision     int      `json:"quantityPrecision"`
	BaseAssetPrecision    int      `json:"baseAssetPrecision"`
	QuotePrecision        int      `json:"quotePrecision"`
	UnderlyingType        string   `json:"underlyingType"`
	UnderlyingSubType     []string `json:"underlyingSubType"`
	OrderTypes            []string `json:"orderTypes"`
	TimeInForce           []string `json:"timeInForce"`
}

type binanceSymbolCoinM struct {
	Symbol                string   `json:"symbol"`
	Pair                  string   `json:"pair"`
	ContractType          string   `json:"contractType"`
	DeliveryDate          int64    `json:"deliveryDate"`
	OnboardDate           int64    `json:"onboardDate"`
	ContractStatus        string   `json:"contractStatus"`
	ContractSize          float64  `json:"contractSize"`
	MarginAsset           string   `json:"marginAsset"`
	MaintMarginPercent    string   `json:"maintMarginPercent"`
	RequiredMarginPercent string   `json:"requiredMarginPercent"`
	BaseAsset             string   `json:"baseAsset"`
	QuoteAsset            string   `json:"quoteAsset"`
	PricePrecision        int      `json:"pricePrecision"`
	QuantityPrecision     int      `json:"quantityPrecision"`
	BaseAssetPrecision    int      `json:"baseAssetPrecision"`
	QuotePrecision        int      `json:"quotePrecision"`
	EqualQtyPrecision     int      `json:"equalQtyPrecision"`
	OrderTypes            []string `json:"orderTypes"`
	TimeInForce           []string `json:"timeInForce"`
}

var (
	binanceOrderTypes = []string{"LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
	binanceTIF        = []string{"GTC", "IOC", "FOK", "GTX"}
)

func (m *BinanceMarket) exchangeInfo(syms []BinanceSymbol, ms int64, limit int) binanceExchangeInfo {
	info := binanceExchangeInfo{
		Timezone:   "UTC",
		ServerTime: ms,
		RateLimits: []binanceRateLimit{
			{RateLimitType: "REQUEST_WEIGHT", Interval: "MINUTE", IntervalNum: 1, Limit: limit},
			{RateLimitType: "ORDERS", Interval: "MINUTE", IntervalNum: 1, Limit: 1200},
		},
		ExchangeFilters: []any{},
		Symbols:         make([]any, 0, len(syms)),
	}
	if m.kind == BinanceUSDM {
		info.FuturesType = "U_MARGINED"
	}
	for _, s := range syms {
		delivery, onboard := s.DeliveryDate, s.OnboardDate
		if delivery == 0 && strings.Contains(s.ContractType, "PERPETUAL") {
			delivery = binancePerpetualDeliveryDate
		}
		if onboard == 0 {
			onboard = binanceOnboardDate
		}
		if m.kind == BinanceCoinM {
			info.Symbols = append(info.Symbols, binanceSymbolCoinM{
				Symbol: s.Symbol, Pair: s.Pair, ContractType: s.ContractType,
				DeliveryDate: delivery, OnboardDate: onboard,
				ContractStatus: s.Status, ContractSize: s.ContractSize, MarginAsset: s.MarginAsset,
				MaintMarginPercent: "2.5000", RequiredMarginPercent: "5.0000",
				BaseAsset: s.BaseAsset, QuoteAsset: s.QuoteAsset,
				PricePrecision: s.PricePrecision, QuantityPrecision: s.QuantityPrecision,
				BaseAssetPrecision: 8, QuotePrecision: 8, EqualQtyPrecision: 4,
				OrderTypes: binanceOrderTypes, TimeInForce: binanceTIF,
			})
			continue
		}
		info.Symbols = append(info.Symbols, binanceSymbolUSDM{
			Symbol: s.Symbol, Pair: s.Pair, ContractType: s.ContractType,
			DeliveryDate: delivery, OnboardDate: onboard, Status: s.Status,
			MaintMarginPercent: "2.5000", RequiredMarginPercent: "5.0000",
			BaseAsset: s.BaseAsset, QuoteAsset: s.QuoteAsset, MarginAsset: s.MarginAsset,
			PricePrecision: s.PricePrecision, QuantityPrecision: s.QuantityPrecision,
			BaseAssetPrecision: 8, QuotePrecision: 8,
			UnderlyingType: "COIN", UnderlyingSubType: []string{},
			OrderTypes: binanceOrderTypes, TimeInForce: binanceTIF,
		})
	}
	return info
}

type binancePremiumIndexUSDM struct {
	Symbol               string `json:"symbol"`
	MarkPrice            string `json:"markPrice"`
	IndexPrice           string `json:"indexPrice"`
	EstimatedSettlePrice string `json:"estimatedSettlePrice"`
	LastFundingRate      string `json:"lastFundingRate"`
	InterestRate         string `json:"interestRate"`
	NextFundingTime      int64  `json:"nextFundingTime"`
	Time                 int64  `json:"time"`
}

type binancePremiumIndexCoinM struct {
	Symbol               string `json:"symbol"`
	Pair                 string `json:"pair"`
	MarkPrice            string `json:"markPrice"`
	IndexPrice           string `json:"indexPrice"`
	EstimatedSettlePrice string `json:"estimatedSettlePrice"`
	LastFundingRate      string `json:"lastFundingRate"`
	InterestRate         string `json:"interestRate"`
	NextFundingTime      int64  `json:"nextFundingTime"`
	Time                 int64  `json:"time"`
}

func (m *BinanceMarket) premiumIndex(s BinanceSymbol, ms int64) any {
	funding, interest, next := binanceFixed(s.LastFundingRate, 8), binanceFixed(binanceInterestRate, 8), s.NextFundingTime
	if math.IsNaN(s.LastFundingRate) {
		funding, interest, next = "", "", 0
	}
	mark, index := binanceFixed(s.MarkPrice, 8), binanceFixed(s.IndexPrice, 8)
	if m.kind == BinanceCoinM {
		return binancePremiumIndexCoinM{Symbol: s.Symbol, Pair: s.Pair, MarkPrice: mark, IndexPrice: index,
			EstimatedSettlePrice: index, LastFundingRate: funding, InterestRate: interest, NextFundingTime: next, Time: ms}
	}
	return binancePremiumIndexUSDM{Symbol: s.Symbol, MarkPrice: mark, IndexPrice: index,
		EstimatedSettlePrice: index, LastFundingRate: funding, InterestRate: interest, NextFundingTime: next, Time: ms}
}

type binanceTickerUSDM struct {
	Symbol             string `json:"symbol"`
	PriceChange        string `json:"priceChange"`
	PriceChangePercent string `json:"priceChangePercent"`
	WeightedAvgPrice   string `json:"weightedAvgPrice"`
	LastPrice          string `json:"lastPrice"`
	LastQty            string `json:"lastQty"`
	OpenPrice          string `json:"openPrice"`
	HighPrice          string `json:"highPrice"`
	LowPrice           string `json:"lowPrice"`
	Volume             string `json:"volume"`
	QuoteVolume        string `json:"quoteVolume"`
	OpenTime           int64  `json:"openTime"`
	CloseTime          int64  `json:"closeTime"`
	FirstID            int64  `json:"firstId"`
	LastID             int64  `json:"lastId"`
	Count              int64  `json:"count"`
}

type binanceTickerCoinM struct {
	Symbol             string `json:"symbol"`
	Pair               string `json:"pair"`
	PriceChange        string `json:"priceChange"`
	PriceChangePercent string `json:"priceChangePercent"`
	WeightedAvgPrice   string `json:"weightedAvgPrice"`
	LastPrice          string `json:"lastPrice"`
	LastQty            string `json:"lastQty"`
	OpenPrice          string `json:"openPrice"`
	HighPrice          string `json:"highPrice"`
	LowPrice           string `json:"lowPrice"`
	Volume             string `json:"volume"`
	BaseVolume         string `json:"baseVolume"`
	OpenTime           int64  `json:"openTime"`
	CloseTime          int64  `json:"closeTime"`
	FirstID            int64  `json:"firstId"`
	LastID             int64  `json:"lastId"`
	Count              int64  `json:"count"`
}

// ticker24h serves a flat day: open = high = low = last price.
func (m *BinanceMarket) ticker24h(s BinanceSymbol, ms int64) any {
	last := s.LastPrice
	if last == 0 {
		last = s.MarkPrice
	}
	lastS := binanceDecimal(last)
	avg := last
	open := ms - 24*time.Hour.Milliseconds()
	if m.kind == BinanceCoinM {
		if s.BaseVolume > 0 {
			avg = s.Volume * s.ContractSize / s.BaseVolume
		}
		return binanceTickerCoinM{Symbol: s.Symbol, Pair: s.Pair, PriceChange: "0", PriceChangePercent: "0.000",
			WeightedAvgPrice: binanceDecimal(avg), LastPrice: lastS, LastQty: "1",
			OpenPrice: lastS, HighPrice: lastS, LowPrice: lastS,
			Volume: binanceDecimal(s.Volume), BaseVolume: binanceDecimal(s.BaseVolume),
			OpenTime: open, CloseTime: ms, FirstID: 1, LastID: 1, Count: 1}
	}
	if s.Volume > 0 {
		avg = s.QuoteVolume / s.Volume
	}
	return binanceTickerUSDM{Symbol: s.Symbol, PriceChange: "0", PriceChangePercent: "0.000",
		WeightedAvgPrice: binanceDecimal(avg), LastPrice: lastS, LastQty: "1",
		OpenPrice: lastS, HighPrice: lastS, LowPrice: lastS,
		Volume: binanceDecimal(s.Volume), QuoteVolume: binanceDecimal(s.QuoteVolume),
		OpenTime: open, CloseTime: ms, FirstID: 1, LastID: 1, Count: 1}
}

type binanceOpenInterestUSDM struct {
	OpenInterest string `json:"openInterest"`
	Symbol       string `json:"symbol"`
	Time         int64  `json:"time"`
}

type binanceOpenInterestCoinM struct {
	Symbol       string `json:"symbol"`
	Pair         string `json:"pair"`
	OpenInterest string `json:"openInterest"`
	ContractType string `json:"contractType"`
	Time         int64  `json:"time"`
}

type binanceFundingInfo struct {
	Symbol                   string `json:"symbol"`
	AdjustedFundingRateCap   string `json:"adjustedFundingRateCap"`
	AdjustedFundingRateFloor string `json:"adjustedFundingRateFloor"`
	FundingIntervalHours     int    `json:"fundingIntervalHours"`
	Disclaimer               bool   `json:"disclaimer"`
}

// ---------------------------------------------------------------- WebSocket

// binanceConn is one client connection. streams, combined and pingSent are
// guarded by the market's mutex.
type binanceConn struct {
	wsConn
	m *BinanceMarket

	streams  []string
	combined bool
	pingSent time.Time // first server ping not answered yet

	// Reader goroutine only.
	winStart time.Time
	winCount int
	closing  bool
}

// wsRoute maps a request to a WebSocket endpoint: the streams it subscribes
// on connect and whether payloads are wrapped (combined).
func (m *BinanceMarket) wsRoute(r *http.Request) (streams []string, combined, ok bool) {
	p, ok := strings.CutPrefix(r.URL.Path, m.wsBase)
	if !ok {
		return nil, false, false
	}
	switch {
	case p == "/ws" || p == "/ws/":
		return nil, false, true
	case strings.HasPrefix(p, "/ws/"):
		return binanceSplitStreams(strings.TrimPrefix(p, "/ws/")), false, true
	case p == "/stream" || p == "/stream/":
		return binanceSplitStreams(r.URL.Query().Get("streams")), true, true
	}
	return nil, false, false
}

func binanceSplitStreams(s string) []string {
	var out []string
	for _, name := range strings.Split(s, "/") {
		if name != "" && !binanceContains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func binanceContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// binanceIsForceOrderStream reports whether a stream name is a liquidation stream.
func binanceIsForceOrderStream(name string) bool {
	if name == binanceAllForceOrder {
		return true
	}
	sym, ok := strings.CutSuffix(name, binanceForceSuffix)
	return ok && sym != "" && !strings.ContainsAny(sym, "!@/")
}

func binanceHasForceOrderStream(streams []string) bool {
	for _, s := range streams {
		if binanceIsForceOrderStream(s) {
			return true
		}
	}
	return false
}

// binanceStreamLimit refuses, as Binance does with HTTP 400, a connection
// asking for more streams than one connection may hold.
func binanceStreamLimit(streams []string) func(http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		if len(streams) > BinanceMaxStreams {
			writeBinanceJSON(w, http.StatusBadRequest, binanceError{Code: -1000, Msg: fmt.Sprintf("too many streams: %d, max %d", len(streams), BinanceMaxStreams)})
			return false
		}
		return true
	}
}

// registeredLocked counts a connection that subscribes a liquidation
// stream on connect (/ws/<stream>, /stream).
func (c *binanceConn) registeredLocked() {
	if binanceHasForceOrderStream(c.streams) {
		c.m.subscribed++
	}
}

// awake blocks while the market plays a half-open peer; false once the
// connection or the market is closed.
func (c *binanceConn) awake() bool {
	for {
		c.m.mu.Lock()
		silent, ch, closed := c.m.silent, c.m.changed, c.m.closed
		c.m.mu.Unlock()
		if closed || c.isDead() {
			return false
		}
		if !silent {
			return true
		}
		select {
		case <-ch:
		case <-c.dead:
			return false
		}
	}
}

func (c *binanceConn) silentNow() bool {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.m.silent
}

// serve answers the client's requests, dropping a client that exceeds
// the message rate; while the market plays a half-open peer it reads
// nothing, so that neither requests nor pings are answered.
func (c *binanceConn) serve() {
	c.ws.SetPingHandler(c.onPing)
	c.ws.SetPongHandler(c.onPong)
	for {
		if !c.awake() {
			return
		}
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if c.closing || (mt != websocket.TextMessage && mt != websocket.BinaryMessage) {
			continue // draining until the client answers the close frame
		}
		if !c.allow(time.Now()) {
			// Binance drops connections that exceed the message rate.
			c.closeHandshake(websocket.ClosePolicyViolation, "Too many requests")
			continue
		}
		if !c.awake() {
			return
		}
		c.handle(data)
	}
}

// allow counts one incoming message against the per-second limit.
func (c *binanceConn) allow(now time.Time) bool {
	if now.Sub(c.winStart) >= time.Second {
		c.winStart, c.winCount = now, 0
	}
	c.winCount++
	return c.winCount <= BinanceMaxMessagesPerSecond
}

// closeHandshake sends a close frame and gives the client wsCloseWait to
// answer before the connection is dropped.
func (c *binanceConn) closeHandshake(code int, reason string) {
	c.closing = true
	err := c.control(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason))
	if err != nil || c.silentNow() {
		c.kill()
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(wsCloseWait))
}

func (c *binanceConn) onPing(payload string) error {
	if c.silentNow() {
		c.awake() // a half-open peer neither answers nor reads on
		return nil
	}
	err := c.control(websocket.PongMessage, []byte(payload))
	var ne net.Error
	if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	return err
}

func (c *binanceConn) onPong(payload string) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.m.pongs++
	c.m.lastPong = []byte(payload)
	c.pingSent = time.Time{}
	return nil
}

// binanceRequest is a client request with its raw id.
type binanceRequest struct {
	method string
	params json.RawMessage
	id     json.RawMessage
}

// handle answers one client message (SUBSCRIBE, UNSUBSCRIBE,
// LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY) with Binance's replies.
func (c *binanceConn) handle(data []byte) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(data) {
			c.replyError(3, "Invalid JSON: "+err.Error(), nil)
		} else {
			c.replyError(2, "Invalid request: expected a JSON object", nil)
		}
		return
	}
	req := binanceRequest{params: fields["params"], id: fields["id"]}
	if !binanceUnsignedInt(req.id) {
		c.replyError(2, "Invalid request: request ID must be an unsigned integer", nil)
		return
	}
	if err := json.Unmarshal(fields["method"], &req.method); err != nil || fields["method"] == nil {
		c.replyError(2, "Invalid request: missing field `method`", req.id)
		return
	}
	switch req.method {
	case "SUBSCRIBE", "UNSUBSCRIBE":
		var names []string
		if err := json.Unmarshal(req.params, &names); err != nil || req.params == nil {
			c.replyError(2, "Invalid request: params must be an array of strings", req.id)
			return
		}
		if req.method == "SUBSCRIBE" {
			c.subscribe(names, req.id)
		} else {
			c.unsubscribe(names, req.id)
		}
	case "LIST_SUBSCRIPTIONS":
		c.m.mu.Lock()
		list := append([]string{}, c.streams...)
		c.m.mu.Unlock()
		b, _ := json.Marshal(list)
		c.reply(b, req.id)
	case "SET_PROPERTY", "GET_PROPERTY":
		c.property(req)
	default:
		c.replyError(2, fmt.Sprintf("Invalid request: unknown variant `%s`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`", req.method), req.id)
	}
}

func binanceUnsignedInt(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	for _, b := range raw {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// subscribe adds the streams and replies while holding the write lock, so
// that the reply precedes any stream data on the connection.
func (c *binanceConn) subscribe(names []string, id json.RawMessage) {
	c.m.mu.Lock()
	n := len(c.streams)
	for _, name := range names {
		if !binanceContains(c.streams, name) {
			n++
		}
	}
	c.m.mu.Unlock()
	if n > BinanceMaxStreams {
		c.replyError(2, fmt.Sprintf("Invalid request: a connection can listen to at most %d streams", BinanceMaxStreams), id)
		return
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.m.mu.Lock()
	before := binanceHasForceOrderStream(c.streams)
	for _, name := range names {
		if !binanceContains(c.streams, name) {
			c.streams = append(c.streams, name)
		}
	}
	if !before && binanceHasForceOrderStream(c.streams) {
		c.m.subscribed++
	}
	c.m.notifyLocked()
	c.m.mu.Unlock()
	c.writeLocked(binanceResult([]byte("null"), id))
}

func (c *binanceConn) unsubscribe(names []string, id json.RawMessage) {
	c.m.mu.Lock()
	kept := c.streams[:0:0]
	for _, s := range c.streams {
		if !binanceContains(names, s) {
			kept = append(kept, s)
		}
	}
	c.streams = kept
	c.m.notifyLocked()
	c.m.mu.Unlock()
	c.reply([]byte("null"), id)
}

func (c *binanceConn) property(req binanceRequest) {
	var params []json.RawMessage
	if err := json.Unmarshal(req.params, &params); err != nil || len(params) == 0 {
		c.replyError(2, "Invalid request: property name must be a string", req.id)
		return
	}
	var name string
	if err := json.Unmarshal(params[0], &name); err != nil {
		c.replyError(2, "Invalid request: property name must be a string", req.id)
		return
	}
	if name != "combined" {
		c.replyError(0, "Unknown property", req.id)
		return
	}
	if req.method == "GET_PROPERTY" {
		c.m.mu.Lock()
		v := c.combined
		c.m.mu.Unlock()
		c.reply([]byte(strconv.FormatBool(v)), req.id)
		return
	}
	var v bool
	if len(params) != 2 || json.Unmarshal(params[1], &v) != nil {
		c.replyError(1, "Invalid value type: expected Boolean", req.id)
		return
	}
	c.m.mu.Lock()
	c.combined = v
	c.m.mu.Unlock()
	c.reply([]byte("null"), req.id)
}

// reply sends {"result":<result>,"id":<id>}.
func (c *binanceConn) reply(result, id json.RawMessage) bool {
	return c.write(binanceResult(result, id))
}

func binanceResult(result, id json.RawMessage) []byte {
	msg := make([]byte, 0, len(result)+len(id)+20)
	msg = append(msg, `{"result":`...)
	msg = append(msg, result...)
	msg = append(msg, `,"id":`...)
	msg = append(msg, id...)
	return append(msg, '}')
}

// replyError sends {"error":{"code":..,"msg":..},"id":<id or null>}.
func (c *binanceConn) replyError(code int, msg string, id json.RawMessage) {
	if id == nil {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		Error binanceError    `json:"error"`
		ID    json.RawMessage `json:"id"`
	}{binanceError{Code: code, Msg: msg}, id})
	c.write(b)
}

// SetServerPing makes the fake ping every connection on this interval
// (default 3 minutes, as Binance does); 0 stops server pings. A connection
// that leaves a ping unanswered for longer than the pong timeout is
// dropped.
func (m *BinanceMarket) SetServerPing(interval time.Duration) {
	m.mu.Lock()
	m.pingEvery = interval
	m.mu.Unlock()
	nudge(m.pingReset)
}

// SetPongTimeout changes how long a server ping may stay unanswered before
// the fake drops the connection (default 10 minutes, as Binance does).
func (m *BinanceMarket) SetPongTimeout(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pongTimeout = d
}

// Pongs returns how many pong frames clients have sent.
func (m *BinanceMarket) Pongs() int { return m.pongCount() }

// LastPong returns the payload of the latest pong frame.
func (m *BinanceMarket) LastPong() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.lastPong...)
}

// SetAnswerPings controls liveness: SetAnswerPings(false) turns every connection into a half-open peer: the
// fake stops reading (so it neither answers client pings nor handles
// requests) and sends nothing (no frames, no server pings), while the TCP
// connections stay open. Scripted Ping, CloseCode and Disconnect events
// still apply. true resumes normal service; pings received meanwhile stay
// unanswered, requests received meanwhile are answered then.
func (m *BinanceMarket) SetAnswerPings(answer bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.silent = !answer
	m.notifyLocked()
}

// pingLoop runs serverPing every server ping interval until the market
// closes.
func (m *BinanceMarket) pingLoop() {
	tickLoop(m.done, m.pingReset, func() time.Duration {
		return locked(&m.fakeServer, func() time.Duration { return m.pingEvery })
	}, func(every time.Duration) time.Duration { return every }, func(now time.Time, _ time.Duration) { m.serverPing(now) })
}

// serverPing pings every connection and drops those whose earlier ping has
// gone unanswered for longer than the pong timeout.
func (m *BinanceMarket) serverPing(now time.Time) {
	m.mu.Lock()
	if m.silent {
		m.mu.Unlock()
		return
	}
	var ping, drop []*binanceConn
	for c := range m.conns {
		switch {
		case !c.pingSent.IsZero() && now.Sub(c.pingSent) > m.pongTimeout:
			drop = append(drop, c)
		default:
			if c.pingSent.IsZero() {
				c.pingSent = now
			}
			ping = append(ping, c)
		}
	}
	m.mu.Unlock()
	for _, c := range drop {
		c.kill()
	}
	payload := []byte(strconv.FormatInt(now.UnixMilli(), 10))
	for _, c := range ping {
		if err := c.control(websocket.PingMessage, payload); err != nil {
			c.kill()
		}
	}
}

// Connections returns the number of open client connections.
func (m *BinanceMarket) Connections() int { return m.connections() }

// TotalConnections returns the number of connections accepted so far.
func (m *BinanceMarket) TotalConnections() int { return m.totalConnections() }

// Subscriptions returns the cumulative number of subscribe events: a
// connection counts once each time it goes from no liquidation stream to at
// least one (on connect for /ws/<stream> and /stream, on SUBSCRIBE for /ws).
func (m *BinanceMarket) Subscriptions() int { return m.subscriptionCount() }

// Subscribed returns how many open connections currently hold a
// liquidation stream.
func (m *BinanceMarket) Subscribed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for c := range m.conns {
		if binanceHasForceOrderStream(c.streams) {
			n++
		}
	}
	return n
}

// WaitSubscribed waits until the cumulative number of subscribe events
// (see Subscriptions) reaches n.
func (m *BinanceMarket) WaitSubscribed(ctx context.Context, n int) error {
	return m.waitSubscriptions(ctx, n, "Binance")
}

// Play runs a script in the caller's goroutine. Before every Frame it waits
// (up to the play timeout) until at least one connection is subscribed to a
// liquidation stream the frame belongs to, then writes it to all such
// connections. A frame nobody took within the timeout is recorded with
// Conns 0. Play returns early, with what was delivered, when the fake
// closes.
func (m *BinanceMarket) Play(events []Event) []Delivered { return m.runScript(events) }

// closeSent kills the connection while the market plays a half-open
// peer (which would never read the client's close reply); otherwise
// the reader sees the client's close reply, or times out.
func (c *binanceConn) closeSent() {
	if c.silentNow() {
		c.kill()
		return
	}
	c.wsConn.closeSent()
}

// binanceTarget is one connection and the messages a frame becomes on it.
type binanceTarget struct {
	c    *binanceConn
	msgs [][]byte
}

// deliver waits for a subscriber and writes frame; false if the fake closed.
func (m *BinanceMarket) deliver(frame []byte) (Delivered, bool) {
	syms, parsed := binanceFrameSymbols(frame)
	valid := json.Valid(frame)
	m.mu.Lock()
	beforeWrite := m.beforeWrite
	m.mu.Unlock()
	targets, ok := awaitTargets(&m.wsServer, func() []binanceTarget {
		if m.silent {
			return nil
		}
		var out []binanceTarget
		for c := range m.liveLocked() {
			var msgs [][]byte
			for _, s := range c.streams {
				if !binanceStreamWants(s, syms, parsed) {
					continue
				}
				if c.combined && valid {
					msgs = append(msgs, BinanceCombinedFrame(s, frame))
				} else {
					msgs = append(msgs, frame)
				}
			}
			if len(msgs) > 0 {
				out = append(out, binanceTarget{c, msgs})
			}
		}
		return out
	}, nil)
	if !ok {
		return Delivered{}, false
	}
	if beforeWrite != nil && len(targets) > 0 {
		beforeWrite(frame)
	}
	d := Delivered{Frame: frame}
	for _, t := range targets {
		ok := true
		for _, msg := range t.msgs {
			ok = t.c.write(msg) && ok
		}
		if ok {
			d.Conns++
		}
	}
	m.mu.Lock()
	if !m.noHistory {
		m.played = append(m.played, d)
	}
	m.mu.Unlock()
	return d, true
}

// SetBeforeWrite installs fn, called by Play in the playing goroutine right
// before a scripted frame is written to its subscribed connections: once per
// frame that has at least one subscriber, not per connection, and not for
// frames nobody took. Latency measurements use it to timestamp each send.
// fn runs without the market's lock held; nil (the default) removes it.
func (m *BinanceMarket) SetBeforeWrite(fn func(frame []byte)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beforeWrite = fn
}

// SetKeepHistory turns the record of delivered frames (Deliveries) on or
// off; load generators that push millions of frames turn it off.
func (m *BinanceMarket) SetKeepHistory(keep bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noHistory = !keep
	if !keep {
		m.played = nil
	}
}

// binanceStreamWants reports whether a stream carries a frame with these symbols.
func binanceStreamWants(stream string, syms []string, parsed bool) bool {
	if stream == binanceAllForceOrder {
		return true
	}
	if !binanceIsForceOrderStream(stream) {
		return false
	}
	if !parsed {
		return true // not a readable forceOrder event: deliver anyway
	}
	want := strings.TrimSuffix(stream, binanceForceSuffix)
	for _, s := range syms {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

// binanceFrameSymbols returns the o.s values of a forceOrder event or an
// array of them; parsed is false when the frame names no symbol. Keys are
// matched exactly: the event carries both "s" and "S".
func binanceFrameSymbols(frame []byte) (syms []string, parsed bool) {
	symbolOf := func(raw json.RawMessage) (string, bool) {
		var ev map[string]json.RawMessage
		if json.Unmarshal(raw, &ev) != nil {
			return "", false
		}
		var o map[string]json.RawMessage
		if json.Unmarshal(ev["o"], &o) != nil {
			return "", false
		}
		var s string
		if json.Unmarshal(o["s"], &s) != nil {
			return "", false
		}
		return s, true
	}
	var arr []json.RawMessage
	if json.Unmarshal(frame, &arr) == nil {
		for _, raw := range arr {
			if s, ok := symbolOf(raw); ok {
				syms = append(syms, s)
			}
		}
		return syms, len(syms) > 0
	}
	if s, ok := symbolOf(frame); ok {
		return []string{s}, true
	}
	return nil, false
}

// BinanceSampleSymbols returns a small realistic instrument set for a
// market: USDⓈ-M BTCUSDT, ETHUSDT and 1000PEPEUSDT (4 h funding) perpetuals
// plus the current BTCUSDT quarterly; COIN-M BTCUSD_PERP and ETHUSD_PERP
// plus the current BTCUSD quarterly, whose funding rate is NaN (served as
// ""). Quarterlies are named after their delivery date, e.g. BTCUSD_261225.
func BinanceSampleSymbols(kind BinanceMarketKind) []BinanceSymbol {
	now := time.Now()
	next := now.Truncate(8 * time.Hour).Add(8 * time.Hour).UnixMilli()
	q := binanceNextQuarterly(now)
	quarter, suffix := q.UnixMilli(), q.Format("060102")
	if kind == BinanceCoinM {
		return []BinanceSymbol{
			{Symbol: "BTCUSD_PERP", Pair: "BTCUSD", BaseAsset: "BTC", QuoteAsset: "USD", MarginAsset: "BTC",
				ContractType: "PERPETUAL", Status: "TRADING", ContractSize: 100, PricePrecision: 1,
				MarkPrice: 60000.1, IndexPrice: 60001.5, LastFundingRate: 0.0001, NextFundingTime: next,
				OpenInterest: 1200000, Volume: 3500000, BaseVolume: 58.33},
			{Symbol: "ETHUSD_PERP", Pair: "ETHUSD", BaseAsset: "ETH", QuoteAsset: "USD", MarginAsset: "ETH",
				ContractType: "PERPETUAL", Status: "TRADING", ContractSize: 10, PricePrecision: 2,
				MarkPrice: 3000.25, IndexPrice: 3000.5, LastFundingRate: 0.0001, NextFundingTime: next,
				OpenInterest: 2500000, Volume: 4000000, BaseVolume: 13333.2},
			{Symbol: "BTCUSD_" + suffix, Pair: "BTCUSD", BaseAsset: "BTC", QuoteAsset: "USD", MarginAsset: "BTC",
				ContractType: "CURRENT_QUARTER", Status: "TRADING", ContractSize: 100, PricePrecision: 1,
				DeliveryDate: quarter, MarkPrice: 61000, IndexPrice: 60001.5, LastFundingRate: math.NaN(),
				OpenInterest: 300000, Volume: 400000, BaseVolume: 6.557},
		}
	}
	return []BinanceSymbol{
		{Symbol: "BTCUSDT", Pair: "BTCUSDT", BaseAsset: "BTC", QuoteAsset: "USDT", MarginAsset: "USDT",
			ContractType: "PERPETUAL", Status: "TRADING", PricePrecision: 2, QuantityPrecision: 3,
			MarkPrice: 60000.1, IndexPrice: 60001.5, LastFundingRate: 0.0001, NextFundingTime: next,
			OpenInterest: 80000.123, Volume: 150000.5, QuoteVolume: 9000030000},
		{Symbol: "ETHUSDT", Pair: "ETHUSDT", BaseAsset: "ETH", QuoteAsset: "USDT", MarginAsset: "USDT",
			ContractType: "PERPETUAL", Status: "TRADING", PricePrecision: 2, QuantityPrecision: 3,
			MarkPrice: 3000.25, IndexPrice: 3000.5, LastFundingRate: 0.0001, NextFundingTime: next,
			OpenInterest: 2000000.5, Volume: 3000000, QuoteVolume: 9000750000},
		{Symbol: "1000PEPEUSDT", Pair: "1000PEPEUSDT", BaseAsset: "1000PEPE", QuoteAsset: "USDT", MarginAsset: "USDT",
			ContractType: "PERPETUAL", Status: "TRADING", PricePrecision: 7, QuantityPrecision: 0,
			MarkPrice: 0.0123456, IndexPrice: 0.0123400, LastFundingRate: 0.00005, NextFundingTime: next,
			OpenInterest: 9000000000, Volume: 50000000000, QuoteVolume: 617280000, FundingIntervalHours: 4},
		{Symbol: "BTCUSDT_" + suffix, Pair: "BTCUSDT", BaseAsset: "BTC", QuoteAsset: "USDT", MarginAsset: "USDT",
			ContractType: "CURRENT_QUARTER", Status: "TRADING", PricePrecision: 1, QuantityPrecision: 3,
			DeliveryDate: quarter, MarkPrice: 61000, IndexPrice: 60001.5, LastFundingRate: 0,
			OpenInterest: 1500.5, Volume: 2000, QuoteVolume: 122000000},
	}
}

// binanceNextQuarterly returns the next quarterly delivery after now: the
// last Friday of March, June, September or December at 08:00 UTC.
func binanceNextQuarterly(now time.Time) time.Time {
	for y := now.UTC().Year(); ; y++ {
		for _, mo := range []time.Month{time.March, time.June, time.September, time.December} {
			d := time.Date(y, mo+1, 0, 8, 0, 0, 0, time.UTC) // last day of the month
			for d.Weekday() != time.Friday {
				d = d.AddDate(0, 0, -1)
			}
			if d.After(now) {
				return d
			}
		}
	}
}

// serveLongShort answers GET /futures/data/globalLongShortAccountRatio
// ?symbol=&period=&limit= with the latest ratio of a symbol, in Binance's
// documented shape: [{"symbol","longShortRatio","longAccount",
// "shortAccount","timestamp"}] (numbers as strings, timestamp in ms).
func (m *BinanceMarket) serveLongShort(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	m.count(path)
	fault, failed := m.take(path)
	m.mu.Lock()
	syms := append([]BinanceSymbol(nil), m.symbols...)
	now := m.now()
	m.mu.Unlock()
	if failed {
		w.Header().Set("Content-Type", "application/json")
		fault.write(w)
		return
	}
	q := r.URL.Query()
	if q.Get("period") == "" {
		writeBinanceJSON(w, http.StatusBadRequest, binanceError{Code: -1102, Msg: "Mandatory parameter 'period' was not sent, was empty/null, or malformed."})
		return
	}
	s, ok := findBinanceSymbol(syms, q.Get("symbol"))
	if !ok {
		writeBinanceJSON(w, http.StatusBadRequest, binanceError{Code: -1121, Msg: "Invalid symbol."})
		return
	}
	type row struct {
		Symbol         string `json:"symbol"`
		LongShortRatio string `json:"longShortRatio"`
		LongAccount    string `json:"longAccount"`
		ShortAccount   string `json:"shortAccount"`
		Timestamp      string `json:"timestamp"`
	}
	out := []row{}
	if r := s.LongShortAccountRatio; r > 0 {
		long := r / (1 + r)
		out = append(out, row{Symbol: s.Symbol, LongShortRatio: binanceFixed(r, 4), LongAccount: binanceFixed(long, 4),
			ShortAccount: binanceFixed(1-long, 4), Timestamp: strconv.FormatInt(now.Truncate(5*time.Minute).UnixMilli(), 10)})
	}
	writeBinanceJSON(w, http.StatusOK, out)
}
