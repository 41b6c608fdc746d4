// Command simulator runs a synthetic crypto-derivatives market on loopback
// ports (fake Binance USDⓈ-M and COIN-M, Bybit linear and inverse, OKX SWAP
// and FUTURES, Gate USDT and BTC futures, dYdX, and a fake alternative.me
// Fear & Greed) so that derivatives_exporter, Prometheus, the rules and the dashboards can
// be tried, demoed and load-tested without access to any exchange.
//
//	go run ./examples/simulator --write-config /tmp/sim.yml &
//	go run . --config.file=/tmp/sim.yml
//
// See README.md in this directory.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/derivatives-exporter/derivatives_exporter/examples/simulator/sim"
)

func main() {
	app := kingpin.New("simulator", "Offline synthetic market for derivatives_exporter: fake Binance, Bybit, OKX, Gate and dYdX futures venues and a fake alternative.me on 127.0.0.1.")
	app.HelpFlag.Short('h')
	seed := app.Flag("seed", "Random seed; the same seed generates the same market.").Default("1").Uint64()
	rate := app.Flag("rate", "Liquidation rate multiplier (1 = realistic, 10 = stress test).").Default("1").Float64()
	duration := app.Flag("duration", "How long to run; 0 runs until interrupted (SIGINT/SIGTERM).").Default("0").Duration()
	writeConfig := app.Flag("write-config", "Write the exporter configuration pointing at the fakes to this file (instead of printing it).").PlaceHolder("PATH").String()
	unthrottled := app.Flag("unthrottled", "Push every liquidation instead of at most one per symbol and second on Binance, OKX and Gate, as their public streams do.").Bool()
	venueList := app.Flag("venues", "Comma-separated venues to simulate ("+strings.Join(sim.Venues, ", ")+"); the others are disabled in the exporter configuration.").
		Default(strings.Join(sim.Venues, ",")).String()
	firstCascade := app.Flag("first-cascade", "When the first liquidation cascade starts.").Default("20s").Duration()
	cascadeEvery := app.Flag("cascade-every", "Mean time between liquidation cascades.").Default("3m").Duration()
	kingpin.MustParse(app.Parse(os.Args[1:]))

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if *rate <= 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0) {
		app.Fatalf("--rate must be a positive number")
	}
	if *duration < 0 {
		app.Fatalf("--duration must not be negative")
	}
	venues, err := sim.ParseVenues(*venueList)
	if err != nil {
		app.Fatalf("--venues: %v", err)
	}
	s := sim.New(sim.Config{
		Seed: *seed, Rate: *rate, Unthrottled: *unthrottled, Venues: venues,
		FirstCascade: *firstCascade, CascadeEvery: *cascadeEvery,
		Logger: logger,
	})
	defer s.Close()

	cfg := s.ExporterConfig()
	if *writeConfig != "" {
		if err := writeAtomic(*writeConfig, []byte(cfg)); err != nil {
			s.Close()
			app.Fatalf("writing the exporter configuration: %v", err)
		}
		logger.Info("exporter configuration written", "path", *writeConfig,
			"run", "go run . --config.file="+*writeConfig)
	} else {
		fmt.Print(cfg)
	}
	e := s.Endpoints()
	attrs := []any{"seed", *seed, "rate", *rate, "venues", strings.Join(s.VenueNames(), ","), "instruments", len(s.Instruments())}
	for _, kv := range [][2]string{
		{"usdm_rest", e.USDMREST}, {"usdm_ws", e.USDMWS}, {"coinm_rest", e.CoinMREST}, {"coinm_ws", e.CoinMWS},
		{"bybit_rest", e.BybitREST}, {"bybit_linear_ws", e.BybitLinearWS}, {"bybit_inverse_ws", e.BybitInverseWS},
		{"okx_rest", e.OKXREST}, {"okx_ws", e.OKXWS},
		{"gate_rest", e.GateREST}, {"gate_usdt_ws", e.GateUSDTWS}, {"gate_btc_ws", e.GateBTCWS},
		{"dydx_rest", e.DydxREST}, {"dydx_ws", e.DydxWS},
		{"fear_greed", e.FearGreed},
	} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	logger.Info("simulator running", attrs...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	_ = s.Run(ctx)

	st := s.Stats()
	truth := s.Truth()
	long := truth.Sum(func(k sim.Key) bool { return k.Side == "long" })
	short := truth.Sum(func(k sim.Key) bool { return k.Side == "short" })
	logger.Info("simulator stopped",
		"delivered", st.Delivered, "not_delivered", st.Undelivered+st.Dropped,
		"long_count", long.Count, "long_usd", math.Round(long.NotionalUSD),
		"short_count", short.Count, "short_usd", math.Round(short.NotionalUSD))
	for _, v := range s.VenueNames() {
		t := truth.Sum(func(k sim.Key) bool { return k.Exchange == v })
		logger.Info("simulator delivered", "exchange", v, "count", t.Count, "usd", math.Round(t.NotionalUSD))
	}
}

// writeAtomic writes data to path through a temporary file and a rename, so
// an exporter started at the same time never reads half a file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".simulator-*.yml")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after the rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
