package podroute

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx"
)

// Node condition reasons, as the Kubernetes route controller sets them.
const (
	ReasonRouteCreated   = "RouteCreated"
	ReasonNoRouteCreated = "NoRouteCreated"
)

// wantCondition is a node's NetworkUnavailable condition as it should be.
type wantCondition struct {
	unavailable bool
	reason, msg string
}

// desiredConditions computes each node's NetworkUnavailable condition:
// False/RouteCreated once all of a node's routes are on the Tier-1, True/
// NoRouteCreated with the reason while any is not. Nodes without pod CIDRs
// get none from t1route.
func (c *Controller) desiredConditions(nodes []Node, desired map[string]nsx.Route, problems []NodeProblem) map[string]wantCondition {
	want := make(map[string]wantCondition, len(nodes))
	byNode := map[string][]string{}
	for _, p := range problems {
		byNode[p.Node] = append(byNode[p.Node], p.Message)
	}
	c.mu.Lock()
	for id, reason := range c.failed {
		if r, ok := desired[id]; ok {
			byNode[NodeOf(r)] = append(byNode[NodeOf(r)], fmt.Sprintf("NSX refused the route for %s: %s", r.Network, reason))
		}
	}
	c.mu.Unlock()
	hasRoute := map[string]int{}
	for _, r := range desired {
		hasRoute[NodeOf(r)]++
	}
	for _, n := range nodes {
		switch {
		case len(byNode[n.Name]) > 0:
			msgs := byNode[n.Name]
			sort.Strings(msgs)
			want[n.Name] = wantCondition{true, ReasonNoRouteCreated, strings.Join(msgs, "; ")}
		case hasRoute[n.Name] > 0:
			want[n.Name] = wantCondition{false, ReasonRouteCreated, fmt.Sprintf("t1route created %d route(s) on %s", hasRoute[n.Name], c.cfg.Tier1Path)}
		}
	}
	return want
}

// offerConditions hands the newest conditions to the condition worker,
// replacing any it has not started on. Never blocks: a pass over routes never
// waits for node status patches (thousands of them at the API server's rate).
func (c *Controller) offerConditions(want map[string]wantCondition) {
	for {
		select {
		case c.conditions <- want:
			return
		default:
			select {
			case <-c.conditions: // drop the older set
			default:
			}
		}
	}
}

// runConditions patches conditions from the newest set offered, until ctx ends.
func (c *Controller) runConditions(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case want := <-c.conditions:
			c.applyConditions(ctx, want)
		}
	}
}

// applyConditions patches the nodes whose condition differs; it stops early
// when a newer set is offered (the worker then starts on that one).
func (c *Controller) applyConditions(ctx context.Context, want map[string]wantCondition) {
	type job struct {
		name string
		want wantCondition
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range c.cfg.ConditionWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				err := c.patchCondition(ctx, j.name, j.want)
				if err != nil {
					if ctx.Err() == nil {
						c.log.Warn("could not set the node's NetworkUnavailable condition", zap.String("node", j.name), zap.Error(err))
					}
					continue
				}
				c.mu.Lock()
				c.patched[j.name] = patchedCondition{want: j.want, at: time.Now()}
				c.mu.Unlock()
			}
		}()
	}
	c.mu.Lock()
	for name := range c.patched { // forget nodes that are gone
		if _, ok := want[name]; !ok {
			delete(c.patched, name)
		}
	}
	c.mu.Unlock()
	for name, w := range want {
		if len(c.conditions) > 0 {
			break // superseded
		}
		if c.conditionCurrent(name, w) {
			continue
		}
		c.mu.Lock()
		p, ok := c.patched[name]
		c.mu.Unlock()
		// Set by this controller recently: the informer has not caught up.
		// Re-checked after a resync period, which repairs out-of-band changes.
		if ok && p.want == w && time.Since(p.at) < c.cfg.ResyncPeriod {
			continue
		}
		select {
		case jobs <- job{name, w}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// conditionCurrent reports whether the node (from the cache) already has the condition.
func (c *Controller) conditionCurrent(name string, w wantCondition) bool {
	n, err := c.nodes.Get(name)
	if err != nil {
		return true // gone: nothing to patch
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeNetworkUnavailable {
			status := corev1.ConditionFalse
			if w.unavailable {
				status = corev1.ConditionTrue
			}
			return cond.Status == status && cond.Reason == w.reason && cond.Message == w.msg
		}
	}
	return false
}

func (c *Controller) patchCondition(ctx context.Context, name string, w wantCondition) error {
	if c.kube == nil {
		return nil
	}
	status := corev1.ConditionFalse
	if w.unavailable {
		status = corev1.ConditionTrue
	}
	now := metav1.NewTime(time.Now())
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: corev1.NodeNetworkUnavailable, Status: status, Reason: w.reason, Message: w.msg,
		LastTransitionTime: now, LastHeartbeatTime: now,
	}}}})
	if err != nil {
		return err
	}
	_, err = c.kube.CoreV1().Nodes().PatchStatus(ctx, name, patch)
	return err
}
