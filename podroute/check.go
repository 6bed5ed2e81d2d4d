package podroute

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/t1route/t1route/nsx"
)

// RouteCheck is the verdict on one route the cluster needs.
type RouteCheck struct {
	Node, Network, NextHop string
	// Route is the route found on the Tier-1 (zero if missing).
	Route nsx.Route
	// Problem is empty when the route exists with the right next hop.
	Problem string
}

// CheckRoutes compares the routes the nodes need with the owned routes on the
// Tier-1, one verdict per needed route, sorted by node. Node problems (no
// address, CIDR outside the cluster CIDR) are verdicts too: such a node's
// pods are not routable. Pure.
func CheckRoutes(id Identity, clusterCIDRs []netip.Prefix, nodes []Node, actual []nsx.Route) []RouteCheck {
	want, problems := Desired(id, clusterCIDRs, nodes)
	have := make(map[string]nsx.Route, len(actual))
	for _, r := range actual {
		if id.Owns(r) {
			have[r.ID] = r
		}
	}
	var out []RouteCheck
	for rid, w := range want {
		c := RouteCheck{Node: NodeOf(w), Network: w.Network, NextHop: w.NextHops[0].IP}
		got, ok := have[rid]
		switch {
		case !ok:
			c.Problem = "missing on the Tier-1 (is the controller running? see its events and logs)"
		case got.Network != w.Network:
			c.Problem = fmt.Sprintf("network is %s on the Tier-1", got.Network)
		case len(got.NextHops) != 1 || got.NextHops[0].IP != c.NextHop:
			c.Problem = fmt.Sprintf("next hop is %v on the Tier-1, want %s", NextHopIPs(got), c.NextHop)
		}
		c.Route = got
		out = append(out, c)
	}
	for _, p := range problems {
		out = append(out, RouteCheck{Node: p.Node, Network: p.CIDR, Problem: p.Message})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Network < out[j].Network
	})
	return out
}

// NextHopIPs lists a route's next-hop addresses.
func NextHopIPs(r nsx.Route) []string {
	out := make([]string, 0, len(r.NextHops))
	for _, h := range r.NextHops {
		out = append(out, h.IP)
	}
	return out
}
