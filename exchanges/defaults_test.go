package exchanges

import (
	"log/slog"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	if got := Positive(0*time.Second, time.Minute); got != time.Minute {
		t.Errorf("unset duration -> %v", got)
	}
	if got := Positive(-time.Second, time.Minute); got != time.Minute {
		t.Errorf("negative duration -> %v", got)
	}
	if got := Positive(5*time.Second, time.Minute); got != 5*time.Second {
		t.Errorf("set duration -> %v", got)
	}
	if got := Positive(0, 500); got != 500 {
		t.Errorf("unset int -> %v", got)
	}
	if got := Positive(0.5, 2.0); got != 0.5 {
		t.Errorf("set float -> %v", got)
	}
	l := slog.Default()
	if OrDiscard(l) != l || OrDiscard(nil) == nil {
		t.Error("OrDiscard")
	}
	c := NewClient(time.Second, "x")
	if OrNewClient(c, time.Minute) != c {
		t.Error("OrNewClient replaced a client")
	}
	if OrNewClient(nil, time.Minute) == nil {
		t.Error("OrNewClient gave no client")
	}
}
