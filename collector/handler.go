package collector

import (
	"bytes"
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
	bufs := textBufs.Get().(*[][]byte)
	defer textBufs.Put(bufs)
	*bufs = c.appendInstrumentText(*bufs)
	for _, b := range *bufs {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// appendInstrumentText fills bufs, reusing their memory, with one buffer
// per instrument family: its HELP and TYPE lines and its series, or
// nothing when the family has no series.
func (c *Collector) appendInstrumentText(bufs [][]byte) [][]byte {
	fams := instrumentFamilies()
	index := make(map[*family]int, len(fams))
	if cap(bufs) < len(fams) {
		bufs = append(bufs[:cap(bufs)], make([][]byte, len(fams)-cap(bufs))...)
	}
	bufs = bufs[:len(fams)]
	header := make([]int, len(fams))
	for i, f := range fams {
		index[f] = i
		typ := "gauge"
		if f.counter {
			typ = "counter"
		}
		bufs[i] = fmt.Appendf(bufs[i][:0], "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, typ)
		header[i] = len(bufs[i])
	}
	c.eachInstrumentSeries(func(f *family, ls labelSet, v float64) {
		b := &bufs[index[f]]
		*b = append(*b, f.name...)
		*b = append(*b, ls.text...)
		*b = append(*b, ' ')
		*b = appendValue(*b, v)
		*b = append(*b, '\n')
	})
	for i := range bufs {
		if len(bufs[i]) == header[i] {
			bufs[i] = bufs[i][:0]
		}
	}
	return bufs
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
//
// Scrapes that arrive while a body is being rendered share that render
// (and its gzip compression) instead of rendering the tens of thousands of
// series again: N concurrent scrapers cost one render, not N, in CPU and in
// memory. A shared body is at most one render (milliseconds) older than the
// request.
func Handler(c *Collector, g prometheus.Gatherer, opts HandlerOpts) http.Handler {
	var inFlight chan struct{}
	if opts.MaxRequestsInFlight > 0 {
		inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rg := &renderGroup{c: c, g: g, logger: logger}
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
		rd := rg.get()
		defer rg.release(rd)
		h := w.Header()
		h.Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var err error
		if acceptsGzip(r) {
			body := rd.gzipped()
			h.Set("Content-Encoding", "gzip")
			h.Set("Content-Length", strconv.Itoa(len(body)))
			_, err = w.Write(body)
		} else {
			h.Set("Content-Length", strconv.Itoa(rd.size))
			err = rd.writeTo(w)
		}
		if err != nil {
			logger.Debug("writing metrics", "err", err)
		}
	})
}

// renderGroup renders the /metrics body once for every scrape that arrives
// while it is being rendered.
type renderGroup struct {
	c      *Collector
	g      prometheus.Gatherer
	logger *slog.Logger

	mu  sync.Mutex
	cur *rendering // being rendered; nil when none is
}

// rendering is one rendered body, shared by the scrapes that asked for it:
// the per-instrument families (one buffer each, written as rendered, not
// copied into one) followed by tail, the gathered metrics.
type rendering struct {
	ready chan struct{} // closed when the body is complete
	parts *[][]byte
	tail  *bytes.Buffer
	size  int
	refs  int // scrapes using it; guarded by renderGroup.mu

	gzOnce sync.Once
	gz     *bytes.Buffer
}

// writeTo writes the plain body.
func (rd *rendering) writeTo(w io.Writer) error {
	for _, b := range *rd.parts {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err := w.Write(rd.tail.Bytes())
	return err
}

var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// get returns the body of the render in progress, or renders a new one.
// Every get must be followed by a release.
func (rg *renderGroup) get() *rendering {
	rg.mu.Lock()
	if rd := rg.cur; rd != nil {
		rd.refs++
		rg.mu.Unlock()
		<-rd.ready
		return rd
	}
	rd := &rendering{ready: make(chan struct{}), refs: 1, parts: textBufs.Get().(*[][]byte), tail: bodyBufs.Get().(*bytes.Buffer)}
	rg.cur = rd
	rg.mu.Unlock()

	rg.render(rd)

	rg.mu.Lock()
	rg.cur = nil
	rg.mu.Unlock()
	close(rd.ready)
	return rd
}

// release returns the buffers of a body no scrape uses any more.
func (rg *renderGroup) release(rd *rendering) {
	rg.mu.Lock()
	rd.refs--
	last := rd.refs == 0
	rg.mu.Unlock()
	if !last {
		return
	}
	textBufs.Put(rd.parts)
	bodyBufs.Put(rd.tail)
	if rd.gz != nil {
		bodyBufs.Put(rd.gz)
	}
}

// render renders the whole text body into rd.
func (rg *renderGroup) render(rd *rendering) {
	mfs, err := rg.g.Gather()
	if err != nil {
		// As promhttp's ContinueOnError: serve what was gathered.
		rg.logger.Error("error gathering metrics", "err", err)
	}
	*rd.parts = rg.c.appendInstrumentText(*rd.parts)
	rd.tail.Reset()
	enc := expfmt.NewEncoder(rd.tail, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			rg.logger.Error("rendering metrics", "family", mf.GetName(), "err", err)
		}
	}
	rd.size = rd.tail.Len()
	for _, b := range *rd.parts {
		rd.size += len(b)
	}
}

// gzipped returns the body compressed, compressing it once for every
// scrape that shares it.
func (rd *rendering) gzipped() []byte {
	rd.gzOnce.Do(func() {
		rd.gz = bodyBufs.Get().(*bytes.Buffer)
		rd.gz.Reset()
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(rd.gz)
		_ = rd.writeTo(gz)
		_ = gz.Close()
		gzipWriters.Put(gz)
	})
	return rd.gz.Bytes()
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
