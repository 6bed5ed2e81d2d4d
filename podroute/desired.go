package podroute

import (
	"fmt"
	"net/netip"
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
	var usable []netip.Prefix
	var refused []refusedCIDR
	for _, c := range clusterCIDRs {
		if err := CheckClusterCIDR(c, true); err != nil {
			refused = append(refused, refusedCIDR{c, err})
			continue
		}
		usable = append(usable, c)
	}
	sorted := append([]Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	routes := make(map[string]nsx.Route, len(nodes))
	owner := make(map[string]string, len(nodes)) // route ID -> node
	var problems []NodeProblem
	for _, n := range sorted {
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
			if !within(pfx, usable) {
				if c, err := refusedContaining(pfx, refused); err != nil {
					problem(ReasonRefusedClusterCIDR, "pod CIDR %s is inside CLUSTER_CIDR %s, which t1route refuses (%v); no route is created for it", pfx, c, err)
				} else {
					problem(ReasonOutsideCluster, "pod CIDR %s is outside CLUSTER_CIDR %v; no route is created for it", pfx, clusterCIDRs)
				}
				continue
			}
			hop, ok := nextHop(n, pfx.Addr().Is4())
			if !ok {
				problem(ReasonNoNodeAddress, "node has no InternalIP or ExternalIP of the IP family of pod CIDR %s; no route until it has one", pfx)
				continue
			}
			rid := id.RouteID(pfx.String())
			if other, dup := owner[rid]; dup {
				problem(ReasonDuplicatePodCID, "pod CIDR %s is also node %s's; only %s gets the route", pfx, other, other)
				continue
			}
			owner[rid] = n.Name
			routes[rid] = nsx.Route{
				ID:          rid,
				DisplayName: truncate(id.Name+"/"+n.Name+"/"+pfx.String(), 255),
				Network:     pfx.String(),
				NextHops:    []nsx.NextHop{{IP: hop.String()}},
				Tags:        id.tags(n.Name),
			}
		}
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
