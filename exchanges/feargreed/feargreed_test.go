package feargreed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/feargreed"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func day(d int) time.Time { return time.Date(2024, 4, 20+d, 0, 0, 0, 0, time.UTC) }

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    feargreed.Reading
		wantErr string // substring of the error; "" means success
	}{
		{file: "sample.json", want: feargreed.Reading{Value: 54, Classification: "Neutral", Updated: time.Unix(1713628800, 0).UTC()}},
		{file: "history.json", want: feargreed.Reading{Value: 72, Classification: "Greed", Updated: time.Unix(1713801600, 0).UTC()}},
		{file: "history_unordered.json", want: feargreed.Reading{Value: 72, Classification: "Greed", Updated: time.Unix(1713801600, 0).UTC()}},
		{file: "numbers.json", want: feargreed.Reading{Value: 8, Classification: "Extreme Fear", Updated: time.Unix(1668124800, 0).UTC()}},
		{file: "bounds_zero.json", want: feargreed.Reading{Value: 0, Classification: "Extreme Fear", Updated: time.Unix(1713628800, 0).UTC()}},
		{file: "bounds_hundred.json", want: feargreed.Reading{Value: 100, Classification: "Extreme Greed", Updated: time.Unix(1713628800, 0).UTC()}},

		{file: "value_abc.json", wantErr: `value "abc" is not a finite number`},
		{file: "value_101.json", wantErr: `value "101" is outside 0..100`},
		{file: "value_negative.json", wantErr: `value "-1" is outside 0..100`},
		{file: "value_nan.json", wantErr: `value "NaN" is not a finite number`},
		{file: "value_empty.json", wantErr: "value: empty"},
		{file: "value_missing.json", wantErr: "value: missing"},
		{file: "classification_empty.json", wantErr: "value_classification is empty"},
		{file: "metadata_error.json", wantErr: "API error: Rate limit exceeded"},
		{file: "data_empty.json", wantErr: "no data entries"},
		{file: "data_missing.json", wantErr: "no data entries"},
		{file: "malformed.json", wantErr: "decoding response"},
		{file: "timestamp_zero.json", wantErr: `timestamp "0" is not a plausible Unix time`},
		{file: "timestamp_milliseconds.json", wantErr: `timestamp "1713628800000" is not a plausible Unix time`},
		{file: "history_bad_timestamp.json", wantErr: `data[1]: timestamp "yesterday" is not a whole number`},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".json"), func(t *testing.T) {
			got, err := feargreed.Decode(readTestdata(t, tc.file))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Decode = %+v, want error containing %q", got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				if got != (feargreed.Reading{}) {
					t.Errorf("Decode returned %+v alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.Value != tc.want.Value || got.Classification != tc.want.Classification || !got.Updated.Equal(tc.want.Updated) {
				t.Errorf("Decode = %+v, want %+v", got, tc.want)
			}
			if got.Updated.Location() != time.UTC {
				t.Errorf("Updated is in %s, want UTC", got.Updated.Location())
			}
		})
	}
}

// TestDecodeInline covers inputs that are clearer inline than as files.
func TestDecodeInline(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       float64
		wantErr    string
	}{
		{"fractional value", `{"data":[{"value":"54.5","value_classification":"Neutral","timestamp":"1713628800"}]}`, 54.5, ""},
		{"no metadata", `{"data":[{"value":"54","value_classification":"Neutral","timestamp":"1713628800"}]}`, 54, ""},
		{"metadata error empty string", `{"data":[{"value":"54","value_classification":"Neutral","timestamp":"1"}],"metadata":{"error":""}}`, 54, ""},
		{"negative zero", `{"data":[{"value":"-0","value_classification":"Extreme Fear","timestamp":"1713628800"}]}`, 0, ""},
		{"metadata error object", `{"data":[],"metadata":{"error":{"code":42}}}`, 0, `API error: {"code":42}`},
		{"infinity", `{"data":[{"value":"Infinity","value_classification":"Neutral","timestamp":"1713628800"}]}`, 0, "not a finite number"},
		{"overflow", `{"data":[{"value":"1e999","value_classification":"Neutral","timestamp":"1713628800"}]}`, 0, "not a finite number"},
		{"hex", `{"data":[{"value":"0x10","value_classification":"Neutral","timestamp":"1713628800"}]}`, 0, "not a finite number"},
		{"value bool", `{"data":[{"value":true,"value_classification":"Neutral","timestamp":"1713628800"}]}`, 0, "neither a string nor a number"},
		{"value null", `{"data":[{"value":null,"value_classification":"Neutral","timestamp":"1713628800"}]}`, 0, "value: missing"},
		{"classification missing", `{"data":[{"value":"54","timestamp":"1713628800"}]}`, 0, "value_classification is missing"},
		{"classification number", `{"data":[{"value":"54","value_classification":3,"timestamp":"1713628800"}]}`, 0, "not a string"},
		{"classification too long", `{"data":[{"value":"54","value_classification":"` + strings.Repeat("x", 65) + `","timestamp":"1713628800"}]}`, 0, "longer than"},
		{"timestamp negative", `{"data":[{"value":"54","value_classification":"Neutral","timestamp":"-5"}]}`, 0, "not a plausible Unix time"},
		{"timestamp fractional", `{"data":[{"value":"54","value_classification":"Neutral","timestamp":1713628800.5}]}`, 0, "not a whole number"},
		{"timestamp missing", `{"data":[{"value":"54","value_classification":"Neutral"}]}`, 0, "timestamp: missing"},
		{"entry not an object", `{"data":[null]}`, 0, "data[0] is not an object"},
		{"data not an array", `{"data":{"value":"54"}}`, 0, "decoding data"},
		{"top level array", `[]`, 0, "decoding response"},
		{"top level null", `null`, 0, "response is null"},
		{"empty body", ``, 0, "decoding response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := feargreed.Decode([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decode = %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.Value != tc.want || math.Signbit(got.Value) {
				t.Errorf("Value = %v, want %v", got.Value, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := feargreed.Decode(body)
		if err != nil {
			return
		}
		if math.IsNaN(r.Value) || r.Value < 0 || r.Value > 100 {
			t.Fatalf("accepted value %v", r.Value)
		}
		if strings.TrimSpace(r.Classification) != r.Classification || r.Classification == "" {
			t.Fatalf("accepted classification %q", r.Classification)
		}
		if r.Updated.Unix() <= 0 {
			t.Fatalf("accepted timestamp %v", r.Updated)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	body := readTestdata(b, "sample.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := feargreed.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// recordingSink implements exchanges.Sink, recording the Fear & Greed
// readings and the poll observations.
type recordingSink struct {
	mu           sync.Mutex
	endpoints    []string
	readings     []feargreed.Reading
	sources      []string
	observations []observation
}

type observation struct {
	at  time.Time
	err error
}

func (s *recordingSink) SetInstruments(string, exchanges.Market, []*exchanges.Instrument) {}
func (s *recordingSink) Liquidation(exchanges.Liquidation) bool                           { return false }
func (s *recordingSink) SetMarketValues([]exchanges.MarketValue)                          {}
func (s *recordingSink) SetFeedComplete(string, exchanges.Market, bool)                   {}
func (s *recordingSink) Stream(string, string) exchanges.StreamObserver                   { return noopStream{} }

type noopStream struct{}

func (noopStream) SetUp(bool)   {}
func (noopStream) Connected()   {}
func (noopStream) Message()     {}
func (noopStream) DecodeError() {}

func (s *recordingSink) Poll(exchange, endpoint string) exchanges.PollObserver {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoints = append(s.endpoints, exchange+"/"+endpoint)
	return pollRecorder{s}
}

func (s *recordingSink) SetFearGreed(source string, value float64, classification string, updated time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = append(s.sources, source)
	s.readings = append(s.readings, feargreed.Reading{Value: value, Classification: classification, Updated: updated})
}

type pollRecorder struct{ s *recordingSink }

func (p pollRecorder) Observe(_ time.Duration, err error) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.observations = append(p.s.observations, observation{time.Now(), err})
}

// snapshot returns copies of what was recorded so far.
func (s *recordingSink) snapshot() ([]feargreed.Reading, []observation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]feargreed.Reading(nil), s.readings...), append([]observation(nil), s.observations...)
}

func (s *recordingSink) last() (feargreed.Reading, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.readings) == 0 {
		return feargreed.Reading{}, false
	}
	return s.readings[len(s.readings)-1], true
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRun runs feargreed.Run in the background and returns a function that
// stops it and checks that it returned within 2 s. Run writes to sink, not
// to the harness's collector: the tests read each poll's error, which the
// collector does not keep.
func startRun(t *testing.T, cfg feargreed.Config, sink exchanges.Sink) (stop func()) {
	t.Helper()
	h := venuetest.New(t)
	h.StartWith(sink, func(ctx context.Context, sink exchanges.Sink) error {
		feargreed.Run(ctx, cfg, sink)
		return nil
	})
	return func() {
		t.Helper()
		h.StopWithin(t, 2*time.Second)
	}
}

func TestRunAgainstFakeFearGreed(t *testing.T) {
	f := exchangetest.NewFearGreed()
	defer f.Close()
	f.Push(40, "Fear", day(0))

	sink := &recordingSink{}
	var logs syncBuffer
	stop := startRun(t, feargreed.Config{
		URL:      f.URL(),
		Interval: 20 * time.Millisecond,
		Client:   exchanges.NewClient(2*time.Second, "test"),
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	}, sink)
	defer stop()

	// The first good poll stores the reading.
	waitFor(t, 2*time.Second, "the first reading", func() bool { _, ok := sink.last(); return ok })
	first, _ := sink.last()
	if first.Value != 40 || first.Classification != "Fear" || !first.Updated.Equal(day(0)) {
		t.Fatalf("first reading = %+v, want 40 Fear %s", first, day(0))
	}
	_, obs := sink.snapshot()
	before := len(obs)

	// Then a server error, a rate limit with Retry-After, a malformed body
	// and an out-of-range value, in that order.
	f.FailNext(1, http.StatusInternalServerError, 0, "")
	f.FailNext(1, http.StatusTooManyRequests, 1, "")
	f.SetRawBody(`{"name":"Fear and Greed Index","data":[{"value":"5`)
	f.Push(101, "Extreme Greed", day(1))

	kinds := []struct {
		name  string
		match func(error) bool
	}{
		{"HTTP 500", func(err error) bool {
			var h *exchanges.HTTPError
			return errors.As(err, &h) && h.StatusCode == http.StatusInternalServerError
		}},
		{"HTTP 429 with Retry-After", func(err error) bool {
			var h *exchanges.HTTPError
			return errors.As(err, &h) && h.StatusCode == http.StatusTooManyRequests && h.RetryAfter == time.Second
		}},
		{"malformed body", func(err error) bool {
			var se *json.SyntaxError
			return errors.As(err, &se)
		}},
		{"out-of-range value", func(err error) bool {
			return err != nil && strings.Contains(err.Error(), `value "101" is outside 0..100`)
		}},
	}
	// seen returns, for every kind of failure, the index of its first
	// observation after the first reading (-1 if not seen yet).
	seen := func(obs []observation) []int {
		idx := make([]int, len(kinds))
		for k, kind := range kinds {
			idx[k] = -1
			for i := before; i < len(obs); i++ {
				if kind.match(obs[i].err) {
					idx[k] = i
					break
				}
			}
		}
		return idx
	}
	waitFor(t, 5*time.Second, "every kind of failed poll", func() bool {
		_, obs := sink.snapshot()
		for _, i := range seen(obs) {
			if i < 0 {
				return false
			}
		}
		return true
	})

	readings, obs := sink.snapshot()
	for i, r := range readings {
		if r != first {
			t.Errorf("reading %d = %+v while every poll since the first failed or repeated it; want %+v", i, r, first)
		}
	}
	idx := seen(obs)
	for k := 1; k < len(idx); k++ {
		if idx[k] <= idx[k-1] {
			t.Errorf("%s observed at %d, not after %s at %d", kinds[k].name, idx[k], kinds[k-1].name, idx[k-1])
		}
	}
	// The Poller waits for the venue's Retry-After before asking again.
	if limited := idx[1]; limited+1 < len(obs) {
		if gap := obs[limited+1].at.Sub(obs[limited].at); gap < 900*time.Millisecond {
			t.Errorf("next poll %s after the 429 with Retry-After: 1, want about 1s or more", gap)
		}
	}
	for _, want := range []string{"poll failed", "rate limiting", "HTTP 500", "outside 0..100"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not mention %q:\n%s", want, logs.String())
		}
	}

	// A new good reading replaces the stored one.
	f.Push(60, "Greed", day(2))
	waitFor(t, 2*time.Second, "the new reading", func() bool { r, _ := sink.last(); return r.Value == 60 })
	stop()

	readings, obs = sink.snapshot()
	for i, r := range readings {
		if r.Value == 0 || r.Value == 101 {
			t.Errorf("reading %d = %+v was stored", i, r)
		}
	}
	if got := readings[len(readings)-1]; got.Classification != "Greed" || !got.Updated.Equal(day(2)) {
		t.Errorf("last reading = %+v, want 60 Greed %s", got, day(2))
	}
	if last := obs[len(obs)-1]; last.err != nil {
		t.Errorf("last poll failed: %v", last.err)
	}
	if f.Requests() < len(obs) {
		t.Errorf("fake saw %d requests, fewer than the %d observed polls", f.Requests(), len(obs))
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.endpoints) != 1 || sink.endpoints[0] != "feargreed/fng" {
		t.Errorf("declared poll endpoints %v, want [feargreed/fng]", sink.endpoints)
	}
	for _, s := range sink.sources {
		if s != feargreed.Source {
			t.Errorf("source %q, want %q", s, feargreed.Source)
		}
	}
}

// TestRunQuery checks that limit=1 is added to the configured URL whether or
// not it already has a query.
func TestRunQuery(t *testing.T) {
	sample := readTestdata(t, "sample.json")
	queries := make(chan url.Values, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fng/" {
			http.NotFound(w, r)
			return
		}
		queries <- r.URL.Query()
		_, _ = w.Write(sample)
	}))
	defer srv.Close()

	for _, tc := range []struct {
		suffix string
		want   url.Values
	}{
		{"/fng/", url.Values{"limit": {"1"}}},
		{"/fng/?", url.Values{"limit": {"1"}}},
		{"/fng/?format=json", url.Values{"format": {"json"}, "limit": {"1"}}},
		{"/fng/?limit=10&date_format=", url.Values{"limit": {"1"}, "date_format": {""}}},
	} {
		t.Run(tc.suffix, func(t *testing.T) {
			sink := &recordingSink{}
			stop := startRun(t, feargreed.Config{URL: srv.URL + tc.suffix, Interval: time.Hour}, sink)
			var q url.Values
			select {
			case q = <-queries:
			case <-time.After(2 * time.Second):
				t.Fatal("no request")
			}
			waitFor(t, 2*time.Second, "the reading", func() bool { _, ok := sink.last(); return ok })
			stop()
			if q.Encode() != tc.want.Encode() {
				t.Errorf("query %q, want %q", q.Encode(), tc.want.Encode())
			}
			if r, _ := sink.last(); r.Value != 54 {
				t.Errorf("stored %+v, want 54", r)
			}
		})
	}
}

// TestRunTimeout checks that a hanging source is a failed poll, not a zero.
func TestRunTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	sink := &recordingSink{}
	stop := startRun(t, feargreed.Config{
		URL:      srv.URL + "/fng/",
		Interval: 20 * time.Millisecond,
		Client:   exchanges.NewClient(50*time.Millisecond, "test"),
	}, sink)
	waitFor(t, 2*time.Second, "two failed polls", func() bool { _, obs := sink.snapshot(); return len(obs) >= 2 })
	stop()
	readings, obs := sink.snapshot()
	if len(readings) != 0 {
		t.Errorf("stored %+v from a source that never answered", readings)
	}
	for _, o := range obs {
		var ne interface{ Timeout() bool }
		if !errors.As(o.err, &ne) || !ne.Timeout() {
			t.Errorf("observation error %v, want a timeout", o.err)
		}
	}
}

// TestRunBadURL checks that an unusable URL shows as failed polls.
func TestRunBadURL(t *testing.T) {
	sink := &recordingSink{}
	stop := startRun(t, feargreed.Config{URL: "ftp://example.invalid/fng/", Interval: 10 * time.Millisecond}, sink)
	waitFor(t, 2*time.Second, "a failed poll", func() bool { _, obs := sink.snapshot(); return len(obs) >= 1 })
	stop()
	_, obs := sink.snapshot()
	if obs[0].err == nil || !strings.Contains(obs[0].err.Error(), "scheme must be http or https") {
		t.Errorf("observation error %v, want a bad URL error", obs[0].err)
	}
}
