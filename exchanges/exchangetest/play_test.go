package exchangetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// stubConn and stubFake record what the player does, in order.
type stubConn struct {
	f       *stubFake
	name    string
	pingErr bool
}

func (c *stubConn) control(mt int, data []byte) error {
	c.f.log(fmt.Sprintf("%s control %d %q", c.name, mt, data))
	if mt == websocket.PingMessage && c.pingErr {
		return errors.New("ping failed")
	}
	return nil
}

func (c *stubConn) closeSent() { c.f.log(c.name + " closeSent") }
func (c *stubConn) kill()      { c.f.log(c.name + " kill") }

type stubFake struct {
	mu     sync.Mutex
	calls  []string
	conns  []*stubConn
	closes bool // deliver reports the fake closed
}

func (f *stubFake) log(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *stubFake) deliver(frame []byte) (Delivered, bool) {
	f.log("deliver " + string(frame))
	if f.closes {
		return Delivered{}, false
	}
	return Delivered{Frame: frame, Conns: len(f.conns)}, true
}

func (f *stubFake) playConns() []playConn {
	f.log("list")
	return asPlayConns(f.conns)
}

func (f *stubFake) disconnectAll() { f.log("disconnect") }

func newStubFake() *stubFake {
	f := &stubFake{}
	f.conns = []*stubConn{{f: f, name: "a", pingErr: true}, {f: f, name: "b"}}
	return f
}

func TestPlayOrderPerStep(t *testing.T) {
	f := newStubFake()
	ev := Event{Frame: []byte("x"), Ping: []byte("p"), CloseCode: websocket.CloseGoingAway, Disconnect: true}
	got := play(f, make(chan struct{}), listPerStep, []Event{ev, {}})
	if want := []Delivered{{Frame: []byte("x"), Conns: 2}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	closeMsg := fmt.Sprintf("%q", websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
	want := []string{
		"deliver x",
		"list", `a control 9 "p"`, "a kill", `b control 9 "p"`,
		"list", "a control 8 " + closeMsg, "a closeSent", "b control 8 " + closeMsg, "b closeSent",
		"disconnect",
		// The empty event lists nothing.
	}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls\n%q\nwant\n%q", f.calls, want)
	}
}

func TestPlayOrderPerEvent(t *testing.T) {
	f := newStubFake()
	ev := Event{Ping: []byte("p"), CloseCode: websocket.CloseGoingAway}
	play(f, make(chan struct{}), listPerEvent, []Event{ev, {}})
	lists := 0
	for _, c := range f.calls {
		if c == "list" {
			lists++
		}
	}
	// One list for the first event, shared by Ping and CloseCode, and one
	// for the empty event.
	if lists != 2 || f.calls[0] != "list" {
		t.Fatalf("calls %q: want one list per event, first", f.calls)
	}
}

func TestPlayStopsWhenClosed(t *testing.T) {
	f := newStubFake()
	f.closes = true
	if got := play(f, make(chan struct{}), listPerStep, []Event{{Frame: []byte("x"), Disconnect: true}}); got != nil {
		t.Fatalf("delivered %v after the fake closed", got)
	}
	if !slices.Equal(f.calls, []string{"deliver x"}) {
		t.Fatalf("calls %q", f.calls)
	}

	done := make(chan struct{})
	close(done)
	start := time.Now()
	if got := play(newStubFake(), done, listPerStep, []Event{{Delay: time.Minute, Frame: []byte("x")}}); got != nil {
		t.Fatalf("delivered %v after done", got)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("play waited out the delay after done was closed")
	}
}

func TestPlayAsyncClosed(t *testing.T) {
	var (
		mu     sync.Mutex
		closed bool
		bg     sync.WaitGroup
	)
	got := <-playAsync(&mu, &closed, &bg, func() []Delivered { return []Delivered{{Frame: []byte("x")}} })
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	bg.Wait()

	closed = true
	ch := playAsync(&mu, &closed, &bg, func() []Delivered { t.Error("ran after close"); return nil })
	if v, ok := <-ch; ok {
		t.Fatalf("closed fake yielded %v", v)
	}
}
