package bybit

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/wsconn"
)

// Liquidation topics are spread over several connections ("shards") per
// market, each one wsconn stream with its own crypto_exporter_stream_*
// series named <market>_liquidations_<n>: linear_liquidations_0,
// linear_liquidations_1, ..., inverse_liquidations_0.
//
// Assignment is sticky (exchanges.ShardSet): the first discovery deals the
// sorted symbols out round robin over ceil(symbols / TopicsPerConnection)
// shards, a new symbol goes to the least loaded shard with room (counting
// both TopicsPerConnection and MaxArgsChars of args) or a new shard, a
// symbol no longer listed leaves its shard, and shards are never removed
// while the venue runs (a shard may end up with no topics; it stays
// connected and up).
//
// Changes are applied live: the connection of each affected shard gets
// subscribe and unsubscribe requests for the difference, so a new listing
// is covered without reconnecting anything. Every (re)connect subscribes
// the shard's whole current topic set.

// shardSet is the set of liquidation connections of one market.
type shardSet struct {
	m   *market
	set exchanges.ShardSet[*shard] // set.Start runs a shard's connection; set before the first discovery
}

// declareFirst wires the set to the market and declares the market's first
// stream at start-up, so that a venue that is unreachable from the start is
// visible.
func (ss *shardSet) declareFirst() {
	ss.set.Exchange = Name
	ss.set.StreamPrefix = ss.m.kind + "_liquidations_"
	ss.set.Limits = exchanges.ShardLimits{
		PerShard:  ss.m.v.cfg.TopicsPerConnection,
		Weight:    func(sym string) int { return len(TopicPrefix) + len(sym) },
		MaxWeight: MaxArgsChars,
	}
	ss.set.New, ss.set.Sync = ss.newShard, (*shard).sync
	ss.set.DeclareFirst(ss.m.sink)
}

// assign moves the subscriptions to a new list of symbols (trading and
// allowed by the coin filter) and starts shards that do not run yet.
func (ss *shardSet) assign(symbols []string) { ss.set.Assign(symbols) }

// snapshot returns the topics wanted per shard, for tests and logs.
func (ss *shardSet) snapshot() [][]string { return ss.set.Snapshot() }

// shard is one liquidation connection.
type shard struct {
	m    *market
	name string
	obs  exchanges.StreamObserver
	emit func(liquidation) // sh.handle, bound once

	mu   sync.Mutex
	want map[string]bool // symbols this shard should carry
	have map[string]bool // symbols requested on the current connection
	sess *wsconn.Session // the current (or last) connection

	sendM sync.Mutex    // serialises the subscription traffic of onConnect and sync
	reqs  atomic.Uint64 // req_id numbering
	// pending counts the subscribe requests sent on connect that are not
	// acknowledged yet; only the connection's runner goroutine (onConnect,
	// onMessage) touches it.
	pending int
}

// newShard is set.New: the connection of a new shard, called with the set's
// lock held.
func (ss *shardSet) newShard(name string, obs exchanges.StreamObserver, want map[string]bool) *shard {
	sh := &shard{m: ss.m, name: name, obs: obs, want: want}
	sh.emit = sh.handle
	return sh
}

// req_id prefixes: subscriptions sent on connect, live changes.
const (
	reqInit  = "init-"
	reqLive  = "live-"
	reqUnsub = "unsub-"
)

// request is a subscribe or unsubscribe message (documented shape).
type request struct {
	ReqID string   `json:"req_id"`
	Op    string   `json:"op"`
	Args  []string `json:"args"`
}

// heartbeat is Bybit's application-level ping (documented); the pong
// {"success":true,"ret_msg":"pong",...,"op":"ping"} refreshes the read
// deadline like any frame.
var heartbeat = []byte(`{"op":"ping"}`)

func (sh *shard) streamConfig() wsconn.Config {
	c := wsconn.Config{
		Name:         sh.name,
		URL:          func() string { return sh.m.ws },
		PingInterval: PingInterval,
		OnConnect:    sh.onConnect,
		OnMessage:    sh.onMessage,
		Heartbeat:    func(s *wsconn.Session) error { return s.Send(heartbeat) },
		Observer:     sh.obs,
		Logger:       sh.m.log,
	}
	if sh.m.v.cfg.Stream != nil {
		sh.m.v.cfg.Stream(&c)
	}
	return c
}

// onConnect subscribes the shard's whole topic set, ArgsPerSubscribe
// topics per request. A shard without topics is up at once.
func (sh *shard) onConnect(_ context.Context, s *wsconn.Session) error {
	sh.sendM.Lock()
	defer sh.sendM.Unlock()
	sh.mu.Lock()
	sh.sess = s
	sh.have = maps.Clone(sh.want)
	syms := slices.Sorted(maps.Keys(sh.have))
	sh.mu.Unlock()
	sh.pending = (len(syms) + ArgsPerSubscribe - 1) / ArgsPerSubscribe
	if sh.pending == 0 {
		s.Subscribed()
		return nil
	}
	return sh.send(s, "subscribe", reqInit, syms)
}

// sync sends the difference between the wanted topics and those requested
// on the current connection. A failed send ends the connection; the next
// one subscribes the wanted set.
func (sh *shard) sync(want map[string]bool) {
	sh.sendM.Lock()
	defer sh.sendM.Unlock()
	sh.mu.Lock()
	sh.want = want
	add, del := exchanges.SymbolDiff(sh.want, sh.have)
	sh.have = maps.Clone(sh.want)
	sess := sh.sess
	sh.mu.Unlock()
	if sess == nil {
		return
	}
	if len(del) > 0 {
		sh.m.log.Info("unsubscribing delisted symbols", "stream", sh.name, "count", len(del))
		if sh.send(sess, "unsubscribe", reqUnsub, del) != nil {
			return
		}
	}
	if len(add) > 0 {
		sh.m.log.Info("subscribing new symbols", "stream", sh.name, "count", len(add))
		_ = sh.send(sess, "subscribe", reqLive, add)
	}
}

// send writes op requests for the topics of syms, ArgsPerSubscribe per message.
func (sh *shard) send(s *wsconn.Session, op, prefix string, syms []string) error {
	for chunk := range slices.Chunk(syms, ArgsPerSubscribe) {
		req := request{ReqID: prefix + strconv.FormatUint(sh.reqs.Add(1), 10), Op: op, Args: make([]string, len(chunk))}
		for i, sym := range chunk {
			req.Args[i] = Topic(sym)
		}
		msg, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if err := s.Send(msg); err != nil {
			return err
		}
	}
	return nil
}
