package dydx

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// v4_trades subscriptions (one per market) are spread over several
// connections ("shards"), each one wsconn stream with its own
// crypto_exporter_stream_* series named trades_<n>: trades_0, trades_1, ...
//
// Assignment is sticky (exchanges.ShardSet): the first discovery deals the
// sorted tickers out round robin over ceil(markets / MarketsPerConnection)
// shards, a new market goes to the least loaded shard with room or a new
// shard, a market that is no longer listed (or no longer ACTIVE) leaves its
// shard, and shards are never removed while the venue runs.
//
// Changes are applied live with subscribe and unsubscribe messages; every
// (re)connect subscribes the shard's whole current set. Each shard has one
// writer goroutine that sends the subscription messages at most one per
// SubscribeInterval, so the reader is never held up by the pacing and
// server pings are answered at once.

// shardSet is the set of trade connections.
type shardSet struct {
	v   *Venue
	set exchanges.ShardSet[*shard] // set.Start runs a shard; set before the first discovery
}

// declareFirst wires the set to the venue and declares the first stream at
// start-up, so that a venue that is unreachable from the start is visible.
func (ss *shardSet) declareFirst() {
	ss.set.Exchange = Name
	ss.set.StreamPrefix = "trades_"
	ss.set.Limits = exchanges.ShardLimits{PerShard: ss.v.cfg.MarketsPerConnection}
	ss.set.New, ss.set.Sync = ss.v.newShard, (*shard).sync
	ss.set.DeclareFirst(ss.v.sink)
}

// assign moves the subscriptions to a new list of tickers and starts shards
// that do not run yet.
func (ss *shardSet) assign(tickers []string) { ss.set.Assign(tickers) }

// snapshot returns the markets wanted per shard, for tests and logs.
func (ss *shardSet) snapshot() [][]string { return ss.set.Snapshot() }

// shard is one trade connection.
type shard struct {
	v    *Venue
	name string
	obs  exchanges.StreamObserver
	kick chan struct{}
	emit func(liquidation) // sh.handle, bound once

	mu      sync.Mutex
	want    map[string]bool // markets this shard should carry
	have    map[string]bool // markets requested on the current connection
	sess    *wsconn.Session // the current (or last) connection
	queue   []request       // messages the writer still has to send on sess
	pending map[string]bool // subscriptions sent on connect and not yet acknowledged
}

// newShard is shards.set.New: the connection of a new shard.
func (v *Venue) newShard(name string, obs exchanges.StreamObserver, want map[string]bool) *shard {
	sh := &shard{v: v, name: name, obs: obs, want: want, kick: make(chan struct{}, 1)}
	sh.emit = sh.handle
	return sh
}

// request is a subscribe or unsubscribe message (documented shape).
type request struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	ID      string `json:"id"`
	Batched bool   `json:"batched,omitempty"`
}

func (sh *shard) streamConfig() wsconn.Config {
	c := wsconn.Config{
		Name:      sh.name,
		URL:       func() string { return sh.v.cfg.WS },
		OnConnect: sh.onConnect,
		OnMessage: sh.onMessage,
		Observer:  sh.obs,
		Logger:    sh.v.log,
	}
	// A full shard needs MarketsPerConnection x SubscribeInterval to
	// subscribe; leave ample room before the runner gives up on it.
	per := sh.v.cfg.MarketsPerConnection
	c.SubscribeTimeout = max(15*time.Second, 2*sh.v.cfg.SubscribeInterval*time.Duration(per)+10*time.Second)
	if sh.v.cfg.Stream != nil {
		sh.v.cfg.Stream(&c)
	}
	return c
}

func (sh *shard) subscribeMsg(typ, ticker string) request {
	r := request{Type: typ, Channel: Channel, ID: ticker}
	if typ == "subscribe" {
		r.Batched = sh.v.cfg.Batched
	}
	return r
}

// onConnect queues subscriptions for the shard's whole market set; the
// writer sends them. A shard without markets is up at once.
func (sh *shard) onConnect(_ context.Context, s *wsconn.Session) error {
	sh.mu.Lock()
	sh.sess = s
	sh.have = maps.Clone(sh.want)
	sh.pending = maps.Clone(sh.want)
	sh.queue = sh.queue[:0]
	for _, t := range slices.Sorted(maps.Keys(sh.have)) {
		sh.queue = append(sh.queue, sh.subscribeMsg("subscribe", t))
	}
	empty := len(sh.pending) == 0
	sh.mu.Unlock()
	if empty {
		s.Subscribed()
	}
	sh.wake()
	return nil
}

// sync queues the difference between the wanted markets and those
// requested on the current connection.
func (sh *shard) sync(want map[string]bool) {
	sh.mu.Lock()
	sh.want = want
	add, del := exchanges.SymbolDiff(sh.want, sh.have)
	sh.have = maps.Clone(sh.want)
	for _, t := range del {
		delete(sh.pending, t)
		sh.queue = append(sh.queue, sh.subscribeMsg("unsubscribe", t))
	}
	for _, t := range add {
		sh.queue = append(sh.queue, sh.subscribeMsg("subscribe", t))
	}
	sess := sh.sess
	sh.mu.Unlock()
	if sess == nil {
		return
	}
	if len(del) > 0 {
		sh.v.log.Info("unsubscribing removed markets", "stream", sh.name, "count", len(del))
	}
	if len(add) > 0 {
		sh.v.log.Info("subscribing new markets", "stream", sh.name, "count", len(add))
	}
	sh.wake()
}

func (sh *shard) wake() {
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

// writer sends the queued subscription messages, one per
// SubscribeInterval, until ctx is done. A failed send ends the connection
// (wsconn); the next connection queues the whole set again.
func (sh *shard) writer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.kick:
		}
		for {
			sh.mu.Lock()
			if len(sh.queue) == 0 || sh.sess == nil {
				sh.mu.Unlock()
				break
			}
			req, sess := sh.queue[0], sh.sess
			sh.queue = sh.queue[1:]
			sh.mu.Unlock()
			msg, err := json.Marshal(req)
			if err != nil {
				continue // strings and a bool always marshal
			}
			if sess.Send(msg) != nil {
				sh.mu.Lock()
				if sh.sess == sess {
					sh.queue = sh.queue[:0]
				}
				sh.mu.Unlock()
			}
			if !exchanges.Sleep(ctx, sh.v.cfg.SubscribeInterval) {
				return
			}
		}
	}
}

// onMessage is the frame handler of one trade connection.
func (sh *shard) onMessage(s *wsconn.Session, data []byte) {
	v := sh.v
	f, err := decodeFrame(data, sh.emit)
	switch f.kind {
	case kindSubscribed:
		sh.acked(s, f.id)
	case kindError:
		sh.onError(s, f)
	}
	for range f.bad {
		sh.obs.DecodeError()
	}
	if f.bad > 0 && v.logThrottle.Allow("decode") {
		v.log.Warn("dropped malformed trade frame or trade (logged once a minute; all are counted in crypto_exporter_stream_decode_errors_total)",
			"stream", sh.name, "err", err, "frame", exchanges.Truncate(data, 256))
	}
}

// handle counts one decoded liquidation.
func (sh *shard) handle(ev liquidation) {
	v := sh.v
	inst, known := v.lookup(ev.Market)
	if inst == nil {
		if known {
			return // excluded by the coin allowlist
		}
		sh.obs.DecodeError()
		v.requestRefresh()
		if v.logThrottle.Allow("unknown:" + string(ev.Market)) {
			v.log.Warn("liquidation for a market not in the instrument list was dropped; refreshing markets", "stream", sh.name, "market", string(ev.Market))
		}
		return
	}
	n := notional(ev)
	if !v.sink.Liquidation(exchanges.Liquidation{Instrument: inst, Side: ev.Side, NotionalUSD: n}) {
		sh.obs.DecodeError()
		if v.logThrottle.Allow("implausible") {
			v.log.Warn("liquidation with an implausible notional was dropped", "symbol", inst.Symbol, "notional_usd", n)
		}
	}
}

// acked records a subscription acknowledgement; the stream is up once
// every subscription sent on connect is acknowledged.
func (sh *shard) acked(s *wsconn.Session, id []byte) {
	sh.mu.Lock()
	if sh.sess != s || sh.pending == nil {
		sh.mu.Unlock()
		return
	}
	delete(sh.pending, string(id))
	done := len(sh.pending) == 0
	sh.mu.Unlock()
	if done {
		s.Subscribed()
	}
}

// onError handles an "error" message: counted as a decode error, logged,
// a fresh market list is requested (the usual cause is a market that is no
// longer listed) and the connection is closed; the runner reconnects after
// back-off and subscribes the current set again.
func (sh *shard) onError(s *wsconn.Session, f frame) {
	sh.obs.DecodeError()
	sh.v.log.Error("dYdX Indexer answered with an error; reconnecting", "stream", sh.name,
		"id", string(f.id), "message", exchanges.Truncate(f.message, 512))
	sh.v.requestRefresh()
	s.Close(fmt.Errorf("indexer error: %s", exchanges.Truncate(f.message, 256)))
}
