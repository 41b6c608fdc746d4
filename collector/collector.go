package collector

import (
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// MaxNotionalUSD is the largest single liquidation the exporter accepts. The
// largest liquidations on record are in the low hundreds of millions of USD;
// anything above this is a decoding or venue error, not a trade.
const MaxNotionalUSD = 5e9

// largestWindow is the trailing window of crypto_liquidation_largest_usd.
const largestWindow = 60

// Collector implements prometheus.Collector and exchanges.Sink.
type Collector struct {
	now func() time.Time

	sizes *prometheus.HistogramVec

	mu          sync.RWMutex
	instruments map[exchanges.Key]*instSeries
	byMarket    map[marketKey]map[exchanges.Key]struct{}
	feed        map[marketKey]bool
	streams     map[[2]string]*streamState
	polls       map[[2]string]*pollState
	priceLevels []priceLevel
	fearGreed   map[string]fearGreedReading

	logger     *slog.Logger
	caps       map[string]int     // exchange -> max instruments (absent = no cap)
	overCap    map[marketKey]int  // instruments left out at the last declaration
	capReached map[string]float64 // exchange -> declarations that hit the cap
}

type marketKey struct {
	exchange string
	market   exchanges.Market
}

// instSeries holds every series of one instrument.
type instSeries struct {
	inst   exchanges.Instrument // guarded by mu (contract size, quote or type may change)
	labels string               // label text: exchange, market, symbol, coin
	side   [2]string            // the same with side
	info   string               // crypto_market_info's (guarded by mu)
	sides  [2]sideSeries
	noFeed bool // no liquidation series (set at creation, never changed)

	mu     sync.Mutex // guards values and expiry
	values [exchanges.NumFields]float64
	expiry [exchanges.NumFields]time.Time
}

type sideSeries struct {
	count    atomic.Uint64
	notional atomicFloat
	sizes    prometheus.Observer

	mu      sync.Mutex
	largest *maxWindow // nil until the first liquidation and after a quiet window
}

type streamState struct {
	up, connects, messages, decodeErrors atomic.Uint64
	lastMessage                          atomic.Int64 // unix nanoseconds
	now                                  func() time.Time
}

type pollState struct {
	mu       sync.Mutex
	success  float64
	failures float64
	duration float64
}

type priceLevel struct {
	coin, label string
	value       float64
}

type fearGreedReading struct {
	value          float64
	classification string
	updated        time.Time
}

// New returns an empty collector.
func New() *Collector { return newWithClock(time.Now) }

func newWithClock(now func() time.Time) *Collector {
	return &Collector{
		now:         now,
		sizes:       newSizeHistogram(),
		instruments: map[exchanges.Key]*instSeries{},
		byMarket:    map[marketKey]map[exchanges.Key]struct{}{},
		feed:        map[marketKey]bool{},
		streams:     map[[2]string]*streamState{},
		polls:       map[[2]string]*pollState{},
		fearGreed:   map[string]fearGreedReading{},
		logger:      slog.New(slog.DiscardHandler),
		caps:        map[string]int{},
		overCap:     map[marketKey]int{},
		capReached:  map[string]float64{},
	}
}

// SetLogger sets where the collector logs (the instrument cap); the
// default discards.
func (c *Collector) SetLogger(l *slog.Logger) {
	c.mu.Lock()
	c.logger = l
	c.mu.Unlock()
}

// SetInstrumentCap caps the instruments kept for one exchange, over all its
// markets; n <= 0 removes the cap. Call it before the venue declares its
// instruments. When a declaration would exceed the cap, the instruments
// already kept stay and new ones are taken in the venue's order until the
// cap is reached; the rest are left out: no series, their liquidations
// dropped (the venue counts them as decode errors), and
// crypto_exporter_instruments_over_cap and
// crypto_exporter_instrument_cap_reached_total say so.
func (c *Collector) SetInstrumentCap(exchange string, n int) {
	c.mu.Lock()
	if n > 0 {
		c.caps[exchange] = n
	} else {
		delete(c.caps, exchange)
	}
	c.mu.Unlock()
}

// capLocked applies the exchange's instrument cap to a declaration of one
// market; old is what the market kept before.
func (c *Collector) capLocked(mk marketKey, list []*exchanges.Instrument, old map[exchanges.Key]struct{}) []*exchanges.Instrument {
	limit, ok := c.caps[mk.exchange]
	if !ok {
		return list
	}
	room := limit
	for k, keys := range c.byMarket {
		if k.exchange == mk.exchange && k.market != mk.market {
			room -= len(keys)
		}
	}
	room = max(room, 0)
	if len(list) <= room {
		c.overCap[mk] = 0
		return list
	}
	kept := make([]*exchanges.Instrument, 0, room)
	seen := make(map[exchanges.Key]struct{}, room)
	take := func(wantOld bool) {
		for _, inst := range list {
			if len(kept) == room {
				return
			}
			k := inst.Key()
			_, wasKept := old[k]
			_, dup := seen[k]
			if wasKept == wantOld && !dup {
				kept = append(kept, inst)
				seen[k] = struct{}{}
			}
		}
	}
	take(true)
	take(false)
	left := len(list) - len(kept)
	c.overCap[mk] = left
	c.capReached[mk.exchange]++
	c.logger.Warn("instrument cap reached: the instruments left out export no series and their liquidations are dropped; raise max_instruments to keep them",
		"exchange", mk.exchange, "market", string(mk.market), "listed", len(list), "kept", len(kept), "left_out", left, "max_instruments", limit)
	return kept
}

var _ exchanges.Sink = (*Collector)(nil)

// SetInstruments implements exchanges.Sink.
func (c *Collector) SetInstruments(exchange string, market exchanges.Market, list []*exchanges.Instrument) {
	mk := marketKey{exchange, market}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.byMarket[mk]
	list = c.capLocked(mk, list, old)
	keep := make(map[exchanges.Key]struct{}, len(list))
	for _, inst := range list {
		k := inst.Key()
		keep[k] = struct{}{}
		if s, ok := c.instruments[k]; ok && s.inst.Coin == inst.Coin && s.noFeed == inst.NoLiquidationFeed {
			s.mu.Lock()
			if s.inst.Quote != inst.Quote || s.inst.ContractType != inst.ContractType {
				s.info = infoLabels(inst)
			}
			s.inst = *inst // contract size or quote may change; the series stay
			s.mu.Unlock()
			continue
		}
		c.instruments[k] = c.newInstSeries(inst)
	}
	for k := range old {
		if _, ok := keep[k]; !ok {
			delete(c.instruments, k)
		}
	}
	c.byMarket[mk] = keep
}

func (c *Collector) newInstSeries(inst *exchanges.Instrument) *instSeries {
	s := &instSeries{
		inst:   *inst,
		labels: labelText(instLabels, inst.Exchange, string(inst.Market), inst.Symbol, inst.Coin),
		info:   infoLabels(inst),
		noFeed: inst.NoLiquidationFeed,
	}
	if s.noFeed {
		return s
	}
	for _, side := range exchanges.Sides {
		s.side[side] = labelText(instSideLabels, inst.Exchange, string(inst.Market), inst.Symbol, inst.Coin, side.String())
		s.sides[side].sizes = c.sizes.WithLabelValues(inst.Exchange, side.String())
	}
	return s
}

func infoLabels(inst *exchanges.Instrument) string {
	return labelText(infoLabelNames, infoValues(inst)...)
}

func infoValues(inst *exchanges.Instrument) []string {
	return []string{inst.Exchange, string(inst.Market), inst.Symbol, inst.Coin, inst.Quote, inst.ContractType}
}

// ValidNotional reports whether v can be a real liquidation's USD notional.
func ValidNotional(v float64) bool {
	return v > 0 && v <= MaxNotionalUSD && !math.IsNaN(v)
}

// Liquidation implements exchanges.Sink.
func (c *Collector) Liquidation(l exchanges.Liquidation) bool {
	if l.Instrument == nil || !ValidNotional(l.NotionalUSD) || l.Side > exchanges.Short {
		return false
	}
	c.mu.RLock()
	s := c.instruments[l.Instrument.Key()]
	c.mu.RUnlock()
	if s == nil || s.noFeed {
		return false
	}
	ss := &s.sides[l.Side]
	ss.count.Add(1)
	ss.notional.Add(l.NotionalUSD)
	ss.sizes.Observe(l.NotionalUSD)

	sec := c.now().Unix()
	ss.mu.Lock()
	if ss.largest == nil {
		ss.largest = new(maxWindow)
	}
	ss.largest.add(sec, l.NotionalUSD, sec-largestWindow+1)
	ss.mu.Unlock()
	return true
}

// largestSince returns the largest liquidation of the seconds from oldest
// on. A window left empty is dropped, so that only the series with a
// liquidation in the last minute hold one; the next liquidation makes a
// new one.
func (ss *sideSeries) largestSince(oldest int64) float64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.largest == nil {
		return 0
	}
	m := ss.largest.largest(oldest)
	if ss.largest.n == 0 {
		ss.largest = nil
	}
	return m
}

// SetMarketValues implements exchanges.Sink. Values of unknown instruments
// and non-finite values are ignored.
func (c *Collector) SetMarketValues(values []exchanges.MarketValue) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, v := range values {
		if v.Instrument == nil || v.Field >= exchanges.NumFields || math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			continue
		}
		s := c.instruments[v.Instrument.Key()]
		if s == nil {
			continue
		}
		s.mu.Lock()
		s.values[v.Field] = v.Value
		s.expiry[v.Field] = now.Add(v.TTL)
		s.mu.Unlock()
	}
}

// SetFeedComplete implements exchanges.Sink.
func (c *Collector) SetFeedComplete(exchange string, market exchanges.Market, complete bool) {
	c.mu.Lock()
	c.feed[marketKey{exchange, market}] = complete
	c.mu.Unlock()
}

// Stream implements exchanges.Sink.
func (c *Collector) Stream(exchange, stream string) exchanges.StreamObserver {
	k := [2]string{exchange, stream}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.streams[k]
	if !ok {
		s = &streamState{now: c.now}
		c.streams[k] = s
	}
	return s
}

func (s *streamState) SetUp(up bool) {
	if up {
		s.up.Store(1)
	} else {
		s.up.Store(0)
	}
}
func (s *streamState) Connected()   { s.connects.Add(1) }
func (s *streamState) DecodeError() { s.decodeErrors.Add(1) }
func (s *streamState) Message() {
	s.messages.Add(1)
	s.lastMessage.Store(s.now().UnixNano())
}

// Poll implements exchanges.Sink.
func (c *Collector) Poll(exchange, endpoint string) exchanges.PollObserver {
	k := [2]string{exchange, endpoint}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.polls[k]
	if !ok {
		p = &pollState{}
		c.polls[k] = p
	}
	return p
}

func (p *pollState) Observe(d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.duration = d.Seconds()
	if err != nil {
		p.success = 0
		p.failures++
		return
	}
	p.success = 1
}

// SetFearGreed implements exchanges.Sink.
func (c *Collector) SetFearGreed(source string, value float64, classification string, updated time.Time) {
	c.mu.Lock()
	c.fearGreed[source] = fearGreedReading{value, classification, updated}
	c.mu.Unlock()
}

// SetPriceLevels exports the configured key levels (coin -> levels).
func (c *Collector) SetPriceLevels(levels map[string][]float64) {
	var out []priceLevel
	for coin, vs := range levels {
		for _, v := range vs {
			out = append(out, priceLevel{coin, strconv.FormatFloat(v, 'f', -1, 64), v})
		}
	}
	slices.SortFunc(out, func(a, b priceLevel) int {
		if a.coin != b.coin {
			if a.coin < b.coin {
				return -1
			}
			return 1
		}
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	c.mu.Lock()
	c.priceLevels = out
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range instrumentFamilies() {
		ch <- f.desc
	}
	c.Others().Describe(ch)
}

// instrumentFamilies lists the families of per-instrument series.
func instrumentFamilies() []*family {
	fams := []*family{famMarketInfo, famLiquidations, famLiquidationNotional, famLiquidationLargest}
	return append(fams, famMarket[:]...)
}

// eachSeriesLocked calls fn for every series of the per-instrument family
// f with its label text and its value at now (side is that of a by-side
// family). The caller holds the collector's read lock; fn runs under it,
// not under the instrument's.
func (c *Collector) eachSeriesLocked(f *family, now time.Time, fn func(s *instSeries, side exchanges.Side, text string, v float64)) {
	oldest := now.Unix() - largestWindow + 1
	for _, s := range c.instruments {
		switch f.kind {
		case kindInfo:
			s.mu.Lock()
			text := s.info
			s.mu.Unlock()
			fn(s, 0, text, 1)
		case kindField:
			s.mu.Lock()
			v, expiry := s.values[f.field], s.expiry[f.field]
			s.mu.Unlock()
			if !expiry.IsZero() && now.Before(expiry) {
				fn(s, 0, s.labels, v)
			}
		default:
			if s.noFeed {
				continue
			}
			for _, side := range exchanges.Sides {
				ss := &s.sides[side]
				var v float64
				switch f.kind {
				case kindCount:
					v = float64(ss.count.Load())
				case kindNotional:
					v = ss.notional.Load()
				default:
					v = ss.largestSince(oldest)
				}
				fn(s, side, s.side[side], v)
			}
		}
	}
}

// Collect implements prometheus.Collector: every series, including the
// per-instrument ones that the /metrics handler writes directly.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	// Status first, data second (as /metrics, which gathers before it
	// writes the per-instrument families): venues store what a poll or
	// frame brought before they report it, so a scrape that sees a poll's
	// outcome also sees its instruments and values.
	c.collectOthers(ch)
	// One read lock over every family, so that they show one instrument
	// list (a discovery between two families would split a scrape).
	now := c.now()
	c.mu.RLock()
	for _, f := range instrumentFamilies() {
		c.eachSeriesLocked(f, now, func(s *instSeries, side exchanges.Side, _ string, v float64) {
			ch <- f.metric(s, side, v)
		})
	}
	c.mu.RUnlock()
}

// metric is one series of f as a client_golang metric (the Collect path;
// /metrics writes the cached label text instead).
func (f *family) metric(s *instSeries, side exchanges.Side, v float64) prometheus.Metric {
	s.mu.Lock()
	values := infoValues(&s.inst)
	s.mu.Unlock()
	switch f.kind {
	case kindInfo:
	case kindField:
		values = values[:len(instLabels)]
	default:
		values = append(values[:len(instLabels)], side.String())
	}
	typ := prometheus.GaugeValue
	if f.counter {
		typ = prometheus.CounterValue
	}
	m, err := prometheus.NewConstMetric(f.desc, typ, v, values...)
	if err != nil {
		return prometheus.NewInvalidMetric(f.desc, err)
	}
	return m
}

// Others returns a prometheus.Collector of every series except the
// per-instrument ones, which the /metrics handler writes directly (see
// appendFamilyLocked).
func (c *Collector) Others() prometheus.Collector { return others{c} }

type others struct{ c *Collector }

func (o others) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descFeedComplete, descPriceLevel, descFearGreed, descFearGreedClass, descFearGreedUpdated,
		descInstruments, descInstrumentsOverCap, descInstrumentCapReached,
		descStreamUp, descStreamConnects, descStreamMessages, descStreamDecodeErrors, descStreamLastMessage,
		descPollSuccess, descPollFailures, descPollDuration,
	} {
		ch <- d
	}
	o.c.sizes.Describe(ch)
}

func (o others) Collect(ch chan<- prometheus.Metric) { o.c.collectOthers(ch) }

func (c *Collector) collectOthers(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	c.sizes.Collect(ch)

	for k, complete := range c.feed {
		v := 0.0
		if complete {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descFeedComplete, prometheus.GaugeValue, v, k.exchange, string(k.market))
	}
	for k, keys := range c.byMarket {
		ch <- prometheus.MustNewConstMetric(descInstruments, prometheus.GaugeValue, float64(len(keys)), k.exchange, string(k.market))
		ch <- prometheus.MustNewConstMetric(descInstrumentsOverCap, prometheus.GaugeValue, float64(c.overCap[k]), k.exchange, string(k.market))
	}
	for exchange := range c.caps {
		ch <- prometheus.MustNewConstMetric(descInstrumentCapReached, prometheus.CounterValue, c.capReached[exchange], exchange)
	}
	for k, s := range c.streams {
		ch <- prometheus.MustNewConstMetric(descStreamUp, prometheus.GaugeValue, float64(s.up.Load()), k[0], k[1])
		ch <- prometheus.MustNewConstMetric(descStreamConnects, prometheus.CounterValue, float64(s.connects.Load()), k[0], k[1])
		ch <- prometheus.MustNewConstMetric(descStreamMessages, prometheus.CounterValue, float64(s.messages.Load()), k[0], k[1])
		ch <- prometheus.MustNewConstMetric(descStreamDecodeErrors, prometheus.CounterValue, float64(s.decodeErrors.Load()), k[0], k[1])
		ch <- prometheus.MustNewConstMetric(descStreamLastMessage, prometheus.GaugeValue, float64(s.lastMessage.Load())/1e9, k[0], k[1])
	}
	for k, p := range c.polls {
		p.mu.Lock()
		success, failures, duration := p.success, p.failures, p.duration
		p.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descPollSuccess, prometheus.GaugeValue, success, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(descPollFailures, prometheus.CounterValue, failures, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(descPollDuration, prometheus.GaugeValue, duration, k[0], k[1])
	}
	for _, l := range c.priceLevels {
		ch <- prometheus.MustNewConstMetric(descPriceLevel, prometheus.GaugeValue, l.value, l.coin, l.label)
	}
	for source, r := range c.fearGreed {
		ch <- prometheus.MustNewConstMetric(descFearGreed, prometheus.GaugeValue, r.value, source)
		ch <- prometheus.MustNewConstMetric(descFearGreedClass, prometheus.GaugeValue, 1, source, r.classification)
		ch <- prometheus.MustNewConstMetric(descFearGreedUpdated, prometheus.GaugeValue, float64(r.updated.Unix()), source)
	}
}

// atomicFloat is a float64 updated with compare-and-swap.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) Add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (f *atomicFloat) Load() float64 { return math.Float64frombits(f.bits.Load()) }
