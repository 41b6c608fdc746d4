package exchangetest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHandshakeStall(t *testing.T) {
	g := NewBitget()
	defer g.Close()
	g.SetStallHandshake(true)
	d := websocket.Dialer{HandshakeTimeout: 200 * time.Millisecond}
	start := time.Now()
	if c, _, err := d.Dial(g.WSURL(), nil); err == nil {
		c.Close()
		t.Fatal("the handshake completed while stalled")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the dial took %v, want the handshake timeout", took)
	}
	if n := g.StalledHandshakes(); n != 1 {
		t.Errorf("StalledHandshakes = %d, want 1", n)
	}
	if n := g.TotalConnections(); n != 0 {
		t.Errorf("TotalConnections = %d while stalled", n)
	}
	g.SetStallHandshake(false)
	c, _, err := d.Dial(g.WSURL(), nil)
	if err != nil {
		t.Fatalf("dial after the stall: %v", err)
	}
	c.Close()
	// A held request does not keep Close waiting.
	g.SetStallHandshake(true)
	go func() {
		d := websocket.Dialer{HandshakeTimeout: time.Minute}
		if c, _, err := d.Dial(g.WSURL(), nil); err == nil {
			c.Close()
		}
	}()
	for g.StalledHandshakes() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { g.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a held handshake")
	}
}

func TestHalfOpenPeer(t *testing.T) {
	g := NewBitget()
	defer g.Close()
	c, _, err := websocket.DefaultDialer.Dial(g.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pongs := make(chan struct{}, 10)
	c.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	texts := make(chan string, 10)
	go func() {
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			texts <- string(b)
		}
	}()
	ask := func() {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ask()
	for _, ch := range []string{"pong", "protocol pong"} {
		select {
		case <-pongs:
		case s := <-texts:
			if s != "pong" {
				t.Fatalf("got %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s from a live peer", ch)
		}
	}
	g.SetAnswerPings(false)
	ask()
	select {
	case <-pongs:
		t.Error("a half-open peer answered a protocol ping")
	case s := <-texts:
		t.Errorf("a half-open peer answered %q", s)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestOversizedFrame(t *testing.T) {
	for _, n := range []int{0, 12, 100, 1 << 20} {
		f := OversizedFrame(n)
		if want := max(n, 12); len(f) != want {
			t.Errorf("OversizedFrame(%d) has %d bytes, want %d", n, len(f), want)
		}
	}
}

func TestLogRecorder(t *testing.T) {
	l := NewLogRecorder()
	log := l.Logger().With("stream", "x")
	log.Info("hello", "k", "v")
	log.Warn("websocket disconnected", "err", "read timeout")
	if n := l.Count(slog.LevelWarn, "timeout"); n != 1 {
		t.Errorf("Count(warn, timeout) = %d, want 1", n)
	}
	if n := l.Count(slog.LevelInfo, "stream=x"); n != 2 {
		t.Errorf("Count(info, stream=x) = %d, want 2", n)
	}
	if n := len(l.Records()); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}
