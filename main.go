// Command derivatives_exporter exports crypto-derivatives market data
// (liquidations, open interest, funding, mark price, 24 h volume, Fear &
// Greed) as Prometheus metrics.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/derivatives-exporter/derivatives_exporter/collector"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/feargreed"
)

const exporterName = "derivatives_exporter"

//go:embed VERSION
var embeddedVersion string

func init() {
	// Release builds set the version with -ldflags; `go run .` falls back to
	// the VERSION file.
	if version.Version == "" {
		version.Version = strings.TrimSpace(embeddedVersion)
	}
}

// DefaultListenAddress is the exporter's default port.
const DefaultListenAddress = ":9788"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(exporterName, "Prometheus exporter for crypto-derivatives market data: liquidations, open interest, funding, mark price, 24h volume and the Fear & Greed Index.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(nil)
	var (
		configFile    = app.Flag("config.file", "Path to the YAML configuration file. Without it the embedded default config is used.").PlaceHolder("PATH").String()
		configCheck   = app.Flag("config.check", "Validate the configuration, print what would run, and exit without connecting.").Bool()
		metricsPath   = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		disableExport = app.Flag("web.disable-exporter-metrics", "Exclude Go runtime and process metrics of the exporter itself.").Bool()
		maxRequests   = app.Flag("web.max-requests", "Maximum number of parallel scrape requests. 0 disables the limit.").Default("40").Int()
		toolkitFlags  = kingpinflag.AddFlags(app, DefaultListenAddress)
	)
	logConfig := &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	exitCode := -1
	app.Terminate(func(code int) { exitCode = code })
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", exporterName, err)
		return 2
	}
	if exitCode >= 0 { // --help or --version
		return exitCode
	}
	logger := promslog.New(logConfig)

	cfg, err := LoadConfig(*configFile)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", exporterName, err)
		return 1
	}
	if *configCheck {
		describeConfig(stdout, cfg, *configFile)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Info("Starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext())
	coll := collector.New()
	coll.SetLogger(logger.With("component", "collector"))
	for _, spec := range venueSpecs {
		coll.SetInstrumentCap(spec.name, cfg.Exchanges.venue(spec.name).InstrumentCap())
	}
	registry := prometheus.NewRegistry()
	// The per-instrument series are written directly by collector.Handler;
	// the registry gathers everything else.
	registry.MustRegister(coll.Others(), versioncollector.NewCollector(exporterName))
	gatherers := prometheus.Gatherers{registry}
	if !*disableExport {
		own := prometheus.NewRegistry()
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		gatherers = append(gatherers, own)
	}

	var wg sync.WaitGroup
	for _, r := range buildRunners(cfg, logger) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx, coll); err != nil && ctx.Err() == nil {
				logger.Error("venue stopped", "venue", r.Name(), "err", err)
			}
		}()
	}
	coll.SetPriceLevels(cfg.PriceLevels)

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, collector.Handler(coll, gatherers, collector.HandlerOpts{
		MaxRequestsInFlight: *maxRequests,
		Logger:              logger,
	}))
	if *metricsPath != "/" && *metricsPath != "" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Derivatives Exporter",
			Description: "Prometheus exporter for crypto-derivatives liquidations, open interest, funding and sentiment",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
			},
		})
		if err != nil {
			logger.Error("landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })

	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- web.ListenAndServe(server, toolkitFlags, logger) }()

	code := 0
	select {
	case err := <-srvErr:
		logger.Error("HTTP server failed", "err", err)
		code = 1
		stop()
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdownCtx)
	wg.Wait()
	return code
}

// runner is one background task: a venue or the Fear & Greed poller.
type runner interface {
	Name() string
	Run(ctx context.Context, sink exchanges.Sink) error
}

type fearGreedRunner struct{ cfg feargreed.Config }

func (fearGreedRunner) Name() string { return "feargreed" }
func (f fearGreedRunner) Run(ctx context.Context, sink exchanges.Sink) error {
	feargreed.Run(ctx, f.cfg, sink)
	return nil
}

func userAgent() string { return exporterName + "/" + version.Version }

func buildRunners(cfg *Config, logger *slog.Logger) []runner {
	client := exchanges.NewClient(cfg.Polling.Timeout.Std(), userAgent())
	var rs []runner
	for _, spec := range venueSpecs {
		v := cfg.Exchanges.venue(spec.name)
		if b, ok := venueBuilders[spec.name]; ok && *v.Enabled {
			rs = append(rs, b.build(venueParams{
				venue:  v,
				cfg:    cfg,
				client: client,
				logger: logger.With("exchange", spec.name),
			}))
		}
	}
	if *cfg.FearGreed.Enabled {
		rs = append(rs, fearGreedRunner{feargreed.Config{
			URL:      cfg.FearGreed.URL.URL.String(),
			Interval: cfg.FearGreed.Interval.Std(),
			Client:   client,
			Logger:   logger.With("component", "feargreed"),
		}})
	}
	return rs
}

// describeConfig prints what the exporter would run with cfg.
func describeConfig(w io.Writer, cfg *Config, path string) {
	if path == "" {
		path = "embedded default config"
	}
	fmt.Fprintf(w, "configuration %s is valid\n\n", path)
	for _, spec := range venueSpecs {
		v := cfg.Exchanges.venue(spec.name)
		switch {
		case !spec.supported():
			fmt.Fprintf(w, "%-12s skipped (not supported yet in this build)\n", spec.name)
			continue
		case !*v.Enabled:
			fmt.Fprintf(w, "%-12s disabled\n", spec.name)
			continue
		}
		coins := "all coins"
		if len(v.Coins) > 0 {
			coins = "coins " + strings.Join(v.Coins, ", ")
		}
		limit := "no instrument cap"
		if n := v.InstrumentCap(); n > 0 {
			limit = fmt.Sprintf("at most %d instruments", n)
		}
		fmt.Fprintf(w, "%-12s enabled, %s, %s\n", spec.name, coins, limit)
		keys := make([]string, 0, len(v.Endpoints))
		for k := range v.Endpoints {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-12s %s\n", k, v.Endpoint(k))
		}
		if b, ok := venueBuilders[spec.name]; ok && b.describe != nil {
			b.describe(w, cfg)
		}
	}
	if *cfg.FearGreed.Enabled {
		fmt.Fprintf(w, "%-12s enabled, %s every %s\n", "fear_greed", cfg.FearGreed.URL.URL.String(), cfg.FearGreed.Interval.Std())
	} else {
		fmt.Fprintf(w, "%-12s disabled\n", "fear_greed")
	}
	if len(cfg.PriceLevels) > 0 {
		coins := make([]string, 0, len(cfg.PriceLevels))
		for c := range cfg.PriceLevels {
			coins = append(coins, c)
		}
		sort.Strings(coins)
		for _, c := range coins {
			fmt.Fprintf(w, "price level  %s %v\n", c, cfg.PriceLevels[c])
		}
	}
}
