package podroute

import (
	"fmt"
	"sort"

	"github.com/t1route/t1route/nsx"
)

// ReasonRouteLimit is the problem reason of a node left without a route
// because the cluster needs more routes than the Tier-1 allows.
const ReasonRouteLimit = "RouteLimitExceeded"

// capRoutes keeps at most limit of the desired routes (limit <= 0: all).
// Routes already on the Tier-1 are always kept, even above the limit (NSX
// accepted them; removing one would cut a working node off): the limit only
// stops new routes, which are admitted in node order. The nodes left out are
// reported. Pure.
func capRoutes(desired map[string]nsx.Route, existing map[string]nsx.Route, limit int) (map[string]nsx.Route, []NodeProblem) {
	if limit <= 0 || len(desired) <= limit {
		return desired, nil
	}
	ids := make([]string, 0, len(desired))
	for id := range desired {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		_, ei := existing[ids[i]]
		_, ej := existing[ids[j]]
		if ei != ej {
			return ei
		}
		ni, nj := NodeOf(desired[ids[i]]), NodeOf(desired[ids[j]])
		if ni != nj {
			return ni < nj
		}
		return ids[i] < ids[j]
	})
	kept := make(map[string]nsx.Route, limit)
	var dropped []NodeProblem
	for _, id := range ids {
		r := desired[id]
		if _, exists := existing[id]; exists || len(kept) < limit {
			kept[id] = r
			continue
		}
		dropped = append(dropped, NodeProblem{Node: NodeOf(r), CIDR: r.Network, Reason: ReasonRouteLimit,
			Message: fmt.Sprintf("the cluster needs %d routes but the Tier-1 allows %d (--max-routes); no route for pod CIDR %s until nodes are removed or the limit is raised", len(desired), limit, r.Network)})
	}
	return kept, dropped
}
