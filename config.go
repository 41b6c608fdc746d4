package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

//go:embed default-config.yml
var defaultConfigYAML []byte

// Config is the exporter's configuration file.
type Config struct {
	Exchanges   ExchangesConfig      `yaml:"exchanges"`
	FearGreed   FearGreedConfig      `yaml:"fear_greed"`
	Polling     PollingConfig        `yaml:"polling"`
	PriceLevels map[string][]float64 `yaml:"price_levels"`
}

// ExchangesConfig has one entry per venue the exporter knows.
type ExchangesConfig struct {
	Binance     BinanceConfig        `yaml:"binance"`
	Bybit       LongShortVenueConfig `yaml:"bybit"`
	OKX         LongShortVenueConfig `yaml:"okx"`
	BitMEX      VenueConfig          `yaml:"bitmex"`
	Deribit     VenueConfig          `yaml:"deribit"`
	Gate        VenueConfig          `yaml:"gate"`
	Bitget      BitgetConfig         `yaml:"bitget"`
	Kraken      VenueConfig          `yaml:"kraken"`
	DYDX        VenueConfig          `yaml:"dydx"`
	Hyperliquid VenueConfig          `yaml:"hyperliquid"`
}

// VenueConfig is what every venue accepts.
type VenueConfig struct {
	// Enabled is nil when the key is absent: the venue then runs if this
	// build supports it.
	Enabled   *bool          `yaml:"enabled"`
	Coins     []string       `yaml:"coins"`
	Endpoints map[string]URL `yaml:"endpoints"`
	// MaxInstruments caps the instruments kept over all the venue's
	// markets (absent = DefaultMaxInstruments, 0 = no cap).
	MaxInstruments *int `yaml:"max_instruments"`
}

// DefaultMaxInstruments is the default per-venue instrument cap: about
// three times the largest venue's listing today, so that only a runaway
// listing (a venue or decoding error) reaches it.
const DefaultMaxInstruments = 2000

// InstrumentCap returns the venue's instrument cap; 0 means none.
func (v *VenueConfig) InstrumentCap() int {
	if v.MaxInstruments == nil {
		return DefaultMaxInstruments
	}
	return *v.MaxInstruments
}

// BinanceConfig adds Binance's request-weight budget.
type BinanceConfig struct {
	VenueConfig `yaml:",inline"`
	// OpenInterestWeightPerMinute is the request weight per minute, per
	// market, spent on per-symbol open interest requests.
	OpenInterestWeightPerMinute int `yaml:"open_interest_weight_per_minute"`
	// LongShortRatioCoins lists the coins whose global long/short account
	// ratio is polled (absent = BTC, ETH, SOL, XRP, DOGE, BNB; [] = none).
	LongShortRatioCoins []string `yaml:"long_short_ratio_coins"`
}

// LongShortVenueConfig adds the coins whose long/short account ratio the
// venue polls (Bybit, OKX).
type LongShortVenueConfig struct {
	VenueConfig `yaml:",inline"`
	// LongShortRatioCoins: absent = BTC, ETH, SOL, XRP, DOGE, BNB; [] = none.
	LongShortRatioCoins []string `yaml:"long_short_ratio_coins"`
}

// BitgetConfig adds the switch for Bitget's liquidation topic, whose
// payload is documented only in part (see the README).
type BitgetConfig struct {
	VenueConfig `yaml:",inline"`
	// Liquidations subscribes to the v3 liquidation topic; absent = true.
	Liquidations *bool `yaml:"liquidations"`
}

// LiquidationsOn reports whether the liquidation topic is subscribed.
func (b *BitgetConfig) LiquidationsOn() bool {
	return b.Liquidations == nil || *b.Liquidations
}

// FearGreedConfig configures the alternative.me Fear & Greed poller.
type FearGreedConfig struct {
	Enabled  *bool    `yaml:"enabled"`
	URL      URL      `yaml:"url"`
	Interval Duration `yaml:"interval"`
}

// PollingConfig configures the REST pollers.
type PollingConfig struct {
	Interval            Duration `yaml:"interval"`             // OI, funding, mark price, 24 h volume
	Timeout             Duration `yaml:"timeout"`              // per HTTP request
	InstrumentsInterval Duration `yaml:"instruments_interval"` // instrument discovery refresh
}

// venueSpec is what the configuration knows of a venue: its endpoint keys
// with their live defaults. Whether this build implements the venue is
// whether venueBuilders (venues.go) has it.
type venueSpec struct {
	name      string
	endpoints map[string]string
}

func (v venueSpec) supported() bool {
	_, ok := venueBuilders[v.name]
	return ok
}

var venueSpecs = []venueSpec{
	{"binance", map[string]string{
		"usdm_rest": "https://fapi.binance.com", "usdm_ws": "wss://fstream.binance.com/market",
		"coinm_rest": "https://dapi.binance.com", "coinm_ws": "wss://dstream.binance.com"}},
	{"bybit", map[string]string{"rest": "https://api.bybit.com",
		"linear_ws": "wss://stream.bybit.com/v5/public/linear", "inverse_ws": "wss://stream.bybit.com/v5/public/inverse"}},
	{"okx", map[string]string{"rest": "https://www.okx.com", "ws": "wss://ws.okx.com:8443/ws/v5/public"}},
	{"bitmex", map[string]string{"rest": "https://www.bitmex.com", "ws": "wss://ws.bitmex.com/realtime"}},
	{"deribit", map[string]string{"rest": "https://www.deribit.com", "ws": "wss://www.deribit.com/ws/api/v2"}},
	{"gate", map[string]string{"rest": "https://api.gateio.ws",
		"usdt_ws": "wss://fx-ws.gateio.ws/v4/ws/usdt", "btc_ws": "wss://fx-ws.gateio.ws/v4/ws/btc"}},
	{"bitget", map[string]string{"rest": "https://api.bitget.com", "ws": "wss://ws.bitget.com/v3/ws/public"}},
	{"kraken", map[string]string{"rest": "https://futures.kraken.com", "ws": "wss://futures.kraken.com/ws/v1"}},
	{"dydx", map[string]string{"rest": "https://indexer.dydx.trade", "ws": "wss://indexer.dydx.trade/v4/ws"}},
	{"hyperliquid", map[string]string{"rest": "https://api.hyperliquid.xyz", "ws": "wss://api.hyperliquid.xyz/ws"}},
}

// venue returns the config of a venue by name.
func (e *ExchangesConfig) venue(name string) *VenueConfig {
	switch name {
	case "binance":
		return &e.Binance.VenueConfig
	case "bybit":
		return &e.Bybit.VenueConfig
	case "okx":
		return &e.OKX.VenueConfig
	case "bitmex":
		return &e.BitMEX
	case "deribit":
		return &e.Deribit
	case "gate":
		return &e.Gate
	case "bitget":
		return &e.Bitget.VenueConfig
	case "kraken":
		return &e.Kraken
	case "dydx":
		return &e.DYDX
	case "hyperliquid":
		return &e.Hyperliquid
	}
	return nil
}

// Endpoint returns an endpoint's configured URL, or the venue's live default.
func (v *VenueConfig) Endpoint(key string) string {
	if u, ok := v.Endpoints[key]; ok {
		return u.String()
	}
	return ""
}

// URL is an absolute http(s) or ws(s) URL.
type URL struct{ *url.URL }

// UnmarshalYAML implements yaml.Unmarshaler.
func (u *URL) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	p, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid URL %q: %w", n.Line, s, err)
	}
	switch p.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("line %d: invalid URL %q: scheme must be http, https, ws or wss", n.Line, s)
	}
	if p.Host == "" {
		return fmt.Errorf("line %d: invalid URL %q: no host", n.Line, s)
	}
	u.URL = p
	return nil
}

// String returns the URL without a trailing slash, so paths can be appended.
func (u URL) String() string {
	if u.URL == nil {
		return ""
	}
	return strings.TrimSuffix(u.URL.String(), "/")
}

// MarshalYAML implements yaml.Marshaler.
func (u URL) MarshalYAML() (any, error) { return u.String(), nil }

// Duration is a Prometheus-style duration ("30s", "10m", "1h").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: %w", n.Line, s, err)
	}
	if v <= 0 {
		return fmt.Errorf("line %d: invalid duration %q: must be greater than zero", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// LoadConfig reads the file at path, or the embedded default if path is "".
func LoadConfig(path string) (*Config, error) {
	data, name := defaultConfigYAML, "embedded default config"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, err
		}
		name = path
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

var (
	lineRE     = regexp.MustCompile(`line (\d+): `)
	notFoundRE = regexp.MustCompile(`field (\S+) not found in type \S+`)
)

// ParseConfig decodes and validates a YAML config strictly: unknown keys,
// wrong types, bad URLs and bad durations are errors that name the key and
// the line.
func ParseConfig(data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	keys := map[int]string{}
	collectKeyLines(&root, "", keys)

	cfg := &Config{}
	if root.Kind != 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, annotateKeys(err, keys)
		}
	}
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, withLines(err, keys)
	}
	return cfg, nil
}

// withLines prefixes each "key.path: message" line of a validation error
// with the line of that key in the file, when the key is in the file.
func withLines(err error, keys map[int]string) error {
	lineOf := make(map[string]int, len(keys))
	for line, key := range keys {
		if l, ok := lineOf[key]; !ok || line < l {
			lineOf[key] = line
		}
	}
	msgs := strings.Split(err.Error(), "\n")
	for i, m := range msgs {
		key, _, ok := strings.Cut(m, ": ")
		if !ok {
			continue
		}
		if line, ok := lineOf[key]; ok {
			msgs[i] = fmt.Sprintf("line %d: %s", line, m)
		}
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// collectKeyLines maps the line of every mapping key and value to its dotted path.
func collectKeyLines(n *yaml.Node, path string, out map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			collectKeyLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[k.Line] = p
			if v.Line != k.Line {
				if _, ok := out[v.Line]; !ok && v.Kind == yaml.ScalarNode {
					out[v.Line] = p
				}
			}
			collectKeyLines(v, p, out)
		}
	}
}

// annotateKeys rewrites yaml's "line N: msg" into "line N: key a.b.c: msg".
func annotateKeys(err error, keys map[int]string) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	msg = notFoundRE.ReplaceAllString(msg, "unknown key $1")
	msg = lineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
		if k, ok := keys[n]; ok {
			return fmt.Sprintf("line %d: key %q: ", n, k)
		}
		return m
	})
	return errors.New(strings.TrimSpace(msg))
}

func boolPtr(b bool) *bool { return &b }

func (c *Config) applyDefaults() {
	for _, spec := range venueSpecs {
		v := c.Exchanges.venue(spec.name)
		if v.Enabled == nil {
			v.Enabled = boolPtr(spec.supported())
		}
		for k, def := range spec.endpoints {
			if _, ok := v.Endpoints[k]; !ok {
				if v.Endpoints == nil {
					v.Endpoints = map[string]URL{}
				}
				u, _ := url.Parse(def)
				v.Endpoints[k] = URL{u}
			}
		}
		for i, coin := range v.Coins {
			v.Coins[i] = strings.ToUpper(strings.TrimSpace(coin))
		}
	}
	for _, list := range c.longShortLists() {
		for i, coin := range list.coins {
			list.coins[i] = strings.ToUpper(strings.TrimSpace(coin))
		}
	}
	if c.Exchanges.Binance.OpenInterestWeightPerMinute == 0 {
		c.Exchanges.Binance.OpenInterestWeightPerMinute = 500
	}
	if c.FearGreed.Enabled == nil {
		c.FearGreed.Enabled = boolPtr(true)
	}
	if c.FearGreed.URL.URL == nil {
		c.FearGreed.URL.URL, _ = url.Parse("https://api.alternative.me/fng/")
	}
	if c.FearGreed.Interval == 0 {
		c.FearGreed.Interval = Duration(10 * time.Minute)
	}
	if c.Polling.Interval == 0 {
		c.Polling.Interval = Duration(30 * time.Second)
	}
	if c.Polling.Timeout == 0 {
		c.Polling.Timeout = Duration(10 * time.Second)
	}
	if c.Polling.InstrumentsInterval == 0 {
		c.Polling.InstrumentsInterval = Duration(15 * time.Minute)
	}
}

// longShortList is one venue's long_short_ratio_coins.
type longShortList struct {
	venue string
	coins []string
}

func (c *Config) longShortLists() []longShortList {
	return []longShortList{
		{"binance", c.Exchanges.Binance.LongShortRatioCoins},
		{"bybit", c.Exchanges.Bybit.LongShortRatioCoins},
		{"okx", c.Exchanges.OKX.LongShortRatioCoins},
	}
}

func (c *Config) validate() error {
	var errs []string
	for _, list := range c.longShortLists() {
		seen := map[string]bool{}
		for _, coin := range list.coins {
			if coin == "" {
				errs = append(errs, fmt.Sprintf("exchanges.%s.long_short_ratio_coins: empty coin name", list.venue))
			} else if seen[coin] {
				errs = append(errs, fmt.Sprintf("exchanges.%s.long_short_ratio_coins: %s listed twice", list.venue, coin))
			}
			seen[coin] = true
		}
	}
	for _, spec := range venueSpecs {
		v := c.Exchanges.venue(spec.name)
		if *v.Enabled && !spec.supported() {
			errs = append(errs, fmt.Sprintf("exchanges.%s: venue not supported yet in this build; remove it or set enabled: false", spec.name))
		}
		for k, u := range v.Endpoints {
			def, ok := spec.endpoints[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("exchanges.%s.endpoints.%s: unknown endpoint (known: %s)", spec.name, k, strings.Join(sortedKeys(spec.endpoints), ", ")))
				continue
			}
			wantWS := strings.HasPrefix(def, "ws")
			isWS := u.Scheme == "ws" || u.Scheme == "wss"
			if wantWS != isWS {
				want := "http(s)"
				if wantWS {
					want = "ws(s)"
				}
				errs = append(errs, fmt.Sprintf("exchanges.%s.endpoints.%s: %q must be a %s URL", spec.name, k, u.String(), want))
			}
		}
		if v.MaxInstruments != nil && *v.MaxInstruments < 0 {
			errs = append(errs, fmt.Sprintf("exchanges.%s.max_instruments: %d is negative (0 = no cap)", spec.name, *v.MaxInstruments))
		}
		seen := map[string]bool{}
		for _, coin := range v.Coins {
			if coin == "" {
				errs = append(errs, fmt.Sprintf("exchanges.%s.coins: empty coin name", spec.name))
			} else if seen[coin] {
				errs = append(errs, fmt.Sprintf("exchanges.%s.coins: %s listed twice", spec.name, coin))
			}
			seen[coin] = true
		}
	}
	if c.Exchanges.Binance.OpenInterestWeightPerMinute < 0 || c.Exchanges.Binance.OpenInterestWeightPerMinute > 1200 {
		errs = append(errs, "exchanges.binance.open_interest_weight_per_minute: must be between 1 and 1200 (Binance allows 2400 per minute in total)")
	}
	if s := c.FearGreed.URL.Scheme; s != "http" && s != "https" {
		errs = append(errs, fmt.Sprintf("fear_greed.url: %q must be an http(s) URL", c.FearGreed.URL.String()))
	}
	positive := []struct {
		key string
		d   Duration
		min time.Duration
	}{
		{"fear_greed.interval", c.FearGreed.Interval, time.Second},
		{"polling.interval", c.Polling.Interval, time.Second},
		{"polling.timeout", c.Polling.Timeout, 100 * time.Millisecond},
		{"polling.instruments_interval", c.Polling.InstrumentsInterval, time.Minute},
	}
	for _, p := range positive {
		if p.d.Std() < p.min {
			errs = append(errs, fmt.Sprintf("%s: %s is too short (minimum %s)", p.key, p.d.Std(), p.min))
		}
	}
	for coin, levels := range c.PriceLevels {
		if coin == "" || coin != strings.ToUpper(coin) {
			errs = append(errs, fmt.Sprintf("price_levels.%s: coin must be upper case", coin))
		}
		for _, l := range levels {
			if !(l > 0) || math.IsInf(l, 0) {
				errs = append(errs, fmt.Sprintf("price_levels.%s: level %v must be a positive number", coin, l))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
