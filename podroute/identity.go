// Package podroute keeps a Tier-1 gateway's static routes equal to a
// Kubernetes cluster's node podCIDRs: desired state from the nodes, actual
// state from NSX (only routes this cluster tagged), a pure diff, and batched
// apply through the NSX client.
package podroute

import (
	"strings"

	"github.com/t1route/t1route/nsx"
)

// Tag scopes t1route writes on every route it creates. NSX allows 30 tags,
// scopes up to 128 characters and tags up to 256.
const (
	ScopeManagedBy   = "t1route/managed-by"
	ScopeClusterUID  = "t1route/cluster-uid"
	ScopeClusterName = "t1route/cluster-name"
	ScopeNode        = "t1route/node"
	ManagedByValue   = "t1route"
)

// Identity says which cluster this is. The UID (the kube-system namespace's,
// stable for the cluster's life) decides ownership; the name is for people,
// since many clusters keep the default name.
type Identity struct {
	UID  string
	Name string
}

// RouteID is the deterministic NSX ID of this cluster's route for a pod
// CIDR: [A-Za-z0-9._-] only, so re-applying it is idempotent and a crash
// mid-batch is harmless.
func (id Identity) RouteID(cidr string) string {
	return "t1route-" + id.UID + "-" + cidrForID.Replace(cidr)
}

// cidrForID is built once: building a Replacer per call was the hot spot of
// a pass at 50,000 routes.
var cidrForID = strings.NewReplacer("/", "_", ":", "-")

// Owns reports whether a route carries this cluster's ownership tags. A
// route without them is never changed or deleted.
func (id Identity) Owns(r nsx.Route) bool {
	return tagValue(r.Tags, ScopeManagedBy) == ManagedByValue && tagValue(r.Tags, ScopeClusterUID) == id.UID
}

// IsT1Route reports whether a route was created by t1route (for any cluster).
func IsT1Route(r nsx.Route) bool { return tagValue(r.Tags, ScopeManagedBy) == ManagedByValue }

// tags returns the tags of this cluster's route for a node.
func (id Identity) tags(node string) []nsx.Tag {
	return []nsx.Tag{
		{Scope: ScopeManagedBy, Tag: ManagedByValue},
		{Scope: ScopeClusterUID, Tag: id.UID},
		{Scope: ScopeClusterName, Tag: id.Name},
		{Scope: ScopeNode, Tag: truncate(node, 256)},
	}
}

func tagValue(tags []nsx.Tag, scope string) string {
	for _, t := range tags {
		if t.Scope == scope {
			return t.Tag
		}
	}
	return ""
}

// ClusterRef names a cluster whose routes are on the Tier-1, as its tags say.
type ClusterRef struct {
	UID, Name string
}

// ClusterOf returns the cluster a t1route route belongs to (ok false for a
// route t1route did not create, which garbage collection never touches).
func ClusterOf(r nsx.Route) (ClusterRef, bool) {
	if !IsT1Route(r) {
		return ClusterRef{}, false
	}
	ref := ClusterRef{UID: tagValue(r.Tags, ScopeClusterUID), Name: tagValue(r.Tags, ScopeClusterName)}
	return ref, ref.UID != ""
}

// NodeOf returns the node a route of t1route was made for.
func NodeOf(r nsx.Route) string { return tagValue(r.Tags, ScopeNode) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
