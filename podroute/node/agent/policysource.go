package agent

import (
	"context"
	"sort"

	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// policySource answers `t1route get networkpolicy` and `ovsflows
// --networkpolicy` from what the datapath enforces: the rules file the last
// flow sync installed (pipeline.PolicyFile) and the cookies of the flows it
// rendered, not from what the API server holds.
type policySource struct{ a *Agent }

// NetworkPolicies lists the policies with at least one rule for a local pod,
// or isolating one (namespace "" for all; cluster-scoped policies only then).
func (p policySource) NetworkPolicies(_ context.Context, namespace string) ([]introspect.NetworkPolicy, error) {
	rs, err := rules.ReadFile(pipeline.PolicyFile(p.a.cfg.RunDir))
	if err != nil || rs == nil {
		return nil, err
	}
	byRef := map[rules.PolicyRef]*introspect.NetworkPolicy{}
	pods := map[rules.PolicyRef]map[string]bool{}
	entry := func(ref rules.PolicyRef) *introspect.NetworkPolicy {
		if e, ok := byRef[ref]; ok {
			return e
		}
		e := &introspect.NetworkPolicy{Namespace: ref.Namespace, Name: ref.Name, Kind: ref.Kind}
		byRef[ref], pods[ref] = e, map[string]bool{}
		return e
	}
	for _, r := range rs.Rules {
		entry(r.Policy).Rules++
		for _, pod := range r.Pods {
			pods[r.Policy][pod] = true
		}
	}
	for _, isolated := range rs.Isolated {
		for pod, refs := range isolated {
			for _, ref := range refs {
				entry(ref)
				pods[ref][pod] = true
			}
		}
	}
	for _, c := range p.a.policyCounters() {
		if e, ok := byRef[c.Policy]; ok {
			e.Flows++
		}
	}
	var out []introspect.NetworkPolicy
	for ref, e := range byRef {
		if namespace != "" && ref.Namespace != namespace {
			continue
		}
		e.AppliedTo = make([]string, 0, len(pods[ref]))
		for pod := range pods[ref] {
			e.AppliedTo = append(e.AppliedTo, pod)
		}
		sort.Strings(e.AppliedTo)
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Kind < out[j].Kind
	})
	return out, nil
}

// PolicyFlows keeps the flows whose cookie the named policy's rules (or
// isolation drops) carry; namespace "" names a ClusterNetworkPolicy.
func (p policySource) PolicyFlows(_ context.Context, namespace, name string, flows []introspect.Flow) ([]introspect.Flow, error) {
	counters := p.a.policyCounters()
	var out []introspect.Flow
	for _, f := range flows {
		c, ok := counters[uint64(f.Cookie)]
		if ok && c.Policy.Name == name && c.Policy.Namespace == namespace {
			out = append(out, f)
		}
	}
	return out, nil
}
