package exchangetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRESTFaultsQueue(t *testing.T) {
	var s restFaults // the zero value is ready
	if _, ok := s.take("/a"); ok {
		t.Fatal("take on an empty queue found a fault")
	}
	s.queue("/a", 2, restFault{status: 503, body: "x"})
	s.queue("/a", 0, restFault{status: 500}) // n = 0 queues nothing
	s.queue("/a", 1, restFault{status: 429, retryAfter: 3})
	s.queue("/a?k=1", 1, restFault{status: 502})

	want := []struct {
		keys   []string
		status int
		ok     bool
	}{
		{[]string{"/a?k=1", "/a"}, 502, true}, // the specific key first
		{[]string{"/a?k=1", "/a"}, 503, true}, // then the bare path, in order
		{[]string{"/a"}, 503, true},
		{[]string{"/a"}, 429, true},
		{[]string{"/a?k=1", "/a"}, 0, false},
	}
	for i, w := range want {
		f, ok := s.take(w.keys...)
		if ok != w.ok || f.status != w.status {
			t.Errorf("take %d = %d, %v; want %d, %v", i, f.status, ok, w.status, w.ok)
		}
	}
	if len(s.queued) != 0 {
		t.Errorf("%d keys left queued, want none", len(s.queued))
	}
}

func TestRESTFaultsCountAndLatency(t *testing.T) {
	var s restFaults
	s.count("", "liquidations")
	s.count("", "") // a key given twice counts once
	if n, all := s.Requests("liquidations"), s.Requests(""); n != 1 || all != 2 {
		t.Errorf("Requests = %d, %d; want 1, 2", n, all)
	}

	s.SetLatency("/p", time.Second)
	s.SetLatency("/p?c=BTC", 0) // removed: the bare path's latency applies
	if d := s.delayOf("/p?c=BTC", "/p"); d != time.Second {
		t.Errorf("delayOf = %v, want 1s", d)
	}
	s.pinLatency("/p?c=BTC", 0) // kept: overrides the bare path
	if d := s.delayOf("/p?c=BTC", "/p"); d != 0 {
		t.Errorf("delayOf with a pinned 0 = %v, want 0", d)
	}
	s.SetLatency("/p", 0)
	if d := s.delayOf("/p"); d != 0 {
		t.Errorf("delayOf after SetLatency(0) = %v, want 0", d)
	}
}

func TestRESTFaultWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	restFault{status: 429, retryAfter: 2, body: `{"e":1}`, contentType: "application/json"}.write(rec)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" ||
		rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != `{"e":1}` {
		t.Errorf("got %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
	rec = httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/plain")
	restFault{status: 500, body: "x"}.write(rec)
	if rec.Header().Get("Retry-After") != "" || rec.Header().Get("Content-Type") != "text/plain" {
		t.Errorf("headers %v: want no Retry-After and the fake's Content-Type kept", rec.Header())
	}
}

func TestPause(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if !pause(r, nil, 0) || !pause(r, nil, time.Millisecond) {
		t.Error("pause ended early without a cause")
	}
	done := make(chan struct{})
	close(done)
	if pause(r, done, time.Hour) {
		t.Error("pause waited past a closed done channel")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if pause(r.WithContext(ctx), nil, time.Hour) {
		t.Error("pause waited past a cancelled request")
	}
}
