package exchangetest

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The script player shared by the WebSocket fakes: Play and PlayAsync of
// every fake run play and playAsync. The venue-specific parts (how a frame
// is routed and recorded, which connections a control frame reaches, what
// follows a close frame, what Disconnect drops) stay in the fakes, behind
// scriptedFake and playConn.

// playConn is one client connection as the player sees it.
type playConn interface {
	// control writes a control message (ping or close) with the fake's
	// write deadline.
	control(messageType int, data []byte) error
	// closeSent runs after a scripted close frame was written (or failed
	// to be): usually it sets a short read deadline, so that the reader
	// sees the client's close reply or times out.
	closeSent()
	// kill closes the TCP connection without a close frame.
	kill()
}

// scriptedFake is what a WebSocket fake gives the player.
type scriptedFake interface {
	// deliver routes and writes one frame the way the fake does (waiting
	// for a subscriber up to its play timeout, recording the delivery);
	// false if the fake closed meanwhile.
	deliver(frame []byte) (Delivered, bool)
	// playConns returns the connections Ping and CloseCode act on.
	playConns() []playConn
	// disconnectAll drops every connection, as Event.Disconnect asks.
	disconnectAll()
}

// connListing says when the player asks a fake for its connections.
type connListing int

const (
	// listPerStep lists them anew for the Ping step and again for the
	// CloseCode step, each time only when the event has that part.
	listPerStep connListing = iota
	// listPerEvent lists them once per event, right after its Frame step
	// (whether or not the event has a Ping or a CloseCode), and uses the
	// same list for both steps.
	listPerEvent
)

// play runs a script in the caller's goroutine. For each event it waits
// ev.Delay (returning early when done is closed), delivers ev.Frame through
// f (returning when f reports the fake closed), pings every connection
// (killing those the ping fails on), sends a close frame with ev.CloseCode
// to every connection, then drops every connection when ev.Disconnect. It
// returns what was delivered.
func play(f scriptedFake, done <-chan struct{}, listing connListing, events []Event) []Delivered {
	var out []Delivered
	for _, ev := range events {
		if ev.Delay > 0 {
			t := time.NewTimer(ev.Delay)
			select {
			case <-t.C:
			case <-done:
				t.Stop()
				return out
			}
		}
		if ev.Frame != nil {
			d, ok := f.deliver(ev.Frame)
			if !ok {
				return out
			}
			out = append(out, d)
		}
		var conns []playConn
		if listing == listPerEvent {
			conns = f.playConns()
		}
		if ev.Ping != nil {
			if listing == listPerStep {
				conns = f.playConns()
			}
			for _, c := range conns {
				if c.control(websocket.PingMessage, ev.Ping) != nil {
					c.kill()
				}
			}
		}
		if ev.CloseCode != 0 {
			if listing == listPerStep {
				conns = f.playConns()
			}
			msg := websocket.FormatCloseMessage(ev.CloseCode, "")
			for _, c := range conns {
				_ = c.control(websocket.CloseMessage, msg)
				c.closeSent()
			}
		}
		if ev.Disconnect {
			f.disconnectAll()
		}
	}
	return out
}

// playAsync runs run (a fake's Play) in a goroutine tracked by bg, unless
// the fake is already closed (closed is read under mu); the channel yields
// the result once and is then closed, or is closed at once when the fake
// was closed.
func playAsync(mu *sync.Mutex, closed *bool, bg *sync.WaitGroup, run func() []Delivered) <-chan []Delivered {
	ch := make(chan []Delivered, 1)
	mu.Lock()
	if *closed {
		mu.Unlock()
		close(ch)
		return ch
	}
	bg.Add(1)
	mu.Unlock()
	go func() {
		defer bg.Done()
		ch <- run()
		close(ch)
	}()
	return ch
}

// asPlayConns converts a fake's connection list for the player.
func asPlayConns[C playConn](conns []C) []playConn {
	out := make([]playConn, len(conns))
	for i, c := range conns {
		out[i] = c
	}
	return out
}
