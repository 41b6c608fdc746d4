package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// num reads a JSON number or numeric string.
func num(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("number %s: %v", raw, err)
	}
	return v
}

// tape recomputes the ground truth from the frames each fake reports
// delivered, decoding every venue's format independently of the simulator
// and applying the project's notional rules.
func tape(t *testing.T, s *Sim) Truth {
	t.Helper()
	insts := map[string]Instrument{}
	for _, in := range s.Instruments() {
		insts[in.Exchange+"/"+in.Symbol] = in
	}
	out := Truth{}
	add := func(exchange, symbol, side string, usd func(in Instrument) float64) {
		in, ok := insts[exchange+"/"+symbol]
		if !ok {
			t.Fatalf("%s: liquidation of unlisted %s", exchange, symbol)
		}
		market := "linear"
		if in.Inverse {
			market = "inverse"
		}
		out.add(Key{Exchange: exchange, Market: market, Symbol: symbol, Coin: in.Coin, Side: side}, usd(in))
	}
	delivered := func(ds []exchangetest.Delivered) (frames [][]byte) {
		for _, d := range ds {
			if d.Conns > 0 {
				frames = append(frames, d.Frame)
			}
		}
		return frames
	}
	f := s.Fakes()
	type raw = json.RawMessage
	if f.USDM != nil {
		for _, m := range []*exchangetest.BinanceMarket{f.USDM, f.CoinM} {
			for _, fr := range delivered(m.Deliveries()) {
				var p struct {
					O struct {
						S    string `json:"s"`
						Side string `json:"S"`
						Z    raw    `json:"z"`
						AP   raw    `json:"ap"`
					} `json:"o"`
				}
				if err := json.Unmarshal(fr, &p); err != nil {
					t.Fatal(err)
				}
				side := map[string]string{"SELL": "long", "BUY": "short"}[p.O.Side]
				add(Binance, p.O.S, side, func(in Instrument) float64 {
					if in.Inverse {
						return num(t, p.O.Z) * in.ContractSize
					}
					return num(t, p.O.Z) * num(t, p.O.AP)
				})
			}
		}
	}
	if f.Bybit != nil {
		for _, fr := range delivered(f.Bybit.Deliveries()) {
			var p struct {
				Data []struct {
					S    string `json:"s"`
					Side string `json:"S"`
					V, P raw
				} `json:"data"`
			}
			if err := json.Unmarshal(fr, &p); err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Data {
				side := map[string]string{"Buy": "long", "Sell": "short"}[e.Side] // the position's side
				add(Bybit, e.S, side, func(in Instrument) float64 {
					if in.Inverse {
						return num(t, e.V) // USD contracts
					}
					return num(t, e.V) * num(t, e.P)
				})
			}
		}
	}
	if f.OKX != nil {
		seen := map[string]bool{}
		for _, fr := range delivered(f.OKX.Deliveries()) {
			var p struct {
				Data []struct {
					InstID  string `json:"instId"`
					Details []struct {
						Side, PosSide, Sz, BkPx, TS string
					} `json:"details"`
				} `json:"data"`
			}
			if err := json.Unmarshal(fr, &p); err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Data {
				for _, d := range it.Details {
					k := strings.Join([]string{it.InstID, d.Side, d.PosSide, d.Sz, d.BkPx, d.TS}, "|")
					if seen[k] {
						t.Errorf("okx: two orders named %s: the exporter counts one", k)
					}
					seen[k] = true
					side := map[string]string{"sell": "long", "buy": "short"}[d.Side]
					add(OKX, it.InstID, side, func(in Instrument) float64 {
						sz, _ := strconv.ParseFloat(d.Sz, 64)
						px, _ := strconv.ParseFloat(d.BkPx, 64)
						if in.Inverse {
							return sz * in.ContractSize
						}
						return sz * in.ContractSize * px
					})
				}
			}
		}
	}
	if f.Gate != nil {
		seen := map[string]bool{}
		for _, fr := range delivered(f.Gate.Deliveries()) {
			var p struct {
				Result []struct {
					Price, Size float64
					TimeMs      int64 `json:"time_ms"`
					Contract    string
				} `json:"result"`
			}
			if err := json.Unmarshal(fr, &p); err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Result {
				k := fmt.Sprint(o.Contract, o.TimeMs/1000, o.Size, o.Price)
				if seen[k] {
					t.Errorf("gate: two orders named %s: the exporter counts one", k)
				}
				seen[k] = true
				side := "short"
				if o.Size < 0 {
					side = "long" // a sell order
				}
				add(Gate, o.Contract, side, func(in Instrument) float64 {
					if in.Inverse {
						return math.Abs(o.Size) * in.ContractSize
					}
					return math.Abs(o.Size) * in.ContractSize * o.Price
				})
			}
		}
	}
	if f.Dydx != nil {
		seen := map[string]bool{}
		for _, fr := range delivered(f.Dydx.Deliveries()) {
			var p struct {
				ID       string `json:"id"`
				Contents struct {
					Trades []struct {
						ID, Side, Size, Price string
						Liquidation           bool
					} `json:"trades"`
				} `json:"contents"`
			}
			if err := json.Unmarshal(fr, &p); err != nil {
				t.Fatal(err)
			}
			for _, tr := range p.Contents.Trades {
				if !tr.Liquidation || seen[tr.ID] {
					t.Errorf("dydx: trade %+v is not a new liquidation", tr)
				}
				seen[tr.ID] = true
				side := map[string]string{"SELL": "long", "BUY": "short"}[tr.Side]
				add(Dydx, p.ID, side, func(Instrument) float64 {
					sz, _ := strconv.ParseFloat(tr.Size, 64)
					px, _ := strconv.ParseFloat(tr.Price, 64)
					return sz * px
				})
			}
		}
	}
	return out
}

// compareTruth checks the simulator's truth against the tape, series by
// series (exchange, market, symbol, coin, side): counts exactly, notionals
// to rounding.
func compareTruth(t *testing.T, got, want Truth) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		if g.Count != w.Count || math.Abs(g.NotionalUSD-w.NotionalUSD) > 1e-9*max(1, w.NotionalUSD) {
			t.Errorf("%+v: truth %+v, delivered %+v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%+v: truth %+v, nothing delivered", k, g)
		}
	}
}

// TestAllVenuesTruth runs the random flow, unthrottled and in a cascade,
// on every venue with a subscriber on every stream, injects an order on
// every market, and checks the ground truth per venue, side and coin
// against what the fakes delivered.
func TestAllVenuesTruth(t *testing.T) {
	s := New(Config{Seed: 3, Paused: true, Unthrottled: true, Rate: 3, FirstCascade: time.Second})
	defer s.Close()
	subscribeAll(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var orders []Order
	markets := map[string]bool{}
	for _, in := range s.Instruments() {
		if m := in.Exchange + "/" + in.Market; !markets[m] {
			markets[m] = true
			orders = append(orders, Order{Exchange: in.Exchange, Symbol: in.Symbol, Side: "long", NotionalUSD: 20_000},
				Order{Exchange: in.Exchange, Symbol: in.Symbol, Side: "short", NotionalUSD: 20_000},
				// The same order again: OKX and Gate must still see two.
				Order{Exchange: in.Exchange, Symbol: in.Symbol, Side: "short", NotionalUSD: 20_000})
		}
	}
	injected, err := s.Inject(ctx, orders...)
	if err != nil {
		t.Fatal(err)
	}
	if n := injected.Sum(nil).Count; n != len(orders) {
		t.Fatalf("%d of %d injected orders delivered", n, len(orders))
	}

	s.SetLiquidations(true)
	now := time.Now()
	s.stateMu.Lock()
	s.begin(now)
	s.stateMu.Unlock()
	for range 4 { // the players take about a second per step
		now = now.Add(time.Second)
		s.step(now)
	}
	s.SetLiquidations(false)
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	truth := s.Truth()
	compareTruth(t, truth, tape(t, s))
	st := s.Stats()
	if st.Delivered != truth.Sum(nil).Count || st.Generated != st.Delivered+st.Undelivered+st.Dropped {
		t.Errorf("stats %+v, truth %d", st, truth.Sum(nil).Count)
	}
	for _, v := range Venues {
		for _, side := range []string{"long", "short"} {
			got := truth.Sum(func(k Key) bool { return k.Exchange == v && k.Side == side })
			t.Logf("%s %s: %d liquidations, $%.0f", v, side, got.Count, got.NotionalUSD)
			if got.Count == 0 {
				t.Errorf("%s %s: nothing delivered", v, side)
			}
		}
	}
	if truth.Sum(nil).Count < len(orders)+100 {
		t.Errorf("only %d delivered", truth.Sum(nil).Count)
	}
}

// TestVenueSubset runs two venues: only their instruments are listed and
// only they are enabled in the exporter configuration.
func TestVenueSubset(t *testing.T) {
	venues, err := ParseVenues("okx, bybit")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseVenues("binance,ftx"); err == nil {
		t.Error("unknown venue accepted")
	}
	s := New(Config{Seed: 1, Paused: true, Venues: venues})
	defer s.Close()
	if got := strings.Join(s.VenueNames(), ","); got != "bybit,okx" {
		t.Errorf("venues %s", got)
	}
	if usdm, _ := s.Markets(); usdm != nil {
		t.Error("Binance started")
	}
	for _, in := range s.Instruments() {
		if in.Exchange != Bybit && in.Exchange != OKX {
			t.Errorf("instrument of %s listed", in.Exchange)
		}
	}
	var cfg struct {
		Exchanges map[string]struct {
			Enabled   *bool             `yaml:"enabled"`
			Endpoints map[string]string `yaml:"endpoints"`
		} `yaml:"exchanges"`
	}
	if err := yaml.Unmarshal([]byte(s.ExporterConfig()), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, name := range configOrder {
		e, ok := cfg.Exchanges[name]
		simulated := name == Bybit || name == OKX
		switch {
		case !ok:
			t.Errorf("%s missing from the configuration", name)
		case simulated && (e.Enabled != nil || len(e.Endpoints) == 0):
			t.Errorf("%s: %+v, want its endpoints", name, e)
		case !simulated && (e.Enabled == nil || *e.Enabled):
			t.Errorf("%s not disabled", name)
		}
	}
	ep := s.Endpoints()
	if ep.USDMREST != "" || ep.GateREST != "" || ep.OKXWS == "" || ep.BybitInverseWS == "" {
		t.Errorf("endpoints %+v", ep)
	}
}

// TestBinanceUnchangedByVenues checks that a seed's Binance market does not
// depend on which other venues run. Both markets start at the same wall
// time: the marks of dated contracts depend on it.
func TestBinanceUnchangedByVenues(t *testing.T) {
	start := time.Now()
	_, all := simulateAt(t, Config{Seed: 9}, start, 5)
	_, alone := simulateAt(t, Config{Seed: 9, Venues: []string{Binance}}, start, 5)
	if len(alone.insts) >= len(all.insts) {
		t.Fatalf("%d instruments alone, %d with every venue", len(alone.insts), len(all.insts))
	}
	for i, in := range alone.insts {
		o := all.insts[i]
		if in.symbol != o.symbol || in.oi != o.oi || in.funding != o.funding || in.volUSD != o.volUSD {
			t.Fatalf("%s: alone oi %v funding %v, with every venue %s oi %v funding %v", in.symbol, in.oi, in.funding, o.symbol, o.oi, o.funding)
		}
	}
	if alone.coins[0].price != all.coins[0].price {
		t.Error("BTC price depends on the venues")
	}
}
