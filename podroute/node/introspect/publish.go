package introspect

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// Publication defaults: a change reaches the API server within
// DefaultMinInterval (a burst of pod events is one write), and an
// unchanged summary is rewritten every DefaultHeartbeat so that readers can
// tell a silent agent from a quiet one. 1,000 nodes in steady state cost
// the API server 3.3 writes/s.
const (
	DefaultMinInterval = 10 * time.Second
	DefaultHeartbeat   = 5 * time.Minute
)

// SummaryStore is where summaries go.
type SummaryStore interface {
	// Publish writes the node's summary, creating its object if needed. Idempotent.
	Publish(ctx context.Context, node string, s Summary) error
}

// Publisher keeps one node's published summary current at a bounded rate:
// at most one write per MinInterval however often Notify is called, only
// when the state changed or the heartbeat is due, with failed writes
// retried after a growing delay (MinInterval up to Heartbeat).
type Publisher struct {
	Node    string
	Store   SummaryStore
	Collect func(ctx context.Context) Summary
	// MinInterval and Heartbeat default to DefaultMinInterval and DefaultHeartbeat.
	MinInterval, Heartbeat time.Duration
	Clock                  clock.Clock // default: the real clock
	Log                    *zap.Logger // default: none

	notify       chan struct{}
	publications atomic.Uint64
	failures     atomic.Uint64
}

// Notify says the datapath may have changed. It never blocks; calls
// between two looks at the state are one.
func (p *Publisher) Notify() {
	select {
	case p.notifyChan() <- struct{}{}:
	default:
	}
}

func (p *Publisher) notifyChan() chan struct{} {
	if p.notify == nil {
		panic("introspect: Publisher used before Init")
	}
	return p.notify
}

// Init fills defaults; call it before Run or Notify.
func (p *Publisher) Init() *Publisher {
	if p.MinInterval <= 0 {
		p.MinInterval = DefaultMinInterval
	}
	if p.Heartbeat < p.MinInterval {
		p.Heartbeat = max(DefaultHeartbeat, p.MinInterval)
	}
	if p.Clock == nil {
		p.Clock = clock.RealClock{}
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	p.notify = make(chan struct{}, 1)
	return p
}

// Publications and Failures count writes made and writes that failed.
func (p *Publisher) Publications() uint64 { return p.publications.Load() }

// Failures counts writes that failed.
func (p *Publisher) Failures() uint64 { return p.failures.Load() }

// Run publishes until ctx ends: once at start, then as described on Publisher.
func (p *Publisher) Run(ctx context.Context) {
	st := pubState{minInterval: p.MinInterval, heartbeat: p.Heartbeat}
	for first := true; ; first = false {
		if !first {
			t := p.Clock.NewTimer(max(st.due().Sub(p.Clock.Now()), 0))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-p.notify:
			case <-t.C():
			}
			t.Stop()
			if !st.shouldLook(p.Clock.Now()) {
				continue
			}
		}
		s := p.Collect(ctx)
		now := p.Clock.Now()
		if !st.shouldWrite(s, now) {
			continue
		}
		s.Updated, s.Heartbeat = now.UTC().Truncate(time.Second), Seconds(p.Heartbeat.Seconds())
		err := p.Store.Publish(ctx, p.Node, s)
		if err != nil && ctx.Err() != nil {
			return
		}
		st.wrote(s, now, err)
		if err != nil {
			p.failures.Add(1)
			p.Log.Warn("publish the node's datapath summary; retrying", zap.Duration("in", st.backoff), zap.Error(err))
			continue
		}
		p.publications.Add(1)
	}
}

// pubState decides when to look at the state and when to write; pure, so
// that the rate bound is tested on virtual time.
type pubState struct {
	minInterval, heartbeat time.Duration

	last      Summary   // last written
	lastAt    time.Time // when
	published bool
	nextOK    time.Time     // no write before this
	backoff   time.Duration // after a failed write: the delay before the next try
	pending   bool          // a write is needed once nextOK passes
}

// due is when to wake without a notification: the pending write or retry,
// or else the heartbeat.
func (st *pubState) due() time.Time {
	if st.pending || st.backoff > 0 {
		return st.nextOK
	}
	return st.lastAt.Add(st.heartbeat)
}

// shouldLook: on waking, whether to collect the state. While a write waits
// out nextOK there is nothing to do: the state is read when it may be written.
func (st *pubState) shouldLook(now time.Time) bool {
	return !((st.pending || st.backoff > 0) && now.Before(st.nextOK))
}

// shouldWrite: the collected state is new, the heartbeat is due, or nothing
// was written yet; and the minimum interval has passed (if not, the write
// is pending until it has).
func (st *pubState) shouldWrite(s Summary, now time.Time) bool {
	needed := !st.published || now.Sub(st.lastAt) >= st.heartbeat || !SameState(s, st.last)
	if !needed {
		st.pending, st.backoff = false, 0
		return false
	}
	if now.Before(st.nextOK) {
		st.pending = true
		return false
	}
	return true
}

func (st *pubState) wrote(s Summary, now time.Time, err error) {
	st.pending = false
	if err != nil {
		st.backoff = min(max(2*st.backoff, st.minInterval), st.heartbeat)
		st.nextOK = now.Add(st.backoff)
		return
	}
	st.last, st.lastAt, st.published, st.backoff = s, now, true, 0
	st.nextOK = now.Add(st.minInterval)
}
