package auth_test

import (
	"sync/atomic"
	"time"
)

// fakeClock is a clock tests move by hand, shared by the simulator and the
// authenticators, so expiry is a step of the test, not a sleep that hopes.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
