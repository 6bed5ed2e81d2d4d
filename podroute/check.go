package podroute

import (
	"context"
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
	have := make(map[string]nsx.Route, len(actual))
	for _, r := range actual {
		if id.Owns(r) {
			have[r.ID] = r
		}
	}
	// As the controller decides: the node holding a route keeps it.
	want, problems := DesiredHeld(id, clusterCIDRs, nodes, Holders(id, have))
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
	sortChecks(out)
	return out
}

// sortChecks orders verdicts by node, then network.
func sortChecks(out []RouteCheck) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Network < out[j].Network
	})
}

// NextHopIPs lists a route's next-hop addresses.
func NextHopIPs(r nsx.Route) []string {
	out := make([]string, 0, len(r.NextHops))
	for _, h := range r.NextHops {
		out = append(out, h.IP)
	}
	return out
}

// CheckClient is what a route check reads from NSX.
type CheckClient interface {
	// Installed reads the Tier-1's or VPC's forwarding table, every page.
	Installed(ctx context.Context, router nsx.RouterPath) (*nsx.InstalledRoutes, error)
	// ListRoutes lists the Tier-1's or VPC's static routes, every page.
	ListRoutes(ctx context.Context, router nsx.RouterPath) ([]nsx.Route, error)
	// RealizeRoutesWith gives routes' realized state, asking NSX one route at
	// a time only for those installed does not hold (nil: every route).
	RealizeRoutesWith(ctx context.Context, router nsx.RouterPath, routes []nsx.Route, installed *nsx.InstalledRoutes) ([]nsx.RouteRealization, error)
}

// RouteVerdict is one route's check with its realization (meaningful when
// Problem is empty).
type RouteVerdict struct {
	RouteCheck
	Realization nsx.RouteRealization
}

// Check gives a verdict on every route the nodes need, reading NSX as little
// as it can: the Tier-1's forwarding table first (1 call per 1,000 routes).
// When it holds every needed route through its node, that is the verdict:
// the data plane is what routes the pods, and the route list is not read
// (RouteCheck.Route is then the route as desired). Otherwise the route list
// explains each route (missing, wrong next hop), and routes configured right
// but not installed are asked their realized state one by one (in progress,
// or NSX's error). Node problems are verdicts in both cases.
func Check(ctx context.Context, c CheckClient, router nsx.RouterPath, id Identity, clusterCIDRs []netip.Prefix, nodes []Node) ([]RouteVerdict, error) {
	installed, err := c.Installed(ctx, router)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read the forwarding table of %s: %w", router, err)
		}
		installed = nil // unreadable: the route list and per-route realization decide
	}
	if out, ok := checkInstalled(id, clusterCIDRs, nodes, installed); ok {
		return out, nil
	}
	actual, err := c.ListRoutes(ctx, router)
	if err != nil {
		return nil, fmt.Errorf("list routes on %s: %w", router, err)
	}
	checks := CheckRoutes(id, clusterCIDRs, nodes, actual)
	var configured []nsx.Route
	for _, ch := range checks {
		if ch.Problem == "" {
			configured = append(configured, ch.Route)
		}
	}
	realized, err := c.RealizeRoutesWith(ctx, router, configured, installed)
	if err != nil {
		return nil, fmt.Errorf("read realization on %s: %w", router, err)
	}
	out := make([]RouteVerdict, 0, len(checks))
	for _, ch := range checks {
		v := RouteVerdict{RouteCheck: ch}
		if ch.Problem == "" {
			v.Realization, realized = realized[0], realized[1:]
		}
		out = append(out, v)
	}
	return out, nil
}

// checkInstalled is Check's first reading: the verdicts, and true, when
// installed holds every route the nodes need (at least one). Pure.
func checkInstalled(id Identity, clusterCIDRs []netip.Prefix, nodes []Node, installed *nsx.InstalledRoutes) ([]RouteVerdict, bool) {
	want, problems := Desired(id, clusterCIDRs, nodes)
	if len(want) == 0 {
		return nil, false
	}
	checks := make([]RouteCheck, 0, len(want)+len(problems))
	for _, w := range want {
		if !installed.Holds(w) {
			return nil, false
		}
		checks = append(checks, RouteCheck{Node: NodeOf(w), Network: w.Network, NextHop: w.NextHops[0].IP, Route: w})
	}
	for _, p := range problems {
		checks = append(checks, RouteCheck{Node: p.Node, Network: p.CIDR, Problem: p.Message})
	}
	sortChecks(checks)
	out := make([]RouteVerdict, len(checks))
	for i, c := range checks {
		out[i].RouteCheck = c
		if c.Problem == "" {
			out[i].Realization.State = nsx.StateRealized
		}
	}
	return out, true
}
