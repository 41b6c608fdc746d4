package exchangetest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// FearGreed is a fake alternative.me Fear & Greed Index API. It serves
// GET /fng/ on a loopback port with the documented JSON shape: value and
// timestamp as strings, time_until_update only when limit=1, and
// metadata.error null. The limit parameter is honoured (default 1, 0 = the
// whole history); other parameters are ignored.
//
// The history starts empty, which the real API never is; Push readings
// before the first request. Scripted answers (FailNext, SetRawBody) are
// served in the order they were queued, before normal answers resume.
type FearGreed struct {
	srv *httptest.Server

	mu      sync.Mutex
	history []fearGreedEntry // newest first
	rest    restFaults       // one endpoint: every entry is under ""
}

type fearGreedEntry struct {
	value          int
	classification string
	ts             time.Time
}

// fearGreedBody is the documented response shape.
type fearGreedBody struct {
	Name     string           `json:"name"`
	Data     []fearGreedDatum `json:"data"`
	Metadata struct {
		Error *string `json:"error"`
	} `json:"metadata"`
}

type fearGreedDatum struct {
	Value               string `json:"value"`
	ValueClassification string `json:"value_classification"`
	Timestamp           string `json:"timestamp"`
	TimeUntilUpdate     string `json:"time_until_update,omitempty"`
}

// NewFearGreed starts a fake on 127.0.0.1 with an empty history.
func NewFearGreed() *FearGreed {
	f := &FearGreed{}
	mux := http.NewServeMux()
	mux.HandleFunc("/fng/", f.serve)
	f.srv = httptest.NewServer(mux)
	return f
}

// URL returns the API base URL, ending in /fng/.
func (f *FearGreed) URL() string { return f.srv.URL + "/fng/" }

// Close shuts the server down.
func (f *FearGreed) Close() { f.srv.Close() }

// Push adds a new reading in front of the history (the history is kept
// newest first, as the API serves it). value is not checked, so tests can
// serve out-of-range readings.
func (f *FearGreed) Push(value int, classification string, ts time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = append([]fearGreedEntry{{value, classification, ts}}, f.history...)
}

// FailNext makes the next n requests answer status with body (a generic
// JSON error body when body is ""), with a Retry-After header of retryAfter
// seconds when retryAfter > 0.
func (f *FearGreed) FailNext(n, status int, retryAfter int, body string) {
	if n <= 0 {
		return
	}
	if body == "" {
		b, _ := json.Marshal(map[string]string{"error": http.StatusText(status)})
		body = string(b)
	}
	f.rest.queue("", n, restFault{status: status, retryAfter: retryAfter, body: body})
}

// SetRawBody makes the next request answer 200 with body verbatim; later
// requests are answered normally again.
func (f *FearGreed) SetRawBody(body string) {
	f.rest.queue("", 1, restFault{status: http.StatusOK, body: body})
}

// Requests returns how many requests the fake has received.
func (f *FearGreed) Requests() int { return f.rest.Requests("") }

func (f *FearGreed) serve(w http.ResponseWriter, r *http.Request) {
	f.rest.count("")
	scripted, ok := f.rest.take("")
	f.mu.Lock()
	history := f.history
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if ok {
		scripted.write(w)
		return
	}
	if r.URL.Path != "/fng/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}

	body := fearGreedBody{Name: "Fear and Greed Index", Data: []fearGreedDatum{}}
	limit := 1
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			// The documentation does not say how the API answers a bad
			// limit; the fake reports it in metadata.error.
			msg := "limit must be a non-negative integer"
			body.Metadata.Error = &msg
			writeFearGreedJSON(w, body)
			return
		}
		limit = n
	}
	n := len(history)
	if limit > 0 && limit < n {
		n = limit
	}
	for i, e := range history[:n] {
		d := fearGreedDatum{
			Value:               strconv.Itoa(e.value),
			ValueClassification: e.classification,
			Timestamp:           strconv.FormatInt(e.ts.Unix(), 10),
		}
		if limit == 1 && i == 0 {
			// The index is recalculated daily: the next value is due one
			// day after the current one.
			left := max(time.Until(e.ts.Add(24*time.Hour)), 0)
			d.TimeUntilUpdate = strconv.FormatInt(int64(left/time.Second), 10)
		}
		body.Data = append(body.Data, d)
	}
	writeFearGreedJSON(w, body)
}

func writeFearGreedJSON(w http.ResponseWriter, body fearGreedBody) {
	b, err := json.MarshalIndent(body, "", "    ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}
