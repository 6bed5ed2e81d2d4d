package nsxsim

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
)

// The Tier-1's forwarding table (GET /policy/api/v1/infra/tier-1s/<id>/forwarding-table):
// what the data plane installed, one entry per network and next hop, paged.
// The simulator answers it from its model (a route is installed once it is
// realized: RealizeDelay after its last change, and not refused), or, while
// realizing in a network namespace, from that namespace's kernel table.

// routingEntry is NSX's RoutingEntry.
type routingEntry struct {
	AdminDistance   int64  `json:"admin_distance"`
	BlackHole       bool   `json:"black_hole,omitempty"`
	Network         string `json:"network"`
	NextHop         string `json:"next_hop"`
	RouteType       string `json:"route_type"`
	LrComponentID   string `json:"lr_component_id,omitempty"`
	LrComponentType string `json:"lr_component_type,omitempty"`
}

// routingTable is NSX's RoutingTable: the entries of one edge node.
type routingTable struct {
	Count        int64          `json:"count"`
	EdgeNode     string         `json:"edge_node"`
	Status       string         `json:"status"`
	ErrorMessage string         `json:"error_message,omitempty"`
	RouteEntries []routingEntry `json:"route_entries"`
}

// Route types of RoutingEntry (NSX's abbreviations) and the route_source
// filter values they answer to.
const (
	routeTypeStatic    = "t1s"
	routeTypeConnected = "t1c"
	routeTypeInternal  = "NSX_INTERNAL"
)

var routeSources = map[string]string{"STATIC": routeTypeStatic, "CONNECTED": routeTypeConnected, "BGP": "b", "OSPF": "o"}

// kernelTable is the realizer's view of the namespace's kernel routes.
type kernelTable interface {
	// forwardingEntries returns the kernel routes standing for tier1's
	// forwarding table: its static routes and the connected networks.
	forwardingEntries(tier1 string) ([]routingEntry, error)
}

func (s *Simulator) forwardingTable(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wantType := ""
	if src := q.Get("route_source"); src != "" {
		typ, ok := routeSources[strings.ToUpper(src)]
		if !ok {
			invalid(w, fmt.Sprintf("Field level validation errors: {route_source: %q is not one of BGP, STATIC, CONNECTED, OSPF}", src))
			return
		}
		wantType = typ
	}
	match, err := prefixFilter(q.Get("network_prefix"))
	if err != nil {
		invalid(w, "Field level validation errors: {network_prefix: "+err.Error()+"}")
		return
	}
	component := "SERVICE_ROUTER_TIER1"
	if ct := q.Get("component_type"); ct != "" {
		if ct != "DR_ROUTES" {
			invalid(w, fmt.Sprintf("Field level validation errors: {component_type: %q is not DR_ROUTES}", ct))
			return
		}
		component = "DISTRIBUTED_ROUTER_TIER1"
	}
	cursor, size, ok := pageParams(w, r)
	if !ok {
		return
	}
	t1 := routerOf(r)
	s.mu.Lock()
	kernel := s.kernel
	s.mu.Unlock()
	entries, componentID, found := s.modelEntries(t1, kernel == nil)
	if !found {
		notFound(w, t1)
		return
	}
	table := routingTable{EdgeNode: s.edgeNode, Status: "SUCCESS"}
	if kernel != nil {
		if entries, err = kernel.forwardingEntries(t1); err != nil {
			table.Status, table.ErrorMessage, entries = "FAILURE", "Routing table could not be read from the edge node: "+err.Error(), nil
		}
	}
	kept := entries[:0]
	for _, e := range entries {
		if (wantType == "" || e.RouteType == wantType) && match(e.Network) {
			e.LrComponentID, e.LrComponentType = componentID, component
			kept = append(kept, e)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return entryKey(kept[i]) < entryKey(kept[j]) })
	start := sort.Search(len(kept), func(i int) bool { return entryKey(kept[i]) > cursor })
	end := min(start+size, len(kept))
	table.RouteEntries = append([]routingEntry{}, kept[start:end]...)
	table.Count = int64(len(table.RouteEntries))
	out := listResult[routingTable]{Results: []routingTable{table}, SortBy: "network", SortAscending: true}
	if cursor == "" {
		out.ResultCount = int64(len(kept)) // NSX: set only on the first page
	}
	if end < len(kept) {
		out.Cursor = encodeCursor(entryKey(kept[end-1]))
	}
	writeJSON(w, http.StatusOK, out)
}

// entryKey orders entries by network, then next hop; it is the cursor, so
// changes between pages never skip or repeat an entry.
func entryKey(e routingEntry) string { return e.Network + "|" + e.NextHop }

// modelEntries returns, if want, the entries of tier1's realized static
// routes from the model, and the ID of its router component.
func (s *Simulator) modelEntries(tier1 string, want bool) ([]routingEntry, string, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t, ok := s.store.router(tier1)
	if !ok || !want {
		return nil, t.componentID(), ok
	}
	var out []routingEntry
	for _, route := range t.routes {
		if s.realizationOf(t.Path, route).State != "REALIZED" {
			continue
		}
		network := canonicalPrefix(route.Network)
		for _, h := range route.NextHops {
			hop := h.IPAddress
			if a, err := netip.ParseAddr(hop); err == nil {
				hop = a.String() // as the data plane shows it
			}
			out = append(out, routingEntry{AdminDistance: h.AdminDistance, Network: network, NextHop: hop, RouteType: routeTypeStatic})
		}
	}
	return out, t.componentID(), true
}

// componentID stands for the ID of the Tier-1's router component.
func (t *tier1State) componentID() string {
	if t == nil {
		return ""
	}
	return t.UniqueID
}

// prefixFilter matches entries against network_prefix: a CIDR matches that
// network, an address every network containing it, "" everything.
func prefixFilter(v string) (func(network string) bool, error) {
	if v == "" {
		return func(string) bool { return true }, nil
	}
	if p, err := netip.ParsePrefix(v); err == nil {
		want := p.Masked().String()
		return func(n string) bool { return n == want }, nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return func(n string) bool {
			p, err := netip.ParsePrefix(n)
			return err == nil && p.Contains(a)
		}, nil
	}
	return nil, fmt.Errorf("%q is neither an IP address nor a CIDR", v)
}

// canonicalPrefix is a network as the data plane holds it (host bits cleared).
func canonicalPrefix(n string) string {
	p, err := netip.ParsePrefix(n)
	if err != nil {
		return n
	}
	return p.Masked().String()
}
