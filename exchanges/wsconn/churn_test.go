package wsconn

import (
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestManyReconnectsDoNotLeak runs a thousand connect-receive-drop cycles
// and checks that goroutines and heap return to where they were: nothing
// per connection outlives the connection.
func TestManyReconnectsDoNotLeak(t *testing.T) {
	const cycles = 1000
	fs := newServer(t, func(fs *fakeServer, c *websocket.Conn, _ int64) {
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"x":1}`))
		// Abrupt close: the handler returns and the deferred Close drops TCP.
	})
	obs := &recorder{}
	cfg := testConfig(t, fs.url, obs)
	cfg.BackoffMin = time.Microsecond
	cfg.BackoffMax = time.Microsecond

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()

	stop := start(t, cfg)
	waitFor(t, 60*time.Second, "1000 reconnects", func() bool { return obs.connects.Load() >= cycles })
	stop()

	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines after %d reconnects: %d, baseline %d", obs.connects.Load(), runtime.NumGoroutine(), baseline)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// A leak of even 1 KiB per connection would show as 1 MiB here.
	if growth := int64(after.HeapInuse) - int64(before.HeapInuse); growth > 1<<20 {
		t.Errorf("heap in use grew by %d bytes over %d reconnects", growth, obs.connects.Load())
	}
	if got := obs.messages.Load(); got < cycles-1 {
		t.Errorf("%d messages over %d connections", got, obs.connects.Load())
	}
}
