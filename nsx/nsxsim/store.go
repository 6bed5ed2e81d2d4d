package nsxsim

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// store is the simulator's in-memory Policy registry. Every mutation goes
// through it under one lock, so a hierarchical call is atomic and readers
// never see half of it.
type store struct {
	mu  sync.RWMutex
	now func() time.Time
	// routers are the Tier-1s (default space and projects) and VPCs, by
	// policy path (tenancy.go).
	routers  map[string]*tier1State
	projects map[string]*Project // by policy path, /orgs/<org>/projects/<p>
	// onChange, if set, is called (under the lock, in order) for every route
	// created, replaced or deleted, with its router's path; the netns
	// realizer hangs off it.
	onChange func(router string, r StaticRoute, deleted bool)
	// index is the search index when it lags writes; nil when search reads
	// the registry itself (no lag).
	index *searchIndex
}

// tier1State is a router: a Tier-1, or a VPC (vpc set; Tier1's fields then
// hold the VPC's id, names and system fields, and it advertises nothing).
type tier1State struct {
	Tier1
	routes map[string]*StaticRoute
	sorted []string // route IDs in order; nil when stale

	vpc            bool
	defaultGateway string // a VPC's default_gateway_path
}

func newStore(now func() time.Time, searchLag time.Duration) *store {
	s := &store{now: now, routers: map[string]*tier1State{}, projects: map[string]*Project{}}
	if searchLag > 0 {
		s.index = newSearchIndex(searchLag)
	}
	return s
}

const (
	tier1sPath   = "/infra/tier-1s/"
	maxTags      = 30
	maxScopeLen  = 128
	maxTagLen    = 256
	maxIDLen     = 255
	defaultAdmin = 1
)

func validID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("id must not be empty")
	case len(id) > maxIDLen:
		return fmt.Errorf("id is %d characters long, the limit is %d", len(id), maxIDLen)
	case strings.ContainsAny(id, "/?#% \t\n"):
		return fmt.Errorf("id %q contains a character not allowed in a policy path", id)
	}
	return nil
}

func validTags(tags []Tag) error {
	if len(tags) > maxTags {
		return fmt.Errorf("%d tags given, at most %d are allowed", len(tags), maxTags)
	}
	for _, t := range tags {
		if len(t.Scope) > maxScopeLen {
			return fmt.Errorf("tag scope %.20q... is %d characters long, the limit is %d", t.Scope, len(t.Scope), maxScopeLen)
		}
		if len(t.Tag) > maxTagLen {
			return fmt.Errorf("tag %.20q... is %d characters long, the limit is %d", t.Tag, len(t.Tag), maxTagLen)
		}
	}
	return nil
}

// buildRoute validates a route body and returns the object it describes
// (system fields not yet filled). id is the ID from the URL or the parent.
func buildRoute(id string, in routeInput) (StaticRoute, error) {
	if in.ID != nil && *in.ID != id {
		return StaticRoute{}, fmt.Errorf("id %q in the body does not match id %q of the path", *in.ID, id)
	}
	if err := validID(id); err != nil {
		return StaticRoute{}, err
	}
	if in.ResourceType != nil && *in.ResourceType != "StaticRoutes" {
		return StaticRoute{}, fmt.Errorf("resource_type %q is not StaticRoutes", *in.ResourceType)
	}
	if in.Network == nil || *in.Network == "" {
		return StaticRoute{}, fmt.Errorf("network is required")
	}
	network, err := netip.ParsePrefix(*in.Network)
	if err != nil {
		return StaticRoute{}, fmt.Errorf("network %q is not a valid CIDR", *in.Network)
	}
	if len(in.NextHops) == 0 {
		return StaticRoute{}, fmt.Errorf("next_hops is required and must not be empty")
	}
	hops := make([]NextHop, len(in.NextHops))
	for i, h := range in.NextHops {
		ip, err := netip.ParseAddr(h.IPAddress)
		if err != nil {
			return StaticRoute{}, fmt.Errorf("next_hops[%d].ip_address %q is not an IP address", i, h.IPAddress)
		}
		if ip.Is4() != network.Addr().Is4() {
			return StaticRoute{}, fmt.Errorf("next_hops[%d].ip_address %s is not of the IP family of network %s", i, ip, network)
		}
		if h.AdminDistance == 0 {
			h.AdminDistance = defaultAdmin
		}
		if h.AdminDistance < 1 || h.AdminDistance > 255 {
			return StaticRoute{}, fmt.Errorf("next_hops[%d].admin_distance %d is outside 1-255", i, h.AdminDistance)
		}
		hops[i] = h
	}
	if err := validTags(in.Tags); err != nil {
		return StaticRoute{}, err
	}
	r := StaticRoute{ID: id, Network: *in.Network, NextHops: hops, Tags: in.Tags, DisplayName: id}
	if in.DisplayName != nil && *in.DisplayName != "" {
		r.DisplayName = *in.DisplayName
	}
	if in.Description != nil {
		r.Description = *in.Description
	}
	return r, nil
}

// router is the Tier-1 or VPC at a policy path.
func (s *store) router(path string) (*tier1State, bool) {
	t, ok := s.routers[path]
	return t, ok
}

// putTier1 creates or patches a Tier-1 on behalf of by. Caller holds the
// write lock and has checked that by may change an existing one (and, for
// a Tier-1 in a project, that the project exists: putRouter).
func (s *store) putTier1(ref routerRef, in tier1Input, by caller) (*tier1State, error) {
	id := ref.id
	if in.ID != nil && *in.ID != id {
		return nil, fmt.Errorf("id %q in the body does not match id %q of the path", *in.ID, id)
	}
	if err := validTags(in.Tags); err != nil {
		return nil, err
	}
	for _, t := range in.RouteAdvertisementTypes {
		if !validAdvertisementType[t] {
			return nil, fmt.Errorf("route_advertisement_types: %q is not a valid value", t)
		}
	}
	now := s.now().UnixMilli()
	t, ok := s.routers[ref.path]
	if !ok {
		t = &tier1State{routes: map[string]*StaticRoute{}}
		t.ID, t.DisplayName = id, id
		t.RouteAdvertisementTypes = []string{}
		t.meta = meta{ResourceType: "Tier1", Path: ref.path, ParentPath: ref.parent, RelativePath: id,
			UniqueID: newUUID(), CreateTime: now, CreateUser: by.name, Revision: -1}
		markCreated(by, &t.meta)
		s.routers[ref.path] = t
	}
	if in.DisplayName != nil {
		t.DisplayName = *in.DisplayName
	}
	if in.Description != nil {
		t.Description = *in.Description
	}
	if in.Tier0Path != nil {
		t.Tier0Path = *in.Tier0Path
	}
	if in.RouteAdvertisementTypes != nil {
		t.RouteAdvertisementTypes = append([]string{}, in.RouteAdvertisementTypes...)
	}
	if in.Tags != nil {
		t.Tags = in.Tags
	}
	t.Revision++
	t.LastModifiedTime, t.LastModifiedUser = now, by.name
	return t, nil
}

var validAdvertisementType = map[string]bool{
	"TIER1_STATIC_ROUTES": true, "TIER1_CONNECTED": true, "TIER1_NAT": true, "TIER1_LB_VIP": true,
	"TIER1_LB_SNAT": true, "TIER1_DNS_FORWARDER_IP": true, "TIER1_IPSEC_LOCAL_ENDPOINT": true,
}

// putRoute creates or replaces a route on behalf of by. Caller holds the
// write lock, has validated r and checked that by may change an existing
// route. A route created anew starts at _revision 0.
func (s *store) putRoute(t *tier1State, r StaticRoute, by caller) StaticRoute {
	now := s.now().UnixMilli()
	old, exists := t.routes[r.ID]
	if exists {
		r.meta = old.meta
		r.Revision++
	} else {
		r.meta = meta{ResourceType: "StaticRoutes", Path: t.Path + "/static-routes/" + r.ID, ParentPath: t.Path,
			RelativePath: r.ID, UniqueID: newUUID(), CreateTime: now, CreateUser: by.name}
		markCreated(by, &r.meta)
		t.sorted = nil
	}
	r.LastModifiedTime, r.LastModifiedUser = now, by.name
	stored := r
	t.routes[r.ID] = &stored
	if s.onChange != nil {
		s.onChange(t.Path, stored, false)
	}
	if s.index != nil {
		s.index.record(s.now(), stored, false)
	}
	return stored
}

// deleteRoute removes a route; it reports whether the route existed.
func (s *store) deleteRoute(t *tier1State, id string) bool {
	r, ok := t.routes[id]
	if !ok {
		return false
	}
	delete(t.routes, id)
	t.sorted = nil
	if s.onChange != nil {
		s.onChange(t.Path, *r, true)
	}
	if s.index != nil {
		s.index.record(s.now(), *r, true)
	}
	return true
}

// page returns up to size routes of t with an ID after cursor, and the cursor
// of the next page ("" on the last page). The cursor is the last ID served, so
// creating or deleting routes between pages never skips or repeats one.
func (t *tier1State) page(cursor string, size int) ([]StaticRoute, string) {
	if t.sorted == nil {
		t.sorted = make([]string, 0, len(t.routes))
		for id := range t.routes {
			t.sorted = append(t.sorted, id)
		}
		sort.Strings(t.sorted)
	}
	start := sort.SearchStrings(t.sorted, cursor)
	if start < len(t.sorted) && t.sorted[start] == cursor {
		start++
	}
	end := min(start+size, len(t.sorted))
	out := make([]StaticRoute, 0, end-start)
	for _, id := range t.sorted[start:end] {
		out = append(out, *t.routes[id])
	}
	next := ""
	if end < len(t.sorted) {
		next = t.sorted[end-1]
	}
	return out, next
}
