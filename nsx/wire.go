package nsx

import (
	"encoding/json"
	"fmt"
	"time"
)

// The bodies of the hot path — the hierarchical PATCH of static routes, and
// the pages of the static route list and of the forwarding table — are
// encoded and decoded here with encoding/json, not through the SDK's generic
// bindings. Per route, as make bench measures it (BenchmarkApplyCost,
// BenchmarkReadCost): the SDK allocated ~59 KB and spent ~100-270 µs of CPU
// to encode, ~36 KB to list and ~11 KB to read the forwarding table; these
// structs take ~2 KB, ~3.4 KB and ~1 KB, in a few µs. At 10,000 nodes the
// SDK's encoder alone allocated 590 MB during a converge and each resync
// list 360 MB more: that set the controller's peak RSS and most of its
// converge time. The SDK stays for the models and every other call.
//
// The PATCH body is byte for byte the one the SDK sends for the same
// model.ChildStaticRoutes (keys in its alphabetical order, its escaping,
// "next_hops":[] when there are none); wire_test.go checks it against the
// SDK's own Patch and decodes it back through the SDK's bindings. A page is
// read as the SDK read it, for the fields the client uses; a field of the
// wrong JSON type fails the page, as it failed the SDK (fields the client
// does not use are not checked).

// rootPatch is the root of a hierarchical PATCH (Infra, or OrgRoot for a
// VPC) with one child. Fields are in the SDK's (alphabetical) key order.
type rootPatch struct {
	Children     [1]childRef `json:"children"`
	ResourceType string      `json:"resource_type"`
}

// childRef is a ChildResourceReference to an existing object (a Tier-1, or
// the org, project and VPC on the way to a VPC): its children are changed,
// it is not. Children is []childStaticRoutes under the Tier-1 or VPC, and
// [1]childRef above it.
type childRef struct {
	Children     any    `json:"children"`
	ID           string `json:"id"`
	ResourceType string `json:"resource_type"`
	TargetType   string `json:"target_type"`
}

// childStaticRoutes is the ChildStaticRoutes wrapper of one route.
type childStaticRoutes struct {
	StaticRoutes    staticRoutesBody `json:"StaticRoutes"`
	MarkedForDelete bool             `json:"marked_for_delete"`
	ResourceType    string           `json:"resource_type"`
}

// staticRoutesBody is model.StaticRoutes as toModel fills it: a delete
// carries only id and resource_type, an upsert always network and
// next_hops (the SDK sends "next_hops":[] for none).
type staticRoutesBody struct {
	Description  string         `json:"description,omitempty"`
	DisplayName  string         `json:"display_name,omitempty"`
	ID           string         `json:"id"`
	Network      *string        `json:"network,omitempty"`
	NextHops     *[]nextHopBody `json:"next_hops,omitempty"`
	ResourceType string         `json:"resource_type"`
	Tags         []tagBody      `json:"tags,omitempty"`
}

type nextHopBody struct {
	AdminDistance int64  `json:"admin_distance,omitempty"`
	IPAddress     string `json:"ip_address"`
}

type tagBody struct {
	Scope string `json:"scope"`
	Tag   string `json:"tag"`
}

// encodeRouterPatch is the body of the hierarchical PATCH (at
// router.hierarchicalPath) that deletes the routes with IDs deletes (first)
// and creates or replaces upserts on router: an Infra root holding a
// reference to the Tier-1 (the default space's /infra and a project's infra
// take the same body), or for a VPC an OrgRoot holding references to the
// org, the project and the VPC, the form VMware's own tools send to
// /org-root for VPC children.
func encodeRouterPatch(router RouterPath, upserts []Route, deletes []string) ([]byte, error) {
	routes := routeChildren(upserts, deletes)
	root := rootPatch{ResourceType: "Infra", Children: [1]childRef{{Children: routes, ID: router.ID(), ResourceType: "ChildResourceReference", TargetType: "Tier1"}}}
	if router.IsVPC() {
		vpc := childRef{Children: routes, ID: router.ID(), ResourceType: "ChildResourceReference", TargetType: "Vpc"}
		project := childRef{Children: [1]childRef{vpc}, ID: router.Project(), ResourceType: "ChildResourceReference", TargetType: "Project"}
		root = rootPatch{ResourceType: "OrgRoot", Children: [1]childRef{{Children: [1]childRef{project}, ID: router.Org(), ResourceType: "ChildResourceReference", TargetType: "Org"}}}
	}
	b, err := json.Marshal(root)
	if err != nil {
		// Strings and integers only: encoding/json fails on none of them.
		return nil, fmt.Errorf("encoding the hierarchical body: %w", err)
	}
	return b, nil
}

// routeChildren are the ChildStaticRoutes wrappers of a batch: deletes, then upserts.
func routeChildren(upserts []Route, deletes []string) []childStaticRoutes {
	children := make([]childStaticRoutes, 0, len(deletes)+len(upserts))
	for _, id := range deletes {
		children = append(children, childStaticRoutes{StaticRoutes: staticRoutesBody{ID: id, ResourceType: "StaticRoutes"},
			MarkedForDelete: true, ResourceType: "ChildStaticRoutes"})
	}
	// One backing array for every route's next hops and one for their tags:
	// two allocations a batch rather than two a route.
	nHops, nTags := 0, 0
	for _, r := range upserts {
		nHops += len(r.NextHops)
		nTags += len(r.Tags)
	}
	hops, tags := make([]nextHopBody, 0, nHops), make([]tagBody, 0, nTags)
	networks := make([]string, len(upserts))
	hopSlices := make([][]nextHopBody, len(upserts))
	for i, r := range upserts {
		start := len(hops)
		for _, h := range r.NextHops {
			hops = append(hops, nextHopBody{AdminDistance: max(h.AdminDistance, 0), IPAddress: h.IP})
		}
		hopSlices[i] = hops[start:len(hops):len(hops)]
		start = len(tags)
		for _, t := range r.Tags {
			tags = append(tags, tagBody(t))
		}
		networks[i] = r.Network
		body := staticRoutesBody{Description: r.Description, DisplayName: r.DisplayName, ID: r.ID,
			Network: &networks[i], NextHops: &hopSlices[i], ResourceType: "StaticRoutes"}
		if len(tags) > start {
			body.Tags = tags[start:len(tags):len(tags)]
		}
		children = append(children, childStaticRoutes{StaticRoutes: body, ResourceType: "ChildStaticRoutes"})
	}
	return children
}

// staticRoutesPage is one page of GET .../tier-1s/<id>/static-routes
// (model.StaticRoutesListResult), with the fields ListRoutes reads.
type staticRoutesPage struct {
	Results     []listedRoute `json:"results"`
	ResultCount *int64        `json:"result_count"` // nil: not a list answer
	Cursor      string        `json:"cursor"`       // "" on the last page
}

// listedRoute is model.StaticRoutes as listed, with the fields Route holds;
// JSON null reads as the zero value, as deref of the SDK's nil does.
type listedRoute struct {
	ID               string        `json:"id"`
	DisplayName      string        `json:"display_name"`
	Description      string        `json:"description"`
	Network          string        `json:"network"`
	NextHops         []nextHopBody `json:"next_hops"`
	Tags             []tagBody     `json:"tags"`
	Path             string        `json:"path"`
	Revision         int64         `json:"_revision"`
	LastModifiedTime *int64        `json:"_last_modified_time"`
}

func (r listedRoute) route() Route {
	out := Route{ID: r.ID, DisplayName: r.DisplayName, Description: r.Description, Network: r.Network, Path: r.Path, Revision: r.Revision}
	if r.LastModifiedTime != nil {
		out.LastModified = time.UnixMilli(*r.LastModifiedTime)
	}
	if len(r.NextHops) > 0 {
		out.NextHops = make([]NextHop, len(r.NextHops))
		for i, h := range r.NextHops {
			out.NextHops[i] = NextHop{IP: h.IPAddress, AdminDistance: h.AdminDistance}
		}
	}
	if len(r.Tags) > 0 {
		out.Tags = make([]Tag, len(r.Tags))
		for i, t := range r.Tags {
			out.Tags[i] = Tag(t)
		}
	}
	return out
}

// forwardingPage is one page of GET .../tier-1s/<id>/forwarding-table
// (model.RoutingTableListResult), with the fields ForwardingTable reads.
type forwardingPage struct {
	Results     []edgeRoutingTable `json:"results"`
	ResultCount *int64             `json:"result_count"`
	Cursor      *string            `json:"cursor"` // nil with the rest: not a list answer
}

// edgeRoutingTable is model.RoutingTable: one edge node's table.
type edgeRoutingTable struct {
	EdgeNode     string            `json:"edge_node"`
	Status       string            `json:"status"`
	ErrorMessage string            `json:"error_message"`
	RouteEntries []forwardingRoute `json:"route_entries"`
}

// forwardingRoute is model.RoutingEntry, with the fields ForwardingEntry holds.
type forwardingRoute struct {
	Network   string `json:"network"`
	NextHop   string `json:"next_hop"`
	RouteType string `json:"route_type"`
}
