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
// Assignment is sticky so that instrument changes touch as few connections
// as possible:
//   - The first discovery creates ceil(symbols / TopicsPerConnection) shards
//     and deals the sorted symbols out round robin, so the same list always
//     gives the same shards.
//   - A new symbol goes to the least loaded shard with room (lowest index
//     first); when every shard is full a new shard is created and started.
//   - A symbol that is no longer listed leaves its shard. Shards are never
//     removed while the venue runs (a shard may end up with no topics; it
//     stays connected and up).
//
// Changes are applied live: the connection of each affected shard gets
// subscribe and unsubscribe requests for the difference, so a new listing
// is covered without reconnecting anything. Every (re)connect subscribes
// the shard's whole current topic set.

// shardSet is the set of liquidation connections of one market.
type shardSet struct {
	m     *market
	start func(*shard) // runs a shard's connection; set before the first discovery
	first exchanges.StreamObserver

	mu     sync.Mutex
	shards []*shard
	owner  map[string]*shard // symbol -> shard
}

// streamName is the stream label value of shard n of a market.
func streamName(kind string, n int) string { return kind + "_liquidations_" + strconv.Itoa(n) }

// declareFirst declares the market's first stream at start-up, so that a
// venue that is unreachable from the start is visible.
func (ss *shardSet) declareFirst() {
	ss.first = ss.m.sink.Stream(Name, streamName(ss.m.kind, 0))
	ss.first.SetUp(false)
}

// assign moves the subscriptions to a new list of symbols (trading and
// allowed by the coin filter) and starts shards that do not run yet.
func (ss *shardSet) assign(symbols []string) {
	per := ss.m.v.cfg.TopicsPerConnection
	ss.mu.Lock()
	if ss.owner == nil {
		ss.owner = map[string]*shard{}
	}
	keep := make(map[string]bool, len(symbols))
	for _, s := range symbols {
		keep[s] = true
	}
	changed := map[*shard]bool{}
	for sym, sh := range ss.owner {
		if !keep[sym] {
			delete(ss.owner, sym)
			sh.remove(sym)
			changed[sh] = true
		}
	}
	var added []string
	for _, s := range symbols {
		if ss.owner[s] == nil {
			added = append(added, s)
		}
	}
	if len(ss.shards) == 0 {
		for range max(1, (len(added)+per-1)/per) {
			ss.newShardLocked()
		}
	}
	for _, sym := range added {
		sh := ss.pickLocked(sym, per)
		sh.add(sym)
		ss.owner[sym] = sh
		changed[sh] = true
	}
	var toStart, toSync []*shard
	for _, sh := range ss.shards {
		switch {
		case !sh.started:
			sh.started = true
			toStart = append(toStart, sh)
		case changed[sh]:
			toSync = append(toSync, sh)
		}
	}
	start := ss.start
	ss.mu.Unlock()

	for _, sh := range toSync {
		sh.sync()
	}
	for _, sh := range toStart {
		if start != nil {
			start(sh)
		}
	}
}

// pickLocked returns the least loaded shard with room for sym, creating one
// when all are full.
func (ss *shardSet) pickLocked(sym string, per int) *shard {
	var best *shard
	bestLoad := 0
	for _, sh := range ss.shards {
		load, chars := sh.load()
		if load >= per || chars+len(TopicPrefix)+len(sym) > MaxArgsChars {
			continue
		}
		if best == nil || load < bestLoad {
			best, bestLoad = sh, load
		}
	}
	if best == nil {
		best = ss.newShardLocked()
	}
	return best
}

func (ss *shardSet) newShardLocked() *shard {
	n := len(ss.shards)
	sh := &shard{m: ss.m, name: streamName(ss.m.kind, n), want: map[string]bool{}}
	if n == 0 {
		sh.obs = ss.first
	} else {
		sh.obs = ss.m.sink.Stream(Name, sh.name)
		sh.obs.SetUp(false)
	}
	sh.emit = sh.handle
	ss.shards = append(ss.shards, sh)
	return sh
}

// snapshot returns the topics wanted per shard, for tests and logs.
func (ss *shardSet) snapshot() [][]string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([][]string, len(ss.shards))
	for i, sh := range ss.shards {
		sh.mu.Lock()
		out[i] = slices.Sorted(maps.Keys(sh.want))
		sh.mu.Unlock()
	}
	return out
}

// shard is one liquidation connection.
type shard struct {
	m       *market
	name    string
	obs     exchanges.StreamObserver
	emit    func(liquidation) // sh.handle, bound once
	started bool              // guarded by the shardSet's mu

	mu    sync.Mutex
	want  map[string]bool // symbols this shard should carry
	chars int             // total length of the wanted topics
	have  map[string]bool // symbols requested on the current connection
	sess  *wsconn.Session // the current (or last) connection

	sendM sync.Mutex    // serialises the subscription traffic of onConnect and sync
	reqs  atomic.Uint64 // req_id numbering
	// pending counts the subscribe requests sent on connect that are not
	// acknowledged yet; only the connection's runner goroutine (onConnect,
	// onMessage) touches it.
	pending int
}

func (sh *shard) add(sym string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.want[sym] {
		sh.want[sym] = true
		sh.chars += len(TopicPrefix) + len(sym)
	}
}

func (sh *shard) remove(sym string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.want[sym] {
		delete(sh.want, sym)
		sh.chars -= len(TopicPrefix) + len(sym)
	}
}

func (sh *shard) load() (topics, chars int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.want), sh.chars
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
func (sh *shard) sync() {
	sh.sendM.Lock()
	defer sh.sendM.Unlock()
	sh.mu.Lock()
	var add, del []string
	for s := range sh.want {
		if !sh.have[s] {
			add = append(add, s)
		}
	}
	for s := range sh.have {
		if !sh.want[s] {
			del = append(del, s)
		}
	}
	sh.have = maps.Clone(sh.want)
	sess := sh.sess
	sh.mu.Unlock()
	if sess == nil {
		return
	}
	slices.Sort(add)
	slices.Sort(del)
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
