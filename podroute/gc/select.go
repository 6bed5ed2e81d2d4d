// Package gc collects the routes of clusters that no longer exist: the
// selection behind t1route gc (pure), and the Cluster API cleanup controller
// that finalizes deleted Clusters in a management cluster. Only routes with
// t1route's ownership tags are ever selected.
package gc

import (
	"sort"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
)

// Clusters lists the clusters that have routes on the Tier-1, with how many
// each has, sorted by name then UID.
func Clusters(routes []nsx.Route) map[podroute.ClusterRef]int {
	out := map[podroute.ClusterRef]int{}
	for _, r := range routes {
		if ref, ok := podroute.ClusterOf(r); ok {
			out[ref]++
		}
	}
	return out
}

// RoutesOfCluster selects the routes of the cluster named by nameOrUID (a
// cluster UID, or a CLUSTER_NAME as tagged). Only routes with t1route's
// ownership tags are ever selected. It also returns every cluster that
// matched, so a caller can refuse a name that more than one cluster uses.
func RoutesOfCluster(routes []nsx.Route, nameOrUID string) ([]nsx.Route, []podroute.ClusterRef) {
	var out []nsx.Route
	matched := map[podroute.ClusterRef]bool{}
	for _, r := range routes {
		ref, ok := podroute.ClusterOf(r)
		if !ok || (ref.UID != nameOrUID && ref.Name != nameOrUID) {
			continue
		}
		out = append(out, r)
		matched[ref] = true
	}
	return sortRoutes(out), sortedRefs(matched)
}

// OrphanRoutes selects the routes of clusters whose name is not among live
// (the Cluster API clusters that exist), except those of keep (names or
// UIDs, e.g. the management cluster's own). Only t1route's routes.
func OrphanRoutes(routes []nsx.Route, live map[string]bool, keep map[string]bool) ([]nsx.Route, []podroute.ClusterRef) {
	var out []nsx.Route
	gone := map[podroute.ClusterRef]bool{}
	for _, r := range routes {
		ref, ok := podroute.ClusterOf(r)
		if !ok || live[ref.Name] || keep[ref.Name] || keep[ref.UID] {
			continue
		}
		out = append(out, r)
		gone[ref] = true
	}
	return sortRoutes(out), sortedRefs(gone)
}

func sortRoutes(rs []nsx.Route) []nsx.Route {
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

func sortedRefs(m map[podroute.ClusterRef]bool) []podroute.ClusterRef {
	out := make([]podroute.ClusterRef, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].UID < out[j].UID
	})
	return out
}
