package exchangetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The server lifecycle shared by the fakes that run their own http.Server
// (every fake but FearGreed): a loopback listener, handlers counted so that
// Close can wait for them, a done channel that ends delays and scripts, and
// a changed channel that wakes whatever waits for a state change. The
// venue's own state lives in the fake, guarded by the same mutex.

// fakeServer is the HTTP server and lifecycle a fake embeds. Its mutex
// guards closed and changed and, by convention, the embedding fake's own
// state too. Start it with start; the zero value is not ready to use.
type fakeServer struct {
	url string // http://127.0.0.1:port
	srv *http.Server

	mu       sync.Mutex
	closed   bool
	done     chan struct{} // closed by Close
	changed  chan struct{} // closed and replaced on every state change
	handlers sync.WaitGroup
	bg       sync.WaitGroup

	// name is how waitFor's error names the fake ("dYdX fake").
	name string
	// dropAll, when not nil, runs in Close after the server stopped
	// accepting, before Close waits: it drops the client connections.
	dropAll func()
}

// start listens on a free loopback port and serves h there in the
// background. Every request first registers with the fake: once it is
// closed, requests are answered 503 "closed". start panics if it cannot
// listen, like httptest.NewServer.
func (s *fakeServer) start(name string, h http.Handler) {
	s.name = name
	s.done = make(chan struct{})
	s.changed = make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("exchangetest: listen: %v", err))
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	s.spawn(func() { _ = s.srv.Serve(ln) })
}

// wsURL returns the ws:// URL of path on the fake's server.
func (s *fakeServer) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(s.url, "http") + path
}

// enter registers a handler; false once the fake is closed.
func (s *fakeServer) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// spawn runs f in a goroutine that Close waits for; f must return once
// done is closed.
func (s *fakeServer) spawn(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

// Close stops the server, drops every client connection, ends delayed
// answers and running scripts, and waits for all of the fake's goroutines
// to end. Calling it again does nothing.
func (s *fakeServer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.notifyLocked()
	s.mu.Unlock()
	_ = s.srv.Close()
	if s.dropAll != nil {
		s.dropAll()
	}
	s.handlers.Wait()
	s.bg.Wait()
}

// notifyLocked wakes everything waiting for a state change.
func (s *fakeServer) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor evaluates cond under the lock on every state change until it
// holds. It fails with cond's description when ctx ends first, and at
// once when the fake is closed.
func (s *fakeServer) waitFor(ctx context.Context, cond func() (bool, string)) error {
	for {
		s.mu.Lock()
		ok, what := cond()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return errors.New("exchangetest: " + s.name + " closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("exchangetest: %s: %w", what, ctx.Err())
		}
	}
}

// locked returns f's result, computed under the fake's lock.
func locked[T any](s *fakeServer, f func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

// tickLoop runs tick on a ticker until done is closed. setting (read anew
// whenever reset receives) is passed to tick and gives the ticker's period
// through period; a setting <= 0 stops ticking until the next reset.
func tickLoop(done, reset <-chan struct{}, setting func() time.Duration, period func(time.Duration) time.Duration, tick func(now time.Time, setting time.Duration)) {
	for {
		d := setting()
		if d <= 0 {
			select {
			case <-done:
				return
			case <-reset:
				continue
			}
		}
		t := time.NewTicker(period(d))
	ticking:
		for {
			select {
			case <-done:
				t.Stop()
				return
			case <-reset:
				t.Stop()
				break ticking
			case now := <-t.C:
				tick(now, d)
			}
		}
	}
}

// nudge sends on a buffered channel of capacity one without blocking (a
// pending signal already says the same).
func nudge(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// updateOrAdd runs f on the first element of *list that matches or, when
// none does, on fresh appended to the list: what the fakes' UpdateSymbol,
// UpdateInstrument and the like do under the fake's lock.
func updateOrAdd[T any](list *[]T, match func(T) bool, fresh T, f func(*T)) {
	i := slices.IndexFunc(*list, match)
	if i < 0 {
		*list = append(*list, fresh)
		i = len(*list) - 1
	}
	f(&(*list)[i])
}
