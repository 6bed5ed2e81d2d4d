package podroute

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/t1route/t1route/nsx"
)

// nodeCache computes the desired routes as DesiredHeld does, recomputing
// only the nodes that changed since the previous pass: at 50,000 nodes,
// recomputing every node and rebuilding the map of every route on each node
// change cost ~0.6 s of CPU and ~90 MB of allocation a change.
//
// A node's entry is reused while the Node it was computed from is the same
// object, or has the same UID, pod CIDRs and addresses: the informer hands
// a new object for every update (heartbeats and condition patches too), and
// resourceVersion is not trusted, the fields themselves are compared. The
// desired map and the claims (claims.go) are kept between passes and
// changed for the changed nodes only: their claims are released, and their
// new claims settled together with the claims that overlapped a released
// one, through the claim trie (a walk of at most 32 or 128 steps per
// claim, whatever the number of nodes). What the previous pass routed to a
// node is what the node holds, exactly as DesiredHeld with the previous
// pass's routes as holders would settle it. A full update recomputes every
// node and settles every claim anew with the Tier-1's holders: the periodic
// resync's safety net against a stale entry.
//
// Not safe for concurrent use: it belongs to the goroutine running passes.
type nodeCache struct {
	rules   routeRules
	entries map[string]*nodeEntry
	gen     uint64
	desired map[string]nsx.Route
	trie    *claimTrie
	// refused holds every claim that lost to an overlapping one.
	refused map[*claim]struct{}
	// mark is the generation of the current settle.
	mark uint64
	// problemNodes are the nodes whose entry has problems.
	problemNodes map[string]bool
}

// nodeEntry is one node's claims and problems as computed from obj.
type nodeEntry struct {
	obj      *corev1.Node
	claims   []*claim
	problems []NodeProblem
	gen      uint64 // the last update that saw the node
	// created and createdMsg remember the message of the node's condition
	// for a route count, so a pass does not format it anew.
	created    int
	createdMsg string
}

func newNodeCache(rules routeRules) *nodeCache {
	return &nodeCache{rules: rules, entries: map[string]*nodeEntry{}, desired: map[string]nsx.Route{},
		trie: newClaimTrie(), refused: map[*claim]struct{}{}, problemNodes: map[string]bool{}}
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
	// (a full update); otherwise only the routes of touched (route IDs) may.
	all     bool
	touched []string
}

// nodeChange is a node recomputed or removed, with its previous entry.
type nodeChange struct {
	name     string
	old, cur *nodeEntry // nil: none
}

// update brings the cache up to nodes (the informer's objects, which are
// never modified) and returns the desired routes. full recomputes every
// node and settles every claim with holders (route ID -> node: Holders of
// the Tier-1's routes); otherwise holders is not used, the previous
// update's routes are what the nodes hold.
func (nc *nodeCache) update(nodes []*corev1.Node, full bool, holders map[string]string) cacheResult {
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
			claims, problems := nc.rules.nodeClaims(FromNode(obj))
			cur := &nodeEntry{claims: claims, problems: problems}
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
	if full {
		nc.rebuild(holders)
		res.all = true
	} else {
		nc.settle(changes, &res)
	}
	res.desired = nc.desired
	res.problems = nc.collectProblems()
	return res
}

// settle releases the claims of changes' old entries and settles their
// new claims, with every claim that overlapped a released one, in
// claimBefore order against the claims that stay accepted: what
// DesiredHeld gives with the previous routes as holders.
func (nc *nodeCache) settle(changes []nodeChange, res *cacheResult) {
	nc.mark++
	// A changed node's claim to a route it holds keeps it (a readdressed
	// node, or one re-created under its name).
	for _, ch := range changes {
		if ch.cur == nil {
			continue
		}
		for _, c := range ch.cur.claims {
			d, ok := nc.desired[c.route.ID]
			c.held = ok && NodeOf(d) == c.node
		}
	}
	var released, candidates []*claim
	for _, ch := range changes {
		if ch.old == nil {
			continue
		}
		for _, c := range ch.old.claims {
			if c.accepted {
				delete(nc.desired, c.route.ID)
				res.touched = append(res.touched, c.route.ID)
				released = append(released, c)
			} else {
				delete(nc.refused, c)
			}
			nc.trie.remove(c)
		}
	}
	for _, ch := range changes {
		if ch.cur == nil {
			continue
		}
		for _, c := range ch.cur.claims {
			nc.trie.add(c)
			c.mark = nc.mark
			candidates = append(candidates, c)
		}
	}
	for _, r := range released {
		nc.trie.overlapping(r.prefix, func(c *claim) {
			if !c.accepted && c.mark != nc.mark {
				c.mark, c.held = nc.mark, false // refused before: it held nothing
				candidates = append(candidates, c)
			}
		})
	}
	sortClaims(candidates)
	var accepted []*claim
	for _, c := range candidates {
		c.blocker = nil
		if nc.trie.blocker(c.prefix) != nil {
			nc.refused[c] = struct{}{}
			continue
		}
		nc.trie.accept(c)
		delete(nc.refused, c)
		nc.desired[c.route.ID] = c.route
		res.touched = append(res.touched, c.route.ID)
		accepted = append(accepted, c)
	}
	// Name the holder each refused claim overlaps, where it may have changed.
	for _, c := range candidates {
		if !c.accepted {
			c.blocker = nc.trie.blocker(c.prefix)
		}
	}
	for _, a := range accepted {
		nc.trie.overlapping(a.prefix, func(c *claim) {
			if !c.accepted {
				c.blocker = nc.trie.blocker(c.prefix)
			}
		})
	}
}

// rebuild settles every entry's claims anew, the holders' first.
func (nc *nodeCache) rebuild(holders map[string]string) {
	var all []*claim
	for _, e := range nc.entries {
		for _, c := range e.claims {
			c.held = holders[c.route.ID] == c.node
			all = append(all, c)
		}
	}
	nc.trie = newClaimTrie()
	settleAll(nc.trie, all)
	nc.desired = make(map[string]nsx.Route, len(all))
	nc.refused = map[*claim]struct{}{}
	for _, c := range all {
		if c.accepted {
			nc.desired[c.route.ID] = c.route
		} else {
			nc.refused[c] = struct{}{}
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
	for c := range nc.refused {
		out = append(out, c.problem())
	}
	sortProblems(out)
	return out
}

// routesCreated is how many of node e's routes desired holds for it (the
// others went to another node or over the route limit).
func (e *nodeEntry) routesCreated(desired map[string]nsx.Route) int {
	n := 0
	for _, c := range e.claims {
		if d, ok := desired[c.route.ID]; ok && NodeOf(d) == c.node {
			n++
		}
	}
	return n
}
