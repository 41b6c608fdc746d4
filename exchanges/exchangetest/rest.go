package exchangetest

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// REST fault injection shared by the fakes: scripted answers queued per
// key, a latency per key and a request count per key. A key is usually a
// request path, bare or with a query naming a category, instType or
// currency ("/v5/market/tickers?category=inverse"); Hyperliquid keys by
// info type. The venue-specific parts (default error bodies, rate limits,
// bans) stay in the fakes.

// restFault is one queued scripted REST answer.
type restFault struct {
	status, retryAfter int
	body               string
	// contentType, when not empty, is set as the Content-Type of the
	// answer; fakes that set one on every answer leave it empty.
	contentType string
}

// write answers the fault: Retry-After (seconds, when retryAfter > 0),
// the status and the body verbatim.
func (f restFault) write(w http.ResponseWriter) {
	h := w.Header()
	if f.contentType != "" {
		h.Set("Content-Type", f.contentType)
	}
	if f.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

// restRun is a fault queued to answer the next left requests of a key.
type restRun struct {
	fault restFault
	left  int
}

// restFaults holds the scripted answers, latencies and request counts of a
// fake's REST endpoints. It has its own lock and calls nothing outside
// itself, so a fake may use it with or without its own mutex held. The
// zero value is ready to use. The lock is not called mu: a fake embeds
// restFaults next to the server that holds its mutex, and a field named
// mu here would hide that one.
type restFaults struct {
	faultsMu sync.Mutex
	queued   map[string][]restRun
	latency  map[string]time.Duration
	requests map[string]int
}

// SetLatency delays every answer to path by d (0 removes the delay). A
// delayed request ends early when the client gives up or the fake closes.
func (s *restFaults) SetLatency(path string, d time.Duration) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	if d <= 0 {
		delete(s.latency, path)
		return
	}
	s.setLatencyLocked(path, d)
}

// pinLatency sets the latency of key to d even when d <= 0, so that an
// entry for a specific key (a path with its currency) overrides the
// latency of a broader one (the bare path) when delayOf looks them up.
func (s *restFaults) pinLatency(key string, d time.Duration) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.setLatencyLocked(key, d)
}

func (s *restFaults) setLatencyLocked(key string, d time.Duration) {
	if s.latency == nil {
		s.latency = map[string]time.Duration{}
	}
	s.latency[key] = d
}

// Requests returns how many requests path has received, failed ones included.
func (s *restFaults) Requests(path string) int {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	return s.requests[path]
}

// queue makes the next n requests of key answer f, after the answers
// already queued for key. n <= 0 queues nothing.
func (s *restFaults) queue(key string, n int, f restFault) {
	if n <= 0 {
		return
	}
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	if s.queued == nil {
		s.queued = map[string][]restRun{}
	}
	s.queued[key] = append(s.queued[key], restRun{f, n})
}

// count counts one request under each key; a key given twice is counted
// once.
func (s *restFaults) count(keys ...string) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	if s.requests == nil {
		s.requests = map[string]int{}
	}
	for i, k := range keys {
		if !slices.Contains(keys[:i], k) {
			s.requests[k]++
		}
	}
}

// delayOf returns the latency of the first key that has one (0 if none).
func (s *restFaults) delayOf(keys ...string) time.Duration {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	for _, k := range keys {
		if d, ok := s.latency[k]; ok {
			return d
		}
	}
	return 0
}

// take pops the next queued answer of the first key that has one.
func (s *restFaults) take(keys ...string) (restFault, bool) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	for _, k := range keys {
		runs := s.queued[k]
		if len(runs) == 0 {
			continue
		}
		f := runs[0].fault
		switch {
		case runs[0].left > 1:
			runs[0].left--
		case len(runs) == 1:
			delete(s.queued, k)
		default:
			s.queued[k] = runs[1:]
		}
		return f, true
	}
	return restFault{}, false
}

// pause waits d unless the client gives up or done is closed first; it
// reports whether the whole delay passed (always, when d <= 0), so that a
// handler returns without an answer when it did not.
func pause(r *http.Request, done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-done:
		return false
	}
}
