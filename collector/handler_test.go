package collector

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
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

// Scrapes that arrive during a render share it: one Gather, each form of
// the body made at most once, and every scrape gets the complete body in
// the form it asked for, whichever form the render made first (that of its
// first scrape).
func TestConcurrentScrapesShareOneRender(t *testing.T) {
	for _, firstGzip := range []bool{false, true} {
		t.Run(fmt.Sprintf("first gzip=%v", firstGzip), func(t *testing.T) {
			c, _ := newTestCollector()
			c.SetInstruments("binance", exchanges.Linear, []*exchanges.Instrument{btc, eth})
			c.Liquidation(exchanges.Liquidation{Instrument: btc, Side: exchanges.Long, NotionalUSD: 1234.5678})
			var gathers atomic.Int32
			block := make(chan struct{})
			g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
				if gathers.Add(1) == 1 {
					<-block
				}
				return nil, nil
			})
			rg := newRenderGroup(c, g, slog.New(slog.DiscardHandler))
			const n = 8
			type body struct {
				gz   bool
				data []byte
			}
			bodies := make(chan body, n)
			scrape := func(gz bool) {
				rd := rg.get(gz)
				var b []byte
				if gz {
					b = rd.gzipped()
				} else {
					b = rd.plainBody()
				}
				bodies <- body{gz, append([]byte(nil), b...)}
				rg.release(rd)
			}
			refs := func() int {
				rg.mu.Lock()
				defer rg.mu.Unlock()
				if rg.cur == nil {
					return 0
				}
				return rg.cur.refs
			}
			waitRefs := func(want int) {
				deadline := time.Now().Add(5 * time.Second)
				for refs() != want {
					if time.Now().After(deadline) {
						t.Fatalf("%d scrapes joined the render, want %d", refs(), want)
					}
					time.Sleep(time.Millisecond)
				}
			}
			go scrape(firstGzip)
			waitRefs(1)
			for i := 1; i < n; i++ {
				go scrape(i%2 == 0)
			}
			// Wait until all n have joined the first render, then let it finish.
			waitRefs(n)
			close(block)
			var plain, gzipped [][]byte // as received
			var inflated [][]byte       // the gzipped ones, inflated
			for range n {
				b := <-bodies
				if !b.gz {
					plain = append(plain, b.data)
					continue
				}
				zr, err := gzip.NewReader(bytes.NewReader(b.data))
				if err != nil {
					t.Fatal(err)
				}
				p, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				gzipped, inflated = append(gzipped, b.data), append(inflated, p)
			}
			// Each form is made once: its scrapes get the same bytes.
			for _, form := range [][][]byte{plain, gzipped} {
				for _, b := range form[1:] {
					if !bytes.Equal(b, form[0]) {
						t.Errorf("scrapes of one render got different bodies of one form:\n%s\n---\n%s", b, form[0])
					}
				}
			}
			// The two forms hold the same series and values (the order of
			// series within a family may differ when rendered twice).
			want, err := collectortest.FromText(bytes.NewReader(plain[0]))
			if err != nil {
				t.Fatal(err)
			}
			got, err := collectortest.FromText(bytes.NewReader(inflated[0]))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(want) < 10 {
				t.Errorf("compressed form has %d series, plain %d", len(got), len(want))
			}
			for k, v := range want {
				if gv, ok := got[k]; !ok || gv != v {
					t.Errorf("%s = %v in the compressed form (present %v), %v in the plain", k, gv, ok, v)
				}
			}
			for _, want := range []string{`symbol="ETHUSDT"`, `crypto_liquidation_notional_usd_total{coin="BTC",exchange="binance",market="linear",side="long",symbol="BTCUSDT"} 1234.5678`} {
				if !strings.Contains(string(plain[0]), want) {
					t.Errorf("shared body lacks %s:\n%s", want, plain[0])
				}
			}
			if got := gathers.Load(); got != 1 {
				t.Errorf("%d gathers for %d concurrent scrapes, want 1", got, n)
			}
			// The next scrape renders anew.
			rd := rg.get(true)
			rg.release(rd)
			if got := gathers.Load(); got != 2 {
				t.Errorf("%d gathers after a later scrape, want 2", got)
			}
		})
	}
}

// A spare holds at most one buffer, hands it back to the next render, and
// lets it go once 64 renders have not used it.
func TestSpare(t *testing.T) {
	made := 0
	s := &spare[[]byte]{make: func() *[]byte { made++; return new([]byte) }}
	a, b := s.get(), s.get()
	if made != 2 {
		t.Fatalf("made %d", made)
	}
	s.put(a, 0)
	s.put(b, 0) // one is kept, the other left to the GC
	if got := s.get(); got != a {
		t.Error("the spare kept is not the first put")
	}
	if s.get(); made != 3 {
		t.Errorf("made %d after the spare was taken, want 3", made)
	}
	const base = 100
	s.put(a, base)
	s.age(base + 64)
	if s.get() != a {
		t.Error("a spare unused for 64 renders was dropped")
	}
	s.put(a, base)
	s.age(base + 65)
	if s.get() == a || made != 4 {
		t.Errorf("a spare unused for 65 renders was kept (made %d)", made)
	}
}

// A compressed render never builds the plain body, and a plain render is
// one buffer sized from the last body, not grown by doubling.
func TestRenderBuffers(t *testing.T) {
	c, _ := newTestCollector()
	list := make([]*exchanges.Instrument, 0, 200)
	for i := range 200 {
		list = append(list, &exchanges.Instrument{Exchange: "binance", Market: exchanges.Linear, Symbol: fmt.Sprintf("C%dUSDT", i),
			Coin: fmt.Sprintf("C%d", i), Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1})
	}
	c.SetInstruments("binance", exchanges.Linear, list)
	rg := newRenderGroup(c, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))

	rd := rg.get(true)
	if rd.plain != nil || rd.gz == nil || rd.size == 0 {
		t.Errorf("compressed render: plain body %v, compressed %v, plain size %d", rd.plain != nil, rd.gz != nil, rd.size)
	}
	gzSize := rd.size
	rg.release(rd)

	rd = rg.get(false)
	if len(*rd.plain) != gzSize {
		t.Errorf("plain body %d bytes, the compressed render counted %d", len(*rd.plain), gzSize)
	}
	if c := cap(*rd.plain); c > gzSize+gzSize/16 {
		t.Errorf("plain buffer of %d bytes for a %d-byte body: grown, not sized from the last render", c, gzSize)
	}
	if rd.gz != nil {
		t.Error("a plain render compressed its body unasked")
	}
	rg.release(rd)
}

// TestScrapeReadsStatusBeforeData checks that a scrape which sees a poll's
// outcome also sees what the poll stored before reporting it, through
// Collect and through /metrics in both forms: status series are read
// first, the per-instrument families second, so a user or a test waiting on
// a poll's success never reads older instruments in the same scrape.
func TestScrapeReadsStatusBeforeData(t *testing.T) {
	get := func(srvURL string, gz bool) (collectortest.Samples, error) {
		req, _ := http.NewRequest("GET", srvURL, nil)
		req.Header.Set("Accept-Encoding", map[bool]string{false: "identity", true: "gzip"}[gz])
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var body io.Reader = resp.Body
		if gz {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				return nil, err
			}
			body = zr
		}
		return collectortest.FromText(body)
	}
	for _, via := range []string{"Collect", "plain", "gzip"} {
		t.Run(via, func(t *testing.T) {
			c, _ := newTestCollector()
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(c.Others())
			srv := httptest.NewServer(Handler(c, reg, HandlerOpts{}))
			defer srv.Close()
			scrape := func() (collectortest.Samples, error) {
				switch via {
				case "Collect":
					return collectortest.FromCollector(c)
				default:
					return get(srv.URL, via == "gzip")
				}
			}
			obs := c.Poll("binance", "exchangeInfo")
			const polls = 300
			done := make(chan struct{})
			go func() {
				defer close(done)
				var list []*exchanges.Instrument
				for i := range polls {
					in := *btc
					in.Symbol = fmt.Sprintf("S%d", i)
					list = append(list, &in)
					c.SetInstruments("binance", exchanges.Linear, list)
					obs.Observe(time.Millisecond, errors.New("declared")) // failures == len(list)
				}
			}()
			for running := true; running; {
				select {
				case <-done:
					running = false
				default:
				}
				s, err := scrape()
				if err != nil {
					t.Fatal(err)
				}
				infos := len(s.Names("crypto_market_info"))
				failures := s.Sum("crypto_exporter_poll_failures_total")
				if float64(infos) < failures {
					t.Fatalf("a scrape saw %v polls reported but only %d instruments", failures, infos)
				}
			}
		})
	}
}
