// Package wsconn is the one WebSocket runner every venue uses: dial with a
// handshake timeout, a venue hook to subscribe, a heartbeat, a read limit, a
// read deadline refreshed by every frame and by pings and pongs, reconnects
// with exponential back-off and full jitter, proactive reconnects before a
// venue's maximum connection lifetime, and a clean shutdown when the context
// is cancelled.
//
// Liveness comes from heartbeats, never from data: a liquidation stream may be
// silent for minutes and that alone never causes a reconnect.
package wsconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Config describes one logical stream. Zero durations take the defaults below.
type Config struct {
	// Name is used in logs.
	Name string
	// URL returns the URL to dial; it is called before every connection
	// attempt, so it may change with the instrument list.
	URL func() string

	HandshakeTimeout time.Duration // default 10s
	ReadLimit        int64         // max frame size in bytes, default 1 MiB; a larger frame closes the connection and counts a decode error
	WriteTimeout     time.Duration // per write, default 10s

	// PingInterval is how often the heartbeat runs (default 30s). The
	// default heartbeat sends a protocol ping frame; set Heartbeat for
	// venues with an application-level ping.
	PingInterval time.Duration
	// ReadTimeout is the read deadline, refreshed by every frame, ping and
	// pong; when it expires the peer is dead and the runner reconnects.
	// Default: 1.5 x PingInterval, so a dead peer is detected within 2 heartbeat intervals.
	ReadTimeout time.Duration
	// SubscribeTimeout bounds the time from connect until Session.Subscribed
	// is called; past it the runner reconnects. Default 15s.
	SubscribeTimeout time.Duration
	// MaxLifetime, when > 0, closes and reopens the connection proactively
	// after this long (Binance drops connections at 24h; use ~23h).
	MaxLifetime time.Duration

	BackoffMin  time.Duration // first reconnect delay cap, default 500ms
	BackoffMax  time.Duration // cap of the exponential back-off, default 60s
	StableAfter time.Duration // a connection that lived this long resets the back-off; default 60s

	// OnConnect runs once per connection, before reading starts. It sends
	// subscriptions with s.Send and, if the venue does not acknowledge
	// subscriptions, calls s.Subscribed itself. An error closes the connection.
	OnConnect func(ctx context.Context, s *Session) error
	// OnMessage is called by the single reader for every text or binary
	// frame, in order. It must not retain data after returning. It may call
	// s.Subscribed when it sees the subscription acknowledgement and
	// s.Send for venue-level replies (e.g. a pong to a text "ping").
	OnMessage func(s *Session, data []byte)
	// Heartbeat, when set, replaces the protocol ping sent every PingInterval
	// (for example s.Send([]byte(`{"op":"ping"}`))).
	Heartbeat func(s *Session) error

	Observer exchanges.StreamObserver
	Logger   *slog.Logger
}

// Defaults for zero Config fields.
const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultReadLimit        = 1 << 20
	defaultWriteTimeout     = 10 * time.Second
	defaultPingInterval     = 30 * time.Second
	defaultSubscribeTimeout = 15 * time.Second
	defaultBackoffMin       = 500 * time.Millisecond
	defaultBackoffMax       = 60 * time.Second
	defaultStableAfter      = 60 * time.Second

	// closeWait bounds the close frame sent before closing a connection.
	closeWait = time.Second
)

var (
	errSubscribeTimeout = errors.New("not subscribed within the subscribe timeout")
	errMaxLifetime      = errors.New("maximum connection lifetime reached")
	errSessionClosed    = errors.New("connection closed")
	errClosedByHook     = errors.New("closed by the venue")
)

// Session is one live connection as seen by the venue hooks.
type Session struct {
	conn *websocket.Conn
	r    *runner
	wmu  sync.Mutex // serialises data frame writes

	mu        sync.Mutex
	up        bool
	reason    error         // why the connection ended; nil while it is live
	sendClose bool          // whether a close frame is still worth sending
	done      chan struct{} // closed once reason is set
}

// Send writes one text frame (safe for concurrent use; writes are serialised).
// A failed write leaves the connection unusable, so it also ends the
// connection.
func (s *Session) Send(data []byte) error {
	select {
	case <-s.done:
		return errSessionClosed
	default:
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.r.WriteTimeout))
	err := s.conn.WriteMessage(websocket.TextMessage, data)
	if err != nil {
		s.end(fmt.Errorf("write: %w", err), false)
	}
	return err
}

// Subscribed marks the stream as up (connected and subscribed).
func (s *Session) Subscribed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up || s.reason != nil {
		return
	}
	s.up = true
	s.r.Observer.SetUp(true)
}

// Close ends the connection; the runner reconnects after back-off.
func (s *Session) Close(reason error) {
	if reason == nil {
		reason = errClosedByHook
	}
	s.end(reason, true)
}

// end records why the connection ends (the first reason wins) and marks the
// stream down; the watch goroutine then closes the connection.
func (s *Session) end(reason error, sendClose bool) {
	s.mu.Lock()
	if s.reason != nil {
		s.mu.Unlock()
		return
	}
	s.reason, s.sendClose, s.up = reason, sendClose, false
	close(s.done)
	s.mu.Unlock()
	s.r.Observer.SetUp(false)
}

func (s *Session) isUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// extend moves the read deadline; only the reader calls it (directly or
// from the ping and pong handlers).
func (s *Session) extend() {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.r.ReadTimeout))
}

type nopObserver struct{}

func (nopObserver) SetUp(bool)   {}
func (nopObserver) Connected()   {}
func (nopObserver) Message()     {}
func (nopObserver) DecodeError() {}

// runner is the state of one Run call; only the Run goroutine touches buf
// and backoff.
type runner struct {
	Config
	backoff Backoff
	buf     bytes.Buffer // the frame handed to OnMessage, reused
	dialer  net.Dialer
}

func newRunner(cfg Config) *runner {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HandshakeTimeout, defaultHandshakeTimeout)
	def(&cfg.WriteTimeout, defaultWriteTimeout)
	def(&cfg.PingInterval, defaultPingInterval)
	def(&cfg.ReadTimeout, cfg.PingInterval*3/2)
	def(&cfg.SubscribeTimeout, defaultSubscribeTimeout)
	def(&cfg.BackoffMin, defaultBackoffMin)
	def(&cfg.BackoffMax, defaultBackoffMax)
	def(&cfg.StableAfter, defaultStableAfter)
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = defaultReadLimit
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name != "" {
		cfg.Logger = cfg.Logger.With("stream", cfg.Name)
	}
	if cfg.OnConnect == nil {
		cfg.OnConnect = func(context.Context, *Session) error { return nil }
	}
	if cfg.OnMessage == nil {
		cfg.OnMessage = func(*Session, []byte) {}
	}
	return &runner{
		Config:  cfg,
		backoff: Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax, StableAfter: cfg.StableAfter},
	}
}

// Run keeps the stream connected until ctx is cancelled, then returns after
// every goroutine it started has exited.
func Run(ctx context.Context, cfg Config) {
	if cfg.URL == nil {
		panic("wsconn: Config.URL is nil")
	}
	r := newRunner(cfg)
	for {
		lived, err := r.connection(ctx)
		switch {
		case ctx.Err() != nil:
			r.Logger.Debug("websocket stream stopped", "reason", err)
			return
		case errors.Is(err, errMaxLifetime):
			r.Logger.Debug("websocket connection reached its maximum lifetime; reconnecting", "lived", lived.Round(time.Second))
			r.backoff.Reset()
			continue
		}
		delay := r.backoff.Next(lived)
		if lived == 0 {
			r.Logger.Warn("websocket connect failed; retrying", "err", err, "retry_in", delay.Round(time.Millisecond))
		} else {
			r.Logger.Warn("websocket disconnected; reconnecting", "err", err, "lived", lived.Round(time.Millisecond), "retry_in", delay.Round(time.Millisecond))
		}
		if !exchanges.Sleep(ctx, delay) {
			return
		}
	}
}

// connection dials, runs one connection until it ends and returns how long
// it lived (0 when the dial failed) and why it ended.
func (r *runner) connection(ctx context.Context) (time.Duration, error) {
	conn, err := r.dial(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	r.Observer.Connected()
	r.Logger.Debug("websocket connected")
	s := &Session{conn: conn, r: r, done: make(chan struct{})}
	conn.SetReadLimit(r.ReadLimit)
	// gorilla's default ping handler does not extend the read deadline.
	conn.SetPingHandler(func(payload string) error {
		s.extend()
		_ = conn.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(r.WriteTimeout))
		return nil
	})
	conn.SetPongHandler(func(string) error {
		s.extend()
		return nil
	})

	var wg sync.WaitGroup
	wg.Go(func() { r.watch(ctx, s) })
	wg.Go(func() { r.heartbeat(s) })
	if err := r.OnConnect(ctx, s); err != nil {
		s.end(fmt.Errorf("subscribing: %w", err), true)
	} else {
		s.end(r.read(s), false)
	}
	wg.Wait()
	return time.Since(start), s.reason
}

func (r *runner) dial(ctx context.Context) (*websocket.Conn, error) {
	var stop func() bool
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: r.HandshakeTimeout,
		// gorilla honours only ctx's deadline once TCP is up; closing the
		// socket on cancel ends a stalled handshake at once.
		NetDialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
			c, err := r.dialer.DialContext(dctx, network, addr)
			if err == nil {
				stop = context.AfterFunc(ctx, func() { _ = c.Close() })
			}
			return c, err
		},
	}
	url := r.URL()
	conn, resp, err := d.DialContext(ctx, url, nil) //nolint:bodyclose // gorilla owns the handshake response

	if stop != nil {
		stop()
	}
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if ctx.Err() != nil {
		_ = conn.Close()
		return nil, ctx.Err()
	}
	return conn, nil
}

// read is the connection's single reader: it hands every data frame to
// OnMessage until the connection fails or is closed.
func (r *runner) read(s *Session) error {
	s.extend()
	for {
		_, fr, err := s.conn.NextReader()
		if err == nil {
			s.extend()
			r.buf.Reset()
			_, err = r.buf.ReadFrom(fr)
		}
		if errors.Is(err, websocket.ErrReadLimit) {
			r.Observer.DecodeError()
			return fmt.Errorf("frame larger than the %d-byte read limit: %w", r.ReadLimit, err)
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		// Counted once handled: a scrape that sees the count sees what
		// the message did.
		r.OnMessage(s, r.buf.Bytes())
		r.Observer.Message()
	}
}

// watch ends the connection on ctx cancel, subscribe timeout or maximum
// lifetime, and closes it once it has ended for any reason.
func (r *runner) watch(ctx context.Context, s *Session) {
	subscribe := time.NewTimer(r.SubscribeTimeout)
	defer subscribe.Stop()
	var lifetime <-chan time.Time
	if r.MaxLifetime > 0 {
		t := time.NewTimer(r.MaxLifetime)
		defer t.Stop()
		lifetime = t.C
	}
	for {
		select {
		case <-s.done:
			if s.sendClose {
				msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
				_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(min(closeWait, r.WriteTimeout)))
			}
			_ = s.conn.Close()
			return
		case <-ctx.Done():
			s.end(ctx.Err(), true)
		case <-subscribe.C:
			if !s.isUp() {
				s.end(errSubscribeTimeout, true)
			}
		case <-lifetime:
			s.end(errMaxLifetime, true)
		}
	}
}

// heartbeat keeps the peer answering: every PingInterval it runs the venue's
// Heartbeat or sends a protocol ping.
func (r *runner) heartbeat(s *Session) {
	t := time.NewTicker(r.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		var err error
		if r.Heartbeat != nil {
			err = r.Heartbeat(s)
		} else {
			err = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(r.WriteTimeout))
		}
		if err != nil {
			s.end(fmt.Errorf("heartbeat: %w", err), false)
			return
		}
	}
}
