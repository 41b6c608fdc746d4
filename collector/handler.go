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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// appendFamily appends the per-instrument family f in the Prometheus text
// format (its HELP and TYPE lines and every series, values at now) to b,
// straight from the label text cached per series; nothing when the family
// has no series. With every venue enabled these are tens of thousands of
// series; writing them directly keeps a scrape in milliseconds, where
// building a client_golang metric per series and checking each one costs
// tens of times that.
func (c *Collector) appendFamily(b []byte, f *family, now time.Time) []byte {
	start := len(b)
	b = append(b, f.header...)
	n := 0
	c.eachSeries(f, now, func(_ *instSeries, _ exchanges.Side, text string, v float64) {
		b = append(b, f.name...)
		b = append(b, text...)
		b = append(b, ' ')
		b = appendValue(b, v)
		b = append(b, '\n')
		n++
	})
	if n == 0 {
		return b[:start]
	}
	return b
}

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
		gz := acceptsGzip(r)
		rd := rg.get(gz)
		defer rg.release(rd)
		h := w.Header()
		h.Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var err error
		if gz {
			body := rd.gzipped()
			h.Set("Content-Encoding", "gzip")
			h.Set("Content-Length", strconv.Itoa(len(body)))
			_, err = w.Write(body)
		} else {
			h.Set("Content-Length", strconv.Itoa(rd.size))
			err = rd.writePlain(w)
		}
		if err != nil {
			logger.Debug("writing metrics", "err", err)
		}
	})
}

// renderGroup renders the /metrics body once for every scrape that arrives
// while it is being rendered.
//
// A render takes the form its first scrape asks for. Rendered compressed
// (what Prometheus asks for), the plain body never exists whole: each
// family is written into a scratch buffer and compressed, so a scrape
// holds the compressed body (about 600 KiB with every venue) instead of
// the plain one (about 5 MiB). A plain scrape sharing a compressed render
// gets it decompressed as it is written; a compressed scrape sharing a
// plain render gets it compressed once for all of them.
type renderGroup struct {
	c      *Collector
	g      prometheus.Gatherer
	logger *slog.Logger

	mu   sync.Mutex
	cur  *rendering // being rendered; nil when none is
	last int        // plain size of the last render, to size the next one
}

// rendering is one rendered body, shared by the scrapes that asked for it.
type rendering struct {
	ready chan struct{} // closed when the body is complete
	plain *[]byte       // the plain body; nil when rendered compressed
	size  int           // length of the plain body
	refs  int           // scrapes using it; guarded by renderGroup.mu

	gzOnce sync.Once
	gz     *bytes.Buffer // the compressed body, once made
}

var (
	plainBufs   = sync.Pool{New: func() any { return new([]byte) }}
	scratchBufs = sync.Pool{New: func() any { return new([]byte) }}
	gzBufs      = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipWriters = sync.Pool{New: func() any {
		gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return gz
	}}
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
)

// get returns the body of the render in progress, or renders a new one,
// compressed if gz. Every get must be followed by a release.
func (rg *renderGroup) get(gz bool) *rendering {
	rg.mu.Lock()
	if rd := rg.cur; rd != nil {
		rd.refs++
		rg.mu.Unlock()
		<-rd.ready
		return rd
	}
	rd := &rendering{ready: make(chan struct{}), refs: 1}
	rg.cur = rd
	hint := rg.last + rg.last/16
	rg.mu.Unlock()

	rg.render(rd, gz, hint)

	rg.mu.Lock()
	rg.cur = nil
	rg.last = rd.size
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
	if rd.plain != nil {
		plainBufs.Put(rd.plain)
	}
	if rd.gz != nil {
		gzBufs.Put(rd.gz)
	}
}

// render renders the body into rd: the per-instrument families followed by
// everything gathered, plain (in one buffer of about hint bytes) or
// compressed.
func (rg *renderGroup) render(rd *rendering, gz bool, hint int) {
	now := rg.c.now()
	mfs, err := rg.g.Gather()
	if err != nil {
		// As promhttp's ContinueOnError: serve what was gathered.
		rg.logger.Error("error gathering metrics", "err", err)
	}
	fams := instrumentFamilies()
	if !gz {
		rd.plain = plainBufs.Get().(*[]byte)
		b := (*rd.plain)[:0]
		if cap(b) < hint {
			b = make([]byte, 0, hint)
		}
		for _, f := range fams {
			b = rg.c.appendFamily(b, f, now)
		}
		b = rg.appendGathered(b, mfs)
		*rd.plain, rd.size = b, len(b)
		return
	}
	rd.gzOnce.Do(func() {
		scratch := scratchBufs.Get().(*[]byte)
		zw := rd.startGzip()
		for _, f := range fams {
			*scratch = rg.c.appendFamily((*scratch)[:0], f, now)
			rd.size += len(*scratch)
			_, _ = zw.Write(*scratch)
		}
		*scratch = rg.appendGathered((*scratch)[:0], mfs)
		rd.size += len(*scratch)
		_, _ = zw.Write(*scratch)
		scratchBufs.Put(scratch)
		finishGzip(zw)
	})
}

// appendGathered appends the gathered families in the text format.
func (rg *renderGroup) appendGathered(b []byte, mfs []*dto.MetricFamily) []byte {
	w := &appendWriter{b: b}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			rg.logger.Error("rendering metrics", "family", mf.GetName(), "err", err)
		}
	}
	return w.b
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// startGzip sets rd.gz to an empty buffer and returns a writer compressing
// into it; finishGzip ends it.
func (rd *rendering) startGzip() *gzip.Writer {
	rd.gz = gzBufs.Get().(*bytes.Buffer)
	rd.gz.Reset()
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(rd.gz)
	return zw
}

func finishGzip(zw *gzip.Writer) {
	_ = zw.Close()
	zw.Reset(io.Discard) // drop the reference to the body buffer
	gzipWriters.Put(zw)
}

// gzipped returns the body compressed, compressing a plain render once for
// every scrape that shares it.
func (rd *rendering) gzipped() []byte {
	rd.gzOnce.Do(func() {
		zw := rd.startGzip()
		_, _ = zw.Write(*rd.plain)
		finishGzip(zw)
	})
	return rd.gz.Bytes()
}

// writePlain writes the plain body, decompressing a compressed render.
func (rd *rendering) writePlain(w io.Writer) error {
	if rd.plain != nil {
		_, err := w.Write(*rd.plain)
		return err
	}
	zr := gzipReaders.Get().(*gzip.Reader)
	defer gzipReaders.Put(zr)
	if err := zr.Reset(bytes.NewReader(rd.gz.Bytes())); err != nil {
		return err
	}
	_, err := io.Copy(w, zr)
	return err
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
