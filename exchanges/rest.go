package exchanges

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// MaxResponseBytes caps the size of one REST response body. The largest
// documented response (Binance USDⓈ-M exchangeInfo) is a few MiB.
const MaxResponseBytes = 32 << 20

// HTTPError is a non-2xx answer from a venue.
type HTTPError struct {
	URL        string
	StatusCode int
	RetryAfter time.Duration // from the Retry-After header, 0 if absent
	Body       string        // first bytes of the body, for the log
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("GET %s: HTTP %d", e.URL, e.StatusCode)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// RateLimited reports whether the venue asked us to slow down (429, 418 or a
// Retry-After on any status).
func (e *HTTPError) RateLimited() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusTeapot || e.RetryAfter > 0
}

// Client is a small JSON-over-HTTP client shared by every venue's pollers.
type Client struct {
	HTTP      *http.Client
	UserAgent string
}

// NewClient returns a Client whose requests time out after timeout.
func NewClient(timeout time.Duration, userAgent string) *Client {
	return &Client{HTTP: &http.Client{Timeout: timeout}, UserAgent: userAgent}
}

// Do sends req and decodes a 2xx JSON body into v. Non-2xx answers become
// *HTTPError. The response headers are returned for rate-limit bookkeeping.
func (c *Client) Do(req *http.Request, v any) (http.Header, error) {
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return resp.Header, fmt.Errorf("%s %s: reading body: %w", req.Method, req.URL, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := string(body)
		if len(snippet) > 256 {
			snippet = snippet[:256]
		}
		return resp.Header, &HTTPError{
			URL:        req.URL.String(),
			StatusCode: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Body:       snippet,
		}
	}
	if len(body) > MaxResponseBytes {
		return resp.Header, fmt.Errorf("%s %s: response larger than %d bytes", req.Method, req.URL, MaxResponseBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.Header, fmt.Errorf("%s %s: decoding JSON: %w", req.Method, req.URL, err)
	}
	return resp.Header, nil
}

// GetJSON fetches url and decodes its JSON body into v.
func (c *Client) GetJSON(ctx context.Context, url string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req, v)
}

// parseRetryAfter reads a Retry-After header in seconds or HTTP-date form.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Poller runs one REST poll on a fixed interval. It is the one poll loop
// every venue uses.
type Poller struct {
	Interval time.Duration
	Observer PollObserver
	Logger   *slog.Logger
	// Poll does the work; it returns an error when the poll failed (values
	// that were decoded before the error may already have been stored).
	Poll func(ctx context.Context) error
	// MaxBackoff caps the wait after consecutive rate-limit answers that carry
	// no Retry-After (default 10 minutes).
	MaxBackoff time.Duration
	// Trigger, when set, starts the next poll early (e.g. a liquidation for
	// an instrument not listed yet asks for a fresh instrument list). Polls
	// started this way are at least MinSpacing apart (default 1 minute).
	Trigger    <-chan struct{}
	MinSpacing time.Duration
	// RetryInterval, when set, is the wait after a failed poll that was not
	// rate limited (e.g. a faster retry of the first instrument discovery).
	RetryInterval time.Duration
}

// Run polls at once, then every Interval, until ctx is cancelled. After a
// rate-limit answer it waits for the venue's Retry-After (or an exponential
// back-off) before the next request, never less than Interval.
func (p Poller) Run(ctx context.Context) {
	maxBackoff := p.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 10 * time.Minute
	}
	limited := 0
	for {
		start := time.Now()
		err := p.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		p.Observer.Observe(time.Since(start), err)
		wait := p.Interval
		trigger := p.Trigger
		var herr *HTTPError
		switch {
		case err == nil:
			limited = 0
		case errors.As(err, &herr) && herr.RateLimited():
			limited++
			backoff := herr.RetryAfter
			if backoff <= 0 {
				backoff = p.Interval << min(limited, 8)
				if backoff > maxBackoff || backoff <= 0 {
					backoff = maxBackoff
				}
			}
			wait = max(wait, backoff)
			trigger = nil // a venue's back-off request is never cut short
			p.Logger.Warn("venue is rate limiting us; backing off", "err", err, "wait", wait)
		default:
			limited = 0
			if p.RetryInterval > 0 {
				wait = p.RetryInterval
			}
			p.Logger.Warn("poll failed", "err", err)
		}
		if !p.wait(ctx, start, wait, trigger) {
			return
		}
	}
}

// wait sleeps for d, or until a trigger arrives at least MinSpacing after
// start; it reports false when ctx is done.
func (p Poller) wait(ctx context.Context, start time.Time, d time.Duration, trigger <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	spacing := p.MinSpacing
	if spacing <= 0 {
		spacing = time.Minute
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-trigger:
			if wait := spacing - time.Since(start); wait > 0 {
				if d-time.Since(start) < wait {
					continue // the regular poll comes first anyway
				}
				if !Sleep(ctx, wait) {
					return false
				}
			}
			return true
		}
	}
}

// Sleep waits for d or until ctx is done; it reports whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Jitter returns a random duration in [0, d).
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
