package introspect

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

type recordingStore struct {
	mu     sync.Mutex
	writes []Summary
	fail   bool
	tries  int
}

func (r *recordingStore) Publish(_ context.Context, node string, s Summary) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if r.fail {
		return errors.New("the API server is unavailable")
	}
	r.writes = append(r.writes, s)
	return nil
}

func (r *recordingStore) count() (writes, tries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes), r.tries
}

func (r *recordingStore) last() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[len(r.writes)-1]
}

// sim drives the publisher's decisions on virtual time exactly as Run
// does: a wake by notification or by the timer at due().
type sim struct {
	t      *testing.T
	st     pubState
	now    time.Time
	state  Summary
	writes []Summary
	times  []time.Time
	fail   bool
	tries  int
	looks  int
}

func newSim(t *testing.T) *sim {
	m := &sim{t: t, st: pubState{minInterval: 10 * time.Second, heartbeat: 5 * time.Minute},
		now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), state: Summary{Health: Healthy, Flows: 15}}
	m.look() // Run looks at once
	return m
}

func (m *sim) wake() {
	if m.st.shouldLook(m.now) {
		m.look()
	}
}

func (m *sim) look() {
	m.looks++
	if !m.st.shouldWrite(m.state, m.now) {
		return
	}
	m.tries++
	var err error
	if m.fail {
		err = errors.New("unavailable")
	} else {
		m.writes, m.times = append(m.writes, m.state), append(m.times, m.now)
	}
	m.st.wrote(m.state, m.now, err)
}

// advance moves time to "to", waking at every due() on the way.
func (m *sim) advance(d time.Duration) {
	to := m.now.Add(d)
	for i := 0; ; i++ {
		if i > 10000 {
			m.t.Fatal("the publisher's timer never moves forward")
		}
		due := m.st.due()
		if due.After(to) {
			break
		}
		if due.After(m.now) {
			m.now = due
		}
		m.wake()
	}
	m.now = to
}

func (m *sim) change(pods int) {
	m.state.LocalPods, m.state.Flows = pods, 15+10*pods
	m.wake() // Notify
}

func TestPublisherWritesOnlyChangesAtABoundedRate(t *testing.T) {
	m := newSim(t)
	if len(m.writes) != 1 {
		t.Fatalf("%d writes at start, want 1", len(m.writes))
	}
	m.wake() // a notification without a change
	if len(m.writes) != 1 {
		t.Fatal("an unchanged state was written")
	}
	m.change(1) // right after the first write: waits out the interval
	if len(m.writes) != 1 {
		t.Fatal("a change was written within the minimum interval")
	}
	m.advance(10 * time.Second)
	if len(m.writes) != 2 || m.writes[1].LocalPods != 1 {
		t.Fatalf("the change was not written once the interval passed: %+v", m.writes)
	}

	// A burst: ten pod events a second for two minutes.
	looksBefore := m.looks
	for i := 2; i < 1202; i++ {
		m.advance(100 * time.Millisecond)
		m.change(i)
	}
	m.advance(10 * time.Second)
	burst := m.writes[2:]
	if len(burst) < 12 || len(burst) > 13 {
		t.Fatalf("%d writes for 1,200 changes over 130 s, want 12 or 13 (one per 10 s)", len(burst))
	}
	for i := 1; i < len(m.times); i++ {
		if gap := m.times[i].Sub(m.times[i-1]); gap < 10*time.Second {
			t.Fatalf("writes %d and %d only %v apart", i-1, i, gap)
		}
	}
	if last := m.writes[len(m.writes)-1]; last.LocalPods != 1201 {
		t.Fatalf("the last write holds %d pods, want the last state (1201)", last.LocalPods)
	}
	// The state is read when it may be written, not on every notification.
	if looks := m.looks - looksBefore; looks > 2*len(burst)+2 {
		t.Fatalf("%d looks at the state for %d writes", looks, len(burst))
	}

	// Quiet: nothing until the heartbeat, then one write a heartbeat.
	n := len(m.writes)
	m.advance(4 * time.Minute)
	if len(m.writes) != n {
		t.Fatal("written without a change before the heartbeat")
	}
	m.advance(time.Minute + 10*time.Minute)
	if len(m.writes) != n+3 {
		t.Fatalf("%d heartbeat writes in 15 quiet minutes, want 3", len(m.writes)-n)
	}

	// A change that reverts before it may be written is not written.
	m.change(1300)
	m.advance(time.Second)
	n = len(m.writes)
	m.change(1300)
	m.change(1201)
	m.advance(10 * time.Second)
	if len(m.writes) != n {
		t.Fatalf("%d writes for a change that reverted within the interval", len(m.writes)-n)
	}
}

func TestPublisherRetriesFailuresWithBackoff(t *testing.T) {
	m := newSim(t)
	m.fail = true
	m.advance(10 * time.Second)
	m.change(3)
	if m.tries != 2 {
		t.Fatalf("%d tries, want 2", m.tries)
	}
	for range 50 { // notifications during the backoff add no tries
		m.advance(100 * time.Millisecond)
		m.wake()
	}
	if m.tries != 2 {
		t.Fatalf("%d tries during a 10 s backoff, want 2", m.tries)
	}
	m.advance(5 * time.Second) // 10 s after the failure
	if m.tries != 3 {
		t.Fatalf("%d tries 10 s after the failure, want 3", m.tries)
	}
	m.advance(19 * time.Second) // then 20 s, 40 s, ... up to the heartbeat
	if m.tries != 3 {
		t.Fatalf("retried before the doubled backoff: %d tries", m.tries)
	}
	m.advance(time.Second)
	if m.tries != 4 {
		t.Fatalf("%d tries after 20 s, want 4", m.tries)
	}
	m.advance(time.Hour)
	if m.tries > 4+3+12 { // 40 s, 80 s, 160 s, then every 5 min for the rest of the hour
		t.Fatalf("%d tries in an hour of failures", m.tries)
	}
	m.fail = false
	m.advance(5 * time.Minute)
	if len(m.writes) != 2 || m.writes[1].LocalPods != 3 {
		t.Fatalf("after recovery: %+v", m.writes)
	}
}

// Run itself, on a fake clock: a write at start, a change after the
// minimum interval, the heartbeat.
func TestPublisherRun(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	store := &recordingStore{}
	var mu sync.Mutex
	state := Summary{Health: Healthy, Flows: 15}
	p := (&Publisher{Node: "node-a", Store: store, Clock: fc, Collect: func(context.Context) Summary {
		mu.Lock()
		defer mu.Unlock()
		return state
	}}).Init()
	if p.MinInterval != DefaultMinInterval || p.Heartbeat != DefaultHeartbeat {
		t.Fatalf("defaults %v %v", p.MinInterval, p.Heartbeat)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitWrites := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if got, _ := store.count(); got >= n && fc.HasWaiters() {
				return
			}
			if time.Now().After(deadline) {
				got, _ := store.count()
				t.Fatalf("%d writes, want %d", got, n)
			}
			time.Sleep(time.Millisecond) // polling the condition
		}
	}
	waitWrites(1)
	if s := store.last(); s.Heartbeat != 300 || !s.Updated.Equal(fc.Now()) || p.Publications() != 1 {
		t.Fatalf("first write %+v, publications %d", s, p.Publications())
	}
	mu.Lock()
	state.LocalPods = 1
	mu.Unlock()
	p.Notify()
	fc.Step(DefaultMinInterval)
	waitWrites(2)
	if s := store.last(); s.LocalPods != 1 {
		t.Fatalf("second write %+v", s)
	}
	fc.Step(DefaultHeartbeat)
	waitWrites(3)
	if s := store.last(); !s.Updated.Equal(fc.Now()) {
		t.Fatalf("heartbeat write %+v at %v", s, fc.Now())
	}
}

func TestSummaryStaleAndSameState(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	sync1, sync2 := now.Add(-time.Second), now
	a := Summary{Health: Healthy, Flows: 35, LastFlowSync: &sync1, Updated: now, Heartbeat: 300}
	b := a
	b.LastFlowSync, b.LastFlowSyncDuration, b.Updated = &sync2, 0.02, now.Add(time.Minute)
	if !SameState(a, b) {
		t.Fatal("times alone made a change")
	}
	b.Flows = 36
	if SameState(a, b) {
		t.Fatal("a flow count change was not a change")
	}
	if a.Stale(now.Add(10*time.Minute)) || !a.Stale(now.Add(12*time.Minute)) {
		t.Fatal("stale after two heartbeats and a minute, not before")
	}
	in := InfoOf("node-a", a, now.Add(time.Hour))
	if in.Health != Unknown || len(in.Errors) == 0 || in.Published == nil {
		t.Fatalf("stale summary shown as %+v", in)
	}
}
