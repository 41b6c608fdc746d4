package exchanges

import (
	"context"
	"errors"
	"testing"
	"time"
)

func isOpen(l *Latch) bool {
	select {
	case <-l.ch:
		return true
	default:
		return false
	}
}

func TestLatch(t *testing.T) {
	fail := errors.New("boom")
	result := fail
	poll := func(context.Context) error { return result }

	ok := NewLatch()
	onSuccess := ok.OnSuccess(poll)
	tried := NewLatch()
	afterTry := tried.AfterTry(poll)
	if isOpen(ok) || isOpen(tried) {
		t.Fatal("a new latch is open")
	}
	if err := onSuccess(context.Background()); !errors.Is(err, fail) {
		t.Errorf("OnSuccess returned %v, want the poll's error", err)
	}
	if isOpen(ok) {
		t.Error("OnSuccess opened on a failed poll")
	}
	if err := afterTry(context.Background()); !errors.Is(err, fail) {
		t.Errorf("AfterTry returned %v, want the poll's error", err)
	}
	if !isOpen(tried) {
		t.Error("AfterTry did not open after a failed poll")
	}
	result = nil
	if err := onSuccess(context.Background()); err != nil {
		t.Errorf("OnSuccess returned %v", err)
	}
	if !isOpen(ok) {
		t.Error("OnSuccess did not open on a successful poll")
	}
	ok.Open() // again: no panic on a closed channel
	if !ok.Wait(context.Background()) {
		t.Error("Wait on an open latch returned false")
	}
}

func TestLatchWait(t *testing.T) {
	l := NewLatch()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if l.Wait(ctx) {
		t.Error("Wait returned true on a cancelled context with the latch closed")
	}
	go func() { time.Sleep(10 * time.Millisecond); l.Open() }()
	if !l.Wait(context.Background()) {
		t.Error("Wait returned false after Open")
	}
}
