package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// The end-to-end tests build the real binary and run it against the fake
// venues on loopback ports.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "derivatives_exporter-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "derivatives_exporter")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// exporterProcess is a running exporter binary.
type exporterProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startExporter(t *testing.T, config string, extraArgs ...string) *exporterProcess {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &exporterProcess{addr: freePort(t), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	args := append([]string{"--config.file=" + cfgPath, "--web.listen-address=" + p.addr, "--log.level=debug"}, extraArgs...)
	p.cmd = exec.Command(exporterBinary(t), args...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("exporter log:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *exporterProcess) scrape(t *testing.T) (collectortest.Samples, error) {
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return collectortest.FromText(resp.Body)
}

// eventually scrapes until cond holds or 20 s pass.
func (p *exporterProcess) eventually(t *testing.T, what string, cond func(collectortest.Samples) bool) collectortest.Samples {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last collectortest.Samples
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			t.Fatalf("exporter exited while waiting for %s: %v", what, err)
		default:
		}
		s, err := p.scrape(t)
		if err == nil {
			last = s
			if cond(s) {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
	return last
}

func e2eConfig(usdm, coinm *exchangetest.BinanceMarket, fg *exchangetest.FearGreed) string {
	return fmt.Sprintf(`
exchanges:
  binance:
    endpoints:
      usdm_rest: %s
      usdm_ws: %s
      coinm_rest: %s
      coinm_ws: %s
fear_greed:
  url: %s
  interval: 1s
polling:
  interval: 1s
  timeout: 2s
price_levels:
  BTC: [96000, 100000]
  ETH: [3300]
`, usdm.RESTURL(), usdm.WSURL(), coinm.RESTURL(), coinm.WSURL(), fg.URL())
}

var e2eUSDM = []exchangetest.BinanceSymbol{
	{Symbol: "BTCUSDT", Pair: "BTCUSDT", BaseAsset: "BTC", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING",
		MarkPrice: 97123.4, IndexPrice: 97100, LastFundingRate: 0.0001, NextFundingTime: 1_800_000_000_000, OpenInterest: 81234.5, Volume: 1.2e5, QuoteVolume: 1.1e10},
	{Symbol: "ETHUSDT", Pair: "ETHUSDT", BaseAsset: "ETH", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING", FundingIntervalHours: 4,
		MarkPrice: 3350.75, IndexPrice: 3350, LastFundingRate: -0.0002, NextFundingTime: 1_800_000_000_000, OpenInterest: 2.1e6, Volume: 3e6, QuoteVolume: 9e9},
	{Symbol: "1000PEPEUSDT", Pair: "1000PEPEUSDT", BaseAsset: "1000PEPE", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "TRADING",
		MarkPrice: 0.0188, IndexPrice: 0.0188, LastFundingRate: 0.0003, NextFundingTime: 1_800_000_000_000, OpenInterest: 6e9, Volume: 1e11, QuoteVolume: 1.9e9},
	{Symbol: "SOLUSDC", Pair: "SOLUSDC", BaseAsset: "SOL", QuoteAsset: "USDC", MarginAsset: "USDC", ContractType: "PERPETUAL", Status: "TRADING",
		MarkPrice: 210.5, IndexPrice: 210.4, LastFundingRate: 0.0001, NextFundingTime: 1_800_000_000_000, OpenInterest: 5e5, Volume: 1e6, QuoteVolume: 2.1e8},
	{Symbol: "DOWNUSDT", Pair: "DOWNUSDT", BaseAsset: "DOWN", QuoteAsset: "USDT", MarginAsset: "USDT", ContractType: "PERPETUAL", Status: "SETTLING",
		MarkPrice: 1, LastFundingRate: 0, OpenInterest: 1},
}

var e2eCoinM = []exchangetest.BinanceSymbol{
	{Symbol: "BTCUSD_PERP", Pair: "BTCUSD", BaseAsset: "BTC", QuoteAsset: "USD", MarginAsset: "BTC", ContractType: "PERPETUAL", Status: "TRADING", ContractSize: 100,
		MarkPrice: 97150, IndexPrice: 97100, LastFundingRate: 0.00015, NextFundingTime: 1_800_000_000_000, OpenInterest: 950000, Volume: 3e6, BaseVolume: 3100},
	{Symbol: "ETHUSD_261225", Pair: "ETHUSD", BaseAsset: "ETH", QuoteAsset: "USD", MarginAsset: "ETH", ContractType: "CURRENT_QUARTER", Status: "TRADING", ContractSize: 10,
		MarkPrice: 3400, IndexPrice: 3350, LastFundingRate: math.NaN(), OpenInterest: 80000, Volume: 2e5, BaseVolume: 600},
}

// tapeEntry is one step of a scripted feed with its ground truth.
type tapeEntry struct {
	order   *exchangetest.ForceOrder // a good liquidation
	garbage []byte                   // a frame that must be dropped and counted
	event   exchangetest.Event       // a non-frame step (disconnect, ping)
}

func TestEndToEnd(t *testing.T) {
	usdm := exchangetest.NewBinanceMarket("usdm")
	defer usdm.Close()
	coinm := exchangetest.NewBinanceMarket("coinm")
	defer coinm.Close()
	fg := exchangetest.NewFearGreed()
	defer fg.Close()
	usdm.SetSymbols(e2eUSDM)
	coinm.SetSymbols(e2eCoinM)
	fgTime := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	fg.Push(71, "Greed", fgTime.Add(-24*time.Hour))
	fg.Push(70, "Greed", fgTime)

	p := startExporter(t, e2eConfig(usdm, coinm, fg))

	// /metrics answers before any venue is connected, with the health
	// series of every configured stream and poll already present.
	s := p.eventually(t, "first scrape", func(collectortest.Samples) bool { return true })
	for _, stream := range []string{"usdm_force_order", "coinm_force_order"} {
		if _, ok := s.Get("crypto_exporter_stream_up", "exchange", "binance", "stream", stream); !ok {
			t.Errorf("crypto_exporter_stream_up for %s missing at start-up", stream)
		}
	}
	if _, ok := s.Get("crypto_exporter_poll_success", "exchange", "feargreed", "endpoint", "fng"); !ok {
		t.Error("Fear & Greed poll_success missing at start-up")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := usdm.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := coinm.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// The tapes: good liquidations of both sides on every kind of
	// instrument, garbage frames between them, a server ping and an abrupt
	// disconnect in the middle of the USDⓈ-M feed.
	fo := func(sym, pair, side string, qty, px float64) *exchangetest.ForceOrder {
		return &exchangetest.ForceOrder{Symbol: sym, Pair: pair, Side: side, Qty: qty, Price: px * 0.99, AvgPrice: px, FilledQty: qty, LastFilledQty: qty}
	}
	usdmTape := []tapeEntry{
		{order: fo("BTCUSDT", "", "SELL", 0.5, 97000)},
		{order: fo("BTCUSDT", "", "BUY", 1.25, 97500.5)},
		{garbage: []byte(`{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT"`)},
		{order: fo("ETHUSDT", "", "SELL", 12, 3349.5)},
		{garbage: []byte(`{"e":"aggTrade","E":1,"s":"BTCUSDT"}`)},
		{order: fo("1000PEPEUSDT", "", "SELL", 2.5e6, 0.0187)},
		{event: exchangetest.Event{Ping: []byte("keepalive")}},
		{garbage: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "ETHUSDT", Side: "SELL", Qty: 1, AvgPrice: 3000, FilledQty: -1})},
		{order: fo("SOLUSDC", "", "BUY", 300, 211.25)},
		{event: exchangetest.Event{Delay: 300 * time.Millisecond, Disconnect: true}},
		{order: fo("BTCUSDT", "", "SELL", 2, 96950)},
		{garbage: exchangetest.ForceOrderFrame(exchangetest.ForceOrder{Symbol: "NOTLISTEDUSDT", Side: "SELL", Qty: 1, AvgPrice: 1, FilledQty: 1})},
		{garbage: []byte("\x00\x01 definitely not json")},
		{order: fo("ETHUSDT", "", "BUY", 40, 3360)},
		{order: fo("BTCUSDT", "", "SELL", 0.001, 96900)},
	}
	coinmTape := []tapeEntry{
		{order: fo("BTCUSD_PERP", "BTCUSD", "SELL", 150, 97000)},
		{garbage: []byte(`[{"e":"bogus"}]`)},
		{order: fo("ETHUSD_261225", "ETHUSD", "BUY", 33, 3390)},
		{order: fo("BTCUSD_PERP", "BTCUSD", "BUY", 7, 97200)},
	}

	// Ground truth, computed from the tapes with the project's rules and the
	// fakes' instrument lists, independently of the exporter's code.
	type key struct{ market, symbol, coin, side string }
	type truth struct{ count, notional float64 }
	expected := map[key]truth{}
	coins := map[string]string{"BTCUSDT": "BTC", "ETHUSDT": "ETH", "1000PEPEUSDT": "PEPE", "SOLUSDC": "SOL", "BTCUSD_PERP": "BTC", "ETHUSD_261225": "ETH"}
	contractSize := map[string]float64{"BTCUSD_PERP": 100, "ETHUSD_261225": 10}
	record := func(market string, tape []tapeEntry) (events []exchangetest.Event, bad int) {
		for _, e := range tape {
			switch {
			case e.order != nil:
				side := map[string]string{"SELL": "long", "BUY": "short"}[e.order.Side]
				k := key{market, e.order.Symbol, coins[e.order.Symbol], side}
				n := e.order.FilledQty * e.order.AvgPrice
				if market == "inverse" {
					n = e.order.FilledQty * contractSize[e.order.Symbol]
				}
				tr := expected[k]
				tr.count++
				tr.notional += n
				expected[k] = tr
				events = append(events, exchangetest.Event{Delay: 10 * time.Millisecond, Frame: exchangetest.ForceOrderFrame(*e.order)})
			case e.garbage != nil:
				bad++
				events = append(events, exchangetest.Event{Delay: 10 * time.Millisecond, Frame: e.garbage})
			default:
				events = append(events, e.event)
			}
		}
		return events, bad
	}
	usdmEvents, usdmBad := record("linear", usdmTape)
	coinmEvents, coinmBad := record("inverse", coinmTape)

	var wg sync.WaitGroup
	var usdmDelivered, coinmDelivered []exchangetest.Delivered
	wg.Add(2)
	go func() { defer wg.Done(); usdmDelivered = usdm.Play(usdmEvents) }()
	go func() { defer wg.Done(); coinmDelivered = coinm.Play(coinmEvents) }()
	wg.Wait()
	for _, d := range append(usdmDelivered, coinmDelivered...) {
		if d.Frame != nil && d.Conns != 1 {
			t.Fatalf("fake delivered frame %q to %d connections, want 1", d.Frame, d.Conns)
		}
	}

	var wantCount float64
	for _, tr := range expected {
		wantCount += tr.count
	}
	s = p.eventually(t, "every tape event counted", func(s collectortest.Samples) bool {
		return s.Sum("crypto_liquidations_total") >= wantCount &&
			s.Sum("crypto_exporter_stream_decode_errors_total") >= float64(usdmBad+coinmBad)
	})

	// Series by series: every liquidation counter of every instrument.
	instruments := map[string]string{"BTCUSDT": "linear", "ETHUSDT": "linear", "1000PEPEUSDT": "linear", "SOLUSDC": "linear", "BTCUSD_PERP": "inverse", "ETHUSD_261225": "inverse"}
	if n := len(s.Names("crypto_liquidations_total")); n != 2*len(instruments) {
		t.Errorf("%d crypto_liquidations_total series, want %d (2 sides x %d trading instruments)", n, 2*len(instruments), len(instruments))
	}
	for sym, market := range instruments {
		for _, side := range []string{"long", "short"} {
			k := key{market, sym, coins[sym], side}
			labels := []string{"exchange", "binance", "market", market, "symbol", sym, "coin", coins[sym], "side", side}
			gotCount, ok := s.Get("crypto_liquidations_total", labels...)
			if !ok {
				t.Errorf("crypto_liquidations_total%v missing", labels)
				continue
			}
			gotNotional, _ := s.Get("crypto_liquidation_notional_usd_total", labels...)
			if gotCount != expected[k].count || !collectortest.Close(gotNotional, expected[k].notional) {
				t.Errorf("%s %s: count %v notional %v; tape says %v and %v", sym, side, gotCount, gotNotional, expected[k].count, expected[k].notional)
			}
		}
	}
	// Histogram totals agree with the counters.
	for _, side := range []string{"long", "short"} {
		var c, n float64
		for k, tr := range expected {
			if k.side == side {
				c += tr.count
				n += tr.notional
			}
		}
		gotC, _ := s.Get("crypto_liquidation_size_usd_count", "exchange", "binance", "side", side)
		gotN, _ := s.Get("crypto_liquidation_size_usd_sum", "exchange", "binance", "side", side)
		if gotC != c || !collectortest.Close(gotN, n) {
			t.Errorf("size histogram %s: count %v sum %v, want %v %v", side, gotC, gotN, c, n)
		}
	}
	for stream, bad := range map[string]int{"usdm_force_order": usdmBad, "coinm_force_order": coinmBad} {
		if got, _ := s.Get("crypto_exporter_stream_decode_errors_total", "exchange", "binance", "stream", stream); got != float64(bad) {
			t.Errorf("%s decode errors %v, want %d", stream, got, bad)
		}
		if got, _ := s.Get("crypto_exporter_stream_up", "exchange", "binance", "stream", stream); got != 1 {
			t.Errorf("%s up = %v", stream, got)
		}
	}
	if got, _ := s.Get("crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "usdm_force_order"); got != 2 {
		t.Errorf("usdm connects %v, want 2 (one mid-stream disconnect)", got)
	}
	if got, _ := s.Get("crypto_exporter_stream_connects_total", "exchange", "binance", "stream", "coinm_force_order"); got != 1 {
		t.Errorf("coinm connects %v, want 1", got)
	}
	if usdm.Pongs() < 1 {
		t.Error("the server ping was not answered with a pong")
	}
	for _, m := range []string{"linear", "inverse"} {
		if got, ok := s.Get("crypto_exporter_liquidation_feed_complete", "exchange", "binance", "market", m); !ok || got != 0 {
			t.Errorf("feed_complete %s = %v (present %v), want 0", m, got, ok)
		}
	}

	// Polled gauges and sentiment.
	s = p.eventually(t, "polled gauges", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_open_interest_usd")) == len(instruments) && len(s.Names("crypto_fear_greed_index")) == 1 &&
			len(s.Names("crypto_open_interest_coins")) == len(instruments) &&
			len(s.Names("crypto_volume_24h_usd")) == len(instruments)
	})
	lab := func(sym string) []string {
		return []string{"exchange", "binance", "market", instruments[sym], "symbol", sym, "coin", coins[sym]}
	}
	for _, c := range []struct {
		name string
		sym  string
		want float64
	}{
		{"crypto_mark_price_usd", "BTCUSDT", 97123.4},
		{"crypto_mark_price_usd", "BTCUSD_PERP", 97150},
		{"crypto_funding_rate_ratio", "ETHUSDT", -0.0002},
		{"crypto_funding_rate_ratio", "BTCUSD_PERP", 0.00015},
		{"crypto_funding_interval_seconds", "ETHUSDT", 14400},
		{"crypto_funding_interval_seconds", "BTCUSDT", 28800},
		{"crypto_funding_next_timestamp_seconds", "BTCUSDT", 1_800_000_000},
		{"crypto_open_interest_coins", "BTCUSDT", 81234.5},
		{"crypto_open_interest_usd", "BTCUSDT", 81234.5 * 97123.4},
		{"crypto_open_interest_coins", "1000PEPEUSDT", 6e9 * 1000},
		{"crypto_open_interest_usd", "1000PEPEUSDT", 6e9 * 0.0188},
		{"crypto_open_interest_usd", "BTCUSD_PERP", 950000 * 100},
		{"crypto_open_interest_coins", "BTCUSD_PERP", 950000 * 100 / 97150.0},
		{"crypto_open_interest_usd", "ETHUSD_261225", 80000 * 10},
		{"crypto_volume_24h_usd", "SOLUSDC", 2.1e8},
		{"crypto_volume_24h_usd", "ETHUSD_261225", 2e5 * 10},
	} {
		got, ok := s.Get(c.name, lab(c.sym)...)
		if !ok || !collectortest.Close(got, c.want) {
			t.Errorf("%s{%s} = %v (present %v), want %v", c.name, c.sym, got, ok, c.want)
		}
	}
	if _, ok := s.Get("crypto_funding_rate_ratio", lab("ETHUSD_261225")...); ok {
		t.Error("a funding rate was exported for a delivery contract")
	}
	if _, ok := s.Get("crypto_market_info", "exchange", "binance", "market", "linear", "symbol", "DOWNUSDT", "coin", "DOWN", "quote", "USDT", "contract_type", "perpetual"); ok {
		t.Error("a settling instrument was listed")
	}
	if got, _ := s.Get("crypto_fear_greed_index", "source", "alternative.me"); got != 70 {
		t.Errorf("fear & greed index %v, want 70", got)
	}
	if got, ok := s.Get("crypto_fear_greed_classification", "source", "alternative.me", "classification", "Greed"); !ok || got != 1 {
		t.Errorf("fear & greed classification missing")
	}
	if got, _ := s.Get("crypto_fear_greed_updated_timestamp_seconds", "source", "alternative.me"); got != float64(fgTime.Unix()) {
		t.Errorf("fear & greed timestamp %v, want %v", got, fgTime.Unix())
	}
	for _, pl := range []struct {
		coin, level string
		v           float64
	}{{"BTC", "96000", 96000}, {"BTC", "100000", 100000}, {"ETH", "3300", 3300}} {
		if got, _ := s.Get("crypto_price_level_usd", "coin", pl.coin, "level", pl.level); got != pl.v {
			t.Errorf("price level %s %s = %v", pl.coin, pl.level, got)
		}
	}
	if len(s.Names("derivatives_exporter_build_info")) != 1 {
		t.Error("derivatives_exporter_build_info missing")
	}

	// A failing Fear & Greed poll keeps the last good value and says so.
	fg.FailNext(3, 503, 0, "")
	s = p.eventually(t, "failed fear & greed poll", func(s collectortest.Samples) bool {
		v, _ := s.Get("crypto_exporter_poll_success", "exchange", "feargreed", "endpoint", "fng")
		return v == 0
	})
	if got, _ := s.Get("crypto_fear_greed_index", "source", "alternative.me"); got != 70 {
		t.Errorf("fear & greed index after a failed poll = %v, want the last good 70", got)
	}

	// SIGTERM shuts down cleanly.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		p.exited <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Error("exporter did not exit within 10s of SIGTERM")
	}
	if strings.Contains(p.stderr.String(), "panic") {
		t.Errorf("panic in the exporter log")
	}
}

func TestEndToEndCommandLine(t *testing.T) {
	bin := exporterBinary(t)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	}
	out, code := run("--config.check")
	if code != 0 || !strings.Contains(out, "embedded default config is valid") {
		t.Errorf("--config.check on the default config: code %d\n%s", code, out)
	}
	// The default config enables every venue of this build, and
	// --config.check says what each would run.
	for _, spec := range venueSpecs {
		if !strings.Contains(out, fmt.Sprintf("%-12s enabled, all coins", spec.name)) {
			t.Errorf("--config.check does not show %s enabled:\n%s", spec.name, out)
		}
	}
	out, code = run("--version")
	if code != 0 || !strings.Contains(out, "derivatives_exporter, version") {
		t.Errorf("--version: code %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("exchanges:\n  binance:\n    enabled: true\n    enabeld: false\n"), 0o600)
	out, code = run("--config.file="+bad, "--config.check")
	if code != 1 || !strings.Contains(out, "line 4") || !strings.Contains(out, "exchanges.binance.enabeld") {
		t.Errorf("bad config: code %d\n%s", code, out)
	}
	out, code = run("--config.file="+bad, "--web.listen-address=127.0.0.1:0")
	if code != 1 || !strings.Contains(out, "invalid configuration") {
		t.Errorf("bad config at start-up: code %d\n%s", code, out)
	}
	out, code = run("--no-such-flag")
	if code == 0 {
		t.Errorf("unknown flag accepted:\n%s", out)
	}
}

func TestEndToEndUnreachableVenues(t *testing.T) {
	// Venues that refuse connections from the start: /metrics still serves,
	// stream_up and poll_success exist at 0 and failures are counted.
	dead := freePort(t) // nothing listens there
	cfg := fmt.Sprintf(`
exchanges:
  binance:
    endpoints: {usdm_rest: "http://%[1]s", usdm_ws: "ws://%[1]s", coinm_rest: "http://%[1]s", coinm_ws: "ws://%[1]s"}
fear_greed:
  url: http://%[1]s/fng/
polling:
  interval: 1s
`, dead)
	p := startExporter(t, cfg)
	s := p.eventually(t, "failed polls counted", func(s collectortest.Samples) bool {
		v, _ := s.Get("crypto_exporter_poll_failures_total", "exchange", "binance", "endpoint", "usdm_exchange_info")
		return v >= 1
	})
	for _, k := range []struct{ name, l1, v1, l2, v2 string }{
		{"crypto_exporter_stream_up", "exchange", "binance", "stream", "usdm_force_order"},
		{"crypto_exporter_stream_up", "exchange", "binance", "stream", "coinm_force_order"},
		{"crypto_exporter_poll_success", "exchange", "binance", "endpoint", "usdm_exchange_info"},
		{"crypto_exporter_poll_success", "exchange", "feargreed", "endpoint", "fng"},
	} {
		if v, ok := s.Get(k.name, k.l1, k.v1, k.l2, k.v2); !ok || v != 0 {
			t.Errorf("%s{%s=%s} = %v (present %v), want 0", k.name, k.l2, k.v2, v, ok)
		}
	}
	if len(s.Names("crypto_fear_greed_index")) != 0 {
		t.Error("a Fear & Greed index was exported without any good reading")
	}
	_ = io.Discard
	_ = exchanges.Long
}

// stallingAddr accepts TCP connections and never answers: a stuck venue.
func stallingAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// TestEndToEndStuckVenue: a venue that accepts connections and never
// answers blocks neither the other sources nor /metrics.
func TestEndToEndStuckVenue(t *testing.T) {
	stuck := stallingAddr(t)
	fg := exchangetest.NewFearGreed()
	defer fg.Close()
	fg.Push(55, "Neutral", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	cfg := fmt.Sprintf(`
exchanges:
  binance:
    endpoints: {usdm_rest: "http://%[1]s", usdm_ws: "ws://%[1]s", coinm_rest: "http://%[1]s", coinm_ws: "ws://%[1]s"}
  bybit:
    enabled: false
fear_greed:
  url: %[2]s
  interval: 1s
polling:
  interval: 1s
  timeout: 30s
`, stuck, fg.URL())
	p := startExporter(t, cfg)
	p.eventually(t, "Fear & Greed despite the stuck venue", func(s collectortest.Samples) bool {
		v, _ := s.Get("crypto_fear_greed_index", "source", "alternative.me")
		return v == 55
	})
	client := &http.Client{Timeout: 2 * time.Second}
	for i := range 5 {
		resp, err := client.Get("http://" + p.addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape %d while a venue is stuck: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("scrape %d: HTTP %d", i, resp.StatusCode)
		}
	}
	s, err := p.scrape(t)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Get("crypto_exporter_stream_up", "exchange", "binance", "stream", "usdm_force_order"); !ok || v != 0 {
		t.Errorf("stream_up of the stuck venue = %v (present %v), want 0", v, ok)
	}
}
