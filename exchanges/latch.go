package exchanges

import (
	"context"
	"sync"
)

// Latch is a signal that opens once and stays open, such as a venue's
// first successful instrument discovery (its stream and value polls start
// after it) or a poll's first answer (a poll that needs its values waits
// for it). The zero Latch is not usable; make one with NewLatch.
type Latch struct {
	once sync.Once
	ch   chan struct{}
}

// NewLatch returns a latch that is not open yet.
func NewLatch() *Latch { return &Latch{ch: make(chan struct{})} }

// Open opens the latch; later calls do nothing.
func (l *Latch) Open() { l.once.Do(func() { close(l.ch) }) }

// Wait blocks until the latch is open (true) or ctx ends (false).
func (l *Latch) Wait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-l.ch:
		return true
	}
}

// OnSuccess returns poll that opens the latch when a call succeeds.
func (l *Latch) OnSuccess(poll func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := poll(ctx)
		if err == nil {
			l.Open()
		}
		return err
	}
}

// AfterTry returns poll that opens the latch when a call returns,
// successful or not.
func (l *Latch) AfterTry(poll func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		defer l.Open()
		return poll(ctx)
	}
}
