package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// scrapeFixture is a collector holding n instruments with every gauge set
// and some liquidations, about what every venue together lists.
func scrapeFixture(n int) (*prometheus.Registry, *Collector) {
	c := New()
	list := make([]*exchanges.Instrument, 0, n)
	for i := range n {
		list = append(list, &exchanges.Instrument{Exchange: "binance", Market: exchanges.Linear, Symbol: fmt.Sprintf("C%dUSDT", i),
			Coin: fmt.Sprintf("C%d", i), Quote: "USDT", ContractType: exchanges.Perpetual, ContractSize: 1, Multiplier: 1})
	}
	c.SetInstruments("binance", exchanges.Linear, list)
	values := make([]exchanges.MarketValue, 0, n*int(exchanges.NumFields))
	for _, inst := range list {
		for f := exchanges.Field(0); f < exchanges.NumFields; f++ {
			values = append(values, exchanges.MarketValue{Instrument: inst, Field: f, Value: 1.5, TTL: time.Hour})
		}
		c.Liquidation(exchanges.Liquidation{Instrument: inst, Side: exchanges.Long, NotionalUSD: 1234.5})
	}
	c.SetMarketValues(values)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return reg, c
}

// BenchmarkScrape serves /metrics for 3000 instruments the way the exporter
// does: per-instrument series written directly, the rest gathered.
func BenchmarkScrape(b *testing.B) {
	_, c := scrapeFixture(3000)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Others())
	h := Handler(c, reg, HandlerOpts{})
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				rec := &countingWriter{header: http.Header{}}
				h.ServeHTTP(rec, req)
				if i == 0 {
					b.ReportMetric(float64(rec.n), "bytes")
				}
			}
		})
	}
}

type countingWriter struct {
	header http.Header
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(int)             {}
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkScrapeRegistry is the same scrape through client_golang's
// registry and text encoder, for comparison.
func BenchmarkScrapeRegistry(b *testing.B) {
	reg, _ := scrapeFixture(3000)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		series := 0
		for _, mf := range mfs {
			series += len(mf.GetMetric())
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
		if i == 0 {
			var gz bytes.Buffer
			w := gzip.NewWriter(&gz)
			w.Write(buf.Bytes())
			w.Close()
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(buf.Len()), "bytes")
			b.ReportMetric(float64(gz.Len()), "gzip-bytes")
		}
	}
}

// BenchmarkLiquidation is the sink's share of the per-message hot path.
func BenchmarkLiquidation(b *testing.B) {
	_, c := scrapeFixture(500)
	insts := make([]*exchanges.Instrument, 0, 500)
	for k := range c.instruments {
		s := c.instruments[k]
		inst := s.inst
		insts = append(insts, &inst)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Liquidation(exchanges.Liquidation{Instrument: insts[i%len(insts)], Side: exchanges.Side(i & 1), NotionalUSD: 100})
	}
}
