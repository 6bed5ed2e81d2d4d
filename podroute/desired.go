package podroute

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/t1route/t1route/nsx"
)

// Node is what route computation needs of a Kubernetes Node.
type Node struct {
	Name        string
	PodCIDRs    []string
	InternalIPs []string
	ExternalIPs []string
	// Created and UID order claims to one pod CIDR (claims.go): the
	// oldest Node wins among those that hold no route yet.
	Created time.Time
	UID     string
}

// Reasons a node gets no route for a pod CIDR (used as event reasons; the
// reasons of pod CIDRs lost to another node's are in claims.go).
const (
	ReasonInvalidPodCIDR = "InvalidPodCIDR"
	ReasonOutsideCluster = "PodCIDROutsideClusterCIDR"
	ReasonNoNodeAddress  = "NoNodeAddress"
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
// controller writes comes from here. No two routes overlap: a pod CIDR
// equal to, inside or containing another node's gets none (claims.go), the
// oldest node winning; DesiredHeld lets the nodes holding routes keep them.
func Desired(id Identity, clusterCIDRs []netip.Prefix, nodes []Node) (map[string]nsx.Route, []NodeProblem) {
	return DesiredHeld(id, clusterCIDRs, nodes, nil)
}

// DesiredHeld is Desired where holders (route ID -> node name: Holders of
// the Tier-1's routes) say which node holds each route now: a node's claim
// to a route it holds goes before every claim that holds nothing, so no
// newcomer, however old its Node, takes a route away. Pure.
func DesiredHeld(id Identity, clusterCIDRs []netip.Prefix, nodes []Node, holders map[string]string) (map[string]nsx.Route, []NodeProblem) {
	rules := newRouteRules(id, clusterCIDRs)
	var claims []*claim
	var problems []NodeProblem
	for _, n := range nodes {
		cs, ps := rules.nodeClaims(n)
		problems = append(problems, ps...)
		for _, c := range cs {
			c.held = holders[c.route.ID] == c.node
		}
		claims = append(claims, cs...)
	}
	settleAll(newClaimTrie(), claims)
	routes := make(map[string]nsx.Route, len(claims))
	for _, c := range claims {
		if c.accepted {
			routes[c.route.ID] = c.route
		} else {
			problems = append(problems, c.problem())
		}
	}
	sortProblems(problems)
	return routes, problems
}

// sortProblems orders problems by node, then pod CIDR (stable).
func sortProblems(ps []NodeProblem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Node != ps[j].Node {
			return ps[i].Node < ps[j].Node
		}
		return ps[i].CIDR < ps[j].CIDR
	})
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

// nodeClaims returns the routes node n asks for (in pod CIDR order), as
// claims, and the problems of its pod CIDRs that get none whatever other
// nodes ask. Pure; depends on n alone.
func (rr routeRules) nodeClaims(n Node) ([]*claim, []NodeProblem) {
	var claims []*claim
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
		if slices.ContainsFunc(claims, func(c *claim) bool { return c.prefix == pfx }) {
			continue // listed twice by the node itself: one route
		}
		claims = append(claims, &claim{prefix: pfx, node: n.Name, created: n.Created, uid: n.UID, seq: len(claims),
			route: nsx.Route{
				ID:          rr.id.RouteID(pfx.String()),
				DisplayName: truncate(rr.id.Name+"/"+n.Name+"/"+pfx.String(), 255),
				Network:     pfx.String(),
				NextHops:    []nsx.NextHop{{IP: hop.String()}},
				Tags:        rr.id.tags(n.Name),
			}})
	}
	return claims, problems
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
