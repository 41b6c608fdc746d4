package sim

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// simulate steps a simulation through virtual time (no exporter is
// connected, so every batch is played instantly as undelivered) and
// returns the liquidations generated per minute.
func simulate(t *testing.T, cfg Config, minutes int) (perMinute []int, s *Sim) {
	t.Helper()
	return simulateAt(t, cfg, time.Now(), minutes)
}

// simulateAt is simulate with the market listed and started at wall time
// start.
func simulateAt(t *testing.T, cfg Config, start time.Time, minutes int) (perMinute []int, s *Sim) {
	t.Helper()
	s = newAt(cfg, start)
	t.Cleanup(s.Close)
	now := start
	s.begin(now)
	for range minutes {
		before := s.Stats().Generated
		for range 60 {
			now = now.Add(time.Second)
			s.step(now)
		}
		perMinute = append(perMinute, s.Stats().Generated-before)
	}
	return perMinute, s
}

// TestRatesAreRealistic checks Binance's flow, whose throttle bounds it.
func TestRatesAreRealistic(t *testing.T) {
	perMinute, _ := simulate(t, Config{Seed: 7, Venues: []string{Binance}}, 30)
	peak, calm := 0, math.MaxInt
	for _, n := range perMinute {
		peak, calm = max(peak, n), min(calm, n)
	}
	t.Logf("liquidations per minute: %v", perMinute)
	if peak < 1000 {
		t.Errorf("busiest minute has %d liquidations, want a burst of at least 1000", peak)
	}
	if calm > 150 {
		t.Errorf("calmest minute has %d liquidations, want a calm period", calm)
	}
	if peak > 60*55 {
		t.Errorf("busiest minute has %d liquidations, more than one per symbol and second", peak)
	}
}

// TestRatesAllVenues checks the flow of every venue together: Bybit and
// dYdX publish every liquidation, so bursts are larger.
func TestRatesAllVenues(t *testing.T) {
	perMinute, _ := simulate(t, Config{Seed: 7}, 30)
	binance, _ := simulate(t, Config{Seed: 7, Venues: []string{Binance}}, 30)
	peak, calm, more := 0, math.MaxInt, 0
	for i, n := range perMinute {
		peak, calm = max(peak, n), min(calm, n)
		more += n - binance[i]
	}
	t.Logf("liquidations per minute: %v", perMinute)
	if peak < 2000 {
		t.Errorf("busiest minute has %d liquidations, want a burst of at least 2000", peak)
	}
	if calm > 300 {
		t.Errorf("calmest minute has %d liquidations, want a calm period", calm)
	}
	if more <= 0 {
		t.Errorf("the other venues add %d liquidations to Binance's", more)
	}
}

func TestSeedReproducible(t *testing.T) {
	a, sa := simulate(t, Config{Seed: 42}, 8)
	b, sb := simulate(t, Config{Seed: 42}, 8)
	c, _ := simulate(t, Config{Seed: 43}, 8)
	if !equal(a, b) {
		t.Errorf("same seed, different runs: %v vs %v", a, b)
	}
	if equal(a, c) {
		t.Errorf("different seeds, same run: %v", a)
	}
	if sa.coins[0].price != sb.coins[0].price {
		t.Errorf("same seed, different BTC price: %v vs %v", sa.coins[0].price, sb.coins[0].price)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInstrumentsAndConfig(t *testing.T) {
	s := New(Config{Seed: 1, Paused: true})
	defer s.Close()
	insts := s.Instruments()
	if len(insts) < 40 {
		t.Errorf("%d instruments, want tens", len(insts))
	}
	want := map[string]bool{"1000PEPEUSDT": false, "BTCUSDC": false, "BTCUSD_PERP": false}
	quarterlies := map[string]int{}
	for _, in := range insts {
		if _, ok := want[in.Symbol]; ok {
			want[in.Symbol] = true
		}
		if in.ContractType != "PERPETUAL" {
			quarterlies[in.Market]++
		}
		if in.Symbol == "1000PEPEUSDT" && in.Coin != "PEPE" {
			t.Errorf("1000PEPEUSDT coin %q", in.Coin)
		}
	}
	for sym, ok := range want {
		if !ok {
			t.Errorf("%s not listed", sym)
		}
	}
	if quarterlies[USDM] == 0 || quarterlies[COINM] == 0 {
		t.Errorf("dated futures per market: %v", quarterlies)
	}

	var cfg struct {
		Exchanges struct {
			Binance struct {
				Endpoints map[string]string `yaml:"endpoints"`
			} `yaml:"binance"`
		} `yaml:"exchanges"`
		FearGreed struct {
			URL      string `yaml:"url"`
			Interval string `yaml:"interval"`
		} `yaml:"fear_greed"`
		Polling struct {
			Interval string `yaml:"interval"`
		} `yaml:"polling"`
	}
	if err := yaml.Unmarshal([]byte(s.ExporterConfig()), &cfg); err != nil {
		t.Fatal(err)
	}
	e := s.Endpoints()
	for k, v := range map[string]string{"usdm_rest": e.USDMREST, "usdm_ws": e.USDMWS, "coinm_rest": e.CoinMREST, "coinm_ws": e.CoinMWS} {
		if cfg.Exchanges.Binance.Endpoints[k] != v {
			t.Errorf("endpoint %s = %q, want %q", k, cfg.Exchanges.Binance.Endpoints[k], v)
		}
	}
	var all struct {
		Exchanges map[string]struct {
			Endpoints map[string]string `yaml:"endpoints"`
		} `yaml:"exchanges"`
	}
	if err := yaml.Unmarshal([]byte(s.ExporterConfig()), &all); err != nil {
		t.Fatal(err)
	}
	for ex, want := range map[string]map[string]string{
		Bybit: {"rest": e.BybitREST, "linear_ws": e.BybitLinearWS, "inverse_ws": e.BybitInverseWS},
		OKX:   {"rest": e.OKXREST, "ws": e.OKXWS},
		Gate:  {"rest": e.GateREST, "usdt_ws": e.GateUSDTWS, "btc_ws": e.GateBTCWS},
		Dydx:  {"rest": e.DydxREST, "ws": e.DydxWS},
	} {
		for k, v := range want {
			if got := all.Exchanges[ex].Endpoints[k]; v == "" || got != v {
				t.Errorf("%s endpoint %s = %q, want %q", ex, k, got, v)
			}
		}
	}
	perVenue := map[string]int{}
	for _, in := range insts {
		perVenue[in.Exchange]++
	}
	for _, v := range Venues {
		if perVenue[v] < 5 {
			t.Errorf("%s lists %d instruments", v, perVenue[v])
		}
	}
	if cfg.FearGreed.URL != e.FearGreed || cfg.FearGreed.Interval != "1m" || cfg.Polling.Interval != "5s" {
		t.Errorf("config: %+v", cfg)
	}
}

// TestInjectTruth pushes liquidations to a subscribed WebSocket client and
// checks the ground truth against the project's notional rules.
func TestInjectTruth(t *testing.T) {
	s := New(Config{Seed: 1, Paused: true})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	usdm, coinm := s.Markets()
	for _, m := range []*exchangetest.BinanceMarket{usdm, coinm} {
		c := dialSubscribed(t, m)
		defer c.Close()
	}
	truth, err := s.Inject(ctx,
		Order{Symbol: "BTCUSDT", Side: "long", NotionalUSD: 50_000},
		Order{Symbol: "1000PEPEUSDT", Side: "short", NotionalUSD: 2_000},
		Order{Symbol: "BTCUSD_PERP", Side: "long", NotionalUSD: 12_345},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := truth.Sum(nil).Count; got != 3 {
		t.Fatalf("%d delivered, want 3: %v", got, truth)
	}
	inv := truth[Key{Exchange: "binance", Market: "inverse", Symbol: "BTCUSD_PERP", Coin: "BTC", Side: "long"}]
	if inv.NotionalUSD != 12_300 { // 123 contracts of $100
		t.Errorf("COIN-M notional %v, want 12300", inv.NotionalUSD)
	}
	lin := truth[Key{Exchange: "binance", Market: "linear", Symbol: "BTCUSDT", Coin: "BTC", Side: "long"}]
	if math.Abs(lin.NotionalUSD-50_000) > 100 {
		t.Errorf("USDⓈ-M notional %v, want about 50000", lin.NotionalUSD)
	}
	if _, ok := truth[Key{Exchange: "binance", Market: "linear", Symbol: "1000PEPEUSDT", Coin: "PEPE", Side: "short"}]; !ok {
		t.Errorf("1000PEPEUSDT short missing: %v", truth)
	}
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if all := s.Truth().Sum(nil); all.Count != 3 {
		t.Errorf("sim truth %v", all)
	}
	for _, d := range usdm.Deliveries() {
		if !strings.Contains(string(d.Frame), `"e":"forceOrder"`) {
			t.Errorf("frame %s", d.Frame)
		}
	}
}
