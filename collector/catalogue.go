// Package collector is the Prometheus side of the exporter: the one metric
// catalogue, the sink that turns normalised venue events into series, and
// the exporter-health metrics. It knows nothing about any venue's protocol.
package collector

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Label sets.
var (
	instLabels     = []string{"exchange", "market", "symbol", "coin"}
	instSideLabels = []string{"exchange", "market", "symbol", "coin", "side"}
	streamLabels   = []string{"exchange", "stream"}
	pollLabels     = []string{"exchange", "endpoint"}
	infoLabelNames = []string{"exchange", "market", "symbol", "coin", "quote", "contract_type"}
)

// The metric catalogue: every name and help string the exporter emits
// (besides derivatives_exporter_build_info and the Go/process collectors).
var (
	famLiquidations = newFamily("crypto_liquidations_total",
		"Liquidation events received from the venue's public feed, by the side of the position liquidated. Lower bound where crypto_exporter_liquidation_feed_complete is 0.",
		true, kindCount, instSideLabels)
	famLiquidationNotional = newFamily("crypto_liquidation_notional_usd_total",
		"USD notional of liquidations received from the venue's public feed, by the side of the position liquidated (stablecoins at par). Lower bound where crypto_exporter_liquidation_feed_complete is 0.",
		true, kindNotional, instSideLabels)
	famLiquidationLargest = newFamily("crypto_liquidation_largest_usd",
		"USD notional of the largest single liquidation received in the trailing 60 seconds (0 if none).",
		false, kindLargest, instSideLabels)
	// crypto_liquidation_size_usd is a HistogramVec, see newSizeHistogram.

	famMarketInfo = newFamily("crypto_market_info",
		"Instruments discovered on each venue (value is always 1).",
		false, kindInfo, infoLabelNames)
	descFeedComplete = prometheus.NewDesc("crypto_exporter_liquidation_feed_complete",
		"1 if the venue publishes every liquidation, 0 if its public feed is a throttled sample (totals are lower bounds).",
		[]string{"exchange", "market"}, nil)

	// Market gauges, indexed by exchanges.Field.
	famMarket = [...]*family{
		newFamily("crypto_open_interest_usd",
			"Open interest in USD, as last polled from the venue (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_open_interest_coins",
			"Open interest in units of coin, as last polled from the venue (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_funding_rate_ratio",
			"Current funding rate per funding interval (0.0001 = 0.01 %), as last polled from the venue (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_funding_interval_seconds",
			"Funding interval of the instrument, as published by the venue (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_funding_next_timestamp_seconds",
			"Unix time of the next funding settlement, as last polled from the venue (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_mark_price_usd",
			"Mark price of the instrument as quoted by the venue, as last polled (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_volume_24h_usd",
			"Venue-reported rolling 24 h turnover in USD, as last polled (cached between polls).", false, kindField, instLabels),
		newFamily("crypto_long_short_account_ratio",
			"Longs/shorts among accounts as the venue publishes it, as last polled (cached between polls).", false, kindField, instLabels),
	}

	descPriceLevel = prometheus.NewDesc("crypto_price_level_usd",
		"Key price levels from the configuration, for alert rules.", []string{"coin", "level"}, nil)

	descFearGreed = prometheus.NewDesc("crypto_fear_greed_index",
		"Crypto Fear & Greed Index (0 = extreme fear, 100 = extreme greed), last good reading.", []string{"source"}, nil)
	descFearGreedClass = prometheus.NewDesc("crypto_fear_greed_classification",
		"Classification of the current Fear & Greed reading as published by the source (value is always 1).", []string{"source", "classification"}, nil)
	descFearGreedUpdated = prometheus.NewDesc("crypto_fear_greed_updated_timestamp_seconds",
		"Unix time the source gives for the current Fear & Greed reading.", []string{"source"}, nil)

	descInstruments = prometheus.NewDesc("crypto_exporter_instruments",
		"Instruments of the market whose series the exporter keeps.", []string{"exchange", "market"}, nil)
	descInstrumentsOverCap = prometheus.NewDesc("crypto_exporter_instruments_over_cap",
		"Instruments the venue listed at the last discovery that were left out because the exchange's max_instruments cap was reached; their liquidations are dropped and counted as decode errors.", []string{"exchange", "market"}, nil)
	descInstrumentCapReached = prometheus.NewDesc("crypto_exporter_instrument_cap_reached_total",
		"Instrument discoveries that listed more instruments than the exchange's max_instruments cap allows.", []string{"exchange"}, nil)

	descStreamUp = prometheus.NewDesc("crypto_exporter_stream_up",
		"1 if the stream is connected and subscribed, else 0.", streamLabels, nil)
	descStreamConnects = prometheus.NewDesc("crypto_exporter_stream_connects_total",
		"WebSocket connections established for the stream.", streamLabels, nil)
	descStreamMessages = prometheus.NewDesc("crypto_exporter_stream_messages_total",
		"WebSocket frames received on the stream.", streamLabels, nil)
	descStreamDecodeErrors = prometheus.NewDesc("crypto_exporter_stream_decode_errors_total",
		"Frames or events dropped because they were malformed, oversized or unusable (unknown symbol, invalid number).", streamLabels, nil)
	descStreamLastMessage = prometheus.NewDesc("crypto_exporter_stream_last_message_timestamp_seconds",
		"Unix time of the last frame received on the stream (0 if none yet).", streamLabels, nil)

	descPollSuccess = prometheus.NewDesc("crypto_exporter_poll_success",
		"1 if the last poll of the endpoint succeeded, else 0.", pollLabels, nil)
	descPollFailures = prometheus.NewDesc("crypto_exporter_poll_failures_total",
		"Failed polls of the endpoint (HTTP errors, rate limits, timeouts, malformed bodies).", pollLabels, nil)
	descPollDuration = prometheus.NewDesc("crypto_exporter_poll_duration_seconds",
		"Duration of the last poll of the endpoint.", pollLabels, nil)
)

// family is a metric of the instrument-level series: the collector emits it
// both through Collect and, for /metrics, as text written directly from
// the label strings cached per series (see appendFamilyLocked).
type family struct {
	name, help string
	counter    bool
	kind       seriesKind
	field      exchanges.Field // of a kindField family
	labels     []string
	desc       *prometheus.Desc
	header     string // the HELP and TYPE lines
}

// seriesKind says where a family's series and values come from.
type seriesKind uint8

const (
	kindInfo     seriesKind = iota // crypto_market_info: one series per instrument, value 1
	kindCount                      // liquidations by side
	kindNotional                   // liquidation notional by side
	kindLargest                    // largest liquidation of the trailing window by side
	kindField                      // a market gauge (family.field)
)

func newFamily(name, help string, counter bool, kind seriesKind, labels []string) *family {
	typ := "gauge"
	if counter {
		typ = "counter"
	}
	return &family{name: name, help: help, counter: counter, kind: kind, labels: labels,
		desc:   prometheus.NewDesc(name, help, labels, nil),
		header: fmt.Sprintf("# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)}
}

func init() {
	for i, f := range famMarket {
		f.field = exchanges.Field(i)
	}
}

// SizeBuckets are the upper bounds of crypto_liquidation_size_usd, from retail
// sizes to whale liquidations; 999999.99 makes "at least $1M" a bucket query.
var SizeBuckets = []float64{100, 1e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 999999.99, 2.5e6, 5e6, 1e7, 2.5e7}

func newSizeHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crypto_liquidation_size_usd",
		Help:    "USD notional of single liquidations received from the venue's public feed, by the side of the position liquidated.",
		Buckets: SizeBuckets,
	}, []string{"exchange", "side"})
}
