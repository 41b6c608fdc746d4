package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/binance"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/bitget"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/bitmex"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/bybit"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/deribit"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/dydx"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/gate"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/hyperliquid"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/kraken"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/okx"
)

// venueParams is what every venue's constructor gets.
type venueParams struct {
	venue  *VenueConfig
	cfg    *Config
	client *exchanges.Client
	logger *slog.Logger
}

// venueBuilder builds one venue from the configuration and describes it
// for --config.check. A venue is supported by this build when it has a
// builder here.
type venueBuilder struct {
	build    func(p venueParams) runner
	describe func(w io.Writer, cfg *Config)
}

var venueBuilders = map[string]venueBuilder{
	"binance": {
		build: func(p venueParams) runner {
			b := p.cfg.Exchanges.Binance
			return binance.New(binance.Config{
				USDMREST:                    b.Endpoint("usdm_rest"),
				USDMWS:                      b.Endpoint("usdm_ws"),
				CoinMREST:                   b.Endpoint("coinm_rest"),
				CoinMWS:                     b.Endpoint("coinm_ws"),
				Coins:                       b.Coins,
				PollInterval:                p.cfg.Polling.Interval.Std(),
				InstrumentsInterval:         p.cfg.Polling.InstrumentsInterval.Std(),
				OpenInterestWeightPerMinute: b.OpenInterestWeightPerMinute,
				LongShortCoins:              b.LongShortRatioCoins,
				Client:                      p.client,
				Logger:                      p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: usdm_force_order (!forceOrder@arr), coinm_force_order (!forceOrder@arr)\n")
			fmt.Fprintf(w, "  polls every %s: premium index, 24h ticker; open interest within %d request weight per minute and market; instruments every %s\n",
				cfg.Polling.Interval.Std(), cfg.Exchanges.Binance.OpenInterestWeightPerMinute, cfg.Polling.InstrumentsInterval.Std())
			fmt.Fprintf(w, "  long/short account ratio (USDⓈ-M <COIN>USDT, every %s at least): %v\n", binance.LongShortInterval, orDefault(cfg.Exchanges.Binance.LongShortRatioCoins, binance.DefaultLongShortCoins))
		},
	},
	"bybit": {
		build: func(p venueParams) runner {
			return bybit.New(bybit.Config{
				LongShortCoins:      p.cfg.Exchanges.Bybit.LongShortRatioCoins,
				REST:                p.venue.Endpoint("rest"),
				LinearWS:            p.venue.Endpoint("linear_ws"),
				InverseWS:           p.venue.Endpoint("inverse_ws"),
				Coins:               p.venue.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: linear_liquidations_N, inverse_liquidations_N (allLiquidation.{symbol}, up to %d topics per connection)\n", bybit.DefaultTopicsPerConnection)
			fmt.Fprintf(w, "  polls every %s: tickers; instruments every %s\n", cfg.Polling.Interval.Std(), cfg.Polling.InstrumentsInterval.Std())
			fmt.Fprintf(w, "  long/short account ratio (linear <COIN>USDT, every %s at least): %v\n", bybit.LongShortInterval, orDefault(cfg.Exchanges.Bybit.LongShortRatioCoins, bybit.DefaultLongShortCoins))
		},
	},
	"okx": {
		build: func(p venueParams) runner {
			return okx.New(okx.Config{
				LongShortCoins:      p.cfg.Exchanges.OKX.LongShortRatioCoins,
				REST:                p.venue.Endpoint("rest"),
				WS:                  p.venue.Endpoint("ws"),
				Coins:               p.venue.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: swap_liquidations, futures_liquidations (liquidation-orders by instType; replay deduplicated, REST backfill after each (re)subscribe)\n")
			fmt.Fprintf(w, "  polls every %s: open interest, mark price, tickers, funding (instId=ANY); instruments every %s\n", cfg.Polling.Interval.Std(), cfg.Polling.InstrumentsInterval.Std())
			fmt.Fprintf(w, "  long/short account ratio (rubik per currency, on <COIN>-USDT-SWAP, every %s at least, requests %s apart): %v\n", okx.LongShortInterval, okx.LongShortRequestSpacing, orDefault(cfg.Exchanges.OKX.LongShortRatioCoins, okx.DefaultLongShortCoins))
		},
	},
	"bitmex": {
		build: func(p venueParams) runner {
			return bitmex.New(bitmex.Config{
				REST:         p.venue.Endpoint("rest"),
				WS:           p.venue.Endpoint("ws"),
				Coins:        p.venue.Coins,
				PollInterval: p.cfg.Polling.Interval.Std(),
				Client:       p.client,
				Logger:       p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: liquidation (table liquidation; each insert counted once, partial = history)\n")
			fmt.Fprintf(w, "  polls every %s: instrument/active (instruments, open interest, funding, mark, 24h volume)\n", cfg.Polling.Interval.Std())
		},
	},
	"gate": {
		build: func(p venueParams) runner {
			return gate.New(gate.Config{
				REST:                p.venue.Endpoint("rest"),
				USDTWS:              p.venue.Endpoint("usdt_ws"),
				BTCWS:               p.venue.Endpoint("btc_ws"),
				Coins:               p.venue.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: usdt_liquidations, btc_liquidations (futures.public_liquidates \"!all\"; REST backfill from liq_orders in <= 1 h windows after each (re)subscribe)\n")
			fmt.Fprintf(w, "  polls every %s: tickers (usdt, btc); contracts every %s\n", cfg.Polling.Interval.Std(), cfg.Polling.InstrumentsInterval.Std())
		},
	},
	"deribit": {
		build: func(p venueParams) runner {
			return deribit.New(deribit.Config{
				REST:                p.venue.Endpoint("rest"),
				WS:                  p.venue.Endpoint("ws"),
				Coins:               p.venue.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: trades (trades.future.{currency}.100ms for %v; liquidation trades only; set_heartbeat + public/test)\n", deribit.DefaultCurrencies)
			fmt.Fprintf(w, "  polls every %s: get_book_summary_by_currency (future); instruments every %s\n", cfg.Polling.Interval.Std(), cfg.Polling.InstrumentsInterval.Std())
		},
	},
	"bitget": {
		build: func(p venueParams) runner {
			b := &p.cfg.Exchanges.Bitget
			return bitget.New(bitget.Config{
				REST:                b.Endpoint("rest"),
				WS:                  b.Endpoint("ws"),
				Liquidations:        b.LiquidationsOn(),
				Coins:               b.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			if cfg.Exchanges.Bitget.LiquidationsOn() {
				fmt.Fprintf(w, "  streams: liquidations (v3 %q topic for usdt-futures, coin-futures, usdc-futures; payload UNVERIFIED)\n", bitget.Topic)
			} else {
				fmt.Fprintf(w, "  streams: none (liquidations: false)\n")
			}
			fmt.Fprintf(w, "  polls every %s: tickers, funding time; contracts every %s\n", cfg.Polling.Interval.Std(), cfg.Polling.InstrumentsInterval.Std())
		},
	},
	"kraken": {
		build: func(p venueParams) runner {
			return kraken.New(kraken.Config{
				REST:                p.venue.Endpoint("rest"),
				WS:                  p.venue.Endpoint("ws"),
				Coins:               p.venue.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: trades (trade feed, type liquidation; side mapping assumed)\n")
			fmt.Fprintf(w, "  polls every %s: tickers; instruments every %s\n", cfg.Polling.Interval.Std(), cfg.Polling.InstrumentsInterval.Std())
		},
	},
	"dydx": {
		build: func(p venueParams) runner {
			return dydx.New(dydx.Config{
				REST:                p.venue.Endpoint("rest"),
				WS:                  p.venue.Endpoint("ws"),
				Coins:               p.venue.Coins,
				PollInterval:        p.cfg.Polling.Interval.Std(),
				InstrumentsInterval: p.cfg.Polling.InstrumentsInterval.Std(),
				Client:              p.client,
				Logger:              p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  streams: trades_N (%s per market, up to %d markets per connection; liquidation trades only)\n", dydx.Channel, dydx.DefaultMarketsPerConnection)
			fmt.Fprintf(w, "  polls every %s: perpetualMarkets (markets, open interest, funding, oracle price, volume)\n", cfg.Polling.Interval.Std())
		},
	},
	"hyperliquid": {
		build: func(p venueParams) runner {
			return hyperliquid.New(hyperliquid.Config{
				REST:         p.venue.Endpoint("rest"),
				Coins:        p.venue.Coins,
				PollInterval: p.cfg.Polling.Interval.Std(),
				Client:       p.client,
				Logger:       p.logger,
			})
		},
		describe: func(w io.Writer, cfg *Config) {
			fmt.Fprintf(w, "  polls every %s: metaAndAssetCtxs (weight %.0f of %d per minute; no public liquidation feed)\n",
				cfg.Polling.Interval.Std(), hyperliquid.WeightPerMinuteAt(cfg.Polling.Interval.Std()), hyperliquid.WeightPerMinute)
		},
	},
}

// orDefault returns list, or def when list is absent (nil).
func orDefault(list, def []string) []string {
	if list == nil {
		return def
	}
	return list
}
