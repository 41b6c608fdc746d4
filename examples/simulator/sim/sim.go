// Package sim runs a synthetic crypto-derivatives market on the project's
// fake venues (exchangetest): Binance USDⓈ-M and COIN-M, Bybit linear and
// inverse, OKX SWAP and FUTURES, Gate USDT- and BTC-settled futures and dYdX,
// each with its own instrument list for the simulated coins, random-walk
// prices shared by every venue, open interest building up between
// liquidation cascades, drifting funding, 24 h turnover, a Fear & Greed
// reading, and liquidation cascades in both directions, each venue taking
// its share of the flow and pushing it in its own format (Binance's
// !forceOrder@arr, Bybit's allLiquidation, OKX's liquidation-orders, Gate's
// futures.public_liquidates, dYdX's v4_trades).
//
// Everything is seeded: two runs with the same seed generate the same
// market (price paths, cascades, the sequence of liquidations and their USD
// sizes; quantities of dated contracts depend on the calendar through
// their basis). Pausing the flow and Inject are part of that script:
// they change what the generator draws next. What reaches an exporter depends on when it connects, so the
// simulator keeps the ground truth of every liquidation it delivered, with
// the USD notional computed by the project's notional rules (linear
// quantity x contract value x price, inverse contracts x contract size),
// for tests to compare with what Prometheus computes. Each venue draws from
// its own random generator, so a seed's Binance market is the same whatever
// other venues run.
//
// The package does not import testing; examples/simulator is the program
// around it.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// Config configures a simulation. The zero value is a realistic market.
type Config struct {
	// Seed makes the run reproducible; 0 is treated as 1.
	Seed uint64
	// Rate multiplies the liquidation rates (1 = realistic, 10 = a stress
	// test). 0 means 1.
	Rate float64
	// Unthrottled pushes every liquidation. By default the simulator pushes
	// at most one liquidation per symbol per second on Binance, OKX and
	// Gate, as their public streams do, so the feed is the same kind of
	// sample the live one is (Bybit and dYdX publish every liquidation).
	Unthrottled bool
	// Venues lists the venues to run (see Venues); nil runs all of them.
	Venues []string
	// FirstCascade is when the first liquidation cascade starts after Run;
	// 0 means 20 s, so a demo shows one within its first minute.
	FirstCascade time.Duration
	// CascadeEvery is the mean time between cascade starts; 0 means 3 min.
	CascadeEvery time.Duration
	// FearGreedEvery is how often a new Fear & Greed reading is published;
	// 0 means 5 min (the real index changes daily).
	FearGreedEvery time.Duration
	// Paused starts with the random liquidation flow off (see
	// SetLiquidations); prices, open interest and funding move regardless.
	Paused bool
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
}

// Exchange is the exchange label of the simulator's first venue, Binance.
const Exchange = Binance

const (
	// step is the market's time step. The per-symbol throttle allows one
	// liquidation per symbol and step, as Binance does per second.
	step = time.Second
	// calmRate is the calm market's liquidation rate per second across
	// every symbol and both sides, at Rate 1 (before the throttle).
	calmRate = 0.6
	// Liquidation sizes are log-normal around each coin's median with this
	// spread, capped at maxSizeUSD.
	sizeSigma  = 1.4
	maxSizeUSD = 5e7
	// playTimeout is how long a frame waits for a subscriber.
	playTimeout = 250 * time.Millisecond
	// playerQueue is how many steps a market's player may fall behind
	// before steps are dropped.
	playerQueue = 8
	// weightLimit replaces Binance's 2400 per minute: the exporter may poll
	// fast in simulator mode.
	weightLimit  = 1_000_000
	statusPeriod = 30 * time.Second
)

// Key identifies one liquidation counter the exporter exposes.
type Key struct {
	Exchange, Market, Symbol, Coin, Side string // Market: linear or inverse; Side: long or short
}

// Total is a count of liquidations and their USD notional.
type Total struct {
	Count       int
	NotionalUSD float64
}

// Truth is the ground truth of delivered liquidations per counter.
type Truth map[Key]Total

// Sum adds up every entry that keep accepts (nil keeps all).
func (t Truth) Sum(keep func(Key) bool) Total {
	var out Total
	for k, v := range t {
		if keep == nil || keep(k) {
			out.Count += v.Count
			out.NotionalUSD += v.NotionalUSD
		}
	}
	return out
}

func (t Truth) add(k Key, notional float64) {
	v := t[k]
	v.Count++
	v.NotionalUSD += notional
	t[k] = v
}

// Stats counts what the liquidation generator did.
type Stats struct {
	Generated   int // liquidations generated, injected ones included
	Delivered   int // written to at least one subscribed connection
	Undelivered int // generated while no exporter was subscribed, or not taken in time
	Dropped     int // generated while the market's player was behind
}

// Instrument describes one listed contract.
type Instrument struct {
	Exchange string // the exchange label
	// Market is the fake's market: USDM or COINM on Binance, the category
	// (linear, inverse) on Bybit, the instType (SWAP, FUTURES) on OKX, the
	// settle currency (usdt, btc) on Gate, dydx on dYdX.
	Market       string
	Symbol, Coin string
	Quote        string
	ContractType string // PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER
	Inverse      bool
	// ContractSize is the USD value of an inverse contract, and the
	// contract value of a linear OKX or Gate contract in coins (ctVal,
	// quanto multiplier); 0 where linear quantities are in the base asset.
	ContractSize float64
}

// Endpoints are the base URLs of the fakes, in the form the exporter's
// configuration takes them; those of venues not simulated are empty.
type Endpoints struct {
	USDMREST, USDMWS, CoinMREST, CoinMWS     string
	BybitREST, BybitLinearWS, BybitInverseWS string
	OKXREST, OKXWS                           string
	GateREST, GateUSDTWS, GateBTCWS          string
	DydxREST, DydxWS                         string
	FearGreed                                string
}

// Fakes are the fake venues of a simulation, for callers that script
// faults or inspect connections; those of venues not simulated are nil.
type Fakes struct {
	USDM, CoinM *exchangetest.BinanceMarket
	Bybit       *exchangetest.Bybit
	OKX         *exchangetest.OKX
	Gate        *exchangetest.Gate
	Dydx        *exchangetest.Dydx
}

// coinState is the evolving state of one underlying.
type coinState struct {
	spec       *coinSpec
	price      float64
	startPrice float64
	momentum   float64 // exponentially weighted sum of recent log returns
	// cascadeWeight is the coin's share of a cascade's flow (before
	// normalising): flatter than the calm weights, higher for high beta.
	cascadeWeight float64
}

// cascade is one liquidation cascade: intensity ramps up, the price moves
// against the side being liquidated, then intensity decays.
type cascade struct {
	side        string // long or short: the positions liquidated
	start       time.Time
	ramp, decay float64 // seconds
	rate        float64 // liquidations per second market-wide at the top, before throttling
	move        float64 // log price move over the ramp
	whale       bool    // one liquidation of at least $1M near the top
}

// shape is the cascade's intensity profile in [0, 1] at t; done once it has
// faded out.
func (c *cascade) shape(t time.Time) (v float64, done bool) {
	s := t.Sub(c.start).Seconds()
	switch {
	case s < 0:
		return 0, false
	case s < c.ramp:
		return s / c.ramp, false
	}
	v = math.Exp(-(s - c.ramp) / c.decay)
	return v, v < 0.02
}

// Sim is a running synthetic market.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	venues []*venue
	usdm   *exchangetest.BinanceMarket
	coinm  *exchangetest.BinanceMarket
	bybit  *exchangetest.Bybit
	okx    *exchangetest.OKX
	gate   *exchangetest.Gate
	dydx   *exchangetest.Dydx
	fg     *exchangetest.FearGreed
	runID  string // prefix of dYdX trade ids
	nextID uint64

	levels map[string][]float64 // price levels for the exporter config

	// Market state, guarded by stateMu (the market loop writes it, Inject
	// reads marks).
	stateMu     sync.Mutex
	rng         *rand.Rand
	coins       []*coinState
	insts       []*instrument
	bySymbol    map[string]*instrument // exchange + "/" + symbol
	totalWeight float64                // of the calm liquidation flow
	// totalCascadeWeight normalises coinState.cascadeWeight.
	totalCascadeWeight float64
	cascade            *cascade
	nextCascade        time.Time
	lastFG             time.Time
	fgValue            int
	// The model runs on a virtual clock, t0 plus one step per tick, so that
	// a seed replays the same market whatever the scheduling jitter.
	t0    time.Time
	steps int
	vnow  time.Time

	paused  atomic.Bool
	players map[string]*player
	quit    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex // guards truth, stats, pending
	truth   Truth
	stats   Stats
	pending int
	idle    chan struct{} // closed and replaced when pending drops to 0

	running   atomic.Bool
	closeOnce sync.Once
}

// New starts the fake venues on 127.0.0.1 with free ports and lists the
// synthetic market on them. Call Run to make the market move and Close to
// stop everything. It panics on a venue that is not one of Venues (see
// ParseVenues).
func New(cfg Config) *Sim { return newAt(cfg, time.Now()) }

// newAt is New with the market listed at wall time now: dated contracts'
// deliveries and basis depend on it, so two markets of one seed are equal
// only when they start at the same time.
func newAt(cfg Config, now time.Time) *Sim {
	names, err := selectVenues(cfg.Venues)
	if err != nil {
		panic(err)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1
	}
	if cfg.FirstCascade <= 0 {
		cfg.FirstCascade = 20 * time.Second
	}
	if cfg.CascadeEvery <= 0 {
		cfg.CascadeEvery = 3 * time.Minute
	}
	if cfg.FearGreedEvery <= 0 {
		cfg.FearGreedEvery = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		cfg:      cfg,
		log:      cfg.Logger,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		bySymbol: map[string]*instrument{},
		quit:     make(chan struct{}),
		truth:    Truth{},
		idle:     make(chan struct{}),
		players:  map[string]*player{},
		levels:   map[string][]float64{},
	}
	s.paused.Store(cfg.Paused)
	states := map[string]*coinState{}
	for i := range coins {
		c := &coins[i]
		// Start prices vary by up to ±3 % with the seed.
		p := c.price * math.Exp(0.03*(2*s.rng.Float64()-1))
		st := &coinState{spec: c, price: p, startPrice: p, cascadeWeight: math.Sqrt(c.weight) * c.beta}
		states[c.coin] = st
		s.coins = append(s.coins, st)
		s.totalWeight += c.weight
		s.totalCascadeWeight += st.cascadeWeight
	}
	s.runID = fmt.Sprintf("sim%d-%x", cfg.Seed, now.UnixNano())
	for _, name := range names {
		v, insts := s.newVenue(name, states, now)
		s.venues = append(s.venues, v)
		s.insts = append(s.insts, insts...)
	}
	for _, in := range s.insts {
		s.bySymbol[in.venue.name+"/"+in.symbol] = in
	}
	btc, eth := states["BTC"].price, states["ETH"].price
	s.levels["BTC"] = []float64{math.Round(btc*0.985/100) * 100, math.Round(btc*1.015/100) * 100}
	s.levels["ETH"] = []float64{math.Round(eth*0.98/10) * 10}

	s.fg = exchangetest.NewFearGreed()
	s.publish(now)

	// Fear & Greed: yesterday's reading and today's, at midnight UTC as
	// alternative.me stamps them.
	s.fgValue = 30 + s.rng.IntN(45)
	midnight := now.UTC().Truncate(24 * time.Hour)
	prev := clampInt(s.fgValue+s.rng.IntN(11)-5, 0, 100)
	s.fg.Push(prev, classify(prev), midnight.Add(-24*time.Hour))
	s.fg.Push(s.fgValue, classify(s.fgValue), midnight)
	s.lastFG = now

	for _, v := range s.venues {
		for _, market := range v.markets {
			p := &player{s: s, v: v, market: market, ch: make(chan *batch, playerQueue)}
			s.players[playerKey(v.name, market)] = p
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				p.run()
			}()
		}
	}
	return s
}

func playerKey(venue, market string) string { return venue + "/" + market }

// ParseVenues parses a comma-separated list of venues ("" or "all" = every
// venue of Venues) for Config.Venues.
func ParseVenues(list string) ([]string, error) {
	if l := strings.TrimSpace(list); l == "" || l == "all" {
		return slices.Clone(Venues), nil
	}
	var out []string
	for _, v := range strings.Split(list, ",") {
		out = append(out, strings.ToLower(strings.TrimSpace(v)))
	}
	return selectVenues(out)
}

// selectVenues validates a venue list and returns it in Venues order,
// without repeats; nil is every venue.
func selectVenues(list []string) ([]string, error) {
	if list == nil {
		return slices.Clone(Venues), nil
	}
	want := map[string]bool{}
	for _, v := range list {
		if !slices.Contains(Venues, v) {
			return nil, fmt.Errorf("sim: unknown venue %q (simulated: %s)", v, strings.Join(Venues, ", "))
		}
		want[v] = true
	}
	if len(want) == 0 {
		return nil, errors.New("sim: no venue to simulate")
	}
	var out []string
	for _, v := range Venues {
		if want[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// VenueNames returns the simulated venues, in Venues order.
func (s *Sim) VenueNames() []string {
	out := make([]string, len(s.venues))
	for i, v := range s.venues {
		out[i] = v.name
	}
	return out
}

// WaitSubscribed waits until an exporter has subscribed to every
// liquidation stream of every simulated venue (every Bybit topic and dYdX
// market, both OKX instTypes, both Gate settle currencies, both Binance
// markets), so that no liquidation pushed from then on is missed.
func (s *Sim) WaitSubscribed(ctx context.Context) error {
	for _, v := range s.venues {
		var insts []*instrument
		for _, in := range s.insts {
			if in.venue == v {
				insts = append(insts, in)
			}
		}
		if err := v.wait(ctx, insts); err != nil {
			return fmt.Errorf("sim: %s: %w", v.name, err)
		}
	}
	return nil
}

// Close stops the players and the fake venues. It is safe to call more
// than once.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		for _, v := range s.venues {
			v.close()
		}
		s.fg.Close()
		s.wg.Wait()
	})
}

// Endpoints returns the fakes' base URLs.
func (s *Sim) Endpoints() Endpoints {
	e := Endpoints{FearGreed: s.fg.URL()}
	if s.usdm != nil {
		e.USDMREST, e.USDMWS = s.usdm.RESTURL(), s.usdm.WSURL()
		e.CoinMREST, e.CoinMWS = s.coinm.RESTURL(), s.coinm.WSURL()
	}
	if s.bybit != nil {
		e.BybitREST, e.BybitLinearWS, e.BybitInverseWS = s.bybit.RESTURL(), s.bybit.LinearWSURL(), s.bybit.InverseWSURL()
	}
	if s.okx != nil {
		e.OKXREST, e.OKXWS = s.okx.RESTURL(), s.okx.WSURL()
	}
	if s.gate != nil {
		e.GateREST, e.GateUSDTWS, e.GateBTCWS = s.gate.RESTURL(), s.gate.WSURL(exchangetest.GateUSDT), s.gate.WSURL(exchangetest.GateBTC)
	}
	if s.dydx != nil {
		e.DydxREST, e.DydxWS = s.dydx.RESTURL(), s.dydx.WSURL()
	}
	return e
}

// Markets returns the fake Binance markets (USDⓈ-M, COIN-M), for callers
// that script faults or inspect connections; nil when Binance is not
// simulated.
func (s *Sim) Markets() (usdm, coinm *exchangetest.BinanceMarket) { return s.usdm, s.coinm }

// Fakes returns every fake venue of the simulation.
func (s *Sim) Fakes() Fakes {
	return Fakes{USDM: s.usdm, CoinM: s.coinm, Bybit: s.bybit, OKX: s.okx, Gate: s.gate, Dydx: s.dydx}
}

// ExporterConfig returns an exporter configuration that reads the
// simulator: the endpoints of every simulated venue and Fear & Greed
// pointing at the fakes, every other venue disabled, polling every 5 s,
// Fear & Greed every minute, and price levels near the start prices of BTC
// and ETH.
func (s *Sim) ExporterConfig() string {
	var ex strings.Builder
	for _, name := range configOrder {
		i := slices.IndexFunc(s.venues, func(v *venue) bool { return v.name == name })
		if i < 0 {
			fmt.Fprintf(&ex, "  %s: {enabled: false}\n", name)
			continue
		}
		fmt.Fprintf(&ex, "  %s:%s\n", name, s.venues[i].config())
	}
	levels := func(v []float64) string {
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprintf("%g", x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf(`# derivatives_exporter configuration for the offline simulator (seed %d).
# The endpoints are loopback ports of this simulator run only; the venues
# the simulator does not serve are disabled.
exchanges:
%sfear_greed:
  url: %s
  interval: 1m
polling:
  interval: 5s
price_levels:
  BTC: %s
  ETH: %s
`, s.cfg.Seed, ex.String(), s.fg.URL(), levels(s.levels["BTC"]), levels(s.levels["ETH"]))
}

// Instruments lists the simulated contracts.
func (s *Sim) Instruments() []Instrument {
	out := make([]Instrument, 0, len(s.insts))
	for _, in := range s.insts {
		size := in.contractSize
		if !in.inverse && (in.venue.name == OKX || in.venue.name == Gate) {
			size = in.lot // ctVal, quanto multiplier
		}
		out = append(out, Instrument{Exchange: in.venue.name, Market: in.market, Symbol: in.symbol, Coin: in.coin.spec.coin,
			Quote: in.quote, ContractType: in.contractType, Inverse: in.inverse, ContractSize: size})
	}
	return out
}

// SetLiquidations turns the random liquidation flow on or off. Injected
// liquidations are pushed either way.
func (s *Sim) SetLiquidations(on bool) { s.paused.Store(!on) }

// Truth returns a copy of the ground truth: every liquidation delivered to
// at least one subscribed connection so far.
func (s *Sim) Truth() Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(Truth, len(s.truth))
	for k, v := range s.truth {
		out[k] = v
	}
	return out
}

// Stats returns the generator's counts.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Settle waits until every liquidation generated so far has been pushed
// (or given up) and recorded in the truth. With the flow off
// (SetLiquidations(false)) the truth is then final.
func (s *Sim) Settle(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ch := s.pending, s.idle
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-s.quit:
			return errors.New("sim: closed")
		case <-ctx.Done():
			return fmt.Errorf("sim: %d batches still playing: %w", n, ctx.Err())
		}
	}
}

// Run moves the market every step until ctx is done. It may be called once.
func (s *Sim) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sim: Run called twice")
	}
	s.stateMu.Lock()
	s.begin(time.Now())
	s.stateMu.Unlock()
	t := time.NewTicker(step)
	defer t.Stop()
	status := time.NewTicker(statusPeriod)
	defer status.Stop()
	var last Stats
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.quit:
			return nil
		case now := <-t.C:
			s.step(now)
		case <-status.C:
			st := s.Stats()
			sum := s.Truth().Sum(nil)
			s.stateMu.Lock()
			regime := "calm"
			if c := s.cascade; c != nil {
				v, _ := c.shape(s.vnow)
				regime = fmt.Sprintf("%s cascade at %.0f%%", c.side, 100*v)
			}
			btc := s.coins[0].price
			s.stateMu.Unlock()
			attrs := []any{
				"pushed_last_period", st.Delivered - last.Delivered,
				"not_taken_last_period", st.Undelivered - last.Undelivered + st.Dropped - last.Dropped,
				"delivered_total", sum.Count, "delivered_usd", math.Round(sum.NotionalUSD),
				"regime", regime, "btc", math.Round(btc),
			}
			if s.usdm != nil {
				attrs = append(attrs, "usdm_subscribers", s.usdm.Subscribed(), "coinm_subscribers", s.coinm.Subscribed())
			}
			truth := s.Truth()
			for _, v := range s.venues {
				n := truth.Sum(func(k Key) bool { return k.Exchange == v.name }).Count
				attrs = append(attrs, v.name+"_delivered", n)
			}
			s.log.Info("simulator", attrs...)
			last = st
		}
	}
}

// begin starts the virtual clock at t0. Callers hold stateMu.
func (s *Sim) begin(t0 time.Time) {
	s.t0, s.vnow, s.steps = t0, t0, 0
	s.nextCascade = t0.Add(s.cfg.FirstCascade)
	s.lastFG = t0
}

// step advances the market by one step. The model (cascades, Fear & Greed
// timing) uses the virtual clock; what the venues serve (event times, next
// funding times, the basis of dated contracts) uses the wall clock.
func (s *Sim) step(wall time.Time) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	rng := s.rng
	dt := step.Seconds()
	s.steps++
	s.vnow = s.t0.Add(time.Duration(s.steps) * step)
	now := s.vnow

	// Regime: start, run and end cascades.
	if s.cascade == nil && !now.Before(s.nextCascade) {
		s.cascade = s.newCascade(now)
		s.nextCascade = now.Add(time.Duration(float64(s.cfg.CascadeEvery) * (0.3 + rng.ExpFloat64())))
		s.log.Info("liquidation cascade", "side", s.cascade.side, "peak_per_second", math.Round(s.cascade.rate),
			"price_move_pct", math.Round(1000*(math.Exp(s.cascade.move)-1))/10)
	}
	drift, shape := 0.0, 0.0
	active := s.cascade
	if c := active; c != nil {
		v, done := c.shape(now)
		shape = v
		if el := now.Sub(c.start).Seconds(); el < c.ramp {
			drift = c.move / c.ramp
		}
		if done {
			s.cascade = nil
		}
	}

	// Prices: a market factor with the cascade's drift plus noise per coin.
	const sigmaMarket = 1.5e-4
	market := sigmaMarket*math.Sqrt(dt)*rng.NormFloat64() + drift*dt
	for _, c := range s.coins {
		r := c.spec.beta*market + c.spec.idio*math.Sqrt(dt)*rng.NormFloat64()
		c.price *= math.Exp(r)
		c.momentum = c.momentum*(1-dt/600) + r
	}

	// Liquidations of this step, then open interest, funding and turnover.
	liquidated := s.liquidations(wall, dt, active, shape)
	for _, in := range s.insts {
		rng := in.venue.rng
		// Open interest builds up in calm markets and is cut by
		// deleveraging and by the liquidations themselves.
		g := 2e-5*dt + 2e-4*math.Sqrt(dt)*rng.NormFloat64() - 8e-4*shape*dt
		in.oi = max(in.oi*math.Exp(g)-liquidated[in].qty, 0)
		if in.inverse {
			in.oi = math.Round(in.oi)
		} else {
			in.oi = roundTo(in.oi, in.qtyDP)
		}
		if in.perpetual() {
			// Funding follows the coin's recent move: a 5 % rally adds
			// 0.05 % per 8 h.
			target := (in.coin.spec.funding + 0.01*in.coin.momentum) * in.fundingScale
			in.funding += 0.01*(target-in.funding)*dt + 3e-6*in.fundingScale*math.Sqrt(dt)*rng.NormFloat64()
			in.funding = math.Max(-0.003, math.Min(0.003, in.funding))
		}
		base := in.coin.spec.volUSD * in.share / 0.7
		in.volUSD = in.volUSD*(1-dt/86400) + base*dt/86400*(1+0.5*rng.NormFloat64()) + 15*liquidated[in].usd
		in.volUSD = max(in.volUSD, 0)
	}
	s.publish(wall)

	// Fear & Greed follows BTC's move since the start.
	if now.Sub(s.lastFG) >= s.cfg.FearGreedEvery {
		btc := s.coins[0]
		v := float64(s.fgValue) + 800*math.Log(btc.price/btc.startPrice) + 1.5*rng.NormFloat64()
		n := clampInt(int(math.Round(v)), 0, 100)
		s.fg.Push(n, classify(n), wall.Truncate(time.Minute))
		s.lastFG = now
	}
}

func (s *Sim) newCascade(now time.Time) *cascade {
	rng := s.rng
	c := &cascade{
		side:  "long",
		start: now,
		ramp:  8 + 20*rng.Float64(),
		decay: 15 + 45*rng.Float64(),
		rate:  30 + 120*rng.Float64(),
		whale: rng.Float64() < 0.6,
	}
	if rng.IntN(2) == 1 {
		c.side = "short"
	}
	move := 0.008 + 0.03*rng.Float64() // 0.8 % to 3.8 %
	if c.side == "long" {
		move = -move // longs are liquidated when prices fall
	}
	c.move = math.Log1p(move)
	return c
}

// publish writes every instrument's state into the fakes.
func (s *Sim) publish(now time.Time) {
	for _, v := range s.venues {
		var insts []*instrument
		for _, in := range s.insts {
			if in.venue == v {
				insts = append(insts, in)
			}
		}
		v.publish(now, insts)
	}
}

// filled is what one step liquidated on an instrument.
type filled struct{ qty, usd float64 }

// liquidations generates this step's liquidations, queues them for the
// players and returns the quantity and notional per instrument.
func (s *Sim) liquidations(now time.Time, dt float64, c *cascade, shape float64) map[*instrument]filled {
	out := map[*instrument]filled{}
	if s.paused.Load() {
		return out
	}
	batches := map[string]*batch{}
	whaleDone := false
	for _, in := range s.insts {
		rng := in.venue.rng
		var orders []pending
		for _, side := range []string{"long", "short"} {
			// Calm flow in proportion to each coin's weight; a cascade's
			// flow spreads wider (high-beta coins are hit harder), mostly
			// on the side it liquidates.
			lambda := calmRate / 2 * in.coin.spec.weight / s.totalWeight
			if c != nil {
				k := in.coin.cascadeWeight / s.totalCascadeWeight * c.rate * shape
				if side != c.side {
					k *= 0.03
				}
				lambda += k
			}
			lambda *= s.cfg.Rate * in.share * dt
			for range poisson(rng, lambda) {
				median := in.coin.spec.median * (1 + 0.8*shape)
				size := math.Min(median*math.Exp(sizeSigma*rng.NormFloat64()), maxSizeUSD)
				orders = append(orders, pending{side: side, usd: size, at: time.Duration(rng.Float64() * dt * float64(time.Second))})
			}
		}
		// One whale per cascade near its top, on a BTC or ETH perpetual.
		if c != nil && c.whale && shape > 0.8 && !whaleDone &&
			in.perpetual() && in.quote == "USDT" && (in.coin.spec.coin == "BTC" || in.coin.spec.coin == "ETH") {
			orders = append(orders, pending{side: c.side, usd: 1.2e6 + 4e6*rng.Float64(), at: time.Duration(rng.Float64() * dt * float64(time.Second))})
			c.whale, whaleDone = false, true
		}
		if len(orders) == 0 {
			continue
		}
		if !s.cfg.Unthrottled && in.venue.throttled {
			// Binance, OKX and Gate publish the latest liquidation per
			// symbol and second.
			latest := orders[0]
			for _, o := range orders[1:] {
				if o.at > latest.at || o.usd >= 1e6 {
					latest = o
				}
			}
			orders = []pending{latest}
		}
		key := playerKey(in.venue.name, in.market)
		b := batches[key]
		if b == nil {
			b = &batch{}
			batches[key] = b
		}
		for _, o := range orders {
			f := s.fill(in, o.side, o.usd, now.Add(o.at))
			b.items = append(b.items, item{at: o.at, frame: f.frame, route: f.route, key: f.key, usd: f.usd})
			v := out[in]
			v.qty += f.qty
			v.usd += f.usd
			out[in] = v
		}
	}
	for _, name := range slices.Sorted(maps.Keys(batches)) {
		b := batches[name]
		sort.SliceStable(b.items, func(i, j int) bool { return b.items[i].at < b.items[j].at })
		s.players[name].offer(b)
	}
	return out
}

type pending struct {
	side string
	usd  float64
	at   time.Duration // offset within the step
}

// fillResult is one liquidation as pushed.
type fillResult struct {
	frame []byte
	route string
	key   Key
	qty   float64 // units of quantity: linear lots, inverse contracts
	usd   float64 // notional by the project's rules
}

// fill turns a liquidation of about usd on in into a frame of the venue's
// liquidation stream. Callers hold stateMu.
func (s *Sim) fill(in *instrument, side string, usd float64, at time.Time) fillResult {
	mark := in.mark(at)
	// The liquidation engine sells a long below the mark, buys back a short
	// above it.
	slip := 0.004 * in.venue.rng.Float64()
	sign := -1.0
	if side == "short" {
		sign = 1
	}
	price := roundTo(mark*(1+sign*slip), in.priceDP)
	s.nextID++
	o := &order{in: in, side: side, qty: in.quantity(usd, price), price: price, at: at, id: s.nextID}
	frame := in.venue.render(o)
	market := "linear"
	if in.inverse {
		market = "inverse"
	}
	return fillResult{
		frame: frame,
		route: o.route,
		key:   Key{Exchange: in.venue.name, Market: market, Symbol: in.symbol, Coin: in.coin.spec.coin, Side: side},
		qty:   o.qty,
		usd:   in.notionalUSD(o.qty, o.price),
	}
}

// Order is one liquidation to push on demand.
type Order struct {
	Exchange string // a simulated venue; "" = binance
	Symbol   string // a listed symbol of one of the venue's markets
	Side     string // long or short: the position liquidated
	// NotionalUSD is the intended size; the pushed fill is rounded to the
	// contract's quantity precision (inverse and OKX and Gate contracts:
	// whole contracts).
	NotionalUSD float64
}

// Inject pushes orders at the current marks, in order and without delays,
// and returns the truth of those delivered. It waits up to 250 ms per
// frame for a subscriber.
func (s *Sim) Inject(ctx context.Context, orders ...Order) (Truth, error) {
	now := time.Now()
	batches := map[string]*batch{}
	s.stateMu.Lock()
	for _, o := range orders {
		ex := o.Exchange
		if ex == "" {
			ex = Binance
		}
		in, ok := s.bySymbol[ex+"/"+o.Symbol]
		if !ok {
			s.stateMu.Unlock()
			return nil, fmt.Errorf("sim: unknown symbol %q on %s", o.Symbol, ex)
		}
		if o.Side != "long" && o.Side != "short" {
			s.stateMu.Unlock()
			return nil, fmt.Errorf("sim: side %q is neither long nor short", o.Side)
		}
		f := s.fill(in, o.Side, o.NotionalUSD, now)
		key := playerKey(in.venue.name, in.market)
		b := batches[key]
		if b == nil {
			b = &batch{force: true, done: make(chan Truth, 1)}
			batches[key] = b
		}
		b.items = append(b.items, item{frame: f.frame, route: f.route, key: f.key, usd: f.usd})
	}
	s.stateMu.Unlock()
	out := Truth{}
	for name, b := range batches {
		if err := s.players[name].send(ctx, b); err != nil {
			return out, err
		}
	}
	for _, b := range batches {
		select {
		case t := <-b.done:
			for k, v := range t {
				w := out[k]
				w.Count += v.Count
				w.NotionalUSD += v.NotionalUSD
				out[k] = w
			}
		case <-ctx.Done():
			return out, ctx.Err()
		case <-s.quit:
			return out, errors.New("sim: closed")
		}
	}
	return out, nil
}

// batch is one step's liquidations on one market of a venue.
type batch struct {
	items []item
	force bool       // play even without a subscriber (injected orders)
	done  chan Truth // injected orders: what was delivered
}

type item struct {
	at    time.Duration // offset within the step
	frame []byte
	route string // see order.route
	key   Key
	usd   float64
}

// player pushes batches on one market of a fake venue, one at a time, so
// that frames keep their order and Play's per-frame wait for a subscriber
// never blocks the market loop.
type player struct {
	s      *Sim
	v      *venue
	market string
	ch     chan *batch
}

// offer queues a batch without blocking; a batch that does not fit is
// dropped (the player is behind).
func (p *player) offer(b *batch) {
	p.s.mu.Lock()
	p.s.stats.Generated += len(b.items)
	select {
	case p.ch <- b:
		p.s.pending++
	default:
		p.s.stats.Dropped += len(b.items)
	}
	p.s.mu.Unlock()
}

// send queues a batch, waiting for room.
func (p *player) send(ctx context.Context, b *batch) error {
	p.s.mu.Lock()
	p.s.stats.Generated += len(b.items)
	p.s.pending++
	p.s.mu.Unlock()
	select {
	case p.ch <- b:
		return nil
	case <-ctx.Done():
	case <-p.s.quit:
	}
	p.s.mu.Lock()
	p.s.stats.Undelivered += len(b.items)
	p.s.mu.Unlock()
	p.s.done()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("sim: closed")
}

// done marks one batch as finished.
func (s *Sim) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending > 0 {
		s.pending--
		if s.pending == 0 {
			close(s.idle)
			s.idle = make(chan struct{})
		}
	}
}

func (p *player) run() {
	for {
		select {
		case <-p.s.quit:
			return
		case b := <-p.ch:
			p.play(b)
		}
	}
}

// play pushes the items of a batch that have a subscriber (all of them
// for injected orders) and records those a connection took. Frames without
// a subscriber are not pushed at all: the venues that serve a history
// (OKX, Gate) would otherwise let an exporter backfill orders the truth
// does not count.
func (p *player) play(b *batch) {
	defer p.s.done()
	got := Truth{}
	ready := func(string) bool { return true }
	if !b.force {
		ready = p.v.ready(p.market)
	}
	var events []exchangetest.Event
	var played []int // index in b.items of each event
	var prev time.Duration
	for i, it := range b.items {
		if !ready(it.route) {
			continue
		}
		events = append(events, exchangetest.Event{Delay: it.at - prev, Frame: it.frame})
		played = append(played, i)
		prev = it.at
	}
	var delivered []exchangetest.Delivered
	if len(events) > 0 {
		delivered = p.v.play(p.market, events)
	}
	n := 0
	for j, d := range delivered {
		if j < len(played) && d.Conns > 0 {
			it := b.items[played[j]]
			got.add(it.key, it.usd)
			n++
		}
	}
	p.s.mu.Lock()
	for k, v := range got {
		w := p.s.truth[k]
		w.Count += v.Count
		w.NotionalUSD += v.NotionalUSD
		p.s.truth[k] = w
	}
	p.s.stats.Delivered += n
	p.s.stats.Undelivered += len(b.items) - n
	p.s.mu.Unlock()
	if b.done != nil {
		b.done <- got
	}
}

// poisson draws from a Poisson distribution with mean lambda.
func poisson(rng *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda > 30:
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// classify maps an index value to alternative.me's classes.
func classify(v int) string {
	switch {
	case v < 25:
		return "Extreme Fear"
	case v < 47:
		return "Fear"
	case v < 55:
		return "Neutral"
	case v < 76:
		return "Greed"
	}
	return "Extreme Greed"
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }
