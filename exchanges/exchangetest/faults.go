package exchangetest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Fault helpers shared by the WebSocket fakes: a handshake that never
// completes, a half-open peer, and frames larger than a client's read limit.
// Scripted frame faults (garbage, truncated JSON, slow delivery, close codes,
// abrupt closes) need no helper: they are Event fields.

// handshakeStall holds WebSocket upgrade requests unanswered while it is
// on: the TCP connection is accepted and the HTTP request read, but no
// response is ever written, as a venue behind a wedged load balancer does.
// The zero value is off.
type handshakeStall struct {
	mu      sync.Mutex
	on      bool
	release chan struct{} // closed when the stall is lifted
	held    int
}

// set turns the stall on or off; turning it off closes every held
// connection without an answer.
func (s *handshakeStall) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && !s.on:
		s.release = make(chan struct{})
	case !on && s.on:
		close(s.release)
	}
	s.on = on
}

// count returns how many upgrade requests have been held so far.
func (s *handshakeStall) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// hold reports whether the request was held. When the stall is on it
// blocks until the stall is lifted, done is closed or the client gives up,
// then drops the TCP connection without writing a response.
func (s *handshakeStall) hold(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool {
	s.mu.Lock()
	if !s.on {
		s.mu.Unlock()
		return false
	}
	s.held++
	release := s.release
	s.mu.Unlock()
	select {
	case <-release:
	case <-done:
	case <-r.Context().Done():
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
	return true
}

// halfOpen is the switch of a half-open peer: while it is on, the fake keeps
// every TCP connection open but answers nothing (no pong, no reply to a
// heartbeat or a request) and sends no heartbeat of its own. Scripted
// frames, pings and closes still go out. The zero value is off.
type halfOpen struct{ silent atomic.Bool }

func (h *halfOpen) set(silent bool) { h.silent.Store(silent) }

func (h *halfOpen) on() bool { return h.silent.Load() }

// pingHandler returns a WebSocket ping handler that answers with a pong
// unless the peer is half-open (gorilla's default handler always answers).
func (h *halfOpen) pingHandler(ws *websocket.Conn, wait time.Duration) func(string) error {
	return func(payload string) error {
		if h.on() {
			return nil
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(wait))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	}
}

// OversizedFrame returns a valid JSON text frame of exactly n bytes (at
// least 12), {"pad":"xxx..."}, for scripting a frame larger than a client's
// read limit.
func OversizedFrame(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	pad := max(n-len(head)-len(tail), 2)
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// LogRecord is one record captured by a LogRecorder.
type LogRecord struct {
	Level   slog.Level
	Message string
	Attrs   string // "key=value" pairs, space separated
}

// LogRecorder is a slog.Handler that keeps every record, so that tests can
// check a fault was logged. It is safe for concurrent use.
type LogRecorder struct {
	mu      sync.Mutex
	records []LogRecord
}

// NewLogRecorder returns an empty recorder.
func NewLogRecorder() *LogRecorder { return &LogRecorder{} }

// Logger returns a logger writing to the recorder.
func (l *LogRecorder) Logger() *slog.Logger { return slog.New(l) }

// Enabled implements slog.Handler: every level is kept.
func (l *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (l *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	add := func(a slog.Attr) bool {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
		return true
	}
	r.Attrs(add)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, LogRecord{Level: r.Level, Message: r.Message, Attrs: b.String()})
	return nil
}

// WithAttrs implements slog.Handler; the records of the returned handler
// land in the same recorder. Groups are flattened.
func (l *LogRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorderView{l, attrs}
}

// WithGroup implements slog.Handler (groups are ignored).
func (l *LogRecorder) WithGroup(string) slog.Handler { return l }

// Count returns how many records at level or above have a message or
// attributes containing substr.
func (l *LogRecorder) Count(level slog.Level, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level >= level && (strings.Contains(r.Message, substr) || strings.Contains(r.Attrs, substr)) {
			n++
		}
	}
	return n
}

// Records returns a copy of every record so far.
func (l *LogRecorder) Records() []LogRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogRecord(nil), l.records...)
}

// logRecorderView is a LogRecorder with attributes added by WithAttrs.
type logRecorderView struct {
	l     *LogRecorder
	attrs []slog.Attr
}

func (v *logRecorderView) Enabled(context.Context, slog.Level) bool { return true }

func (v *logRecorderView) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(v.attrs...)
	return v.l.Handle(ctx, r)
}

func (v *logRecorderView) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorderView{v.l, append(append([]slog.Attr(nil), v.attrs...), attrs...)}
}

func (v *logRecorderView) WithGroup(string) slog.Handler { return v }
