package exchanges

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientAnswers(t *testing.T) {
	var status atomic.Int32
	var body atomic.Value
	var delay atomic.Int64
	status.Store(200)
	body.Store(`{"a":1}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(delay.Load()))
		if s := status.Load(); s == 429 || s == 418 {
			w.Header().Set("Retry-After", "7")
		}
		w.Header().Set("X-Test", "yes")
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c := NewClient(200*time.Millisecond, "test-agent")
	var v struct{ A int }

	hdr, err := c.GetJSON(context.Background(), srv.URL, &v)
	if err != nil || v.A != 1 || hdr.Get("X-Test") != "yes" {
		t.Fatalf("200: v=%+v err=%v", v, err)
	}

	for _, code := range []int32{429, 418} {
		status.Store(code)
		_, err = c.GetJSON(context.Background(), srv.URL, &v)
		var herr *HTTPError
		if !errors.As(err, &herr) || herr.StatusCode != int(code) || herr.RetryAfter != 7*time.Second || !herr.RateLimited() {
			t.Errorf("%d: err=%v", code, err)
		}
	}
	status.Store(503)
	_, err = c.GetJSON(context.Background(), srv.URL, &v)
	var herr *HTTPError
	if !errors.As(err, &herr) || herr.StatusCode != 503 || herr.RateLimited() {
		t.Errorf("503: err=%v", err)
	}

	status.Store(200)
	body.Store(`{"a":`)
	if _, err = c.GetJSON(context.Background(), srv.URL, &v); err == nil || !strings.Contains(err.Error(), "decoding JSON") {
		t.Errorf("malformed body: err=%v", err)
	}

	body.Store(`{"a":1}`)
	delay.Store(int64(time.Second))
	if _, err = c.GetJSON(context.Background(), srv.URL, &v); err == nil {
		t.Error("timeout: expected an error")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-3":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"Wed, 31 Dec 2025 00:00:30 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

type recordingPoll struct {
	mu   sync.Mutex
	errs []error
	at   []time.Time
}

func (r *recordingPoll) Observe(_ time.Duration, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
}

func (r *recordingPoll) snapshot() ([]error, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...), append([]time.Time(nil), r.at...)
}

func TestPollerHonoursRetryAfter(t *testing.T) {
	obs := &recordingPoll{}
	var calls atomic.Int32
	p := Poller{
		Interval: 20 * time.Millisecond,
		Observer: obs,
		Logger:   slog.New(slog.DiscardHandler),
		Poll: func(ctx context.Context) error {
			switch calls.Add(1) {
			case 1:
				return &HTTPError{StatusCode: 429, RetryAfter: 300 * time.Millisecond}
			case 2:
				return errors.New("HTTP 500")
			}
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	p.Run(ctx)
	errs, at := obs.snapshot()
	if len(errs) < 3 {
		t.Fatalf("only %d polls", len(errs))
	}
	if errs[0] == nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("outcomes %v", errs[:3])
	}
	if gap := at[1].Sub(at[0]); gap < 290*time.Millisecond {
		t.Errorf("second poll %v after a 429 with Retry-After 300ms", gap)
	}
	if gap := at[2].Sub(at[1]); gap > 250*time.Millisecond {
		t.Errorf("a plain failure waited %v, want about one interval", gap)
	}
}

func TestPollerBacksOffWithoutRetryAfter(t *testing.T) {
	obs := &recordingPoll{}
	p := Poller{
		Interval:   10 * time.Millisecond,
		MaxBackoff: 80 * time.Millisecond,
		Observer:   obs,
		Logger:     slog.New(slog.DiscardHandler),
		Poll:       func(ctx context.Context) error { return &HTTPError{StatusCode: 418} },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	p.Run(ctx)
	_, at := obs.snapshot()
	// Waits grow 20, 40, 80, 80 ms ... so far fewer polls than 400/10.
	if len(at) > 10 || len(at) < 3 {
		t.Errorf("%d polls in 400ms with exponential back-off", len(at))
	}
}

func TestPollerTrigger(t *testing.T) {
	obs := &recordingPoll{}
	trigger := make(chan struct{}, 1)
	p := Poller{
		Interval:   time.Hour,
		MinSpacing: 50 * time.Millisecond,
		Observer:   obs,
		Logger:     slog.New(slog.DiscardHandler),
		Poll:       func(ctx context.Context) error { return nil },
		Trigger:    trigger,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	time.Sleep(10 * time.Millisecond)
	trigger <- struct{}{}
	time.Sleep(150 * time.Millisecond)
	_, at := obs.snapshot()
	if len(at) != 2 {
		t.Fatalf("%d polls after one trigger, want 2", len(at))
	}
	if gap := at[1].Sub(at[0]); gap < 45*time.Millisecond {
		t.Errorf("triggered poll came %v after the previous one; minimum spacing is 50ms", gap)
	}
	cancel()
	<-done
}

func TestPollerRetryInterval(t *testing.T) {
	obs := &recordingPoll{}
	var calls atomic.Int32
	p := Poller{
		Interval:      time.Hour,
		RetryInterval: 20 * time.Millisecond,
		Observer:      obs,
		Logger:        slog.New(slog.DiscardHandler),
		Poll: func(ctx context.Context) error {
			if calls.Add(1) < 3 {
				return errors.New("down")
			}
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p.Run(ctx)
	errs, _ := obs.snapshot()
	if len(errs) != 3 || errs[2] != nil {
		t.Errorf("polls %v: want two quick retries, then success and the long interval", errs)
	}
}

func TestLogThrottle(t *testing.T) {
	var th LogThrottle
	if !th.Allow("a") || th.Allow("a") || !th.Allow("b") {
		t.Error("throttle lets through the wrong lines")
	}
}

func TestNumber(t *testing.T) {
	for in, want := range map[string]Number{`"1.5"`: {1.5, true}, `2`: {2, true}, `""`: {}, `null`: {}} {
		var n Number
		if err := n.UnmarshalJSON([]byte(in)); err != nil || n != want {
			t.Errorf("%s: %+v %v", in, n, err)
		}
	}
	for _, in := range []string{`"NaN"`, `"abc"`, `true`, `"Infinity"`} {
		var n Number
		if err := n.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}
