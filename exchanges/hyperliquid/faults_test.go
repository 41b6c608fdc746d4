package hyperliquid

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// Hyperliquid is REST only: the stream faults do not apply.

func TestFaultsRetryAfterOn403And418(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusForbidden, http.StatusTeapot} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			logs := exchangetest.NewLogRecorder()
			h := start(t, func(c *Config) { c.Logger = logs.Logger() })
			h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
			before := pollFailures(h.Samples(t))
			h.fake.FailNext(exchangetest.HyperliquidMetaAndAssetCtxs, 1, status, 2, "")
			s := h.Eventually(t, "the refusal counted", func(s collectortest.Samples) bool { return pollFailures(s) > before })
			n := h.fake.Requests("")
			if got := val(s, "crypto_mark_price_usd", inst("BTC", "BTC")...); got != 96512.5 {
				t.Errorf("mark after the refusal = %v, want the last value", got)
			}
			time.Sleep(time.Second) // five poll intervals, within the 2 s Retry-After
			if got := h.fake.Requests(""); got != n {
				t.Errorf("%d requests within the Retry-After", got-n)
			}
			h.Eventually(t, "recovery", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
			if n := logs.Count(slog.LevelWarn, "rate limiting"); n < 1 {
				t.Error("the back-off was not logged")
			}
		})
	}
}

func TestFaultsMaintenanceThenRecovery(t *testing.T) {
	t.Parallel()
	logs := exchangetest.NewLogRecorder()
	h := start(t, func(c *Config) { c.Logger = logs.Logger() })
	btc := inst("BTC", "BTC")
	h.Eventually(t, "a good poll", func(s collectortest.Samples) bool { return pollSuccess(s) == 1 })
	before := pollFailures(h.Samples(t))
	// 5xx for several polls (a maintenance window, shortened).
	h.fake.FailNext(exchangetest.HyperliquidMetaAndAssetCtxs, 4, http.StatusServiceUnavailable, 0, "<html>maintenance</html>")
	s := h.Eventually(t, "the first 503", func(s collectortest.Samples) bool { return pollFailures(s) > before })
	if got := val(s, "crypto_mark_price_usd", btc...); got != 96512.5 {
		t.Errorf("mark during the outage = %v, want the last value", got)
	}
	h.fake.UpdateAsset("BTC", func(a *exchangetest.HyperliquidAsset) { a.MarkPx = 97000 })
	s = h.Eventually(t, "recovery with new values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", btc...) == 97000 && pollSuccess(s) == 1
	})
	if got := pollFailures(s); got != before+4 {
		t.Errorf("failures %v, want %v (four 503s)", got, before+4)
	}
	if got := len(s.Names("crypto_market_info")); got != 3 {
		t.Errorf("%d instruments after the outage, want 3", got)
	}
	if n := logs.Count(slog.LevelWarn, "poll failed"); n < 4 {
		t.Errorf("%d failed polls logged, want >= 4", n)
	}
}
