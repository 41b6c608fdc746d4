package exchanges

import (
	"log/slog"
	"time"
)

// Defaults of the settings every venue has.
const (
	DefaultPollInterval        = 30 * time.Second // value polls
	DefaultInstrumentsInterval = 15 * time.Minute // instrument discovery
	DefaultRefreshSpacing      = time.Minute      // least time between an early discovery and the previous one
	DefaultClientTimeout       = 10 * time.Second // per REST request
	userAgent                  = "derivatives_exporter"
)

// Positive returns v, or def when v is zero or negative (a setting left
// unset).
func Positive[T ~int | ~int64 | ~float64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// OrDiscard returns l, or a logger that discards everything when l is nil.
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// OrNewClient returns c, or a client with the given timeout when c is nil.
func OrNewClient(c *Client, timeout time.Duration) *Client {
	if c == nil {
		return NewClient(timeout, userAgent)
	}
	return c
}
