package deribit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/venuetest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

type harness struct {
	*venuetest.Harness
	fake *exchangetest.Deribit
	v    *Venue
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := exchangetest.NewDeribit()
	t.Cleanup(fake.Close)
	fake.SetInstruments(exchangetest.DeribitSampleInstruments())
	h := &harness{Harness: venuetest.New(t), fake: fake}
	h.Timeout = 15 * time.Second
	return h
}

func (h *harness) run(t *testing.T, mod func(*Config)) {
	t.Helper()
	cfg := Config{
		REST: h.fake.RESTURL(), WS: h.fake.WSURL(),
		PollInterval:        300 * time.Millisecond,
		InstrumentsInterval: time.Hour,
		RefreshSpacing:      100 * time.Millisecond,
		Client:              exchanges.NewClient(2*time.Second, "test"),
		Logger:              slog.New(slog.DiscardHandler),
		Stream: func(c *wsconn.Config) {
			venuetest.FastStream(c)
			c.ReadTimeout = 5 * time.Second
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h.v = New(cfg)
	h.Start(h.v.Run)
}

func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := newHarness(t)
	h.run(t, mod)
	return h
}

var channels = []string{Channel("BTC"), Channel("ETH"), Channel("USDC")}

func (h *harness) waitUp(t *testing.T) collectortest.Samples {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.fake.WaitSubscribed(ctx, channels...); err != nil {
		t.Fatal(err)
	}
	return h.WaitStreamsUp(t, "deribit", StreamName)
}

// val reads a series, NaN when missing.
var val = venuetest.Val

func inst(market, symbol, coin string) []string {
	return []string{"exchange", "deribit", "market", market, "symbol", symbol, "coin", coin}
}

func streamLabels() []string { return []string{"exchange", "deribit", "stream", StreamName} }

func endpoints() []string {
	var out []string
	for _, c := range []string{"btc", "eth", "usdc"} {
		out = append(out, c+"_instruments", c+"_book_summary")
	}
	return out
}

func TestVenueDiscovery(t *testing.T) {
	h := start(t, nil)
	s := h.waitUp(t)
	future := exchangetest.DeribitSampleInstruments()[2].Name
	for _, want := range [][]string{
		append(inst("inverse", "BTC-PERPETUAL", "BTC"), "quote", "USD", "contract_type", "perpetual"),
		append(inst("inverse", "ETH-PERPETUAL", "ETH"), "quote", "USD", "contract_type", "perpetual"),
		append(inst("inverse", future, "BTC"), "quote", "USD", "contract_type", "future"),
		append(inst("linear", "BTC_USDC-PERPETUAL", "BTC"), "quote", "USDC", "contract_type", "perpetual"),
		append(inst("linear", "ETH_USDC-PERPETUAL", "ETH"), "quote", "USDC", "contract_type", "perpetual"),
	} {
		if _, ok := s.Get("crypto_market_info", want...); !ok {
			t.Errorf("missing crypto_market_info%v", want)
		}
	}
	if n := len(s.Names("crypto_market_info")); n != 5 {
		t.Errorf("%d instruments, want 5", n)
	}
	if n := len(s.Names("crypto_liquidations_total")); n != 10 {
		t.Errorf("%d liquidation counters, want 10 (pre-initialised)", n)
	}
	for _, m := range []string{"linear", "inverse"} {
		if v := val(s, "crypto_exporter_liquidation_feed_complete", "exchange", "deribit", "market", m); v != 1 {
			t.Errorf("feed complete %s = %v", m, v)
		}
	}
	if n := len(s.Names("crypto_exporter_stream_up")); n != 1 {
		t.Errorf("%d streams, want 1", n)
	}
	if h.fake.Channels()[Channel("BTC")] != 1 || len(h.fake.Channels()) != 3 {
		t.Errorf("channels %v", h.fake.Channels())
	}
	s = h.Eventually(t, "every poll succeeded", func(s collectortest.Samples) bool {
		for _, ep := range endpoints() {
			if val(s, "crypto_exporter_poll_success", "exchange", "deribit", "endpoint", ep) != 1 {
				return false
			}
		}
		return true
	})
	if n := len(s.Names("crypto_exporter_poll_success")); n != 6 {
		t.Errorf("%d endpoints, want 6", n)
	}
	if sets, _, _, _ := h.fake.HeartbeatStats(); sets != 1 {
		t.Errorf("%d set_heartbeat calls, want 1", sets)
	}
}

func TestVenueDeclaresBeforeDiscovery(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext(exchangetest.DeribitInstrumentsPath, 1000, 503, 0, "")
	h.run(t, func(c *Config) { c.PollInterval = 5 * time.Second })
	s := h.Eventually(t, "failed discovery", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "deribit", "endpoint", "btc_instruments") >= 1
	})
	if _, ok := s.Get("crypto_exporter_stream_up", streamLabels()...); !ok {
		t.Error("stream not declared")
	}
	for _, ep := range endpoints() {
		if _, ok := s.Get("crypto_exporter_poll_success", "exchange", "deribit", "endpoint", ep); !ok {
			t.Errorf("poll %s not declared", ep)
		}
	}
}

// truth is the independently computed expectation per series.
type truth map[string]float64

func (tr truth) add(market, symbol, coin, side string, usd float64) {
	tr[collectortest.Key("crypto_liquidations_total", append(inst(market, symbol, coin), "side", side)...)]++
	tr[collectortest.Key("crypto_liquidation_notional_usd_total", append(inst(market, symbol, coin), "side", side)...)] += usd
}

func TestVenueTapeWithDisconnect(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	type instr struct{ name, market, coin, cur string }
	ins := []instr{
		{"BTC-PERPETUAL", "inverse", "BTC", "BTC"}, {"ETH-PERPETUAL", "inverse", "ETH", "ETH"},
		{"BTC_USDC-PERPETUAL", "linear", "BTC", "USDC"}, {"ETH_USDC-PERPETUAL", "linear", "ETH", "USDC"},
	}
	want := truth{}
	var frames [][]byte
	n := 0
	for round := range 2 {
		for i, in := range ins {
			for _, liq := range []string{"T", "M", "MT", ""} {
				for _, dir := range []string{"buy", "sell"} {
					n++
					amt, px := float64(100*(n%7+1)), 1000.0+float64(n)
					if in.market == "linear" {
						amt = 0.01 * float64(n%5+1)
					}
					tr := exchangetest.DeribitTrade{InstrumentName: in.name, Direction: dir, Amount: amt, Price: px, Liquidation: liq,
						TradeID: fmt.Sprintf("%d-%d-%d", round, i, n)}
					frames = append(frames, exchangetest.DeribitTradesFrame(Channel(in.cur), tr))
					usd := amt
					if in.market == "linear" {
						usd = amt * px
					}
					long := (liq == "T" && dir == "sell") || (liq == "M" && dir == "buy")
					switch {
					case liq == "MT":
						want.add(in.market, in.name, in.coin, "long", usd)
						want.add(in.market, in.name, in.coin, "short", usd)
					case liq == "":
					case long:
						want.add(in.market, in.name, in.coin, "long", usd)
					default:
						want.add(in.market, in.name, in.coin, "short", usd)
					}
				}
			}
		}
	}
	// Noise: a repeated trade (counted once), history (not counted), a
	// malformed frame and a malformed trade (decode errors).
	dup := frames[0]
	old := exchangetest.DeribitTradesFrame(Channel("BTC"), exchangetest.DeribitTrade{InstrumentName: "BTC-PERPETUAL", Direction: "sell",
		Amount: 1e6, Price: 1, Liquidation: "T", Timestamp: time.Now().Add(-time.Hour).UnixMilli()})
	badTrade := exchangetest.DeribitTradesFrame(Channel("ETH"), exchangetest.DeribitTrade{InstrumentName: "ETH-PERPETUAL", Direction: "sideways",
		Amount: 10, Price: 1, Liquidation: "T"})
	half := len(frames) / 2
	var events []exchangetest.Event
	for _, f := range frames[:half] {
		events = append(events, exchangetest.Event{Frame: f})
	}
	events = append(events, exchangetest.Event{Frame: dup}, exchangetest.Event{Frame: old},
		exchangetest.Event{Frame: []byte(`{"jsonrpc":"2.0","method":"subscription","params":{`)},
		exchangetest.Event{Frame: badTrade}, exchangetest.Event{Disconnect: true})
	for _, f := range frames[half:] {
		events = append(events, exchangetest.Event{Frame: f})
	}
	delivered := h.fake.Play(events)
	for i, d := range delivered {
		if d.Conns != 1 {
			t.Fatalf("frame %d delivered to %d connections", i, d.Conns)
		}
	}
	s := h.Eventually(t, "every liquidation counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total", "exchange", "deribit") == want.sum("crypto_liquidations_total")
	})
	for k, w := range want {
		if !collectortest.Close(s[k], w) {
			t.Errorf("%s = %v, want %v", k, s[k], w)
		}
	}
	for _, k := range s.Names("crypto_liquidations_total") {
		if _, ok := want[k]; !ok && s[k] != 0 {
			t.Errorf("unexpected %s = %v", k, s[k])
		}
	}
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels()...); got != 2 {
		t.Errorf("decode errors %v, want 2", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", streamLabels()...); got != 2 {
		t.Errorf("connects %v, want 2", got)
	}
	if got := s.Sum("crypto_liquidation_size_usd_count", "exchange", "deribit"); got != want.sum("crypto_liquidations_total") {
		t.Errorf("histogram count %v", got)
	}
}

func (tr truth) sum(name string) float64 {
	total := 0.0
	for k, v := range tr {
		if len(k) > len(name) && k[:len(name)+1] == name+"{" {
			total += v
		}
	}
	return total
}

func TestVenueGauges(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	s := h.Eventually(t, "gauges", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_mark_price_usd")) == 5 && len(s.Names("crypto_open_interest_usd")) == 5
	})
	for _, in := range h.fake.Instruments() {
		mk := "inverse"
		if in.InstrumentType == "linear" {
			mk = "linear"
		}
		l := inst(mk, in.Name, in.BaseCurrency)
		oiUSD, oiCoins := in.OpenInterest, in.OpenInterest/in.MarkPrice
		if mk == "linear" {
			oiUSD, oiCoins = in.OpenInterest*in.MarkPrice, in.OpenInterest
		}
		checks := map[string]float64{
			"crypto_mark_price_usd": in.MarkPrice, "crypto_open_interest_usd": oiUSD, "crypto_open_interest_coins": oiCoins,
			"crypto_volume_24h_usd": in.VolumeUSD,
		}
		if in.SettlementPeriod == "perpetual" {
			checks["crypto_funding_rate_ratio"] = in.Funding8h
			checks["crypto_funding_interval_seconds"] = 28800
		} else if _, ok := s.Get("crypto_funding_rate_ratio", l...); ok {
			t.Errorf("%s: funding exported for a dated future", in.Name)
		}
		for name, want := range checks {
			if got := val(s, name, l...); !collectortest.Close(got, want) {
				t.Errorf("%s%v = %v, want %v", name, l, got, want)
			}
		}
	}
	next := val(s, "crypto_funding_next_timestamp_seconds", inst("inverse", "BTC-PERPETUAL", "BTC")...)
	if want := exchanges.NextBoundary(time.Now(), FundingInterval); math.Abs(next-want) > 8*3600 || int64(next)%(8*3600) != 0 {
		t.Errorf("next funding %v, want an 8 h boundary near %v", next, want)
	}
	// The gauges follow the fake.
	h.fake.UpdateInstrument("BTC-PERPETUAL", func(i *exchangetest.DeribitInstrument) { i.MarkPrice = 70000 })
	h.Eventually(t, "new mark", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", inst("inverse", "BTC-PERPETUAL", "BTC")...) == 70000
	})
}

func TestVenueRateLimitHonoursRetryAfter(t *testing.T) {
	h := start(t, nil)
	path := exchangetest.DeribitBookSummaryPath + "?currency=ETH"
	h.Eventually(t, "first ETH summary", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "deribit", "endpoint", "eth_book_summary") == 1
	})
	h.fake.FailNext(path, 1, 429, 2, "")
	h.Eventually(t, "429 seen", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "deribit", "endpoint", "eth_book_summary") == 1
	})
	n := h.fake.Requests(path)
	time.Sleep(1500 * time.Millisecond) // five poll intervals, within Retry-After
	if got := h.fake.Requests(path); got != n {
		t.Errorf("%d requests during Retry-After", got-n)
	}
	h.Eventually(t, "recovery", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "deribit", "endpoint", "eth_book_summary") == 1
	})
	// Deribit's error code 10028 with HTTP 400 counts as a rate limit too.
	h.fake.FailNext(path, 1, 400, 0, `{"jsonrpc":"2.0","error":{"message":"too_many_requests","code":10028},"testnet":false}`)
	h.Eventually(t, "10028 seen", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "deribit", "endpoint", "eth_book_summary") == 2
	})
	n = h.fake.Requests(path)
	time.Sleep(400 * time.Millisecond) // back-off is at least 2 intervals
	if got := h.fake.Requests(path); got != n {
		t.Errorf("%d requests during the back-off", got-n)
	}
}

func TestVenuePollFailuresKeepLastValues(t *testing.T) {
	h := start(t, func(c *Config) { c.PollInterval = time.Second })
	l := inst("inverse", "BTC-PERPETUAL", "BTC")
	h.Eventually(t, "first values", func(s collectortest.Samples) bool {
		return val(s, "crypto_mark_price_usd", l...) == 60000.5
	})
	h.fake.FailNext(exchangetest.DeribitBookSummaryPath+"?currency=BTC", 1, 503, 0, "")
	h.fake.FailNext(exchangetest.DeribitBookSummaryPath+"?currency=BTC", 1, 200, 0, `{"jsonrpc":"2.0","result":`)
	s := h.Eventually(t, "failed poll", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "deribit", "endpoint", "btc_book_summary") == 0
	})
	if got := val(s, "crypto_mark_price_usd", l...); got != 60000.5 {
		t.Errorf("mark after failed poll %v", got)
	}
	s = h.Eventually(t, "second failure", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_failures_total", "exchange", "deribit", "endpoint", "btc_book_summary") == 2
	})
	if got := val(s, "crypto_mark_price_usd", l...); got != 60000.5 {
		t.Errorf("mark after two failed polls %v", got)
	}
	h.Eventually(t, "recovery", func(s collectortest.Samples) bool {
		return val(s, "crypto_exporter_poll_success", "exchange", "deribit", "endpoint", "btc_book_summary") == 1
	})
}

func TestVenueSubscriptionError(t *testing.T) {
	h := newHarness(t)
	h.fake.RejectNextSubscribe(1)
	h.run(t, nil)
	s := h.waitUp(t)
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels()...); got != 1 {
		t.Errorf("decode errors %v, want 1 (the rejected subscribe)", got)
	}
	if got := val(s, "crypto_exporter_stream_connects_total", streamLabels()...); got != 2 {
		t.Errorf("connects %v, want 2", got)
	}
	// The retried connection counts liquidations.
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.DeribitTradesFrame(Channel("BTC"),
		exchangetest.DeribitTrade{InstrumentName: "BTC-PERPETUAL", Direction: "sell", Amount: 500, Price: 60000, Liquidation: "T"})}})
	h.Eventually(t, "liquidation", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", append(inst("inverse", "BTC-PERPETUAL", "BTC"), "side", "long")...) == 500
	})
}

func TestVenueHeartbeat(t *testing.T) {
	h := newHarness(t)
	h.fake.SetHeartbeatPeriod(150 * time.Millisecond)
	h.fake.SetTestWait(time.Second)
	h.run(t, nil)
	h.waitUp(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, reqs, _, _ := h.fake.HeartbeatStats(); reqs >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for five test_requests")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // the test wait of the last one
	sets, reqs, tests, closed := h.fake.HeartbeatStats()
	if sets != 1 || closed != 0 || tests < reqs-1 {
		t.Errorf("set_heartbeat %d, test_requests %d, public/test %d, closed unanswered %d", sets, reqs, tests, closed)
	}
	s := h.Samples(t)
	if got := val(s, "crypto_exporter_stream_connects_total", streamLabels()...); got != 1 {
		t.Errorf("connects %v, want 1", got)
	}
	if got := val(s, "crypto_exporter_stream_up", streamLabels()...); got != 1 {
		t.Errorf("up %v", got)
	}
}

func TestVenueNewListing(t *testing.T) {
	h := start(t, nil)
	h.waitUp(t)
	sol := exchangetest.DeribitInstrument{Name: "SOL_USDC-PERPETUAL", Currency: "USDC", BaseCurrency: "SOL", QuoteCurrency: "USDC",
		SettlementCurrency: "USDC", InstrumentType: "linear", SettlementPeriod: "perpetual", ContractSize: 0.1,
		MarkPrice: 150, OpenInterest: 1000, VolumeUSD: 1e6, Funding8h: 0.0001}
	h.fake.SetInstruments(append(h.fake.Instruments(), sol))
	before := h.fake.Requests(exchangetest.DeribitInstrumentsPath + "?currency=USDC")
	liq := func(id string) []byte {
		return exchangetest.DeribitTradesFrame(Channel("USDC"), exchangetest.DeribitTrade{InstrumentName: sol.Name, Direction: "buy",
			Amount: 2, Price: 150, Liquidation: "T", TradeID: id})
	}
	h.fake.Play([]exchangetest.Event{{Frame: liq("s1")}})
	l := inst("linear", sol.Name, "SOL")
	s := h.Eventually(t, "SOL listed", func(s collectortest.Samples) bool {
		_, ok := s.Get("crypto_liquidations_total", append(l, "side", "short")...)
		return ok
	})
	if got := val(s, "crypto_exporter_stream_decode_errors_total", streamLabels()...); got != 1 {
		t.Errorf("decode errors %v, want 1 (the unknown instrument)", got)
	}
	if got := val(s, "crypto_liquidations_total", append(l, "side", "short")...); got != 0 {
		t.Errorf("the liquidation before the listing was counted: %v", got)
	}
	if got := h.fake.Requests(exchangetest.DeribitInstrumentsPath + "?currency=USDC"); got != before+1 {
		t.Errorf("%d USDC discoveries after the unknown instrument, want 1", got-before)
	}
	h.fake.Play([]exchangetest.Event{{Frame: liq("s2")}})
	h.Eventually(t, "SOL liquidation", func(s collectortest.Samples) bool {
		return val(s, "crypto_liquidation_notional_usd_total", append(l, "side", "short")...) == 300
	})
}

func TestVenueCoinAllowlist(t *testing.T) {
	h := start(t, func(c *Config) { c.Coins = []string{"ETH"} })
	h.waitUp(t)
	s := h.Eventually(t, "ETH instruments", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_market_info")) == 2
	})
	if _, ok := s.Get("crypto_market_info", append(inst("linear", "ETH_USDC-PERPETUAL", "ETH"), "quote", "USDC", "contract_type", "perpetual")...); !ok {
		t.Errorf("ETH_USDC-PERPETUAL missing: %v", s.Names("crypto_market_info"))
	}
	// A BTC liquidation is neither counted nor an error.
	h.fake.Play([]exchangetest.Event{{Frame: exchangetest.DeribitTradesFrame(Channel("BTC"),
		exchangetest.DeribitTrade{InstrumentName: "BTC-PERPETUAL", Direction: "sell", Amount: 500, Price: 60000, Liquidation: "T"})}})
	time.Sleep(200 * time.Millisecond)
	if got := val(h.Samples(t), "crypto_exporter_stream_decode_errors_total", streamLabels()...); got != 0 {
		t.Errorf("decode errors %v", got)
	}
}
