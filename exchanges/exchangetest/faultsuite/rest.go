package faultsuite

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
)

// RESTFake is what the REST scenarios drive of a venue's fake.
type RESTFake interface {
	FailNext(path string, n, status, retryAfter int, body string)
	Requests(path string) int
}

// REST describes one polled endpoint of a running venue whose polls run
// every 200 ms.
type REST struct {
	Samples func(testing.TB) collectortest.Samples
	Fake    RESTFake
	Logs    *exchangetest.LogRecorder

	Path     string   // the request path (with its query) the fake fails
	Endpoint []string // label pairs of the endpoint's poll series
	// Mark is the label pairs of a crypto_mark_price_usd series the poll
	// feeds, and MarkValue its value from the fake.
	Mark      []string
	MarkValue float64
}

func (r *REST) val(s collectortest.Samples, name string, labels ...string) float64 {
	x, _ := s.Get(name, labels...)
	return x
}

// eventually waits up to 15 s for cond, confirmed on a second scrape
// (venuetest.Eventually).
func (r *REST) eventually(t *testing.T, what string, cond func(collectortest.Samples) bool) collectortest.Samples {
	t.Helper()
	return venuetest.Eventually(t, r.Samples, 15*time.Second, what, cond)
}

func (r *REST) polled(s collectortest.Samples) bool {
	return r.val(s, "crypto_exporter_poll_success", r.Endpoint...) == 1
}

// RetryAfterOn403And418 checks that a 403 or 418 with Retry-After is a failed poll
// that keeps the last values; nothing is sent to the endpoint within the
// Retry-After (2 s, ten poll intervals); the back-off is logged and the
// polls recover after it. start starts a venue for each status.
func RetryAfterOn403And418(t *testing.T, start func(t *testing.T) *REST) {
	t.Helper()
	for _, status := range []int{http.StatusForbidden, http.StatusTeapot} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			r := start(t)
			r.eventually(t, "the first poll", r.polled)
			failures := func(s collectortest.Samples) float64 {
				return r.val(s, "crypto_exporter_poll_failures_total", r.Endpoint...)
			}
			before := failures(r.Samples(t))
			r.Fake.FailNext(r.Path, 1, status, 2, "")
			s := r.eventually(t, "the refusal counted", func(s collectortest.Samples) bool { return failures(s) > before })
			n := r.Fake.Requests(r.Path)
			if got := r.val(s, "crypto_mark_price_usd", r.Mark...); got != r.MarkValue {
				t.Errorf("mark after the refusal = %v, want the last value %v", got, r.MarkValue)
			}
			time.Sleep(time.Second) // five poll intervals, within the 2 s Retry-After
			if got := r.Fake.Requests(r.Path); got != n {
				t.Errorf("%d requests within the Retry-After", got-n)
			}
			r.eventually(t, "recovery", r.polled)
			if n := r.Logs.Count(slog.LevelWarn, "rate limiting"); n < 1 {
				t.Error("the back-off was not logged")
			}
		})
	}
}
