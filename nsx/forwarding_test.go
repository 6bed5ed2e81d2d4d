package nsx_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

func TestForwardingTableReadsAllPages(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	c := newClient(t, sim, nsx.Config{})
	routes := makeRoutes(2500, "r")
	routes[7].NextHops = append(routes[7].NextHops, nsx.NextHop{IP: "198.51.100.251"}) // ECMP: two entries
	if err := c.Apply(context.Background(), t1Path, routes, nil); err != nil {
		t.Fatal(err)
	}
	sim.ResetStats()
	entries, err := c.ForwardingTable(context.Background(), t1Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := sim.Stats().Requests; got != 3 {
		t.Fatalf("%d calls for 2,501 entries, want 3 pages", got)
	}
	want := map[string]bool{}
	for _, r := range routes {
		for _, h := range r.NextHops {
			want[r.Network+" via "+h.IP] = true
		}
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(entries), len(want))
	}
	for _, e := range entries {
		if !want[e.Network+" via "+e.NextHop] || e.RouteType != "t1s" || e.EdgeNode == "" {
			t.Fatalf("unexpected entry %+v", e)
		}
		delete(want, e.Network+" via "+e.NextHop)
	}
	if _, err := c.ForwardingTable(context.Background(), nsx.Tier1Path("absent")); !nsx.IsNotFound(err) {
		t.Fatalf("absent Tier-1: %v, want not found", err)
	}
}

// callCounter counts what the client sent, by operation.
type callCounter struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *callCounter) observe(op string, _, _ int, _ time.Duration) {
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}

func (c *callCounter) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// 10,000 routes' realization in ≤ 15 NSX calls, counted at the simulator.
func TestRealizeRoutes10000(t *testing.T) {
	const n = 10000
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	c := newClient(t, sim, nsx.Config{})
	ctx := context.Background()
	if err := c.Apply(ctx, t1Path, makeRoutes(n, "r"), nil); err != nil {
		t.Fatal(err)
	}
	listed, err := c.ListRoutes(ctx, t1Path)
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetStats()
	states, err := c.RealizeRoutes(ctx, t1Path, listed)
	if err != nil {
		t.Fatal(err)
	}
	calls := sim.Stats().Requests
	t.Logf("routes=%d calls=%d", n, calls)
	if calls > 15 {
		t.Fatalf("calls=%d for %d routes, want at most 15", calls, n)
	}
	for i, st := range states {
		if st.State != nsx.StateRealized || st.Err != nil {
			t.Fatalf("route %s: %+v", listed[i].ID, st)
		}
	}
}

// The bulk answer agrees with asking each route: realized, still realizing,
// failed, changed behind the list's back, and gone; and only the routes the
// forwarding table does not show are asked.
func TestRealizeRoutesAgreesWithPerRoute(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	sim := nsxsim.StartTest(t, nsxsim.Options{RealizeDelay: time.Minute, Now: clock})
	counter := &callCounter{ops: map[string]int{}}
	c := newClient(t, sim, nsx.Config{Observe: counter.observe})
	ctx := context.Background()

	old := makeRoutes(50, "old")
	if err := c.Apply(ctx, t1Path, old, nil); err != nil {
		t.Fatal(err)
	}
	advance(time.Minute)
	fresh := makeRoutes(3, "fresh")
	for i := range fresh {
		fresh[i].Network = fmt.Sprintf("100.127.%d.0/24", i)
	}
	if err := c.Apply(ctx, t1Path, fresh, nil); err != nil {
		t.Fatal(err)
	}
	sim.SetRealizationError("t1-routable", old[1].ID, "edge refused the route")
	listed, err := c.ListRoutes(ctx, t1Path)
	if err != nil {
		t.Fatal(err)
	}
	// Changed after listing: the list's next hop is not what is installed.
	sim.PutRoute("t1-routable", old[2].ID, old[2].Network, []string{"198.51.100.250"})
	advance(time.Minute)
	// Deleted after listing.
	sim.DeleteRoute("t1-routable", old[3].ID)
	advance(30 * time.Second) // old[2]'s change and the fresh routes are realized
	// Rewritten just now: realizing again.
	sim.TouchRoute("t1-routable", old[4].ID)

	bulk, err := c.RealizeRoutes(ctx, t1Path, listed)
	if err != nil {
		t.Fatal(err)
	}
	asked := counter.get("get realized state")
	if counter.get("get forwarding table") != 1 || asked != 4 {
		t.Fatalf("forwarding-table reads %d, per-route asks %d; want 1 and 4 (the failed, changed, deleted and realizing routes)",
			counter.get("get forwarding table"), asked)
	}
	for i, r := range listed {
		each, eachErr := c.Realized(ctx, r.Path)
		got := bulk[i]
		if (eachErr != nil) != (got.Err != nil) || got.State != stateOr(each.State, eachErr) || got.Error != each.Error {
			t.Fatalf("route %s: bulk %+v, per route %+v %v", r.ID, got, each, eachErr)
		}
	}
	want := map[string]string{old[0].ID: nsx.StateRealized, old[1].ID: nsx.StateError, old[2].ID: nsx.StateRealized,
		old[3].ID: nsx.StateUnknown, old[4].ID: nsx.StateUnrealized, fresh[0].ID: nsx.StateRealized}
	for i, r := range listed {
		if w, ok := want[r.ID]; ok && bulk[i].State != w {
			t.Fatalf("route %s: %s, want %s", r.ID, bulk[i].State, w)
		}
	}
}

func stateOr(s string, err error) string {
	if err != nil {
		return nsx.StateUnknown
	}
	return s
}

// An NSX without the forwarding table (or failing it): every route is asked.
func TestRealizeRoutesFallsBack(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	counter := &callCounter{ops: map[string]int{}}
	c := newClient(t, sim, nsx.Config{Observe: counter.observe})
	ctx := context.Background()
	routes := makeRoutes(20, "r")
	if err := c.Apply(ctx, t1Path, routes, nil); err != nil {
		t.Fatal(err)
	}
	sim.AddFault(nsxsim.FaultRule{Path: "/forwarding-table$", Status: 404})
	states, err := c.RealizeRoutes(ctx, t1Path, routes) // no Path: built from the ID
	if err != nil {
		t.Fatal(err)
	}
	if counter.get("get realized state") != 20 {
		t.Fatalf("%d per-route asks, want 20", counter.get("get realized state"))
	}
	for i, st := range states {
		if st.State != nsx.StateRealized {
			t.Fatalf("route %s: %+v", routes[i].ID, st)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.RealizeRoutes(cancelled, t1Path, routes); err == nil {
		t.Fatal("a cancelled context did not fail")
	}
	if _, err := c.RealizeRoutes(ctx, nsx.RouterPath{}, routes); err == nil {
		t.Fatal("no router path was accepted")
	}
}
