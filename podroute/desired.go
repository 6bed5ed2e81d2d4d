package podroute

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/t1route/t1route/nsx"
)

// Node is what route computation needs of a Kubernetes Node.
type Node struct {
	Name        string
	PodCIDRs    []string
	InternalIPs []string
	ExternalIPs []string
}

// Reasons a node gets no route for a pod CIDR (used as event reasons).
const (
	ReasonInvalidPodCIDR  = "InvalidPodCIDR"
	ReasonOutsideCluster  = "PodCIDROutsideClusterCIDR"
	ReasonNoNodeAddress   = "NoNodeAddress"
	ReasonDuplicatePodCID = "DuplicatePodCIDR"
	// ReasonRefusedClusterCIDR: the pod CIDR is a default route, or lies in
	// a cluster CIDR that CheckClusterCIDR refuses (the configuration parser
	// refuses it first; this is the controller's own guard).
	ReasonRefusedClusterCIDR = "ClusterCIDRRefused"
)

// NodeProblem says why a node's pod CIDR gets no route.
type NodeProblem struct {
	Node, CIDR, Reason, Message string
}

// Desired computes the routes the cluster needs, keyed by route ID: one per
// node pod CIDR inside the cluster CIDRs, next hop the node's address of the
// same family (InternalIP first, then ExternalIP). Pure. Whatever the input,
// no route is for a default route or a prefix outside the cluster CIDRs,
// and cluster CIDRs CheckClusterCIDR refuses (/0, loopback, multicast, ...;
// short ones pass: the parser decides those) route nothing: every route the
// controller writes comes from here.
func Desired(id Identity, clusterCIDRs []netip.Prefix, nodes []Node) (map[string]nsx.Route, []NodeProblem) {
	rules := newRouteRules(id, clusterCIDRs)
	sorted := append([]Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	routes := make(map[string]nsx.Route, len(nodes))
	var problems []NodeProblem
	for _, n := range sorted {
		rs, ps := rules.nodeRoutes(n)
		problems = append(problems, ps...)
		for _, r := range rs {
			if other, dup := routes[r.ID]; dup { // sorted: the first node by name keeps it
				problems = append(problems, duplicateProblem(n.Name, r.Network, NodeOf(other)))
				continue
			}
			routes[r.ID] = r
		}
	}
	return routes, problems
}

// duplicateProblem is node's problem when winner has its pod CIDR too.
func duplicateProblem(node, cidr, winner string) NodeProblem {
	return NodeProblem{Node: node, CIDR: cidr, Reason: ReasonDuplicatePodCID,
		Message: fmt.Sprintf("pod CIDR %s is also node %s's; only %s gets the route", cidr, winner, winner)}
}

// routeRules computes one node's routes: what Desired does for each node
// before two nodes' claims to one pod CIDR are settled.
type routeRules struct {
	id           Identity
	clusterCIDRs []netip.Prefix // as configured, for messages
	usable       []netip.Prefix
	refused      []refusedCIDR
}

func newRouteRules(id Identity, clusterCIDRs []netip.Prefix) routeRules {
	r := routeRules{id: id, clusterCIDRs: clusterCIDRs}
	for _, c := range clusterCIDRs {
		if err := CheckClusterCIDR(c, true); err != nil {
			r.refused = append(r.refused, refusedCIDR{c, err})
			continue
		}
		r.usable = append(r.usable, c)
	}
	return r
}

// nodeRoutes returns the routes node n asks for (in pod CIDR order) and
// the problems of its pod CIDRs that get none. Pure; depends on n alone.
func (rr routeRules) nodeRoutes(n Node) ([]nsx.Route, []NodeProblem) {
	var routes []nsx.Route
	var problems []NodeProblem
	for _, raw := range n.PodCIDRs {
		problem := func(reason, format string, args ...any) {
			problems = append(problems, NodeProblem{Node: n.Name, CIDR: raw, Reason: reason, Message: fmt.Sprintf(format, args...)})
		}
		pfx, err := netip.ParsePrefix(raw)
		if err != nil || pfx.Masked() != pfx {
			problem(ReasonInvalidPodCIDR, "pod CIDR %q is not a valid network CIDR; no route is created for it", raw)
			continue
		}
		if pfx.Bits() == 0 {
			problem(ReasonRefusedClusterCIDR, "pod CIDR %s is a default route; t1route never routes one", pfx)
			continue
		}
		if !within(pfx, rr.usable) {
			if c, err := refusedContaining(pfx, rr.refused); err != nil {
				problem(ReasonRefusedClusterCIDR, "pod CIDR %s is inside CLUSTER_CIDR %s, which t1route refuses (%v); no route is created for it", pfx, c, err)
			} else {
				problem(ReasonOutsideCluster, "pod CIDR %s is outside CLUSTER_CIDR %v; no route is created for it", pfx, rr.clusterCIDRs)
			}
			continue
		}
		hop, ok := nextHop(n, pfx.Addr().Is4())
		if !ok {
			problem(ReasonNoNodeAddress, "node has no InternalIP or ExternalIP of the IP family of pod CIDR %s; no route until it has one", pfx)
			continue
		}
		rid := rr.id.RouteID(pfx.String())
		if slices.ContainsFunc(routes, func(r nsx.Route) bool { return r.ID == rid }) {
			continue // listed twice by the node itself: one route
		}
		routes = append(routes, nsx.Route{
			ID:          rid,
			DisplayName: truncate(rr.id.Name+"/"+n.Name+"/"+pfx.String(), 255),
			Network:     pfx.String(),
			NextHops:    []nsx.NextHop{{IP: hop.String()}},
			Tags:        rr.id.tags(n.Name),
		})
	}
	return routes, problems
}

type refusedCIDR struct {
	prefix netip.Prefix
	err    error
}

// refusedContaining finds the first refused cluster CIDR pfx lies in, if any.
func refusedContaining(pfx netip.Prefix, refused []refusedCIDR) (netip.Prefix, error) {
	for _, r := range refused {
		if within(pfx, []netip.Prefix{r.prefix}) {
			return r.prefix, r.err
		}
	}
	return netip.Prefix{}, nil
}

func within(pfx netip.Prefix, cidrs []netip.Prefix) bool {
	for _, c := range cidrs {
		if c.Addr().Is4() == pfx.Addr().Is4() && c.Bits() <= pfx.Bits() && c.Contains(pfx.Addr()) {
			return true
		}
	}
	return false
}

func nextHop(n Node, v4 bool) (netip.Addr, bool) {
	for _, list := range [][]string{n.InternalIPs, n.ExternalIPs} {
		for _, s := range list {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			// Unmap first: ::ffff:198.51.100.1 is an IPv4 address.
			if a = a.Unmap(); a.Is4() == v4 && !a.IsUnspecified() && a.Zone() == "" {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}
