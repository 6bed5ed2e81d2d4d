package podroute

import (
	"fmt"
	"slices"
	"sort"

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

// Diff computes the changes that make actual hold desired. Only routes this
// cluster owns are ever replaced or deleted. Pure and deterministic.
func Diff(id Identity, desired map[string]nsx.Route, actual []nsx.Route) Changes {
	var c Changes
	seen := make(map[string]bool, len(actual))
	for _, a := range actual {
		seen[a.ID] = true
		want, isDesired := desired[a.ID]
		if !id.Owns(a) {
			if isDesired {
				c.Conflicts = append(c.Conflicts, a)
			}
			continue
		}
		switch {
		case !isDesired:
			c.Deletes = append(c.Deletes, a.ID)
		case !sameRoute(want, a):
			c.Upserts = append(c.Upserts, want)
			c.Drift = append(c.Drift, describeDrift(want, a))
		}
	}
	for rid, want := range desired {
		if !seen[rid] {
			c.Upserts = append(c.Upserts, want)
		}
	}
	sort.Slice(c.Upserts, func(i, j int) bool { return c.Upserts[i].ID < c.Upserts[j].ID })
	sort.Strings(c.Deletes)
	return c
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

func sameTags(a, b []nsx.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(t nsx.Tag) string { return t.Scope + "\x00" + t.Tag }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
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
