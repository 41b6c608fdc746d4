package wsconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// recorder is a StreamObserver that records what the runner reports.
type recorder struct {
	connects, messages, decodeErrors atomic.Int64

	mu        sync.Mutex
	ups       []bool
	connTimes []time.Time
}

func (r *recorder) SetUp(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, up)
}

func (r *recorder) Connected() {
	r.mu.Lock()
	r.connTimes = append(r.connTimes, time.Now())
	r.mu.Unlock()
	r.connects.Add(1)
}

func (r *recorder) Message()     { r.messages.Add(1) }
func (r *recorder) DecodeError() { r.decodeErrors.Add(1) }

func (r *recorder) upSeq() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.ups...)
}

func (r *recorder) isUp() bool {
	ups := r.upSeq()
	return len(ups) > 0 && ups[len(ups)-1]
}

func (r *recorder) connectTimes() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.connTimes...)
}

// fakeServer is a WebSocket server on a loopback port; handle runs once per
// connection (n counts connections from 1).
type fakeServer struct {
	srv   *httptest.Server
	url   string
	conns atomic.Int64
	stop  chan struct{} // closed at cleanup; handlers that idle wait on it
	wg    sync.WaitGroup

	mu         sync.Mutex
	received   []string
	closeCodes []int
}

func newServer(t *testing.T, handle func(fs *fakeServer, c *websocket.Conn, n int64)) *fakeServer {
	t.Helper()
	fs := &fakeServer{stop: make(chan struct{})}
	var up websocket.Upgrader
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.wg.Add(1)
		defer fs.wg.Done()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		handle(fs, c, fs.conns.Add(1))
	}))
	fs.url = "ws" + strings.TrimPrefix(fs.srv.URL, "http")
	t.Cleanup(func() {
		close(fs.stop)
		fs.srv.Close()
		fs.wg.Wait()
	})
	return fs
}

// readAll reads until the connection fails, recording text messages and the
// close code sent by the client.
func (fs *fakeServer) readAll(c *websocket.Conn) {
	for {
		_, data, err := c.ReadMessage()
		fs.mu.Lock()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				fs.closeCodes = append(fs.closeCodes, ce.Code)
			}
			fs.mu.Unlock()
			return
		}
		fs.received = append(fs.received, string(data))
		fs.mu.Unlock()
	}
}

func (fs *fakeServer) receivedMessages() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.received...)
}

func (fs *fakeServer) codes() []int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]int(nil), fs.closeCodes...)
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// logBuffer collects log output for assertions and also shows it in the test log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{out: t.Output()}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// testConfig is a fast configuration: short heartbeat and back-off.
func testConfig(t *testing.T, url string, obs *recorder) Config {
	logger, _ := newLogger(t)
	return Config{
		Name:             "test",
		URL:              func() string { return url },
		HandshakeTimeout: time.Second,
		WriteTimeout:     time.Second,
		PingInterval:     50 * time.Millisecond,
		ReadTimeout:      300 * time.Millisecond, // generous, so a slow test machine never looks like a dead peer
		SubscribeTimeout: 2 * time.Second,
		BackoffMin:       5 * time.Millisecond,
		BackoffMax:       20 * time.Millisecond,
		OnConnect:        func(_ context.Context, s *Session) error { s.Subscribed(); return nil },
		Observer:         obs,
		Logger:           logger,
	}
}

// start runs Run in the background; the returned stop cancels it and reports
// how long Run took to return. Cleanup stops it too.
func start(t *testing.T, cfg Config) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, cfg)
	}()
	stop = func() time.Duration {
		begin := time.Now()
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
		return time.Since(begin)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const subscribeMsg = `{"op":"subscribe"}`

func TestMessagesInOrder(t *testing.T) {
	const n = 100
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) {
		_, sub, err := c.ReadMessage()
		if err != nil || string(sub) != subscribeMsg {
			return
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte("ack"))
		for i := range n {
			_ = c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "m%d", i))
		}
		fs.readAll(c)
	})
	obs := &recorder{}
	var mu sync.Mutex
	var got []string
	var countedEarly string
	cfg := testConfig(t, fs.url, obs)
	cfg.OnConnect = func(_ context.Context, s *Session) error { return s.Send([]byte(subscribeMsg)) }
	cfg.OnMessage = func(s *Session, data []byte) {
		if string(data) == "ack" {
			s.Subscribed()
			return
		}
		mu.Lock()
		// A message is counted once it has been handled, so whoever
		// sees the count also sees what the message did: here the ack
		// and the len(got) messages before this one.
		if seen := obs.messages.Load(); seen != int64(len(got)+1) && countedEarly == "" {
			countedEarly = fmt.Sprintf("while handling %s the observer had counted %d messages, want %d", data, seen, len(got)+1)
		}
		got = append(got, string(data))
		mu.Unlock()
	}
	start(t, cfg)

	waitFor(t, 5*time.Second, "all messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	mu.Lock()
	for i, m := range got {
		if want := fmt.Sprintf("m%d", i); m != want {
			t.Fatalf("message %d = %q, want %q", i, m, want)
		}
	}
	if countedEarly != "" {
		t.Error(countedEarly)
	}
	mu.Unlock()
	if got := obs.messages.Load(); got != n+1 {
		t.Errorf("Observer.Message called %d times, want %d", got, n+1)
	}
	if ups := obs.upSeq(); len(ups) != 1 || !ups[0] {
		t.Errorf("SetUp calls = %v, want [true]", ups)
	}
	if got := obs.connects.Load(); got != 1 {
		t.Errorf("connects = %d, want 1", got)
	}
	if rec := fs.receivedMessages(); len(rec) != 0 {
		t.Errorf("server got unexpected frames after subscribe: %q", rec)
	}
}

func TestReconnectAfterServerClose(t *testing.T) {
	var subscribes atomic.Int64
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, n int64) {
		_, sub, err := c.ReadMessage()
		if err != nil || string(sub) != subscribeMsg {
			return
		}
		subscribes.Add(1)
		_ = c.WriteMessage(websocket.TextMessage, []byte("ack"))
		switch n {
		case 1: // abrupt TCP close
			_ = c.NetConn().Close()
		case 2: // orderly close frame
			msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "restart")
			_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			fs.readAll(c)
		default:
			fs.readAll(c)
		}
	})
	obs := &recorder{}
	var onConnects atomic.Int64
	cfg := testConfig(t, fs.url, obs)
	cfg.OnConnect = func(_ context.Context, s *Session) error {
		onConnects.Add(1)
		return s.Send([]byte(subscribeMsg))
	}
	cfg.OnMessage = func(s *Session, data []byte) {
		if string(data) == "ack" {
			s.Subscribed()
		}
	}
	start(t, cfg)

	waitFor(t, 5*time.Second, "third connection subscribed", func() bool {
		return obs.connects.Load() == 3 && subscribes.Load() == 3 && obs.isUp()
	})
	if got := onConnects.Load(); got != 3 {
		t.Errorf("OnConnect called %d times, want 3", got)
	}
	want := []bool{true, false, true, false, true}
	if got := obs.upSeq(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SetUp calls = %v, want %v", got, want)
	}
}

func TestSilentPeerIsNotReconnected(t *testing.T) {
	var pings atomic.Int64
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) {
		c.SetPingHandler(func(p string) error {
			pings.Add(1)
			return c.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(time.Second))
		})
		fs.readAll(c) // answers pings, never sends data
	})
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.ReadTimeout = 150 * time.Millisecond // well below the silent period
	start(t, cfg)

	time.Sleep(600 * time.Millisecond)
	if got := obs.connects.Load(); got != 1 {
		t.Errorf("connects = %d, want 1 (a silent peer answering pings must stay connected)", got)
	}
	if got := pings.Load(); got < 5 {
		t.Errorf("server saw %d pings, want at least 5", got)
	}
	if ups := obs.upSeq(); len(ups) != 1 || !ups[0] {
		t.Errorf("SetUp calls = %v, want [true]", ups)
	}
	if got := obs.messages.Load(); got != 0 {
		t.Errorf("messages = %d, want 0", got)
	}
}

func TestDeadPeerIsReconnected(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, n int64) {
		if n == 1 {
			<-fs.stop // never reads, so never answers a ping, and sends nothing
			return
		}
		fs.readAll(c)
	})
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.ReadTimeout = 0 // the default, 1.5 x PingInterval = 75ms
	start(t, cfg)

	waitFor(t, 5*time.Second, "a reconnect", func() bool { return obs.connects.Load() >= 2 && obs.isUp() })
	times := obs.connectTimes()
	if gap := times[1].Sub(times[0]); gap > time.Second {
		t.Errorf("dead peer detected after %s, want well under 1s (ReadTimeout 75ms)", gap)
	}
	if ups := obs.upSeq(); len(ups) < 3 || !ups[0] || ups[1] || !ups[2] {
		t.Errorf("SetUp calls = %v, want true, false, true", ups)
	}
}

func TestServerPingsAreAnsweredAndKeepAlive(t *testing.T) {
	var pongs, mismatched atomic.Int64
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) {
		var sent sync.Map
		c.SetPongHandler(func(p string) error {
			if _, ok := sent.Load(p); ok {
				pongs.Add(1)
			} else {
				mismatched.Add(1)
			}
			return nil
		})
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(30 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-t.C:
				}
				p := fmt.Sprintf("ping-%d", i)
				sent.Store(p, true)
				if c.WriteControl(websocket.PingMessage, []byte(p), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		})
		fs.readAll(c)
		close(done)
		wg.Wait()
	})
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.Heartbeat = func(*Session) error { return nil } // only server pings keep the connection alive
	cfg.ReadTimeout = 150 * time.Millisecond
	start(t, cfg)

	time.Sleep(600 * time.Millisecond)
	if got := obs.connects.Load(); got != 1 {
		t.Errorf("connects = %d, want 1 (server pings must extend the read deadline)", got)
	}
	if got := pongs.Load(); got < 10 {
		t.Errorf("server got %d matching pongs, want at least 10", got)
	}
	if got := mismatched.Load(); got != 0 {
		t.Errorf("server got %d pongs whose payload matched no ping", got)
	}
}

func TestDataFramesExtendTheDeadline(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) {
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-fs.stop:
				return
			case <-tick.C:
			}
			if c.WriteMessage(websocket.TextMessage, []byte("data")) != nil {
				return
			}
		}
	})
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.Heartbeat = func(*Session) error { return nil } // nothing but data keeps the connection alive
	cfg.ReadTimeout = 150 * time.Millisecond
	start(t, cfg)

	time.Sleep(600 * time.Millisecond)
	if got := obs.connects.Load(); got != 1 {
		t.Errorf("connects = %d, want 1 (data frames must extend the read deadline)", got)
	}
	if got := obs.messages.Load(); got < 10 {
		t.Errorf("messages = %d, want at least 10", got)
	}
}

func TestMaxLifetimeRotatesWithoutBackoff(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) { fs.readAll(c) })
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.MaxLifetime = 100 * time.Millisecond
	cfg.BackoffMin = time.Hour // any back-off would stall the test
	cfg.BackoffMax = time.Hour
	start(t, cfg)

	waitFor(t, 3*time.Second, "three connections", func() bool { return obs.connects.Load() >= 3 })
	waitFor(t, time.Second, "two normal closures", func() bool {
		return count(fs.codes(), websocket.CloseNormalClosure) >= 2
	})
	times := obs.connectTimes()
	if life := times[1].Sub(times[0]); life < cfg.MaxLifetime {
		t.Errorf("first connection replaced after %s, before MaxLifetime %s", life, cfg.MaxLifetime)
	}
}

func TestSubscribeTimeoutReconnects(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) { fs.readAll(c) })
	obs := &recorder{}
	var onConnects atomic.Int64
	cfg := testConfig(t, fs.url, obs)
	cfg.SubscribeTimeout = 100 * time.Millisecond
	cfg.OnConnect = func(context.Context, *Session) error { onConnects.Add(1); return nil }
	logger, logs := newLogger(t)
	cfg.Logger = logger
	start(t, cfg)

	waitFor(t, 3*time.Second, "a reconnect", func() bool { return obs.connects.Load() >= 2 && onConnects.Load() >= 2 })
	if count(obs.upSeq(), true) != 0 {
		t.Errorf("SetUp(true) called although nothing subscribed: %v", obs.upSeq())
	}
	waitFor(t, time.Second, "a normal closure", func() bool {
		return count(fs.codes(), websocket.CloseNormalClosure) >= 1
	})
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, errSubscribeTimeout.Error()) {
		t.Errorf("no warning about the subscribe timeout in the log:\n%s", out)
	}
}

func TestOversizedFrame(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, n int64) {
		if n == 1 {
			_ = c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 2048))
		} else {
			_ = c.WriteMessage(websocket.TextMessage, []byte("ok"))
		}
		fs.readAll(c)
	})
	obs := &recorder{}
	var mu sync.Mutex
	var got []string
	cfg := testConfig(t, fs.url, obs)
	cfg.ReadLimit = 1024
	cfg.OnMessage = func(_ *Session, data []byte) {
		mu.Lock()
		got = append(got, string(data))
		mu.Unlock()
	}
	logger, logs := newLogger(t)
	cfg.Logger = logger
	start(t, cfg)

	waitFor(t, 3*time.Second, "a frame after the reconnect", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	if got[0] != "ok" {
		t.Errorf("first delivered frame = %.20q, want \"ok\"", got[0])
	}
	mu.Unlock()
	if got := obs.decodeErrors.Load(); got != 1 {
		t.Errorf("decode errors = %d, want 1", got)
	}
	if got := obs.connects.Load(); got < 2 {
		t.Errorf("connects = %d, want at least 2", got)
	}
	waitFor(t, time.Second, "a message-too-big closure", func() bool {
		return count(fs.codes(), websocket.CloseMessageTooBig) == 1
	})
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "read limit") {
		t.Errorf("no warning about the oversized frame in the log:\n%s", out)
	}
}

// stallingListener accepts TCP connections and never answers.
func stallingListener(t *testing.T) (url string, accepts *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepts = new(atomic.Int64)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			accepts.Add(1)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "ws://" + ln.Addr().String() + "/ws", accepts
}

func TestHandshakeTimeout(t *testing.T) {
	t.Run("retried with back-off", func(t *testing.T) {
		url, accepts := stallingListener(t)
		obs := &recorder{}
		cfg := testConfig(t, url, obs)
		cfg.HandshakeTimeout = 100 * time.Millisecond
		logger, logs := newLogger(t)
		cfg.Logger = logger
		start(t, cfg)

		waitFor(t, 5*time.Second, "three dial attempts", func() bool { return accepts.Load() >= 3 })
		if got := obs.connects.Load(); got != 0 {
			t.Errorf("connects = %d, want 0", got)
		}
		if out := logs.String(); !strings.Contains(out, "timeout") {
			t.Errorf("no dial timeout in the log:\n%s", out)
		}
	})
	t.Run("cancel during a stalled handshake", func(t *testing.T) {
		url, accepts := stallingListener(t)
		cfg := testConfig(t, url, &recorder{})
		cfg.HandshakeTimeout = time.Minute
		stop := start(t, cfg)

		waitFor(t, 5*time.Second, "a dial attempt", func() bool { return accepts.Load() >= 1 })
		time.Sleep(20 * time.Millisecond)
		if took := stop(); took > time.Second {
			t.Errorf("Run returned %s after cancel, want promptly", took)
		}
	})
}

func TestCancelStopsEverything(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) {
		_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
		fs.readAll(c)
	})
	baseline := runtime.NumGoroutine()
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.Heartbeat = func(s *Session) error { return s.Send([]byte("ping")) }
	stop := start(t, cfg)

	waitFor(t, 3*time.Second, "up and a message", func() bool { return obs.isUp() && obs.messages.Load() == 1 })
	waitFor(t, 3*time.Second, "a heartbeat", func() bool { return len(fs.receivedMessages()) > 0 })
	if took := stop(); took > time.Second {
		t.Errorf("Run returned %s after cancel, want promptly", took)
	}
	if obs.isUp() {
		t.Error("stream still up after Run returned")
	}
	waitFor(t, time.Second, "a normal closure", func() bool {
		return count(fs.codes(), websocket.CloseNormalClosure) == 1
	})

	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, StableAfter: 10 * time.Second}
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		if got := b.Cap(); got != want {
			t.Fatalf("attempt %d: Cap() = %s, want %s", i, got, want)
		}
		if d := b.Next(0); d < 0 || d >= want {
			t.Fatalf("attempt %d: Next() = %s, want in [0, %s)", i, d, want)
		}
	}
	// A short-lived connection does not reset the sequence.
	if d := b.Next(time.Second); d < 0 || d >= time.Second {
		t.Fatalf("Next after a short connection = %s, want in [0, 1s)", d)
	}
	if got := b.Cap(); got != time.Second {
		t.Fatalf("Cap() after a short connection = %s, want 1s", got)
	}
	// A stable connection does.
	if d := b.Next(10 * time.Second); d < 0 || d >= 100*time.Millisecond {
		t.Fatalf("Next after a stable connection = %s, want in [0, 100ms)", d)
	}
	if got := b.Cap(); got != 200*time.Millisecond {
		t.Fatalf("Cap() after a stable connection = %s, want 200ms", got)
	}
	b.Reset()
	if got := b.Cap(); got != 100*time.Millisecond {
		t.Fatalf("Cap() after Reset = %s, want 100ms", got)
	}

	// Full jitter: delays spread over the whole [0, cap) range.
	b = Backoff{Min: time.Second, Max: time.Second, StableAfter: time.Hour}
	lo, hi := time.Second, time.Duration(0)
	for range 1000 {
		d := b.Next(0)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 100*time.Millisecond || hi < 900*time.Millisecond {
		t.Errorf("1000 delays spread over [%s, %s], want close to [0, 1s)", lo, hi)
	}

	// Many failures never overflow.
	b = Backoff{Min: 500 * time.Millisecond, Max: time.Minute}
	for range 200 {
		if d := b.Next(0); d < 0 || d >= time.Minute {
			t.Fatalf("Next() = %s after many failures, want in [0, 1m)", d)
		}
	}
}

func TestDefaults(t *testing.T) {
	r := newRunner(Config{URL: func() string { return "" }})
	checks := []struct {
		name      string
		got, want time.Duration
	}{
		{"HandshakeTimeout", r.HandshakeTimeout, 10 * time.Second},
		{"WriteTimeout", r.WriteTimeout, 10 * time.Second},
		{"PingInterval", r.PingInterval, 30 * time.Second},
		{"ReadTimeout", r.ReadTimeout, 45 * time.Second},
		{"SubscribeTimeout", r.SubscribeTimeout, 15 * time.Second},
		{"BackoffMin", r.BackoffMin, 500 * time.Millisecond},
		{"BackoffMax", r.BackoffMax, 60 * time.Second},
		{"StableAfter", r.StableAfter, 60 * time.Second},
		{"MaxLifetime", r.MaxLifetime, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if r.ReadLimit != 1<<20 {
		t.Errorf("ReadLimit = %d, want 1 MiB", r.ReadLimit)
	}
	if r.Logger == nil || r.Observer == nil || r.OnConnect == nil || r.OnMessage == nil {
		t.Error("nil Logger, Observer or hooks were not replaced")
	}
	if r := newRunner(Config{PingInterval: 10 * time.Second}); r.ReadTimeout != 15*time.Second {
		t.Errorf("ReadTimeout with PingInterval 10s = %s, want 15s", r.ReadTimeout)
	}
}

func TestSessionClose(t *testing.T) {
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, n int64) {
		if n == 1 {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"error":"bad subscription"}`))
		} else {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"result":null}`))
		}
		fs.readAll(c)
	})
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.OnConnect = nil
	cfg.OnMessage = func(s *Session, data []byte) {
		if bytes.Contains(data, []byte("error")) {
			s.Close(errors.New("subscription rejected"))
			if err := s.Send([]byte("after close")); err == nil {
				t.Error("Send after Close succeeded")
			}
			return
		}
		s.Subscribed()
	}
	start(t, cfg)

	waitFor(t, 3*time.Second, "resubscribed on a new connection", func() bool {
		return obs.connects.Load() == 2 && obs.isUp()
	})
	waitFor(t, time.Second, "a normal closure", func() bool {
		return count(fs.codes(), websocket.CloseNormalClosure) == 1
	})
	if rec := fs.receivedMessages(); len(rec) != 0 {
		t.Errorf("server received %q, want nothing", rec)
	}
}
