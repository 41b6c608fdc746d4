package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// TestHandlerMatchesCollect: the directly written exposition holds exactly
// the series, values and metadata that Collect produces.
func TestHandlerMatchesCollect(t *testing.T) {
	c, _ := newTestCollector()
	odd := &exchanges.Instrument{Exchange: "x", Market: exchanges.Inverse, Symbol: `we"ird\sym`, Coin: "W", Quote: "USD", ContractType: exchanges.Future, ContractSize: 1, Multiplier: 1}
	nofeed := &exchanges.Instrument{Exchange: "hyperliquid", Market: exchanges.Linear, Symbol: "BTC", Coin: "BTC", Quote: "USDC", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1, NoLiquidationFeed: true}
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})
	c.SetInstruments("x", exchanges.Inverse, []*exchanges.Instrument{odd})
	c.SetInstruments("hyperliquid", exchanges.Linear, []*exchanges.Instrument{nofeed})
	c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 1234.5678})
	c.Liquidation(exchanges.Liquidation{Instrument: odd, Side: exchanges.Short, NotionalUSD: 1e-7})
	c.SetMarketValues([]exchanges.MarketValue{
		{Instrument: btc, Field: exchanges.MarkPrice, Value: 65000.25, TTL: time.Minute},
		{Instrument: nofeed, Field: exchanges.OpenInterestUSD, Value: 1.5e9, TTL: time.Minute},
		{Instrument: odd, Field: exchanges.FundingRate, Value: -0.000125, TTL: time.Minute},
	})
	c.SetFeedComplete("binance", exchanges.Linear, false)
	c.Stream("binance", "usdm_force_order").Message()
	c.SetFearGreed("alternative.me", 70, "Greed", time.Unix(1, 0))

	want, err := collectortest.FromCollector(c)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.Others())
	srv := httptest.NewServer(Handler(c, reg, HandlerOpts{}))
	defer srv.Close()

	for _, gz := range []bool{false, true} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		} else {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body := resp.Body
		if gz {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("gzip not used although accepted")
			}
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("content type %q", ct)
		}
		got, err := collectortest.FromText(body) // strict parser: duplicate families or bad escapes fail here
		resp.Body.Close()
		if err != nil {
			t.Fatalf("gzip=%v: %v", gz, err)
		}
		if len(got) != len(want) {
			t.Errorf("gzip=%v: %d series, Collect has %d", gz, len(got), len(want))
		}
		for k, v := range want {
			if gv, ok := got[k]; !ok || !collectortest.Close(gv, v) {
				t.Errorf("gzip=%v: %s = %v (present %v), Collect says %v", gz, k, gv, ok, v)
			}
		}
	}
}

func TestHandlerLimitsConcurrentScrapes(t *testing.T) {
	c, _ := newTestCollector()
	block := make(chan struct{})
	var once sync.Once
	started := make(chan struct{})
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		once.Do(func() { close(started) })
		<-block
		return nil, nil
	})
	srv := httptest.NewServer(Handler(c, g, HandlerOpts{MaxRequestsInFlight: 1}))
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		resp, err := http.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	<-started
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second concurrent scrape: HTTP %d, want 503", resp.StatusCode)
	}
	close(block)
	<-done
}

// Scrapes that arrive during a render share it: one Gather, one render,
// one gzip compression, and every scrape gets the complete body.
func TestConcurrentScrapesShareOneRender(t *testing.T) {
	c, _ := newTestCollector()
	c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})
	var gathers atomic.Int32
	block := make(chan struct{})
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if gathers.Add(1) == 1 {
			<-block
		}
		return nil, nil
	})
	rg := &renderGroup{c: c, g: g, logger: slog.New(slog.DiscardHandler)}
	const n = 8
	bodies := make(chan []byte, n)
	for range n {
		go func() {
			rd := rg.get()
			bodies <- append([]byte(nil), rd.gzipped()...)
			rg.release(rd)
		}()
	}
	// Wait until all n have joined the first render, then let it finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rg.mu.Lock()
		refs := 0
		if rg.cur != nil {
			refs = rg.cur.refs
		}
		rg.mu.Unlock()
		if refs == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scrapes joined the render, want %d", refs, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(block)
	var first []byte
	for range n {
		b := <-bodies
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Error("scrapes of one render got different bodies")
		}
	}
	if got := gathers.Load(); got != 1 {
		t.Errorf("%d gathers for %d concurrent scrapes, want 1", got, n)
	}
	zr, err := gzip.NewReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(plain), `symbol="ETHUSDT"`) {
		t.Errorf("shared gzip body incomplete (err %v):\n%s", err, plain)
	}
	// The next scrape renders anew.
	rd := rg.get()
	rg.release(rd)
	if got := gathers.Load(); got != 2 {
		t.Errorf("%d gathers after a later scrape, want 2", got)
	}
}
