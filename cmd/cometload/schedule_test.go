package main

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	// 4 callers sharing 400 calls/s: each calls every 10ms; caller 1 starts
	// 2.5ms in.
	s := newSchedule(t0, 400, 4, 1)
	if d := s.wait(t0); d != 2500*time.Microsecond {
		t.Fatalf("first wait = %v; want 2.5ms", d)
	}
	// On time (woken a little late by the timer): timed from the send.
	sent := t0.Add(2600 * time.Microsecond)
	if got := s.start(sent); !got.Equal(sent) {
		t.Errorf("on-time call timed from %v; want its send %v", got, sent)
	}
	// The call took 25ms, so the next (due at 12.5ms) is late: timed from
	// when it was due, and sent at once.
	now := t0.Add(27600 * time.Microsecond)
	if d := s.wait(now); d != 0 {
		t.Errorf("late call waits %v; want 0", d)
	}
	if got, want := s.start(now), t0.Add(12500*time.Microsecond); !got.Equal(want) {
		t.Errorf("late call timed from %v; want its due time %v", got, want)
	}
	// The schedule keeps its pace: the next is due at 22.5ms, also late.
	if d := s.wait(now.Add(ms)); d != 0 || !s.start(now.Add(ms)).Equal(t0.Add(22500*time.Microsecond)) {
		t.Errorf("second late call: wait %v", d)
	}
	// Closed loop: never waits, always timed from the send.
	c := newSchedule(t0, 0, 4, 1)
	if d := c.wait(t0); d != 0 || !c.start(t0.Add(ms)).Equal(t0.Add(ms)) {
		t.Errorf("closed loop: wait %v", d)
	}
}
