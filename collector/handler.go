package collector

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// WriteInstrumentText writes every per-instrument series (liquidation
// counters, the largest-liquidation gauge, market gauges and
// crypto_market_info) in the Prometheus text format, straight from the
// label strings cached per series. With every venue enabled these are tens
// of thousands of series; writing them directly keeps a scrape in tens of
// milliseconds, where building a client_golang metric per series and
// checking each one costs several times that.
func (c *Collector) WriteInstrumentText(w io.Writer) error {
	fams := instrumentFamilies()
	index := make(map[*family]int, len(fams))
	for i, f := range fams {
		index[f] = i
	}
	bufs := textBufs.Get().(*[][]byte)
	defer textBufs.Put(bufs)
	if len(*bufs) < len(fams) {
		*bufs = make([][]byte, len(fams))
	}
	for i := range fams {
		(*bufs)[i] = (*bufs)[i][:0]
	}
	c.eachInstrumentSeries(func(f *family, ls labelSet, v float64) {
		b := &(*bufs)[index[f]]
		*b = append(*b, f.name...)
		*b = append(*b, ls.text...)
		*b = append(*b, ' ')
		*b = appendValue(*b, v)
		*b = append(*b, '\n')
	})
	bw := bufio.NewWriterSize(w, 64<<10)
	for i, f := range fams {
		if len((*bufs)[i]) == 0 {
			continue
		}
		typ := "gauge"
		if f.counter {
			typ = "counter"
		}
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, typ)
		if _, err := bw.Write((*bufs)[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

var textBufs = sync.Pool{New: func() any { return new([][]byte) }}

func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func escapeHelp(h string) string {
	if !strings.ContainsAny(h, "\\\n") {
		return h
	}
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(h)
}

// HandlerOpts configures Handler.
type HandlerOpts struct {
	// MaxRequestsInFlight limits concurrent scrapes (0 = no limit); excess
	// scrapes get HTTP 503.
	MaxRequestsInFlight int
	Logger              *slog.Logger
}

// Handler serves /metrics: the per-instrument series written directly by
// c, followed by everything g gathers (c.Others(), the histogram, build
// info, Go and process metrics). It always answers in the text format
// (version 0.0.4), gzip-compressed when the scraper accepts it. g must not
// gather c itself, only c.Others().
func Handler(c *Collector, g prometheus.Gatherer, opts HandlerOpts) http.Handler {
	var inFlight chan struct{}
	if opts.MaxRequestsInFlight > 0 {
		inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", opts.MaxRequestsInFlight), http.StatusServiceUnavailable)
				return
			}
		}
		mfs, err := g.Gather()
		if err != nil {
			// As promhttp's ContinueOnError: serve what was gathered.
			logger.Error("error gathering metrics", "err", err)
		}
		h := w.Header()
		h.Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close()
				gzipWriters.Put(gz)
			}()
			out = gz
		}
		if err := c.WriteInstrumentText(out); err != nil {
			logger.Debug("writing metrics", "err", err)
			return
		}
		enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				logger.Debug("writing metrics", "err", err)
				return
			}
		}
	})
}

var gzipWriters = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return gz
}}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
