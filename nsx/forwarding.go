package nsx

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"
	"go.uber.org/zap"
)

// Realization in bulk: a Tier-1's forwarding table shows what its data plane
// installed, 1,000 entries a call, where the realized state costs one call
// per route (200 s for 10,000 routes at the client's 50 requests/s).

// ForwardingEntry is one route installed in a Tier-1's forwarding table: one
// network through one next hop, on one edge node.
type ForwardingEntry struct {
	Network   string // as the data plane holds it (host bits cleared)
	NextHop   string
	RouteType string // NSX's route type, e.g. "t1s" (Tier-1 static)
	EdgeNode  string // the transport node whose table holds it
}

// ForwardingTable returns the static routes installed in a Tier-1's
// forwarding table (route_source STATIC), following the cursor across pages.
// An edge node whose table NSX could not read is an error naming it.
//
// A VPC's forwarding table (GET .../vpcs/<vpc>/forwarding-table, documented
// from NSX 9; the SDK t1route builds on, services/nsxt v0.12.0, has no
// client for it) is read whole: its documented parameters do not promise
// route_source, and Holds matches by network and next hop, not by type. A
// manager without the endpoint answers 404, and callers fall back to each
// route's realized state.
func (c *Client) ForwardingTable(ctx context.Context, router RouterPath) ([]ForwardingEntry, error) {
	if err := router.checked(); err != nil {
		return nil, err
	}
	tier1Path := router.String()
	path := router.apiPath() + "/forwarding-table"
	var out []ForwardingEntry
	cursor := ""
	for page := 1; ; page++ {
		query := url.Values{"page_size": {strconv.FormatInt(c.pageSize, 10)}}
		if !router.IsVPC() {
			query.Set("route_source", "STATIC")
		}
		if cursor != "" {
			query.Set("cursor", cursor)
		}
		var res forwardingPage
		err := c.run(ctx, "get forwarding table", "GET", path, func(ctx context.Context) error {
			return c.send(ctx, "GET", path, query, nil, &res)
		})
		if err != nil {
			return nil, err
		}
		if res.Results == nil && res.ResultCount == nil && res.Cursor == nil {
			// Not a list answer (an error body sent with 200, say).
			return nil, fmt.Errorf("nsx: forwarding table of %s: NSX answered 200 with a body that is not a list (page %d); not trusting it", tier1Path, page)
		}
		for _, t := range res.Results {
			if t.Status != "" && t.Status != model.RoutingTable_STATUS_SUCCESS {
				return nil, fmt.Errorf("nsx: forwarding table of %s: edge node %s: %s: %s", tier1Path, t.EdgeNode, t.Status, printable(t.ErrorMessage, 300))
			}
			for _, e := range t.RouteEntries {
				out = append(out, ForwardingEntry{Network: e.Network, NextHop: e.NextHop, RouteType: e.RouteType, EdgeNode: t.EdgeNode})
			}
		}
		next := deref(res.Cursor)
		if next == "" {
			return out, nil
		}
		if next == cursor {
			return nil, fmt.Errorf("nsx: forwarding table of %s: NSX returned the same cursor twice (page %d); stopping rather than looping", tier1Path, page)
		}
		cursor = next
	}
}

// RouteRealization is one route's realized state as RealizeRoutes found it.
type RouteRealization struct {
	Realization
	// Err is why NSX could not be asked about this route (State is then
	// StateUnknown); only routes missing from the forwarding table are asked.
	Err error
}

// fallbackWorkers bounds the per-route realized-state calls in flight; the
// transport's rate limit bounds them further.
const fallbackWorkers = 4

// RealizeRoutes returns the realized state of routes of a Tier-1, in their
// order, from one read of its forwarding table: a route whose network is
// installed through every one of its next hops, on every edge node, is
// REALIZED; only the others are asked one by one (Realized on their path). If
// the forwarding table cannot be read, every route is asked. It fails only on
// a bad tier1Path or when ctx ends.
func (c *Client) RealizeRoutes(ctx context.Context, router RouterPath, routes []Route) ([]RouteRealization, error) {
	if err := router.checked(); err != nil {
		return nil, err
	}
	if len(routes) == 0 {
		return make([]RouteRealization, 0), nil
	}
	installed, err := c.Installed(ctx, router)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nsx: realize routes: %w", ctx.Err())
		}
		c.log.Info("forwarding table unreadable; asking each route's realized state", zap.Stringer("router", router), zap.Error(err))
	}
	return c.RealizeRoutesWith(ctx, router, routes, installed)
}

// RealizeRoutesWith is RealizeRoutes with the forwarding table already read
// (nil: unknown, every route is asked).
func (c *Client) RealizeRoutesWith(ctx context.Context, router RouterPath, routes []Route, installed *InstalledRoutes) ([]RouteRealization, error) {
	if err := router.checked(); err != nil {
		return nil, err
	}
	out := make([]RouteRealization, len(routes))
	var missing []int
	for i, r := range routes {
		if installed.Holds(r) {
			out[i].State = StateRealized
		} else {
			missing = append(missing, i)
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(fallbackWorkers, len(missing)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				path := routes[i].Path
				if path == "" {
					path = router.RoutePath(routes[i].ID)
				}
				st, err := c.Realized(ctx, path)
				if err != nil {
					st = Realization{State: StateUnknown}
				}
				out[i] = RouteRealization{Realization: st, Err: err}
			}
		}()
	}
	for _, i := range missing {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("nsx: realize routes: %w", ctx.Err())
	}
	return out, nil
}

// InstalledRoutes is a Tier-1's forwarding table as read once: by edge node,
// then network, then next hops. The nil *InstalledRoutes holds nothing.
type InstalledRoutes struct {
	byEdge map[string]map[string]map[netip.Addr]bool
}

// Installed reads the static routes of a Tier-1's forwarding table
// (ForwardingTable, every page) into a set to ask Holds of.
func (c *Client) Installed(ctx context.Context, router RouterPath) (*InstalledRoutes, error) {
	entries, err := c.ForwardingTable(ctx, router)
	if err != nil {
		return nil, err
	}
	return NewInstalledRoutes(entries), nil
}

// NewInstalledRoutes indexes forwarding-table entries; entries no route of
// ours can be (unparsable network or next hop) are skipped.
func NewInstalledRoutes(entries []ForwardingEntry) *InstalledRoutes {
	f := &InstalledRoutes{byEdge: map[string]map[string]map[netip.Addr]bool{}}
	for _, e := range entries {
		network, ok := canonicalNetwork(e.Network)
		hop, err := netip.ParseAddr(strings.TrimSpace(e.NextHop))
		if !ok || err != nil {
			continue
		}
		if f.byEdge[e.EdgeNode] == nil {
			f.byEdge[e.EdgeNode] = map[string]map[netip.Addr]bool{}
		}
		if f.byEdge[e.EdgeNode][network] == nil {
			f.byEdge[e.EdgeNode][network] = map[netip.Addr]bool{}
		}
		f.byEdge[e.EdgeNode][network][hop.Unmap()] = true
	}
	return f
}

// Holds reports whether every edge node installed r's network through every
// one of r's next hops. An empty table holds nothing.
func (f *InstalledRoutes) Holds(r Route) bool {
	network, ok := canonicalNetwork(r.Network)
	if f == nil || !ok || len(f.byEdge) == 0 || len(r.NextHops) == 0 {
		return false
	}
	for _, nets := range f.byEdge {
		hops := nets[network]
		for _, h := range r.NextHops {
			ip, err := netip.ParseAddr(h.IP)
			if err != nil || !hops[ip.Unmap()] {
				return false
			}
		}
	}
	return true
}

func canonicalNetwork(s string) (string, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return "", false
	}
	return p.Masked().String(), true
}
