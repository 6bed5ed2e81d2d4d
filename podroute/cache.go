package podroute

import (
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/t1route/t1route/nsx"
)

// nodeCache computes the desired routes as Desired does, recomputing only
// the nodes that changed since the previous pass: at 50,000 nodes,
// recomputing every node and rebuilding the map of every route on each node
// change cost ~0.6 s of CPU and ~90 MB of allocation a change.
//
// A node's entry is reused while the Node it was computed from is the same
// object, or has the same UID, pod CIDRs and addresses: the informer hands
// a new object for every update (heartbeats and condition patches too), and
// resourceVersion is not trusted, the fields themselves are compared. The
// desired map is kept between passes and changed for the changed nodes
// only; when a change touches a pod CIDR two nodes claim, the map is rebuilt
// from every entry, settling the claims as Desired does (the first node by
// name keeps the route). A full update recomputes every node: the periodic
// resync's safety net against a stale entry.
//
// Not safe for concurrent use: it belongs to the goroutine running passes.
type nodeCache struct {
	rules   routeRules
	entries map[string]*nodeEntry
	gen     uint64
	desired map[string]nsx.Route
	// contested holds, for each route ID two or more nodes claim, every
	// claimant's name.
	contested map[string][]string
	// problemNodes are the nodes whose entry has problems.
	problemNodes map[string]bool
}

// nodeEntry is one node's routes and problems as computed from obj.
type nodeEntry struct {
	obj      *corev1.Node
	routes   []nsx.Route
	problems []NodeProblem
	gen      uint64 // the last update that saw the node
	// created and createdMsg remember the message of the node's condition
	// for a route count, so a pass does not format it anew.
	created    int
	createdMsg string
}

func newNodeCache(rules routeRules) *nodeCache {
	return &nodeCache{rules: rules, entries: map[string]*nodeEntry{}, desired: map[string]nsx.Route{},
		contested: map[string][]string{}, problemNodes: map[string]bool{}}
}

// cacheResult is one update's desired state. desired is owned by the cache
// and valid until the next update; callers must not change it.
type cacheResult struct {
	desired  map[string]nsx.Route
	problems []NodeProblem
	// recomputed names the nodes added or changed since the previous
	// update, removed those gone (neither is filled by a full update).
	recomputed, removed []string
	// all is true when any route may differ from the previous update's
	// (a full update, or claims settled anew); otherwise only the routes
	// of touched (route IDs) may.
	all     bool
	touched []string
}

// nodeChange is a node recomputed or removed, with its previous entry.
type nodeChange struct {
	name     string
	old, cur *nodeEntry // nil: none
}

// update brings the cache up to nodes (the informer's objects, which are
// never modified) and returns the desired routes. full recomputes every node.
func (nc *nodeCache) update(nodes []*corev1.Node, full bool) cacheResult {
	nc.gen++
	var res cacheResult
	if full {
		nc.entries = make(map[string]*nodeEntry, len(nodes))
		clear(nc.problemNodes)
	}
	var changes []nodeChange
	for _, obj := range nodes {
		e := nc.entries[obj.Name]
		if e == nil || (e.obj != obj && routingChanged(e.obj, obj)) || e.obj.UID != obj.UID {
			routes, problems := nc.rules.nodeRoutes(FromNode(obj))
			cur := &nodeEntry{routes: routes, problems: problems}
			nc.entries[obj.Name] = cur
			changes = append(changes, nodeChange{obj.Name, e, cur})
			if !full {
				res.recomputed = append(res.recomputed, obj.Name)
			}
			e = cur
		}
		// Keep the newest object: the informer no longer holds the older one.
		e.obj, e.gen = obj, nc.gen
	}
	if len(nc.entries) != len(nodes) { // some are gone
		for name, e := range nc.entries {
			if e.gen != nc.gen {
				delete(nc.entries, name)
				res.removed = append(res.removed, name)
				changes = append(changes, nodeChange{name, e, nil})
			}
		}
	}
	for _, ch := range changes {
		if ch.cur != nil && len(ch.cur.problems) > 0 {
			nc.problemNodes[ch.name] = true
		} else {
			delete(nc.problemNodes, ch.name)
		}
	}
	if full || !nc.apply(changes, &res) {
		nc.rebuild()
		res.all, res.touched = true, nil
	}
	res.desired = nc.desired
	res.problems = nc.collectProblems()
	return res
}

// apply changes the desired map for changes when no pod CIDR they touch is
// claimed by another node; it returns false when the claims must be
// settled anew (rebuild).
func (nc *nodeCache) apply(changes []nodeChange, res *cacheResult) bool {
	for _, ch := range changes {
		if ch.old == nil {
			continue
		}
		for _, r := range ch.old.routes {
			if _, c := nc.contested[r.ID]; c {
				return false
			}
			if d, ok := nc.desired[r.ID]; !ok || NodeOf(d) != NodeOf(r) {
				return false // not the node's: the map is not what it should be
			}
			delete(nc.desired, r.ID)
			res.touched = append(res.touched, r.ID)
		}
	}
	for _, ch := range changes {
		if ch.cur == nil {
			continue
		}
		for _, r := range ch.cur.routes {
			if _, c := nc.contested[r.ID]; c {
				return false
			}
			if _, claimed := nc.desired[r.ID]; claimed {
				return false // a second claimant
			}
			nc.desired[r.ID] = r
			res.touched = append(res.touched, r.ID)
		}
	}
	return true
}

// rebuild makes the desired map from every entry, settling claims.
func (nc *nodeCache) rebuild() {
	nc.desired = make(map[string]nsx.Route, len(nc.desired))
	nc.contested = map[string][]string{}
	for _, e := range nc.entries {
		for _, r := range e.routes {
			kept, dup := nc.desired[r.ID]
			if !dup {
				nc.desired[r.ID] = r
				continue
			}
			if nc.contested[r.ID] == nil {
				nc.contested[r.ID] = []string{NodeOf(kept)}
			}
			nc.contested[r.ID] = append(nc.contested[r.ID], NodeOf(r))
			if NodeOf(r) < NodeOf(kept) { // as in Desired: the first by name keeps it
				nc.desired[r.ID] = r
			}
		}
	}
}

// collectProblems is the nodes' problems, those of claims lost included,
// sorted by node.
func (nc *nodeCache) collectProblems() []NodeProblem {
	var out []NodeProblem
	for name := range nc.problemNodes {
		out = append(out, nc.entries[name].problems...)
	}
	for rid, names := range nc.contested {
		kept := nc.desired[rid]
		for _, n := range names {
			if winner := NodeOf(kept); n != winner {
				out = append(out, duplicateProblem(n, kept.Network, winner))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].CIDR < out[j].CIDR
	})
	return out
}

// routesCreated is how many of node e's routes desired holds for it (the
// others went to another node or over the route limit).
func (e *nodeEntry) routesCreated(desired map[string]nsx.Route) int {
	n := 0
	for _, r := range e.routes {
		if d, ok := desired[r.ID]; ok && NodeOf(d) == NodeOf(r) {
			n++
		}
	}
	return n
}
