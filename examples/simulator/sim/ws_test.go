package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges/exchangetest"
)

// dialSubscribed connects to a fake market and subscribes to every
// liquidation, like the exporter does.
func dialSubscribed(t *testing.T, m *exchangetest.BinanceMarket) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(m.WSURL()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"method":"SUBSCRIBE","params":["!forceOrder@arr"],"id":1}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.WaitSubscribed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	go func() { // drain
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return c
}

// dialWS connects to a fake venue, sends the subscribe requests and drains
// whatever the venue pushes.
func dialWS(t *testing.T, url string, requests ...string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, r := range requests {
		if err := c.WriteMessage(websocket.TextMessage, []byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return c
}

// subscribeAll subscribes to every liquidation stream of every simulated
// venue, as the exporter does, and waits until the simulator sees it.
func subscribeAll(t *testing.T, s *Sim) {
	t.Helper()
	f := s.Fakes()
	topics := map[string][]string{}
	var dydx []string
	for _, in := range s.Instruments() {
		switch in.Exchange {
		case Bybit:
			topics[in.Market] = append(topics[in.Market], `"`+exchangetest.BybitTopicPrefix+in.Symbol+`"`)
		case Dydx:
			dydx = append(dydx, in.Symbol)
		}
	}
	if f.USDM != nil {
		dialSubscribed(t, f.USDM)
		dialSubscribed(t, f.CoinM)
	}
	if f.Bybit != nil {
		for cat, ts := range topics {
			dialWS(t, f.Bybit.WSURL(cat), `{"op":"subscribe","args":[`+strings.Join(ts, ",")+`]}`)
		}
	}
	if f.OKX != nil {
		dialWS(t, f.OKX.WSURL(), `{"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"},{"channel":"liquidation-orders","instType":"FUTURES"}]}`)
	}
	if f.Gate != nil {
		for _, settle := range []string{exchangetest.GateUSDT, exchangetest.GateBTC} {
			dialWS(t, f.Gate.WSURL(settle), `{"time":1,"channel":"futures.public_liquidates","event":"subscribe","payload":["!all"]}`)
		}
	}
	if f.Dydx != nil {
		var reqs []string
		for _, m := range dydx {
			reqs = append(reqs, `{"type":"subscribe","channel":"v4_trades","id":"`+m+`"}`)
		}
		dialWS(t, f.Dydx.WSURL(), reqs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
}
