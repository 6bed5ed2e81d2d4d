package enforcer

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/t1route/t1route/podroute/node/policy/rules"
	"go.uber.org/zap"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// Metrics are the policy enforcement's Prometheus metrics.
type Metrics struct {
	Rules          prometheus.Gauge
	Isolated       *prometheus.GaugeVec
	Problems       prometheus.Gauge
	Objects        *prometheus.GaugeVec
	ComputeSeconds prometheus.Histogram
	Denied         *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Rules: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_policy_rules", Help: "Policy rules that apply to this node's pods."}),
		Isolated: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t1route_policy_isolated_pods",
			Help: "This node's pods that NetworkPolicies isolate, by direction."}, []string{"direction"}),
		Problems: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_policy_problems",
			Help: "Policies or parts of them not enforced as written (logged)."}),
		Objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t1route_policy_watched_objects",
			Help: "Objects in the agent's trimmed policy view, by kind."}, []string{"kind"}),
		ComputeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t1route_policy_compute_seconds",
			Help: "Time to recompile this node's policy rules.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)}),
		Denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t1route_policy_denied_packets_total",
			Help: "Packets dropped by a policy, by policy and direction (NetworkPolicy isolation drops count for the first isolating policy by name)."},
			[]string{"kind", "namespace", "policy", "direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.Rules, m.Isolated, m.Problems, m.Objects, m.ComputeSeconds, m.Denied)
	}
	return m
}

type dropKey struct {
	policy    rules.PolicyRef
	direction rules.Direction
}

// dropState remembers the last packet count of each policy flow and what
// is waiting to be logged.
type dropState struct {
	last    map[uint64]uint64
	pending map[dropKey]uint64
	logged  time.Time
	started bool
}

// ObserveFlowStats takes the policy flows' packet counts by cookie (from
// ovs.ParseFlowStats) and the counters of the flows installed (from
// pipeline.RenderPolicy), adds what was dropped since the last call to the deny
// metric and, with LogDenied, logs it per policy at most once an interval.
// Counts that went down (a flow replaced) count from zero; the first call
// only takes the counts as they are (flows outlive agent restarts). Not
// concurrent.
func (e *Enforcer) ObserveFlowStats(counters map[uint64]pipeline.Counter, stats map[uint64]uint64) {
	d := &e.drops
	first := !d.started
	if first {
		d.started, d.logged = true, time.Now()
	}
	for cookie, n := range stats {
		delta := n
		if last, ok := d.last[cookie]; ok && n >= last {
			delta = n - last
		}
		if first {
			delta = 0
		}
		d.last[cookie] = n
		c, ok := counters[cookie]
		if !ok || c.Action != rules.Deny || delta == 0 {
			continue
		}
		e.metrics.Denied.WithLabelValues(c.Policy.Kind, c.Policy.Namespace, c.Policy.Name, c.Direction.String()).Add(float64(delta))
		d.pending[dropKey{c.Policy, c.Direction}] += delta
	}
	for cookie := range d.last {
		if _, ok := stats[cookie]; !ok {
			delete(d.last, cookie) // the flow is gone
		}
	}
	if !e.cfg.LogDenied || len(d.pending) == 0 || time.Since(d.logged) < e.cfg.LogInterval {
		return
	}
	keys := make([]dropKey, 0, len(d.pending))
	for k := range d.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].policy.String()+keys[i].direction.String() < keys[j].policy.String()+keys[j].direction.String()
	})
	for _, k := range keys {
		e.log.Info("denied by policy", zap.String("policy", k.policy.String()), zap.String("direction", k.direction.String()),
			zap.Uint64("packets", d.pending[k]), zap.Duration("since", time.Since(d.logged).Round(time.Second)))
	}
	d.pending, d.logged = map[dropKey]uint64{}, time.Now()
}
