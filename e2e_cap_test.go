package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/derivatives-exporter/derivatives_exporter/collector/collectortest"
	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// TestEndToEndInstrumentCap runs the binary with a Binance cap below the
// fakes' listing: the cap holds over both markets, the over-cap gauge and
// counter say how many were left out, and a warning is logged.
func TestEndToEndInstrumentCap(t *testing.T) {
	usdm := exchangetest.NewBinanceMarket("usdm")
	defer usdm.Close()
	coinm := exchangetest.NewBinanceMarket("coinm")
	defer coinm.Close()
	usdm.SetSymbols(e2eUSDM)
	coinm.SetSymbols(e2eCoinM)
	listed := 0
	for _, s := range append(append([]exchangetest.BinanceSymbol{}, e2eUSDM...), e2eCoinM...) {
		if s.Status == "TRADING" {
			listed++
		}
	}
	const limit = 3
	if listed <= limit {
		t.Fatalf("the fakes list %d trading instruments; the test needs more than %d", listed, limit)
	}
	cfg := fmt.Sprintf(`
exchanges:
  binance:
    max_instruments: %d
    long_short_ratio_coins: []
    endpoints: {usdm_rest: "%s", usdm_ws: "%s", coinm_rest: "%s", coinm_ws: "%s"}
  bybit: {enabled: false}
  okx: {enabled: false}
  bitmex: {enabled: false}
  deribit: {enabled: false}
  gate: {enabled: false}
  bitget: {enabled: false}
  kraken: {enabled: false}
  dydx: {enabled: false}
  hyperliquid: {enabled: false}
fear_greed: {enabled: false}
polling:
  interval: 1s
`, limit, usdm.RESTURL(), usdm.WSURL(), coinm.RESTURL(), coinm.WSURL())
	p := startExporter(t, cfg)
	s := p.eventually(t, "both markets declared", func(s collectortest.Samples) bool {
		return len(s.Names("crypto_exporter_instruments")) == 2
	})
	if got := s.Sum("crypto_exporter_instruments", "exchange", "binance"); got != limit {
		t.Errorf("instruments kept %v, want the cap %d", got, limit)
	}
	if got := s.Sum("crypto_exporter_instruments_over_cap", "exchange", "binance"); got != float64(listed-limit) {
		t.Errorf("instruments over the cap %v, want %d", got, listed-limit)
	}
	if got, _ := s.Get("crypto_exporter_instrument_cap_reached_total", "exchange", "binance"); got < 1 {
		t.Errorf("cap reached %v times, want >= 1", got)
	}
	if got := len(s.Names("crypto_market_info")); got != limit {
		t.Errorf("crypto_market_info series %d, want %d", got, limit)
	}
	if !strings.Contains(p.stderr.String(), "instrument cap reached") {
		t.Error("no log line for the cap")
	}
}
