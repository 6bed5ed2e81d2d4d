//go:build integration

package integration

import (
	"testing"
	"time"

	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
)

// Migrating from the vSphere cloud provider: its routes for this cluster are
// swapped for t1route's, network by network, none dropped or duplicated;
// its routes of other clusters, and of networks t1route does not want, stay.
func TestAdoptCloudProviderRoutes(t *testing.T) {
	e := newEnv(t, nsxsim.Options{Tier1s: []string{tier1}})
	cpTag := func(cluster string) nsxsim.Tag {
		return nsxsim.Tag{Scope: podroute.ScopeCloudProviderCluster, Tag: cluster}
	}
	for i := range 3 {
		e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
		if err := e.sim.PutRoute(tier1, "cpi-"+nodeName(i), podCIDR(i), []string{nodeIP(i)}, cpTag(e.id.Name)); err != nil {
			t.Fatal(err)
		}
	}
	// A network this cluster no longer has a node for, and another cluster's route.
	if err := e.sim.PutRoute(tier1, "cpi-gone", "100.96.50.0/24", []string{"198.51.100.99"}, cpTag(e.id.Name)); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.PutRoute(tier1, "cpi-other", "100.96.60.0/24", []string{"198.51.100.98"}, cpTag("someone-else")); err != nil {
		t.Fatal(err)
	}

	defer e.startAdoptingController().stop()

	Eventually(t, 20*time.Second, "cloud provider routes adopted", func() (bool, string) {
		ours := e.ours()
		for i := range 3 {
			if _, ok := e.sim.Route(tier1, "cpi-"+nodeName(i)); ok {
				return false, "cloud provider route still there: cpi-" + nodeName(i)
			}
			if r, ok := ours[podCIDR(i)]; !ok || r.NextHops[0].IPAddress != nodeIP(i) {
				return false, "no t1route route for " + podCIDR(i)
			}
		}
		return true, ""
	})
	byNetwork := map[string]int{}
	for _, r := range e.sim.Routes(tier1) {
		byNetwork[r.Network]++
	}
	for network, n := range byNetwork {
		if n != 1 {
			t.Fatalf("%d routes for %s", n, network)
		}
	}
	for _, id := range []string{"cpi-gone", "cpi-other"} {
		if _, ok := e.sim.Route(tier1, id); !ok {
			t.Fatalf("route %s was removed; adoption must only replace routes for networks t1route wants", id)
		}
	}
}
