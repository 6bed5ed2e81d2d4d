package podroute

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/t1route/t1route/nsx"
)

// Node condition reasons, as the Kubernetes route controller sets them.
const (
	ReasonRouteCreated   = "RouteCreated"
	ReasonNoRouteCreated = "NoRouteCreated"
)

// Sizing of node condition patches. At 10,000 nodes every node needs one
// patch when the controller starts on a cluster the cloud provider created
// with NetworkUnavailable=True; the goal is every condition set within 30 s
// of its route, i.e. at least 10,000/30 = 334 patches/s. They go through
// their own clientset (connect.NewControllerClients), whose token bucket
// allows NodeStatusQPS, so they never wait behind, nor hold up, the
// controller's other calls (lease renewals, events, the node list/watch),
// which keep the main client's 50/s.
const (
	// NodeStatusQPS is 500/s: 10,000 patches in 20 s, leaving a third of the
	// 30 s for the routes themselves, retries and a loaded API server
	// (measured: make bench-conditions; at 400/s the last node waited 30.7 s
	// on a loaded 2-core machine). The API server bears it: before node
	// leases, a 5,000-node cluster's kubelets posted full node status every
	// 10 s, 500 writes/s, the load it is sized for; this is that load for
	// ~20 s once, and only real changes after. T1ROUTE_NODE_STATUS_QPS
	// lowers it for a small API server.
	NodeStatusQPS = 500
	// NodeStatusBurst lets a small change (up to 100 nodes) go out at once.
	NodeStatusBurst = 100
	// DefaultConditionWorkers bounds patches in flight, and so the share of
	// the API server's concurrency they take. API Priority and Fairness
	// limits concurrency, not rate: with the default 600 seats (400
	// read-only + 200 mutating), a ServiceAccount outside kube-system falls
	// in workload-low (245 seats), one in kube-system in workload-high (98
	// seats); 16 patches in flight are 7% and 16% of them, and APF queues a
	// flow beyond its fair share instead of starving the others. At a
	// patch's 5-30 ms, 16 in flight sustain 500/s and more, so the token
	// bucket, not the workers, sets the rate.
	DefaultConditionWorkers = 16
)

// Retries of a failed node condition patch back off per node from
// conditionRetryBase to conditionRetryMax: an outage of the API server is
// retried about once a minute per node, and a node is never left more than
// a minute behind once the API server answers again.
const (
	conditionRetryBase = 200 * time.Millisecond
	conditionRetryMax  = time.Minute
)

// wantCondition is a node's NetworkUnavailable condition as it should be.
type wantCondition struct {
	unavailable bool
	reason, msg string
	// exact: the message matters too, as it names the node holding a pod
	// CIDR this node claims (a new holder must be told).
	exact bool
}

// status is the condition status w asks for.
func (w wantCondition) status() corev1.ConditionStatus {
	if w.unavailable {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// satisfiedBy reports whether a node whose NetworkUnavailable condition is
// cur (nil: none) needs no patch for w. Status and reason are what users
// and schedulers act on; a condition that differs only in its message (the
// route count, the wording of a refusal) is not patched: at 10,000 nodes
// such rewrites would cost 10,000 patches for no change in behaviour. The
// detail of a problem is also in the node's events and the log.
func (w wantCondition) satisfiedBy(cur *corev1.NodeCondition) bool {
	return cur != nil && cur.Status == w.status() && cur.Reason == w.reason && (!w.exact || cur.Message == w.msg)
}

// updateConditions brings each node's wanted NetworkUnavailable condition
// up to date and queues the nodes whose condition may need a patch:
// False/RouteCreated once all of a node's routes are on the Tier-1, True/
// NoRouteCreated with the reason while any is not. Nodes without pod CIDRs
// get none from t1route.
//
// A full pass (start, resync, after a failure, or when claims or the route
// limit may have moved routes between nodes) computes every node's
// condition and checks every node against it, which also repairs conditions
// changed by others. Other passes, those of node changes, compute it for the
// nodes a node change can affect: those recomputed, and those with a
// problem now or in the previous pass (refusals, lost claims, the route
// limit). Never blocks: a pass over routes never waits for node status
// patches. A queued node is patched with the newest condition wanted when a
// worker takes it, so a newer pass never loses to an older one, and a node
// queued twice is patched once.
func (c *Controller) updateConditions(res cacheResult, desired map[string]nsx.Route, problems []NodeProblem, full bool) {
	byNode := map[string][]string{}
	exact := map[string]bool{}
	for _, p := range problems {
		byNode[p.Node] = append(byNode[p.Node], p.Message)
		exact[p.Node] = exact[p.Node] || namesHolder(p.Reason)
	}
	type queued struct {
		name string
		want wantCondition
	}
	var check []queued
	c.mu.Lock()
	for id, reason := range c.failed {
		if r, ok := desired[id]; ok {
			byNode[NodeOf(r)] = append(byNode[NodeOf(r)], fmt.Sprintf("NSX refused the route for %s: %s", r.Network, reason))
		}
	}
	for _, name := range res.removed {
		delete(c.wantCond, name)
		delete(c.patched, name)
	}
	evaluate := func(name string, e *nodeEntry) {
		var w wantCondition
		var ok bool
		if msgs := byNode[name]; len(msgs) > 0 {
			sort.Strings(msgs)
			w, ok = wantCondition{true, ReasonNoRouteCreated, strings.Join(msgs, "; "), exact[name]}, true
		} else if n := e.routesCreated(desired); n > 0 {
			if e.created != n || e.createdMsg == "" {
				e.created, e.createdMsg = n, fmt.Sprintf("t1route created %d route(s) on %s", n, c.cfg.Router)
			}
			w, ok = wantCondition{false, ReasonRouteCreated, e.createdMsg, false}, true
		}
		old, had := c.wantCond[name]
		switch {
		case !ok:
			delete(c.wantCond, name)
		case !had || old != w || full:
			c.wantCond[name] = w
			check = append(check, queued{name, w})
		}
	}
	if full {
		for name, e := range c.cache.entries {
			evaluate(name, e)
		}
		for name := range c.wantCond { // forget nodes that are gone
			if _, ok := c.cache.entries[name]; !ok {
				delete(c.wantCond, name)
			}
		}
		for name := range c.patched {
			if _, ok := c.wantCond[name]; !ok {
				delete(c.patched, name)
			}
		}
	} else {
		seen := map[string]bool{}
		once := func(name string) {
			if e := c.cache.entries[name]; e != nil && !seen[name] {
				seen[name] = true
				evaluate(name, e)
			}
		}
		for _, name := range res.recomputed {
			once(name)
			if w, ok := c.wantCond[name]; ok { // a changed Node: check it even if its condition is not
				check = append(check, queued{name, w})
			}
		}
		for name := range byNode {
			once(name)
		}
		for name := range c.problemNodes {
			once(name)
		}
	}
	c.problemNodes = make(map[string]bool, len(byNode))
	for name := range byNode {
		c.problemNodes[name] = true
	}
	c.mu.Unlock()
	for _, q := range check {
		if c.needsPatch(q.name, q.want) {
			c.condQueue.Add(q.name)
		}
	}
}

// needsPatch reports whether node name's condition differs from w, as the
// informer shows it and as this controller last set it.
func (c *Controller) needsPatch(name string, w wantCondition) bool {
	n, err := c.nodes.Get(name)
	if err != nil {
		return false // gone: nothing to patch
	}
	var cur *corev1.NodeCondition
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeNetworkUnavailable {
			cur = &n.Status.Conditions[i]
		}
	}
	if w.satisfiedBy(cur) {
		return false
	}
	c.mu.Lock()
	p, ok := c.patched[name]
	c.mu.Unlock()
	// Set by this controller recently: the informer has not caught up.
	// Re-checked after a resync period, which repairs out-of-band changes.
	return !ok || p.want.status() != w.status() || p.want.reason != w.reason || (w.exact && p.want.msg != w.msg) || time.Since(p.at) >= c.cfg.ResyncPeriod
}

// runConditionWorker patches queued nodes until the queue shuts down.
func (c *Controller) runConditionWorker(ctx context.Context) {
	for c.processNextCondition(ctx) {
	}
}

func (c *Controller) processNextCondition(ctx context.Context) bool {
	name, quit := c.condQueue.Get()
	if quit {
		return false
	}
	defer c.condQueue.Done(name)
	c.mu.Lock()
	w, ok := c.wantCond[name]
	c.mu.Unlock()
	if !ok || !c.needsPatch(name, w) {
		c.condQueue.Forget(name)
		return true
	}
	err := c.patchCondition(ctx, name, w)
	switch {
	case err == nil:
		c.mu.Lock()
		c.patched[name] = patchedCondition{want: w, at: time.Now()}
		c.mu.Unlock()
		c.condQueue.Forget(name)
		c.metrics.ConditionPatches.WithLabelValues("ok").Inc()
	case apierrors.IsNotFound(err):
		c.condQueue.Forget(name) // the node is gone
	case ctx.Err() != nil:
		// Shutting down: the next leader patches it.
	default:
		c.metrics.ConditionPatches.WithLabelValues("error").Inc()
		retries := c.condQueue.NumRequeues(name)
		// Once per node, then every 10th retry: an outage of the API server
		// would otherwise log every node on every retry.
		if retries%10 == 0 {
			c.log.Warn("could not set the node's NetworkUnavailable condition; will retry", zap.String("node", name),
				zap.Int("retries", retries), zap.Error(err))
		}
		c.condQueue.AddRateLimited(name)
	}
	return true
}

func (c *Controller) patchCondition(ctx context.Context, name string, w wantCondition) error {
	if c.status == nil {
		return nil
	}
	now := metav1.NewTime(time.Now())
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: corev1.NodeNetworkUnavailable, Status: w.status(), Reason: w.reason, Message: w.msg,
		LastTransitionTime: now, LastHeartbeatTime: now,
	}}}})
	if err != nil {
		return err
	}
	_, err = c.status.CoreV1().Nodes().PatchStatus(ctx, name, patch)
	return err
}

// newConditionQueue is the node condition workqueue: per-node exponential
// backoff only (no overall bucket: the status client's token bucket sets
// the rate, and a bucket here would also slow retries after an outage).
func newConditionQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](conditionRetryBase, conditionRetryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "t1route_node_conditions"})
}
