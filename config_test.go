package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Exchanges.Binance
	if !*b.Enabled || len(b.Coins) != 0 {
		t.Errorf("binance: enabled=%v coins=%v", *b.Enabled, b.Coins)
	}
	for k, want := range map[string]string{
		"usdm_rest": "https://fapi.binance.com", "usdm_ws": "wss://fstream.binance.com/market",
		"coinm_rest": "https://dapi.binance.com", "coinm_ws": "wss://dstream.binance.com",
	} {
		if got := b.Endpoint(k); got != want {
			t.Errorf("endpoint %s = %q, want %q", k, got, want)
		}
	}
	for _, spec := range venueSpecs {
		v := cfg.Exchanges.venue(spec.name)
		if *v.Enabled != spec.supported() {
			t.Errorf("%s: enabled=%v, but supported=%v", spec.name, *v.Enabled, spec.supported())
		}
		for k, def := range spec.endpoints {
			if got := v.Endpoint(k); got != def {
				t.Errorf("%s.%s = %q, want default %q", spec.name, k, got, def)
			}
		}
	}
	if !*cfg.FearGreed.Enabled || cfg.FearGreed.URL.String() != "https://api.alternative.me/fng" || cfg.FearGreed.Interval.Std() != 10*time.Minute {
		t.Errorf("fear_greed: %+v", cfg.FearGreed)
	}
	if cfg.Polling.Interval.Std() != 30*time.Second {
		t.Errorf("polling.interval = %v", cfg.Polling.Interval.Std())
	}
}

func TestEmptyConfigTakesDefaults(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "exchanges: {}\n"} {
		cfg, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !*cfg.Exchanges.Binance.Enabled || !*cfg.FearGreed.Enabled || !*cfg.Exchanges.Bybit.Enabled || !*cfg.Exchanges.Gate.Enabled {
			t.Errorf("%q: defaults not applied", in)
		}
	}
}

func TestContractExampleConfig(t *testing.T) {
	// The example from the interface contract, minus venues not in this build.
	in := `
exchanges:
  binance:
    enabled: true
    coins: [btc, ETH]
    endpoints:
      usdm_rest:  https://fapi.binance.com
      usdm_ws:    wss://fstream.binance.com/market
      coinm_rest: https://dapi.binance.com
      coinm_ws:   wss://dstream.binance.com
  bybit:       {enabled: false, endpoints: {rest: https://api.bybit.com, linear_ws: wss://stream.bybit.com/v5/public/linear, inverse_ws: wss://stream.bybit.com/v5/public/inverse}}
fear_greed:
  enabled: true
  url: https://api.alternative.me/fng/
  interval: 10m
polling:
  interval: 30s
price_levels:
  BTC: [96000, 100000]
  ETH: [3300]
`
	cfg, err := ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Exchanges.Binance.Coins, ","); got != "BTC,ETH" {
		t.Errorf("coins = %s", got)
	}
	if len(cfg.PriceLevels["BTC"]) != 2 || cfg.PriceLevels["ETH"][0] != 3300 {
		t.Errorf("price levels %v", cfg.PriceLevels)
	}
}

func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // substrings of the error
	}{
		{"unknown top-level key", "exchange:\n  binance: {}\n", []string{"line 1", "exchange", "unknown key"}},
		{"unknown venue key", "exchanges:\n  binance:\n    enabled: true\n    enabeld: true\n", []string{"line 4", "exchanges.binance.enabeld"}},
		{"unknown venue", "exchanges:\n  ftx: {}\n", []string{"line 2", "exchanges.ftx"}},
		{"wrong type", "exchanges:\n  binance:\n    enabled: maybe\n", []string{"line 3", "exchanges.binance.enabled", "bool"}},
		{"coins not a list", "exchanges:\n  binance:\n    coins: BTC\n", []string{"line 3", "exchanges.binance.coins"}},
		{"bad duration", "polling:\n  interval: 30 seconds\n", []string{"line 2", "polling.interval", "invalid duration"}},
		{"bad url", "fear_greed:\n  url: \"::not a url\"\n", []string{"line 2", "fear_greed.url", "invalid URL"}},
		{"url without scheme", "exchanges:\n  binance:\n    endpoints:\n      usdm_rest: fapi.binance.com\n", []string{"line 4", "exchanges.binance.endpoints.usdm_rest"}},
		{"ws endpoint given http", "exchanges:\n  binance:\n    endpoints:\n      usdm_ws: https://fstream.binance.com\n", []string{"exchanges.binance.endpoints.usdm_ws", "ws(s)"}},
		{"rest endpoint given ws", "exchanges:\n  binance:\n    endpoints:\n      usdm_rest: wss://fapi.binance.com\n", []string{"exchanges.binance.endpoints.usdm_rest", "http(s)"}},
		{"unknown endpoint", "exchanges:\n  binance:\n    endpoints:\n      spot_rest: https://api.binance.com\n", []string{"exchanges.binance.endpoints.spot_rest", "unknown endpoint"}},
		{"bitget liquidations not a bool", "exchanges:\n  bitget:\n    liquidations: sometimes\n", []string{"line 3", "exchanges.bitget.liquidations"}},
		{"duplicate long/short coins", "exchanges:\n  okx:\n    long_short_ratio_coins: [BTC, btc]\n", []string{"line 3", "exchanges.okx.long_short_ratio_coins", "BTC listed twice"}},
		{"negative instrument cap", "exchanges:\n  okx:\n    max_instruments: -1\n", []string{"line 3", "exchanges.okx.max_instruments", "negative"}},
		{"zero interval", "polling:\n  interval: 0s\n", []string{"polling.interval"}},
		{"too short fear greed interval", "fear_greed:\n  interval: 10ms\n", []string{"fear_greed.interval", "too short"}},
		{"duplicate coins", "exchanges:\n  binance:\n    coins: [BTC, btc]\n", []string{"line 3: exchanges.binance.coins", "BTC listed twice"}},
		{"negative price level", "price_levels:\n  BTC: [-1]\n", []string{"price_levels.BTC"}},
		{"lower-case price level coin", "price_levels:\n  btc: [1]\n", []string{"price_levels.btc", "upper case"}},
		{"weight budget too high", "exchanges:\n  binance:\n    open_interest_weight_per_minute: 5000\n", []string{"open_interest_weight_per_minute"}},
		{"not yaml", "exchanges: [\n", []string{"line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.in))
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Every venue has a builder today; a venue without one (a future addition
// to venueSpecs) is rejected when enabled explicitly and skipped by default.
func TestUnsupportedVenue(t *testing.T) {
	saved := venueBuilders["kraken"]
	delete(venueBuilders, "kraken")
	t.Cleanup(func() { venueBuilders["kraken"] = saved })

	_, err := ParseConfig([]byte("exchanges:\n  kraken:\n    enabled: true\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: exchanges.kraken") || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("explicitly enabled unsupported venue: %v", err)
	}
	cfg, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.Exchanges.Kraken.Enabled {
		t.Error("an unsupported venue is enabled by default")
	}
}

func TestBitgetLiquidationsSwitch(t *testing.T) {
	for in, want := range map[string]bool{
		"": true,
		"exchanges:\n  bitget:\n    liquidations: true\n":  true,
		"exchanges:\n  bitget:\n    liquidations: false\n": false,
	} {
		cfg, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := cfg.Exchanges.Bitget.LiquidationsOn(); got != want {
			t.Errorf("%q: liquidations %v, want %v", in, got, want)
		}
	}
}

func TestInstrumentCapConfig(t *testing.T) {
	for in, want := range map[string]int{
		"": DefaultMaxInstruments,
		"exchanges:\n  okx:\n    max_instruments: 50\n": 50,
		"exchanges:\n  okx:\n    max_instruments: 0\n":  0,
	} {
		cfg, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := cfg.Exchanges.OKX.InstrumentCap(); got != want {
			t.Errorf("%q: cap %d, want %d", in, got, want)
		}
	}
}

func TestLongShortRatioCoins(t *testing.T) {
	cfg, err := ParseConfig([]byte("exchanges:\n  bybit:\n    long_short_ratio_coins: [eth, ' sol ']\n  okx:\n    long_short_ratio_coins: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Exchanges.Bybit.LongShortRatioCoins; !slices.Equal(got, []string{"ETH", "SOL"}) {
		t.Errorf("bybit coins %q, want [ETH SOL]", got)
	}
	if got := cfg.Exchanges.OKX.LongShortRatioCoins; got == nil || len(got) != 0 {
		t.Errorf("okx coins %#v, want empty (off), not absent", got)
	}
	if got := cfg.Exchanges.Binance.LongShortRatioCoins; got != nil {
		t.Errorf("binance coins %q, want absent (the default list)", got)
	}
}
