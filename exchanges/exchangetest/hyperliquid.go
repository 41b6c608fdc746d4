package exchangetest

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// Hyperliquid info request types the fake knows.
const (
	// HyperliquidMetaAndAssetCtxs is the one info type the fake serves.
	HyperliquidMetaAndAssetCtxs = "metaAndAssetCtxs"
)

// Documented Hyperliquid REST limits the fake applies (gitbook rate
// limits; the project's reference, section 8).
const (
	// HyperliquidWeightLimit is the aggregated request weight allowed per
	// HyperliquidWeightWindow per IP.
	HyperliquidWeightLimit  = 1200
	HyperliquidWeightWindow = time.Minute
	// HyperliquidInfoWeight is the weight of metaAndAssetCtxs (and of
	// every info type except a few light ones that weigh 2).
	HyperliquidInfoWeight = 20

	hyperliquidInfoPath = "/info"
	hyperliquidMaxBody  = 1 << 20
)

// Hyperliquid's error answers as the fake serves them. The reference only
// says that unknown info types are answered 422 (third-party probes); the
// bodies, the 400/415 answers to a body that is not JSON, and the 429
// answer beyond the weight limit are UNVERIFIED placeholders.
const (
	hyperliquidUnknownType = "Failed to deserialize the JSON body into the target type"
	hyperliquidBadJSON     = "Failed to parse the request body as JSON"
	hyperliquidBadMedia    = "Expected request with `Content-Type: application/json`"
	hyperliquidRateLimited = "429 Too Many Requests"
)

// HyperliquidAsset is one perp of the fake: its universe entry and its
// asset context. Context numbers are served as decimal strings, the way
// the SDK types them, in Go's shortest form and as given, so tests can
// serve values Hyperliquid would not (a NaN is served as "NaN", a negative
// open interest as "-1"), except that a NaN Premium or MidPx is served as
// null and ImpactPxs is null unless one of its prices is non-zero.
type HyperliquidAsset struct {
	// Universe entry. IsDelisted is served as "isDelisted": true only when
	// set (absent otherwise); a delisted perp keeps its place, so context
	// indices do not move.
	Name         string // e.g. BTC, kPEPE
	SzDecimals   int
	MaxLeverage  int
	OnlyIsolated bool
	IsDelisted   bool

	// Asset context: Funding is the hourly rate, OpenInterest in venue
	// units of the base coin (kPEPE), DayNtlVlm the 24 h notional in USDC,
	// DayBaseVlm the 24 h volume in venue units, prices in USDC per venue
	// unit.
	Funding, OpenInterest, PrevDayPx, DayNtlVlm float64
	Premium, OraclePx, MarkPx, MidPx            float64
	ImpactPxs                                   [2]float64
	DayBaseVlm                                  float64
}

// Hyperliquid is a fake of Hyperliquid's public info API: POST /info on a
// loopback port, answering {"type":"metaAndAssetCtxs"} with
// [{"universe":[...]},[ctx,...]] in the documented shape (contexts
// index-aligned with the universe) and other types with 422, as the real
// API answers types it does not know. Requests are charged
// HyperliquidInfoWeight against a per-window weight limit; beyond it the
// fake answers 429 (without Retry-After; whether Hyperliquid sends one is
// UNVERIFIED). All state is guarded by a mutex and may change while
// clients poll.
//
// The key given to FailNext, SetLatency and Requests is an info type
// ("metaAndAssetCtxs", "liquidations", ...) or "" for every request; the
// type-specific entry is used first.
type Hyperliquid struct {
	fakeServer

	assets      []HyperliquidAsset
	ctxSkew     int
	rest        restFaults // keyed by info type, "" = every request
	weightLimit int
	window      time.Duration
	spent       []weightHit
}

type weightHit struct {
	at     time.Time
	weight int
}

// NewHyperliquid starts a fake Hyperliquid on 127.0.0.1 with a free port
// and an empty universe. It panics if it cannot listen, like
// httptest.NewServer.
func NewHyperliquid() *Hyperliquid {
	h := &Hyperliquid{
		weightLimit: HyperliquidWeightLimit,
		window:      HyperliquidWeightWindow,
	}
	h.start("Hyperliquid fake", http.HandlerFunc(h.serve))
	return h
}

// URL returns http://127.0.0.1:port (as https://api.hyperliquid.xyz);
// clients append /info.
func (h *Hyperliquid) URL() string { return h.url }

// SetAssets replaces the perp universe (served in this order).
func (h *Hyperliquid) SetAssets(assets []HyperliquidAsset) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assets = append([]HyperliquidAsset(nil), assets...)
}

// Assets returns a copy of the universe.
func (h *Hyperliquid) Assets() []HyperliquidAsset {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HyperliquidAsset(nil), h.assets...)
}

// UpdateAsset changes one perp in place. A name that is not listed yet is
// appended as HyperliquidAsset{Name: name} before f runs.
func (h *Hyperliquid) UpdateAsset(name string, f func(*HyperliquidAsset)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	updateOrAdd(&h.assets, func(a HyperliquidAsset) bool { return a.Name == name }, HyperliquidAsset{Name: name}, f)
}

// SetContextSkew makes the context list n entries longer (n > 0, repeating
// the last context) or shorter (n < 0) than the universe, which the real
// API never does; 0 restores index alignment.
func (h *Hyperliquid) SetContextSkew(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ctxSkew = n
}

// FailNext makes the next n requests of an info type ("" = any) answer
// status with body verbatim, plus a Retry-After header of retryAfter
// seconds when retryAfter > 0. An empty body is replaced by the status
// text. Calls queue up in order. Scripted answers are charged weight like
// any other well-formed request.
func (h *Hyperliquid) FailNext(typ string, n, status, retryAfter int, body string) {
	if body == "" {
		body = strconv.Itoa(status) + " " + http.StatusText(status)
	}
	h.rest.queue(typ, n, restFault{status: status, retryAfter: retryAfter, body: body, contentType: hyperliquidContentType(body)})
}

// SetLatency delays every answer to an info type ("" = any) by d (0
// removes the delay). A delayed request ends early when the client gives
// up or the fake closes.
func (h *Hyperliquid) SetLatency(typ string, d time.Duration) { h.rest.SetLatency(typ, d) }

// Requests returns how many requests of an info type ("" = every request,
// malformed ones included) the fake has received.
func (h *Hyperliquid) Requests(typ string) int { return h.rest.Requests(typ) }

// SetWeightLimit changes the request weight allowed per window (default
// 1200 per minute); n <= 0 removes the limit.
func (h *Hyperliquid) SetWeightLimit(n int, window time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.weightLimit, h.window, h.spent = n, window, nil
}

func (h *Hyperliquid) serve(w http.ResponseWriter, r *http.Request) {
	typ, status, msg := parseHyperliquidRequest(r)

	h.rest.count("", typ) // once when typ is ""
	h.mu.Lock()
	limited := false
	if status == 0 && h.weightLimit > 0 {
		limited = !h.chargeLocked(time.Now(), HyperliquidInfoWeight)
	}
	h.mu.Unlock()

	if !pause(r, h.done, h.rest.delayOf(typ, "")) {
		return
	}

	fault, failed := h.rest.take(typ, "")
	h.mu.Lock()
	body := h.bodyLocked()
	h.mu.Unlock()

	switch {
	case failed:
		fault.write(w)
	case status != 0:
		writeHyperliquid(w, status, msg)
	case limited:
		writeHyperliquid(w, http.StatusTooManyRequests, hyperliquidRateLimited)
	case typ != HyperliquidMetaAndAssetCtxs:
		writeHyperliquid(w, http.StatusUnprocessableEntity, hyperliquidUnknownType)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

// parseHyperliquidRequest reads the info type of a request, or the status
// and message with which the fake rejects it.
func parseHyperliquidRequest(r *http.Request) (typ string, status int, msg string) {
	if r.URL.Path != hyperliquidInfoPath {
		return "", http.StatusNotFound, "404 Not Found"
	}
	if r.Method != http.MethodPost {
		return "", http.StatusMethodNotAllowed, "405 Method Not Allowed"
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return "", http.StatusUnsupportedMediaType, hyperliquidBadMedia
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, hyperliquidMaxBody))
	if err != nil {
		return "", http.StatusBadRequest, hyperliquidBadJSON
	}
	var req struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return "", http.StatusUnprocessableEntity, hyperliquidUnknownType
		}
		return "", http.StatusBadRequest, hyperliquidBadJSON
	}
	if req.Type == nil {
		return "", http.StatusUnprocessableEntity, hyperliquidUnknownType
	}
	return *req.Type, 0, ""
}

// chargeLocked spends weight in the sliding window; false when the limit
// would be exceeded (the request is then not charged).
func (h *Hyperliquid) chargeLocked(now time.Time, weight int) bool {
	cut, total := 0, 0
	for cut < len(h.spent) && now.Sub(h.spent[cut].at) >= h.window {
		cut++
	}
	h.spent = h.spent[cut:]
	for _, s := range h.spent {
		total += s.weight
	}
	if total+weight > h.weightLimit {
		return false
	}
	h.spent = append(h.spent, weightHit{now, weight})
	return true
}

// The documented answer shape. The SDK types szDecimals and maxLeverage as
// integers and every context number as a string.
type hyperliquidMeta struct {
	Universe []hyperliquidUniverseEntry `json:"universe"`
}

type hyperliquidUniverseEntry struct {
	Name         string `json:"name"`
	SzDecimals   int    `json:"szDecimals"`
	MaxLeverage  int    `json:"maxLeverage"`
	OnlyIsolated bool   `json:"onlyIsolated"`
	IsDelisted   bool   `json:"isDelisted,omitempty"`
}

type hyperliquidCtx struct {
	Funding      string     `json:"funding"`
	OpenInterest string     `json:"openInterest"`
	PrevDayPx    string     `json:"prevDayPx"`
	DayNtlVlm    string     `json:"dayNtlVlm"`
	Premium      *string    `json:"premium"`
	OraclePx     string     `json:"oraclePx"`
	MarkPx       string     `json:"markPx"`
	MidPx        *string    `json:"midPx"`
	ImpactPxs    *[2]string `json:"impactPxs"`
	DayBaseVlm   string     `json:"dayBaseVlm"`
}

// bodyLocked renders the metaAndAssetCtxs answer of the current state.
func (h *Hyperliquid) bodyLocked() []byte {
	meta := hyperliquidMeta{Universe: make([]hyperliquidUniverseEntry, 0, len(h.assets))}
	ctxs := make([]hyperliquidCtx, 0, len(h.assets)+max(h.ctxSkew, 0))
	for _, a := range h.assets {
		meta.Universe = append(meta.Universe, hyperliquidUniverseEntry{
			Name: a.Name, SzDecimals: a.SzDecimals, MaxLeverage: a.MaxLeverage,
			OnlyIsolated: a.OnlyIsolated, IsDelisted: a.IsDelisted,
		})
		c := hyperliquidCtx{
			Funding:      hlNum(a.Funding),
			OpenInterest: hlNum(a.OpenInterest),
			PrevDayPx:    hlNum(a.PrevDayPx),
			DayNtlVlm:    hlNum(a.DayNtlVlm),
			Premium:      hlOptional(a.Premium),
			OraclePx:     hlNum(a.OraclePx),
			MarkPx:       hlNum(a.MarkPx),
			MidPx:        hlOptional(a.MidPx),
			DayBaseVlm:   hlNum(a.DayBaseVlm),
		}
		if a.ImpactPxs != [2]float64{} {
			c.ImpactPxs = &[2]string{hlNum(a.ImpactPxs[0]), hlNum(a.ImpactPxs[1])}
		}
		ctxs = append(ctxs, c)
	}
	switch {
	case h.ctxSkew > 0 && len(ctxs) > 0:
		for range h.ctxSkew {
			ctxs = append(ctxs, ctxs[len(ctxs)-1])
		}
	case h.ctxSkew < 0:
		ctxs = ctxs[:max(len(ctxs)+h.ctxSkew, 0)]
	}
	body, err := json.Marshal([]any{meta, ctxs})
	if err != nil {
		return []byte("null")
	}
	return body
}

func hlNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func hlOptional(v float64) *string {
	if math.IsNaN(v) {
		return nil
	}
	s := hlNum(v)
	return &s
}

func writeHyperliquid(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", hyperliquidContentType(body))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// hyperliquidContentType is the Content-Type of an answer: JSON when the
// body is valid JSON, else plain text.
func hyperliquidContentType(body string) string {
	if json.Valid([]byte(body)) {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}
