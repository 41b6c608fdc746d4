package exchangetest

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The WebSocket plumbing shared by the WebSocket fakes: wsServer (the
// connection registry, the handshake stall, the half-open switch, the
// script's deliveries) embedded by each fake, and wsConn (the socket, its
// write lock and its death) embedded by each fake's connection type. The
// venue-specific parts (what a connection sends on connect, how it reads
// and answers messages, its subscriptions, its heartbeats, where a
// scripted frame goes) stay in the fakes, behind wsConnection.

// Timings and limits every WebSocket fake applies.
const (
	wsWriteWait   = 5 * time.Second  // deadline of every write
	wsCloseWait   = time.Second      // how long a client may take to answer a close frame
	wsReadLimit   = 1 << 20          // the read limit of the fakes that set one
	wsPlayTimeout = 10 * time.Second // how long Play waits for a subscriber by default
)

// wsOpenUpgrader is the upgrader of the fakes that accept any Origin and
// give the handshake 5 s.
var wsOpenUpgrader = websocket.Upgrader{
	HandshakeTimeout: 5 * time.Second,
	CheckOrigin:      func(*http.Request) bool { return true },
}

// wsConnection is what wsServer needs of a fake's connection type: a
// pointer to a struct embedding wsConn, which provides every method but
// serve. A connection type may replace wsConn's registeredLocked,
// closeSent and write with its own (write together with writeLocked,
// which wsConn's write calls).
type wsConnection interface {
	comparable
	playConn
	// base returns the embedded wsConn.
	base() *wsConn
	// write sends one text message; false if the connection is dead or
	// the write failed (which kills it).
	write(msg []byte) bool
	// registeredLocked runs under the fake's lock when the connection
	// joins the fake's connection set.
	registeredLocked()
	// serve runs the connection once it is registered (greeting,
	// heartbeats, reading and answering client messages) and returns when
	// the connection is done with.
	serve()
}

// wsConfig is how a fake sets up its wsServer.
type wsConfig struct {
	name      string             // how errors name the fake ("dYdX fake")
	listing   connListing        // when the script player lists connections
	upgrader  websocket.Upgrader // the WebSocket upgrader
	readLimit int64              // the read limit of every connection (0 = none)
}

// wsServer is the server side a WebSocket fake embeds: its HTTP server and
// lifecycle, the set of open connections (of the fake's connection type
// C), counters every fake keeps, the handshake stall, the half-open
// switch, and what the script player needs. The fake's own state is
// guarded by the same mutex. Start it with startWS.
type wsServer[C wsConnection] struct {
	fakeServer

	upgrader  websocket.Upgrader
	readLimit int64

	conns       map[C]struct{}
	total       int  // connections accepted
	pongs       int  // pong frames received
	pings       int  // application-level pings received (appPing)
	ignorePings bool // appPing answers nothing
	refuse      bool // refused answers upgrades 503
	subscribed  int  // subscribe events, as the fake counts them
	played      []Delivered
	playTimeout time.Duration
	script      scriptedFake
	listing     connListing

	stall handshakeStall
	quiet halfOpen
}

// startWS sets the server up for the fake script (whose deliver routes
// scripted frames) and starts serving h, which hands WebSocket upgrades to
// serveWS.
func (s *wsServer[C]) startWS(script scriptedFake, cfg wsConfig, h http.Handler) {
	s.conns = map[C]struct{}{}
	s.playTimeout = wsPlayTimeout
	s.script, s.listing = script, cfg.listing
	s.upgrader, s.readLimit = cfg.upgrader, cfg.readLimit
	s.dropAll = s.disconnectAll
	s.start(cfg.name, h)
}

// serveWS serves one WebSocket connection. It holds the request while the
// handshake stall is on, lets admit (when not nil) answer and refuse it,
// then upgrades it and registers the connection newConn builds. The
// socket gets a ping handler that falls silent while the fake plays a
// half-open peer and a pong handler that counts pongs; the connection's
// serve may replace them before it reads. Once serve returns the
// connection is killed and unregistered.
func (s *wsServer[C]) serveWS(w http.ResponseWriter, r *http.Request, admit func(http.ResponseWriter) bool, newConn func() C) {
	if s.stall.hold(w, r, s.done) {
		return
	}
	if admit != nil && !admit(w) {
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	if s.readLimit > 0 {
		ws.SetReadLimit(s.readLimit)
	}
	ws.SetPingHandler(s.quiet.pingHandler(ws, wsWriteWait))
	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.pongs++
		s.mu.Unlock()
		return nil
	})
	c := newConn()
	c.base().attach(ws, &s.quiet)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.total++
	c.registeredLocked()
	s.notifyLocked()
	s.mu.Unlock()

	c.serve()
	c.kill()

	s.mu.Lock()
	delete(s.conns, c)
	s.notifyLocked()
	s.mu.Unlock()
}

// refused answers an upgrade 503 while SetRefuseConnections is on; it is
// the admit of the fakes that have the switch.
func (s *wsServer[C]) refused(w http.ResponseWriter) bool {
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	if refuse {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
	}
	return refuse
}

// admitUnlessRefused is refused as an admit function of serveWS.
func (s *wsServer[C]) admitUnlessRefused(w http.ResponseWriter) bool { return !s.refused(w) }

// setRefuse turns SetRefuseConnections on or off.
func (s *wsServer[C]) setRefuse(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = refuse
}

// appPing counts an application-level ping ("ping", {"op":"ping"},
// futures.ping) and reports whether to answer it.
func (s *wsServer[C]) appPing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pings++
	return !s.ignorePings
}

// setAnswerAppPings makes appPing report answer from now on.
func (s *wsServer[C]) setAnswerAppPings(answer bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignorePings = !answer
}

// connections returns the number of open connections.
func (s *wsServer[C]) connections() int {
	return locked(&s.fakeServer, func() int { return len(s.conns) })
}

// totalConnections returns the number of connections accepted so far.
func (s *wsServer[C]) totalConnections() int {
	return locked(&s.fakeServer, func() int { return s.total })
}

// pongCount returns how many pong frames clients have sent.
func (s *wsServer[C]) pongCount() int {
	return locked(&s.fakeServer, func() int { return s.pongs })
}

// pingCount returns how many application-level pings clients have sent.
func (s *wsServer[C]) pingCount() int {
	return locked(&s.fakeServer, func() int { return s.pings })
}

// subscriptionCount returns the subscribe events counted so far.
func (s *wsServer[C]) subscriptionCount() int {
	return locked(&s.fakeServer, func() int { return s.subscribed })
}

// waitSubscriptions waits until the count of subscribe events reaches n;
// its error names the venue's subscriptions.
func (s *wsServer[C]) waitSubscriptions(ctx context.Context, n int, venue string) error {
	return s.waitFor(ctx, func() (bool, string) {
		return s.subscribed >= n, fmt.Sprintf("%d of %d %s subscriptions", s.subscribed, n, venue)
	})
}

// connListLocked returns the open connections, in no order.
func (s *wsServer[C]) connListLocked() []C {
	return slices.Collect(maps.Keys(s.conns))
}

// liveLocked yields the connections that are not dead, in no order: a
// killed connection stays in the set until its reader ends, but must not
// receive frames or count as subscribed.
func (s *wsServer[C]) liveLocked() iter.Seq[C] {
	return func(yield func(C) bool) {
		for c := range s.conns {
			if !c.base().isDead() && !yield(c) {
				return
			}
		}
	}
}

// openConns returns the open connections, in no order.
func (s *wsServer[C]) openConns() []C {
	return locked(&s.fakeServer, s.connListLocked)
}

// disconnectAll abruptly closes every client connection (TCP close, no
// close frame); it also serves the script player's Disconnect.
func (s *wsServer[C]) disconnectAll() {
	for _, c := range s.openConns() {
		c.kill()
	}
}

// playConns returns the connections the script player pings and closes.
func (s *wsServer[C]) playConns() []playConn {
	return asPlayConns(s.openConns())
}

// SetStallHandshake with true makes the fake accept TCP connections to
// its WebSocket paths and read the upgrade request but never answer it;
// false drops the held connections and accepts upgrades again.
func (s *wsServer[C]) SetStallHandshake(stall bool) { s.stall.set(stall) }

// StalledHandshakes returns how many upgrade requests were left unanswered.
func (s *wsServer[C]) StalledHandshakes() int { return s.stall.count() }

// SetPlayTimeout changes how long Play waits for a subscriber before each
// frame (default 10 s).
func (s *wsServer[C]) SetPlayTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.playTimeout = d
}

// Deliveries returns every frame delivered so far, across Play calls
// (and, in the fakes that have them, Push and Liquidate).
func (s *wsServer[C]) Deliveries() []Delivered {
	return locked(&s.fakeServer, func() []Delivered { return slices.Clone(s.played) })
}

// runScript runs a script through the shared player (play.go); it is what
// every fake's Play does.
func (s *wsServer[C]) runScript(events []Event) []Delivered {
	return play(s.script, s.done, s.listing, events)
}

// PlayAsync runs Play in a goroutine; the channel yields its result once
// and is then closed. The goroutine ends at the latest when the fake
// closes.
func (s *wsServer[C]) PlayAsync(events []Event) <-chan []Delivered {
	return playAsync(&s.mu, &s.closed, &s.bg, func() []Delivered { return s.runScript(events) })
}

// record adds a delivery to what Deliveries returns.
func (s *wsServer[C]) record(d Delivered) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.played = append(s.played, d)
}

// push writes frame to every target and records the delivery; Conns
// counts the targets it reached.
func (s *wsServer[C]) push(frame []byte, targets []C) Delivered {
	d := Delivered{Frame: frame}
	for _, c := range targets {
		if c.write(frame) {
			d.Conns++
		}
	}
	s.record(d)
	return d
}

// awaitTargets waits, up to the play timeout, for the connections a
// scripted frame goes to: pick runs under the lock at once and on every
// state change until it returns a target, or the timeout passes (then no
// target is returned). Either way settled (if not nil) then runs under the
// same lock, for what the fake does with a frame as it goes out. ok is
// false, and settled does not run, when the fake closed first.
func awaitTargets[C wsConnection, T any](s *wsServer[C], pick func() []T, settled func()) (targets []T, ok bool) {
	s.mu.Lock()
	deadline := time.NewTimer(s.playTimeout)
	s.mu.Unlock()
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, false
		}
		if targets = pick(); len(targets) > 0 {
			if settled != nil {
				settled()
			}
			s.mu.Unlock()
			return targets, true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			if settled != nil {
				s.mu.Lock()
				settled()
				s.mu.Unlock()
			}
			return nil, true
		case <-s.done:
			return nil, false
		}
	}
}

// deliverTo is the scripted delivery of most fakes: it waits for the
// connections frame goes to (awaitTargets with pick and settled) and
// pushes the frame to them; false if the fake closed first.
func (s *wsServer[C]) deliverTo(frame []byte, pick func() []C, settled func()) (Delivered, bool) {
	targets, ok := awaitTargets(s, pick, settled)
	if !ok {
		return Delivered{}, false
	}
	return s.push(frame, targets), true
}

// watchIdle runs the idle disconnect of the fakes that have one until the
// fake closes: it kills every connection whose last activity (lastActive,
// read under the lock) lies further back than the idle timeout. timeout
// reads the setting (<= 0 disables the watch), anew whenever reset
// receives; the watch looks ten times per timeout, at most every second
// and at least every 5 ms.
func watchIdle[C wsConnection](s *wsServer[C], reset <-chan struct{}, timeout func() time.Duration, lastActive func(C) time.Time) {
	period := func(idle time.Duration) time.Duration { return min(max(idle/10, 5*time.Millisecond), time.Second) }
	tickLoop(s.done, reset, func() time.Duration { return locked(&s.fakeServer, timeout) }, period,
		func(now time.Time, idle time.Duration) {
			s.mu.Lock()
			var drop []C
			for c := range s.conns {
				if now.Sub(lastActive(c)) > idle {
					drop = append(drop, c)
				}
			}
			s.mu.Unlock()
			for _, c := range drop {
				c.kill()
			}
		})
}

// wsConn is the part of a client connection every WebSocket fake shares:
// the socket, the lock that orders writes, and the dead channel closed
// when the connection is killed. A killed connection may stay in the
// fake's connection set until its reader ends, but must not receive
// frames or count as subscribed.
type wsConn struct {
	ws       *websocket.Conn
	quiet    *halfOpen // the fake's half-open switch
	writeMu  sync.Mutex
	dead     chan struct{}
	killOnce sync.Once
}

// attach binds the connection to its socket (serveWS does it).
func (c *wsConn) attach(ws *websocket.Conn, quiet *halfOpen) {
	c.ws, c.quiet, c.dead = ws, quiet, make(chan struct{})
}

// base returns c, for wsServer.
func (c *wsConn) base() *wsConn { return c }

// registeredLocked does nothing; a connection type that keeps state about
// its registration replaces it.
func (c *wsConn) registeredLocked() {}

// kill closes the TCP connection without a close frame.
func (c *wsConn) kill() {
	c.killOnce.Do(func() {
		close(c.dead)
		_ = c.ws.Close()
	})
}

// isDead reports whether the connection was killed.
func (c *wsConn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// write sends one text message; a failed write kills the connection.
func (c *wsConn) write(msg []byte) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(msg)
}

// writeLocked is write with writeMu held.
func (c *wsConn) writeLocked(msg []byte) bool {
	if c.isDead() {
		return false
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		c.kill()
		return false
	}
	return true
}

// control writes a control message (ping or close) for the script player.
func (c *wsConn) control(messageType int, data []byte) error {
	return c.ws.WriteControl(messageType, data, time.Now().Add(wsWriteWait))
}

// closeSent runs after the script player sent a close frame: the reader
// sees the client's close reply, or times out.
func (c *wsConn) closeSent() {
	_ = c.ws.SetReadDeadline(time.Now().Add(wsCloseWait))
}

// readLoop reads client messages until the connection fails and hands
// each to handle, except while the fake plays a half-open peer, which
// answers nothing.
func (c *wsConn) readLoop(handle func(data []byte)) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if c.quiet.on() {
			continue // a half-open peer answers nothing
		}
		handle(data)
	}
}

// every runs tick every period until the connection dies or tick reports
// false; while the fake plays a half-open peer the ticks are skipped (it
// sends no heartbeat of its own).
func (c *wsConn) every(period time.Duration, tick func() bool) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
			if c.quiet.on() {
				continue
			}
			if !tick() {
				return
			}
		}
	}
}
