package podroute

import (
	"sort"

	"github.com/t1route/t1route/nsx"
)

// ScopeCloudProviderCluster is the tag scope the vSphere cloud provider's
// NSX-T route support puts on the routes it creates for a cluster.
const ScopeCloudProviderCluster = "vsphere.k8s.io/cluster-name"

// Adoption replaces a cloud provider's route with t1route's for the same
// network. Both go in one hierarchical call, so the network is never without
// a route and never has two.
type Adoption struct {
	Route    nsx.Route // t1route's route (desired)
	Replaces nsx.Route // the cloud provider's route
}

// Adoptions finds the cloud provider's routes of this cluster (tagged with
// its CLUSTER_NAME) for networks t1route now wants, and pairs each with
// t1route's route. Cloud-provider routes for networks t1route does not want
// are left alone: adoption never drops a route. Pure.
func Adoptions(id Identity, desired map[string]nsx.Route, actual []nsx.Route) []Adoption {
	byNetwork := make(map[string]nsx.Route, len(desired))
	for _, r := range desired {
		byNetwork[r.Network] = r
	}
	var out []Adoption
	for _, a := range actual {
		if IsT1Route(a) || tagValue(a.Tags, ScopeCloudProviderCluster) != id.Name || id.Name == "" {
			continue
		}
		want, ok := byNetwork[a.Network]
		if !ok || want.ID == a.ID {
			continue
		}
		out = append(out, Adoption{Route: want, Replaces: a})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Replaces.ID < out[j].Replaces.ID })
	return out
}

// adoptChunk is the most pairs per call: 2 children each, so one chunk is
// always one hierarchical call (the client's batch is 1,000 children unless
// set below 500), which keeps every swap atomic.
const adoptChunk = 250
