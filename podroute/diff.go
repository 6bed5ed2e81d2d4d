package podroute

import (
	"fmt"
	"slices"
	"strings"

	"github.com/t1route/t1route/nsx"
)

// Changes turn the Tier-1's routes into the desired ones.
type Changes struct {
	Upserts []nsx.Route // create, or replace what differs
	Deletes []string    // IDs of owned routes no longer desired
	// Conflicts are desired route IDs held by a route this cluster does not
	// own: left alone, and reported.
	Conflicts []nsx.Route
	// Drift describes owned routes that differ from what they should be.
	Drift []string
}

// Empty reports whether nothing needs to change.
func (c Changes) Empty() bool { return len(c.Upserts) == 0 && len(c.Deletes) == 0 }

// Diff computes the changes that make actual (routes by ID) hold desired.
// Only routes this cluster owns are ever replaced or deleted. Pure and
// deterministic; it allocates only for the changes it returns.
func Diff(id Identity, desired, actual map[string]nsx.Route) Changes {
	var c Changes
	for rid, a := range actual {
		want, isDesired := desired[rid]
		if !id.Owns(a) {
			if isDesired {
				c.Conflicts = append(c.Conflicts, a)
			}
			continue
		}
		switch {
		case !isDesired:
			c.Deletes = append(c.Deletes, rid)
		case !sameRoute(want, a):
			c.Upserts = append(c.Upserts, want)
			c.Drift = append(c.Drift, describeDrift(want, a))
		}
	}
	for rid, want := range desired {
		if _, ok := actual[rid]; !ok {
			c.Upserts = append(c.Upserts, want)
		}
	}
	byID := func(a, b nsx.Route) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(c.Upserts, byID)
	slices.SortFunc(c.Conflicts, byID)
	slices.Sort(c.Deletes)
	slices.Sort(c.Drift)
	return c
}

// routesByID indexes routes by ID (the last of two with one ID wins).
func routesByID(routes []nsx.Route) map[string]nsx.Route {
	m := make(map[string]nsx.Route, len(routes))
	for _, r := range routes {
		m[r.ID] = r
	}
	return m
}

func sameRoute(want, got nsx.Route) bool {
	if want.Network != got.Network || want.DisplayName != got.DisplayName || len(want.NextHops) != len(got.NextHops) {
		return false
	}
	for i := range want.NextHops {
		if want.NextHops[i].IP != got.NextHops[i].IP || adminDistance(want.NextHops[i]) != adminDistance(got.NextHops[i]) {
			return false
		}
	}
	return sameTags(want.Tags, got.Tags)
}

func adminDistance(h nsx.NextHop) int64 {
	if h.AdminDistance == 0 {
		return 1 // NSX's default
	}
	return h.AdminDistance
}

// sameTags reports whether a and b hold the same tags in any order, without
// allocating: it runs once per route on every pass.
func sameTags(a, b []nsx.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	if slices.Equal(a, b) {
		return true
	}
	count := func(tags []nsx.Tag, t nsx.Tag) int {
		n := 0
		for _, x := range tags {
			if x == t {
				n++
			}
		}
		return n
	}
	for _, t := range a { // a handful of tags: quadratic is cheapest
		if count(a, t) != count(b, t) {
			return false
		}
	}
	return true
}

func describeDrift(want, got nsx.Route) string {
	hops := func(r nsx.Route) []string {
		var out []string
		for _, h := range r.NextHops {
			out = append(out, h.IP)
		}
		return out
	}
	switch {
	case want.Network != got.Network:
		return fmt.Sprintf("route %s: network is %s, want %s", want.ID, got.Network, want.Network)
	case !slices.Equal(hops(want), hops(got)):
		return fmt.Sprintf("route %s (%s): next hop is %v, want %v", want.ID, want.Network, hops(got), hops(want))
	}
	return fmt.Sprintf("route %s (%s): display name, admin distance or tags differ", want.ID, want.Network)
}
