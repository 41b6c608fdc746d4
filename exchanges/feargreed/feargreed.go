// Package feargreed polls the Crypto Fear & Greed Index of alternative.me
// (GET https://api.alternative.me/fng/) and stores the newest reading in the
// sink.
//
// The index is recalculated daily, so a slow poll (minutes) is plenty. A poll
// that fails for any reason (HTTP error, rate limiting, timeout, malformed
// body, implausible value) leaves the last good reading in place: the sink is
// only ever handed readings that passed Decode, never a zero stand-in.
package feargreed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/jsonx"
)

// Source is the value of the source label of the Fear & Greed metrics.
const Source = "alternative.me"

// Labels of the crypto_exporter_poll_* series of this poller.
const (
	pollExchange = "feargreed"
	pollEndpoint = "fng"
)

// Defaults for zero Config fields.
const (
	DefaultURL      = "https://api.alternative.me/fng/"
	DefaultInterval = 10 * time.Minute
)

// Bounds of a plausible reading.
const (
	minValue = 0
	maxValue = 100
	// maxTimestamp (9999-12-31T23:59:59Z) catches a switch to milliseconds,
	// which would otherwise be read as a date tens of thousands of years away.
	maxTimestamp = 253402300799
	// maxClassificationLen bounds the classification, which becomes a label
	// value; the documented ones are at most 13 bytes ("Extreme Greed").
	maxClassificationLen = 64
)

// Config configures the poller.
type Config struct {
	URL      string        // endpoint, e.g. https://api.alternative.me/fng/; ?limit=1 is added
	Interval time.Duration // time between polls
	Client   *exchanges.Client
	Logger   *slog.Logger
}

// Reading is one value of the index.
type Reading struct {
	Value          float64   // 0 (extreme fear) .. 100 (extreme greed)
	Classification string    // as published, e.g. "Extreme Fear"
	Updated        time.Time // the day the value belongs to, as given by the source
}

// Decode parses one API response body and returns the newest reading.
//
// value and timestamp are accepted as JSON strings (as the API sends them) or
// numbers. Anything that would make the exported number wrong is an error:
// a metadata error, no entries, a value that is not a finite number in
// 0..100, an empty classification, or a timestamp that is not a positive
// whole number of seconds.
func Decode(body []byte) (Reading, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return Reading{}, fmt.Errorf("feargreed: decoding response: %w", err)
	}
	if top == nil {
		return Reading{}, errors.New("feargreed: response is null")
	}
	if err := metadataError(top["metadata"]); err != nil {
		return Reading{}, err
	}
	var entries []map[string]json.RawMessage
	if raw, ok := top["data"]; ok {
		if err := json.Unmarshal(raw, &entries); err != nil {
			return Reading{}, fmt.Errorf("feargreed: decoding data: %w", err)
		}
	}
	if len(entries) == 0 {
		return Reading{}, errors.New("feargreed: response has no data entries")
	}

	// Entries are documented newest first; the largest timestamp wins anyway,
	// and on a tie the earlier entry. Every timestamp must be valid, since an
	// unreadable one could belong to the newest entry.
	newest, newestTS := -1, int64(0)
	for i, e := range entries {
		if e == nil {
			return Reading{}, fmt.Errorf("feargreed: data[%d] is not an object", i)
		}
		ts, err := timestamp(e["timestamp"])
		if err != nil {
			return Reading{}, fmt.Errorf("feargreed: data[%d]: %w", i, err)
		}
		if newest < 0 || ts > newestTS {
			newest, newestTS = i, ts
		}
	}
	e := entries[newest]
	v, err := value(e["value"])
	if err != nil {
		return Reading{}, fmt.Errorf("feargreed: data[%d]: %w", newest, err)
	}
	class, err := classification(e["value_classification"])
	if err != nil {
		return Reading{}, fmt.Errorf("feargreed: data[%d]: %w", newest, err)
	}
	return Reading{Value: v, Classification: class, Updated: time.Unix(newestTS, 0).UTC()}, nil
}

// metadataError turns a non-empty metadata.error into an error. null, "" and
// false mean no error; a missing metadata object is tolerated.
func metadataError(raw json.RawMessage) error {
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	var md map[string]json.RawMessage
	if err := json.Unmarshal(raw, &md); err != nil {
		return fmt.Errorf("feargreed: decoding metadata: %w", err)
	}
	e := bytes.TrimSpace(md["error"])
	if len(e) == 0 || isNull(e) || string(e) == "false" {
		return nil
	}
	if jsonx.KindOf(e) == jsonx.KindString {
		var s string
		if err := json.Unmarshal(e, &s); err != nil {
			return fmt.Errorf("feargreed: decoding metadata.error: %w", err)
		}
		if s = strings.TrimSpace(s); s == "" {
			return nil
		}
		return fmt.Errorf("feargreed: API error: %s", s)
	}
	return fmt.Errorf("feargreed: API error: %s", e)
}

// value reads the index value, a string or number in 0..100.
func value(raw json.RawMessage) (float64, error) {
	s, err := scalar(raw)
	if err != nil {
		return 0, fmt.Errorf("value: %w", err)
	}
	v, err := jsonx.Float([]byte(s))
	if err != nil {
		return 0, fmt.Errorf("value %q is not a finite number", s)
	}
	if v < minValue || v > maxValue {
		return 0, fmt.Errorf("value %q is outside %d..%d", s, minValue, maxValue)
	}
	return v + 0, nil // + 0 turns -0 into 0
}

// timestamp reads a positive Unix time in whole seconds, string or number.
func timestamp(raw json.RawMessage) (int64, error) {
	s, err := scalar(raw)
	if err != nil {
		return 0, fmt.Errorf("timestamp: %w", err)
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q is not a whole number of seconds", s)
	}
	if ts <= 0 || ts > maxTimestamp {
		return 0, fmt.Errorf("timestamp %q is not a plausible Unix time in seconds", s)
	}
	return ts, nil
}

// classification reads the non-empty value_classification string.
func classification(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", errors.New("value_classification is missing")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("value_classification %s is not a string", raw)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("value_classification is empty")
	}
	if len(s) > maxClassificationLen {
		return "", fmt.Errorf("value_classification is longer than %d bytes", maxClassificationLen)
	}
	return s, nil
}

// scalar returns the text of a JSON string (unescaped, spaces trimmed) or of
// a bare JSON number.
func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch jsonx.KindOf(raw) {
	case jsonx.KindInvalid, jsonx.KindNull:
		return "", errors.New("missing")
	case jsonx.KindNumber:
		return string(raw), nil
	case jsonx.KindString:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if s = strings.TrimSpace(s); s == "" {
			return "", errors.New("empty")
		}
		return s, nil
	default:
		return "", fmt.Errorf("%s is neither a string nor a number", raw)
	}
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// pollURL returns base with limit=1 set in its query, keeping any other
// parameters.
func pollURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("feargreed: bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("feargreed: bad URL %q: scheme must be http or https", base)
	}
	q := u.Query()
	q.Set("limit", "1")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Run polls cfg.URL every cfg.Interval until ctx is cancelled, storing each
// good reading with sink.SetFearGreed(Source, ...) and reporting every poll
// through sink.Poll("feargreed", "fng"). Failed polls are logged and leave
// the last good reading in the sink. Rate-limit answers are honoured by the
// shared exchanges.Poller.
func Run(ctx context.Context, cfg Config, sink exchanges.Sink) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	cfg.Interval = exchanges.Positive(cfg.Interval, DefaultInterval)
	cfg.Client = exchanges.OrNewClient(cfg.Client, 30*time.Second)
	cfg.Logger = exchanges.OrDiscard(cfg.Logger)
	target, urlErr := pollURL(cfg.URL)
	if urlErr != nil {
		cfg.Logger.Error("cannot poll the Fear & Greed Index", "err", urlErr)
	}
	var last Reading
	exchanges.Poller{
		Interval: cfg.Interval,
		// The source updates once a day, but a failed poll is retried
		// sooner so that a transient error at start-up does not leave the
		// index missing for a whole interval.
		RetryInterval: min(cfg.Interval, time.Minute),
		Observer:      sink.Poll(pollExchange, pollEndpoint),
		Logger:        cfg.Logger.With("endpoint", pollEndpoint),
		Poll: func(ctx context.Context) error {
			if urlErr != nil {
				return urlErr
			}
			var body json.RawMessage
			if _, err := cfg.Client.GetJSON(ctx, target, &body); err != nil {
				return err
			}
			r, err := Decode(body)
			if err != nil {
				return fmt.Errorf("GET %s: %w", target, err)
			}
			sink.SetFearGreed(Source, r.Value, r.Classification, r.Updated)
			if r.Value != last.Value || r.Classification != last.Classification || !r.Updated.Equal(last.Updated) {
				cfg.Logger.Debug("new Fear & Greed reading", "value", r.Value, "classification", r.Classification, "updated", r.Updated)
				last = r
			}
			return nil
		},
	}.Run(ctx)
}
