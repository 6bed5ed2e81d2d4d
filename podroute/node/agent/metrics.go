package agent

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the agent's Prometheus metrics.
type Metrics struct {
	Flows        prometheus.Gauge
	Pods         prometheus.Gauge
	SyncFailures prometheus.Counter
	SyncDuration prometheus.Histogram
}

// NewMetrics registers the agent's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Flows: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_agent_flows", Help: "Flows installed on the bridge."}),
		Pods:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_agent_pods", Help: "Pods attached to the bridge."}),
		SyncFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "t1route_agent_flow_sync_failures_total",
			Help: "Flow table rebuilds that failed (retried every second)."}),
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t1route_agent_flow_sync_seconds",
			Help: "Time to rebuild and install the flow table.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.Flows, m.Pods, m.SyncFailures, m.SyncDuration)
	}
	return m
}
