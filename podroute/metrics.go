package podroute

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the controller's Prometheus metrics.
type Metrics struct {
	DesiredRoutes     prometheus.Gauge
	ActualRoutes      prometheus.Gauge
	ReconcileDuration prometheus.Histogram
	Errors            prometheus.Counter
	LastSuccess       prometheus.Gauge
	Leader            prometheus.Gauge
	RoutesOverLimit   prometheus.Gauge
	NSXCalls          *prometheus.CounterVec
	NSXCallDuration   *prometheus.HistogramVec
	// ConditionPatches counts node condition patches by result (ok, error).
	ConditionPatches *prometheus.CounterVec
	// GuardSynced is 1 while the management-network guard's
	// ClusterNetworkPolicies are as configured (podroute/guard).
	GuardSynced prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		DesiredRoutes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_desired_routes", Help: "Routes the cluster's nodes need."}),
		ActualRoutes:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_actual_routes", Help: "Routes of this cluster on the Tier-1 after the last pass."}),
		ReconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t1route_reconcile_duration_seconds",
			Help: "Duration of reconcile passes.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		Errors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "t1route_reconcile_errors_total", Help: "Reconcile passes that failed."}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_last_successful_sync_timestamp_seconds", Help: "When a pass last succeeded."}),
		Leader:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_leader", Help: "1 while this replica is the leader."}),
		RoutesOverLimit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_routes_over_limit",
			Help: "Routes the cluster needs beyond --max-routes (not created)."}),
		NSXCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t1route_nsx_calls_total",
			Help: "NSX API calls by operation and HTTP status of the last attempt (0: no answer)."}, []string{"operation", "status"}),
		NSXCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t1route_nsx_call_duration_seconds",
			Help: "NSX API call duration, retries included.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"operation"}),
		ConditionPatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t1route_node_condition_patches_total",
			Help: "Patches of nodes' NetworkUnavailable condition by result (ok, error; failed ones are retried)."}, []string{"result"}),
		GuardSynced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t1route_management_guard_synced",
			Help: "1 when the leader last found or made the management-network guard's ClusterNetworkPolicies as configured (none configured: none left); 0 when it cannot (e.g. their CRD is not installed)."}),
	}
	if reg != nil {
		reg.MustRegister(m.DesiredRoutes, m.ActualRoutes, m.ReconcileDuration, m.Errors, m.LastSuccess, m.Leader, m.RoutesOverLimit, m.NSXCalls, m.NSXCallDuration, m.ConditionPatches, m.GuardSynced)
	}
	return m
}
