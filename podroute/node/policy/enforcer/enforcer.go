// Package enforcer keeps one node's NetworkPolicy and ClusterNetworkPolicy
// rules current: informers on Pods (trimmed as they arrive), Namespaces,
// NetworkPolicies and, once its CRD is served, ClusterNetworkPolicies feed
// a policy.Cluster; changes are coalesced, the node's rules recompiled,
// written to the rules file the flow sync reads, and announced. It also
// turns the policy flows' packet counters into per-policy deny metrics.
package enforcer

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/podroute/node/policy"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// Config configures an Enforcer.
type Config struct {
	NodeName string
	// RulesFile is where the node's rules are written for the flow sync
	// ("" to keep them in memory only).
	RulesFile string
	// Window coalesces bursts of changes into one recompute (default 50 ms).
	Window time.Duration
	// CRDPoll is the longest wait between looks for the ClusterNetworkPolicy
	// CRD while it is not served (default 30 s; the first look again is
	// after 1 s, then twice as long each time).
	CRDPoll time.Duration
	// LogDenied logs, at most once per LogInterval (default 10 s) for each
	// policy and direction, how many packets it denied.
	LogDenied   bool
	LogInterval time.Duration
}

func (c *Config) defaults() {
	if c.Window == 0 {
		c.Window = 50 * time.Millisecond
	}
	if c.CRDPoll == 0 {
		c.CRDPoll = 30 * time.Second
	}
	if c.LogInterval == 0 {
		c.LogInterval = 10 * time.Second
	}
}

// Enforcer computes one node's policy rules from the API.
type Enforcer struct {
	cfg     Config
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	log     *zap.Logger
	metrics *Metrics

	mu      sync.Mutex // guards cluster
	cluster *policy.Cluster

	rules   atomic.Pointer[rules.Set] // nil until the first computation after the informers synced
	guard   atomic.Pointer[policy.GuardSpec]
	dirty   chan struct{}
	changes chan struct{}

	drops dropState
	// republish: write the rules on the next computation even if unchanged.
	republish atomic.Bool
	// served replaces the discovery lookup for the CRD (tests).
	served func() bool
}

// New returns an Enforcer; Run starts it. dyn may be nil (no
// ClusterNetworkPolicies); metrics may be nil.
func New(cfg Config, kube kubernetes.Interface, dyn dynamic.Interface, log *zap.Logger, metrics *Metrics) *Enforcer {
	cfg.defaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Enforcer{cfg: cfg, kube: kube, dyn: dyn, log: log, metrics: metrics, cluster: policy.NewCluster(),
		dirty: make(chan struct{}, 1), changes: make(chan struct{}, 1), drops: dropState{last: map[uint64]uint64{}, pending: map[dropKey]uint64{}}}
}

// Rules returns the node's current rules (nil before the first computation).
func (e *Enforcer) Rules() *rules.Set { return e.rules.Load() }

// Guard returns the management-network guard as the node's kernel
// enforces it (nil before the first computation).
func (e *Enforcer) Guard() *policy.GuardSpec { return e.guard.Load() }

// Changes signals (coalesced) that Rules or Guard changed.
func (e *Enforcer) Changes() <-chan struct{} { return e.changes }

// Ready reports whether the informers have synced and the rules have been
// computed and written once: before that, pods may run unprotected. It is
// derived from the published rules (only Run publishes, after the sync), so
// a caller that sees rules also sees Ready.
func (e *Enforcer) Ready() bool { return e.rules.Load() != nil }

// Republish writes the rules again at the next computation, changed or
// not: the agent found the rules file unreadable or gone.
func (e *Enforcer) Republish() {
	e.republish.Store(true)
	e.markDirty()
}

func (e *Enforcer) markDirty() {
	select {
	case e.dirty <- struct{}{}:
	default:
	}
}

// Run watches the API and keeps the rules current until ctx ends.
func (e *Enforcer) Run(ctx context.Context) error {
	if e.cfg.NodeName == "" {
		return fmt.Errorf("policy enforcement needs the node name")
	}
	if err := e.startInformers(ctx); err != nil {
		return err
	}
	e.recompute() // publishing the first rules makes the enforcer Ready
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.dirty:
		}
		select { // let a burst (a namespace's pods, a kubectl apply -f dir) settle
		case <-ctx.Done():
			return nil
		case <-time.After(e.cfg.Window):
		}
		e.recompute()
	}
}

// recompute compiles the node's rules and, if they changed, publishes them.
func (e *Enforcer) recompute() {
	start := time.Now()
	e.mu.Lock()
	rs := policy.Compile(e.cluster, e.cfg.NodeName)
	guard := policy.HostGuard(e.cluster)
	pods, nss, nps, cnps := e.cluster.Counts()
	e.mu.Unlock()
	if old := e.guard.Load(); old == nil || !reflect.DeepEqual(*old, guard) {
		for _, p := range guard.Problems {
			e.log.Warn("management guard not enforced in the kernel as written", zap.String("problem", p))
		}
		e.guard.Store(&guard)
		e.signal()
	}
	e.metrics.ComputeSeconds.Observe(time.Since(start).Seconds())
	e.metrics.Objects.WithLabelValues("pods").Set(float64(pods))
	e.metrics.Objects.WithLabelValues("namespaces").Set(float64(nss))
	e.metrics.Objects.WithLabelValues("networkpolicies").Set(float64(nps))
	e.metrics.Objects.WithLabelValues("clusternetworkpolicies").Set(float64(cnps))
	old := e.rules.Load()
	if old != nil && reflect.DeepEqual(old, rs) && !e.republish.Swap(false) {
		return
	}
	e.metrics.Rules.Set(float64(len(rs.Rules)))
	e.metrics.Isolated.WithLabelValues("ingress").Set(float64(len(rs.Isolated[rules.Ingress])))
	e.metrics.Isolated.WithLabelValues("egress").Set(float64(len(rs.Isolated[rules.Egress])))
	e.metrics.Problems.Set(float64(len(rs.Problems)))
	if old == nil || !reflect.DeepEqual(old.Problems, rs.Problems) {
		for _, p := range rs.Problems {
			e.log.Warn("policy not enforced as written", zap.String("problem", p))
		}
	}
	if e.cfg.RulesFile != "" {
		if err := rules.WriteFile(e.cfg.RulesFile, rs); err != nil {
			e.log.Error("cannot write the policy rules; the flow sync keeps the previous ones", zap.Error(err))
			e.markDirty() // try again
			return
		}
	}
	e.rules.Store(rs)
	e.log.Debug("policy rules changed", zap.Int("rules", len(rs.Rules)), zap.Duration("took", time.Since(start)))
	e.signal()
	if old == nil {
		e.log.Info("network policy enforcement ready", zap.Int("rules", len(rs.Rules)))
	}
}

func (e *Enforcer) signal() {
	select {
	case e.changes <- struct{}{}:
	default:
	}
}
