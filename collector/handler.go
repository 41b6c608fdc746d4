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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// appendFamilyLocked appends the per-instrument family f in the
// Prometheus text format (its HELP and TYPE lines and every series, values
// at now) to b, straight from the label text cached per series; nothing
// when the family has no series. The caller holds the collector's read
// lock. With every venue enabled these are tens of thousands of series;
// writing them directly keeps a scrape in milliseconds, where building a
// client_golang metric per series and checking each one costs tens of
// times that.
func (c *Collector) appendFamilyLocked(b []byte, f *family, now time.Time) []byte {
	start := len(b)
	b = append(b, f.header...)
	n := 0
	c.eachSeriesLocked(f, now, func(_ *instSeries, _ exchanges.Side, text string, v float64) {
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
	rg := newRenderGroup(c, g, logger)
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
		var body []byte
		if gz {
			body = rd.gzipped()
			h.Set("Content-Encoding", "gzip")
		} else {
			body = rd.plainBody()
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if _, err := w.Write(body); err != nil {
			logger.Debug("writing metrics", "err", err)
		}
	})
}

// renderGroup renders the /metrics body once for every scrape that arrives
// while it is being rendered.
//
// A render gathers once and makes each form of the body (plain,
// compressed) at most once, when a scrape sharing it first asks for that
// form. Made compressed first (what Prometheus asks for), the plain body
// never exists whole: each family is written into a scratch buffer and
// compressed, so a scrape holds the compressed body (about 600 KiB with
// every venue) instead of the plain one (about 5 MiB). A plain body made
// first is compressed as is when a compressed one is asked for; a plain
// body asked for after a compressed one is rendered anew from the
// collector (faster than inflating it), so two forms of one render may
// differ by what arrived in between, as two scrapes may.
type renderGroup struct {
	c      *Collector
	g      prometheus.Gatherer
	logger *slog.Logger

	mu   sync.Mutex
	cur  *rendering // being rendered; nil when none is
	last int        // plain size of the last render, to size the next one

	// One spare of each kind of buffer between renders, aged by the count
	// of renders.
	renders     atomic.Uint64
	plainBufs   spare[[]byte]
	scratchBufs spare[[]byte]
	gzBufs      spare[bytes.Buffer]
	gzipWriters spare[gzip.Writer]
}

func newRenderGroup(c *Collector, g prometheus.Gatherer, logger *slog.Logger) *renderGroup {
	rg := &renderGroup{c: c, g: g, logger: logger}
	rg.plainBufs.make = func() *[]byte { return new([]byte) }
	rg.scratchBufs.make = func() *[]byte { return new([]byte) }
	rg.gzBufs.make = func() *bytes.Buffer { return new(bytes.Buffer) }
	rg.gzipWriters.make = func() *gzip.Writer {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return zw
	}
	return rg
}

// rendering is one render, shared by the scrapes that asked for it.
type rendering struct {
	rg    *renderGroup
	ready chan struct{} // closed when the first scrape's form is made
	mfs   []*dto.MetricFamily
	last  int // plain size of the last render
	refs  int // scrapes using it; guarded by renderGroup.mu

	mu    sync.Mutex    // serialises making the forms
	plain *[]byte       // the plain body, once made
	gz    *bytes.Buffer // the compressed body, once made
	size  int           // plain length, once a form is made
}

// spare keeps one buffer (or gzip writer) of a kind between renders, so
// that consecutive renders reuse it. Unlike a sync.Pool, which keeps one
// per processor, it never holds more than one; it is dropped when 64
// renders have passed without using it (a plain body kept after a single
// curl, say), which at one scrape every 15 s is 16 minutes.
type spare[T any] struct {
	mu   sync.Mutex
	v    *T
	at   uint64 // renders when put
	make func() *T
}

func (s *spare[T]) get() *T {
	s.mu.Lock()
	v := s.v
	s.v = nil
	s.mu.Unlock()
	if v == nil {
		v = s.make()
	}
	return v
}

// put keeps v as the spare, unless there is one, at render now.
func (s *spare[T]) put(v *T, now uint64) {
	s.mu.Lock()
	if s.v == nil {
		s.v, s.at = v, now
	}
	s.mu.Unlock()
}

// age drops the spare if unused for 64 renders.
func (s *spare[T]) age(now uint64) {
	s.mu.Lock()
	if s.v != nil && now-s.at > 64 {
		s.v = nil
	}
	s.mu.Unlock()
}

// get returns the render in progress, or starts a new one and makes its
// body in the form asked for (compressed if gz). Every get must be
// followed by a release.
func (rg *renderGroup) get(gz bool) *rendering {
	rg.mu.Lock()
	if rd := rg.cur; rd != nil {
		rd.refs++
		rg.mu.Unlock()
		<-rd.ready
		return rd
	}
	rd := &rendering{rg: rg, ready: make(chan struct{}), refs: 1, last: rg.last}
	rg.cur = rd
	rg.mu.Unlock()
	n := rg.renders.Add(1)
	rg.plainBufs.age(n)
	rg.scratchBufs.age(n)
	rg.gzBufs.age(n)
	rg.gzipWriters.age(n)

	var err error
	rd.mfs, err = rg.g.Gather()
	if err != nil {
		// As promhttp's ContinueOnError: serve what was gathered.
		rg.logger.Error("error gathering metrics", "err", err)
	}
	if gz {
		rd.gzipped()
	} else {
		rd.plainBody()
	}

	rg.mu.Lock()
	rg.cur = nil
	rg.last = rd.size
	rg.mu.Unlock()
	close(rd.ready)
	return rd
}

// release returns the buffers of a render no scrape uses any more.
func (rg *renderGroup) release(rd *rendering) {
	rg.mu.Lock()
	rd.refs--
	last := rd.refs == 0
	rg.mu.Unlock()
	if !last {
		return
	}
	now := rg.renders.Load()
	if rd.plain != nil {
		rg.plainBufs.put(rd.plain, now)
	}
	if rd.gz != nil {
		rg.gzBufs.put(rd.gz, now)
	}
}

// plainBody returns the plain body (the per-instrument families followed
// by everything gathered), rendering it in one buffer the first time.
func (rd *rendering) plainBody() []byte {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.plain == nil {
		rd.plain = rd.rg.plainBufs.get()
		b := (*rd.plain)[:0]
		if cap(b) < rd.last {
			// Room for the last body and some growth, allocated once
			// rather than doubled into.
			b = make([]byte, 0, rd.last+rd.last/16)
		}
		c := rd.rg.c
		now := c.now()
		c.mu.RLock()
		for _, f := range instrumentFamilies() {
			b = c.appendFamilyLocked(b, f, now)
		}
		c.mu.RUnlock()
		b = rd.rg.appendGathered(b, rd.mfs)
		*rd.plain, rd.size = b, len(b)
	}
	return *rd.plain
}

// gzipped returns the body compressed, making it the first time: from the
// plain body if there is one, else family by family through a scratch
// buffer.
func (rd *rendering) gzipped() []byte {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.gz != nil {
		return rd.gz.Bytes()
	}
	rg := rd.rg
	rd.gz = rg.gzBufs.get()
	rd.gz.Reset()
	zw := rg.gzipWriters.get()
	zw.Reset(rd.gz)
	if rd.plain != nil {
		_, _ = zw.Write(*rd.plain)
	} else {
		scratch := rg.scratchBufs.get()
		c := rg.c
		now := c.now()
		size := 0
		for _, f := range instrumentFamilies() {
			// Compressed outside the lock, a family at a time: a
			// discovery may fall between two families of this form.
			c.mu.RLock()
			*scratch = c.appendFamilyLocked((*scratch)[:0], f, now)
			c.mu.RUnlock()
			size += len(*scratch)
			_, _ = zw.Write(*scratch)
		}
		*scratch = rg.appendGathered((*scratch)[:0], rd.mfs)
		size += len(*scratch)
		_, _ = zw.Write(*scratch)
		rg.scratchBufs.put(scratch, rg.renders.Load())
		rd.size = size
	}
	_ = zw.Close()
	zw.Reset(io.Discard) // drop the reference to the body buffer
	rg.gzipWriters.put(zw, rg.renders.Load())
	return rd.gz.Bytes()
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

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
