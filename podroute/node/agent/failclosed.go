package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// Failing closed at node start. Until the policy enforcer has published
// the node's rules, a pod attached here would run without its
// NetworkPolicies: so the agent writes no CNI conflist (a new node's kubelet
// starts no pod) and answers no flow sync of the CNI plugin (a pod the
// kubelet starts anyway, after a reboot that kept the conflist, fails its
// ADD and is retried); meanwhile the flow table carries the
// management-network guard of the agent's own configuration, which needs
// no rules (pipeline.Guard), and whatever rules the previous agent left
// (an agent restart keeps its pods' policies in force). /readyz says not
// ready until the rules are in.

// PolicyGate is what the agent needs of the policy enforcement to fail
// closed.
type PolicyGate interface {
	// Ready reports whether the node's rules have been computed and
	// written once.
	Ready() bool
	// Republish writes the rules again even if they did not change (the
	// agent found the rules file unreadable or gone).
	Republish()
}

// errPolicyNotReady answers the CNI plugin while the enforcer is not ready.
var errPolicyNotReady = errors.New("network policy enforcement on this node has not computed its rules yet, so no pod is attached " +
	"(it would run without its NetworkPolicies); the kubelet tries again")

// policyReady reports whether pods may be attached: no policy enforcement
// configured, or its rules published.
func (a *Agent) policyReady() bool {
	gate, ok := a.policy.(PolicyGate)
	return a.policy == nil || !ok || gate.Ready()
}

// waitPolicyReady waits until policyReady, or ctx ends (errPolicyNotReady).
func (a *Agent) waitPolicyReady(ctx context.Context) error {
	for !a.policyReady() {
		select {
		case <-ctx.Done():
			return errPolicyNotReady
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// cniSync is the flow sync the CNI plugin asks for: only once policy is
// ready, with the guard.
func (a *Agent) cniSync(table pipeline.FlowTable) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.waitPolicyReady(ctx); err != nil {
			return err
		}
		db := a.db.Load()
		if db == nil {
			return fmt.Errorf("OVSDB is not connected yet")
		}
		res, err := pipeline.Sync(ctx, a.cfg.RunDir, a.cfg.Bridge, a.cfg.Guard, db, table, a.services())
		if err == nil && res.Policy != nil {
			c := res.Policy.Counters
			a.counters.Store(&c)
		}
		return err
	}
}

// afterSync handles what a sync said about the rules: unreadable or gone
// while the enforcer is ready means they must be written again; either
// keeps the agent not ready.
func (a *Agent) afterSync(res pipeline.SyncResult, err error) {
	bad := errors.Is(err, pipeline.ErrPolicyUnreadable) || (err == nil && res.PolicyMissing && a.policy != nil)
	a.rulesOK.Store(err == nil && !bad)
	if !bad {
		return
	}
	if gate, ok := a.policy.(PolicyGate); ok && gate.Ready() {
		a.log.Warn("the policy rules file is unreadable or gone; the table keeps the last rules that could be read, and the enforcer writes them again",
			zap.Error(res.PolicyError))
		gate.Republish()
	}
}

// maybeInstallCNI writes the CNI conflist once policy is ready.
func (a *Agent) maybeInstallCNI(install func() error) {
	if a.cniInstalled || !a.policyReady() {
		return
	}
	if err := install(); err != nil {
		a.log.Warn("could not install the CNI configuration; retrying", zap.Error(err))
		return
	}
	a.cniInstalled = true
	a.log.Info("CNI configuration installed: pods may be attached")
}
