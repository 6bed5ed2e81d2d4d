package podroute

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/t1route/t1route/nsx"
)

// actualRoutes is what the controller believes the Tier-1 holds: its routes
// as last listed plus what the controller applied since. Passes triggered by
// node changes diff against it; NSX is listed at start, after any failure
// (Invalidate) and on every resync, which is when changes made in NSX out of
// band are found and repaired. Listing 10,000 routes on every node change
// would cost ~1 s a change.
//
// Resyncs list in the background (BeginList, EndList) so that a pass never
// waits for a list (~3 s at 50,000 routes); the next pass adopts it. Routes
// the controller writes while a list is in flight are marked dirty, and
// adopting the list takes those from the controller's own state and
// everything else from NSX, so its own writes never look like changes made
// out of band.
//
// Refresh, Applied and Routes belong to the goroutine running passes;
// Invalidate, BeginList and EndList may be called from any.
type actualRoutes struct {
	routes map[string]nsx.Route // nil until the first list
	// owns says which routes are this cluster's; owned counts them in
	// routes (kept up to date: counting 50,000 routes a pass is not free).
	owns     func(nsx.Route) bool
	owned    int
	needList atomic.Bool

	listing atomic.Bool // a background list is running
	mu      sync.Mutex
	fresh   []nsx.Route // a finished background list not yet adopted
	freshOK bool
	dirty   map[string]bool // route IDs written since the running list began; nil when none runs or waits
}

// Invalidate makes the next pass list NSX: its state is uncertain.
func (a *actualRoutes) Invalidate() { a.needList.Store(true) }

// BeginList claims the background list. It returns false when one is
// already running; the caller then leaves the list to the next pass.
func (a *actualRoutes) BeginList() bool {
	if !a.listing.CompareAndSwap(false, true) {
		return false
	}
	a.mu.Lock()
	a.dirty = map[string]bool{}
	a.mu.Unlock()
	return true
}

// EndList hands over a background list for the next pass to adopt; after a
// failed list the next pass lists again (and reports the failure).
func (a *actualRoutes) EndList(listed []nsx.Route, err error) {
	if err != nil {
		a.Invalidate()
	} else {
		a.mu.Lock()
		a.fresh, a.freshOK = listed, true
		a.mu.Unlock()
	}
	a.listing.Store(false)
}

// Refresh brings the routes up to date for a pass: it lists NSX with list
// when invalidated (or never listed), else adopts a finished background
// list, else keeps what it knows. On a new list it returns the routes
// known before it, for the caller to name what changed out of band.
func (a *actualRoutes) Refresh(ctx context.Context, list func(context.Context) ([]nsx.Route, error)) (before map[string]nsx.Route, listed bool, err error) {
	routes, ok := a.takeFresh()
	if a.needList.Swap(false) || a.routes == nil {
		if routes, err = list(ctx); err != nil {
			a.Invalidate()
			return nil, false, err
		}
		ok = true
	}
	if !ok {
		return nil, false, nil
	}
	fresh := make(map[string]nsx.Route, len(routes))
	a.owned = 0
	for _, r := range routes {
		if old, ok := fresh[r.ID]; ok && a.isOwned(old) {
			a.owned--
		}
		fresh[r.ID] = r
		if a.isOwned(r) {
			a.owned++
		}
	}
	before, a.routes = a.routes, fresh
	return before, true, nil
}

// takeFresh returns a finished background list, with the routes written
// while it ran taken from this controller's state instead.
func (a *actualRoutes) takeFresh() ([]nsx.Route, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.freshOK {
		return nil, false
	}
	listed, dirty := a.fresh, a.dirty
	a.fresh, a.freshOK, a.dirty = nil, false, nil
	if len(dirty) == 0 {
		return listed, true
	}
	merged := make([]nsx.Route, 0, len(listed))
	for _, r := range listed {
		if !dirty[r.ID] {
			merged = append(merged, r)
		}
	}
	for id := range dirty {
		if r, ok := a.routes[id]; ok {
			merged = append(merged, r)
		}
	}
	return merged, true
}

// Applied records changes NSX accepted: deletes first, then the upserts
// except those refused reports (NSX's refusals, isolated by bisection).
func (a *actualRoutes) Applied(ch Changes, refused func(id string) bool) {
	for _, id := range ch.Deletes {
		a.remove(id)
	}
	for _, r := range ch.Upserts {
		if refused == nil || !refused(r.ID) {
			a.remove(r.ID)
			a.routes[r.ID] = r
			if a.isOwned(r) {
				a.owned++
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dirty == nil {
		return // no list running or waiting
	}
	for _, r := range ch.Upserts {
		a.dirty[r.ID] = true
	}
	for _, id := range ch.Deletes {
		a.dirty[id] = true
	}
}

func (a *actualRoutes) remove(id string) {
	if old, ok := a.routes[id]; ok {
		if a.isOwned(old) {
			a.owned--
		}
		delete(a.routes, id)
	}
}

func (a *actualRoutes) isOwned(r nsx.Route) bool { return a.owns != nil && a.owns(r) }

// Owned is how many of Routes are this cluster's.
func (a *actualRoutes) Owned() int { return a.owned }

// Routes is the Tier-1's routes as known, by ID; callers must not change it.
func (a *actualRoutes) Routes() map[string]nsx.Route { return a.routes }

// List is Routes as a slice (any order).
func (a *actualRoutes) List() []nsx.Route {
	out := make([]nsx.Route, 0, len(a.routes))
	for _, r := range a.routes {
		out = append(out, r)
	}
	return out
}
