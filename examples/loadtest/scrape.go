package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// scraper is one /metrics client with its own keep-alive connection, as a
// Prometheus server holds one per target. Compression is never negotiated
// by the transport: a gzip scraper asks for it itself and counts the
// compressed bytes, a plain scraper gets the text format.
type scraper struct {
	url    string
	gzip   bool
	client *http.Client
}

func newScraper(addr string, gz bool) *scraper {
	return &scraper{url: "http://" + addr + "/metrics", gzip: gz, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}}}
}

func (s *scraper) close() { s.client.CloseIdleConnections() }

// lastByte counts what is written to it and remembers the last byte.
type lastByte struct {
	n    int64
	last byte
}

func (w *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.n += int64(len(p))
		w.last = p[len(p)-1]
	}
	return len(p), nil
}

// once scrapes once and returns the latency (request to last body byte)
// and the body size on the wire. A transport error, a status other than
// 200, a missing Content-Encoding on a gzip scrape and a plain body that
// does not end in a newline are errors.
func (s *scraper) once(ctx context.Context) (time.Duration, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, 0, err
	}
	if s.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	t0 := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var w lastByte
	_, err = io.Copy(&w, resp.Body)
	d := time.Since(t0)
	switch {
	case err != nil:
		return d, w.n, fmt.Errorf("reading the body: %w", err)
	case resp.StatusCode != http.StatusOK:
		return d, w.n, fmt.Errorf("status %d", resp.StatusCode)
	case s.gzip && resp.Header.Get("Content-Encoding") != "gzip":
		return d, w.n, fmt.Errorf("no gzip answer to a gzip scrape")
	case !s.gzip && (w.n == 0 || w.last != '\n'):
		return d, w.n, fmt.Errorf("truncated body (%d bytes)", w.n)
	}
	return d, w.n, nil
}

// scrapeStats collects the scrapes of one kind (plain or gzip) of a phase.
type scrapeStats struct {
	mu     sync.Mutex
	lat    []time.Duration
	bytes  int64
	errs   int
	errMsg []string // the first few errors
}

func (st *scrapeStats) add(d time.Duration, n int64, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.errs++
		if len(st.errMsg) < 5 {
			st.errMsg = append(st.errMsg, err.Error())
		}
		return
	}
	st.lat = append(st.lat, d)
	st.bytes += n
}

// row formats the stats as a table row value.
func (st *scrapeStats) row() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	lat := append([]time.Duration(nil), st.lat...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return fmt.Sprintf("0 scrapes, errors %d %v", st.errs, st.errMsg)
	}
	pct := func(p float64) string {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(100 * time.Microsecond).String()
	}
	s := fmt.Sprintf("%d scrapes, errors %d; p50 %s, p90 %s, p99 %s, max %s; %.0f bytes/scrape avg",
		len(lat), st.errs, pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1].Round(100*time.Microsecond), float64(st.bytes)/float64(len(lat)))
	if len(st.errMsg) > 0 {
		s += fmt.Sprintf(" (first errors: %v)", st.errMsg)
	}
	return s
}

// percentile returns the p-quantile of the latencies, 0 if none.
func (st *scrapeStats) percentile(p float64) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.lat) == 0 {
		return 0
	}
	lat := append([]time.Duration(nil), st.lat...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

func (st *scrapeStats) errors() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.errs
}

// scrapeLoop scrapes until ctx is done, pausing pause between scrapes (0 =
// back to back). A scrape cut short by the end of ctx is not counted.
func scrapeLoop(ctx context.Context, s *scraper, pause time.Duration, st *scrapeStats) {
	for ctx.Err() == nil {
		d, n, err := s.once(ctx)
		if ctx.Err() != nil {
			return
		}
		st.add(d, n, err)
		if pause > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	}
}

// scrapeSize scrapes once plain and once gzip and returns the series
// count (lines that are not comments) and the size of both answers; it
// checks that the gzip answer decompresses to the same number of series.
func scrapeSize(addr string) (series int, plain, gz int64, err error) {
	for _, compressed := range []bool{false, true} {
		s := newScraper(addr, compressed)
		req, err := http.NewRequest(http.MethodGet, s.url, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		if compressed {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return 0, 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		s.close()
		if err != nil {
			return 0, 0, 0, err
		}
		text := body
		if compressed {
			gz = int64(len(body))
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				return 0, 0, 0, err
			}
			if text, err = io.ReadAll(zr); err != nil {
				return 0, 0, 0, err
			}
		} else {
			plain = int64(len(body))
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(text))
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			if line := sc.Bytes(); len(line) > 0 && line[0] != '#' {
				n++
			}
		}
		if !compressed {
			series = n
		} else if n < series*9/10 || n > series*11/10 {
			return 0, 0, 0, fmt.Errorf("gzip answer has %d series, plain %d", n, series)
		}
	}
	return series, plain, gz, nil
}
