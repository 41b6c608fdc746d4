package sim

import (
	"context"
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
