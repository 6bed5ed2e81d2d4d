package pipeline

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"

	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// Guard is the management-network guard as the pipeline enforces it on its
// own, from the agent's configuration rather than from the policy rules:
// every packet a pod sends to CIDRs is dropped, ahead of any policy, unless
// it is a reply or related to a connection (the management network may
// call pods), or the pod is one the guard's own ClusterNetworkPolicies
// exempt in the rules in force (guardAllowPolicy; those pods then meet
// the guard's policies like any other). Without rules (a node starting, a
// rules file missing or unreadable) no pod is exempt: the guard never waits
// for the policy enforcer to have seen a pod.
type Guard struct {
	CIDRs []netip.Prefix
}

// guardAllowPolicy matches the names of the guard's ClusterNetworkPolicies
// that exempt pods: podroute/guard names them
// t1route-management-guard-allow-N, or t1route-management-guard-<namespace>-allow-N
// for an install outside t1route-system.
var guardAllowPolicy = regexp.MustCompile(`^t1route-management-guard(-[a-z0-9-]+)?-allow-[0-9]+$`)

// GuardBaseFlows is the number of flows of the guard's table without a
// guard: its default, on to EgressAdmin.
const GuardBaseFlows = 1

// Priorities in the guard's table: exempt ports pass above the drop.
const (
	prioGuardPass = 20
	prioGuardDrop = 10
)

// GuardExempt returns the local pods ("namespace/name") the guard's own
// policies in rs exempt: the subjects of their Admin-tier egress Pass rules.
func GuardExempt(rs *rules.Set) map[string]bool {
	out := map[string]bool{}
	if rs == nil {
		return out
	}
	for _, r := range rs.Rules {
		if r.Policy.Kind == rules.KindClusterNetworkPolicy && guardAllowPolicy.MatchString(r.Policy.Name) &&
			r.Tier == rules.TierAdmin && r.Direction == rules.Egress && r.Action == rules.Pass {
			for _, p := range r.Pods {
				out[p] = true
			}
		}
	}
	return out
}

// guardFlows renders the guard's table: its default and, for g, the drop
// of the management CIDRs and the pass of this gateway and the exempt pods
// (pol's exemptions). The table is entered after the service stage, so a
// Service connection is judged by its endpoint.
func guardFlows(g Guard, gw Gateway, pods []PodPort, pol *rules.Set) []string {
	t := policyTables
	flows := []string{fmt.Sprintf("table=%d,priority=0 actions=goto_table:%d", t.Guard, t.EgressAdmin)}
	if len(g.CIDRs) == 0 {
		return flows
	}
	exempt := GuardExempt(pol)
	var ports []int
	if gw.OFPort > 0 {
		ports = append(ports, gw.OFPort) // the node's side: not a pod
	}
	for _, p := range pods {
		if p.OFPort > 0 && p.Key != "" && exempt[p.Key] {
			ports = append(ports, p.OFPort)
		}
	}
	sort.Ints(ports)
	for _, c := range g.CIDRs {
		m := dstMatch(c.Masked())
		flows = append(flows, fmt.Sprintf("table=%d,priority=%d,cookie=0x%x,%s actions=drop", t.Guard, prioGuardDrop, CookieTag, m))
		for _, port := range ports {
			flows = append(flows, fmt.Sprintf("table=%d,priority=%d,cookie=0x%x,in_port=%d,%s actions=goto_table:%d",
				t.Guard, prioGuardPass, CookieTag, port, m, t.EgressAdmin))
		}
	}
	return flows
}
