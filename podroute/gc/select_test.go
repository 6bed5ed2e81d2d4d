package gc

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
)

func routesOf(id podroute.Identity, nodes ...string) []nsx.Route {
	var ns []podroute.Node
	for i, n := range nodes {
		ns = append(ns, podroute.Node{Name: n, PodCIDRs: []string{netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 96, byte(i), 0}), 24).String()},
			InternalIPs: []string{netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}).String()}})
	}
	m, _ := podroute.Desired(id, []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}, ns)
	var out []nsx.Route
	for _, r := range m {
		out = append(out, r)
	}
	return out
}

func ids(rs []nsx.Route) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.ID)
	}
	return strings.Join(s, ",")
}

func TestGarbageCollectionSelection(t *testing.T) {
	a := podroute.Identity{UID: "uid-a", Name: "alpha"}
	b := podroute.Identity{UID: "uid-b", Name: "beta"}
	b2 := podroute.Identity{UID: "uid-b2", Name: "beta"} // a second cluster reusing the name
	foreign := nsx.Route{ID: "handmade", Network: "100.96.0.0/24", Tags: []nsx.Tag{{Scope: podroute.ScopeClusterName, Tag: "alpha"}}}
	cloud := nsx.Route{ID: "cp", Network: "100.96.0.0/24", Tags: []nsx.Tag{{Scope: podroute.ScopeCloudProviderCluster, Tag: "alpha"}}}
	all := append(append(append(routesOf(a, "a1", "a2"), routesOf(b, "b1")...), routesOf(b2, "c1")...), foreign, cloud)

	got, refs := RoutesOfCluster(all, "alpha")
	if len(got) != 2 || len(refs) != 1 || refs[0] != (podroute.ClusterRef{UID: "uid-a", Name: "alpha"}) || strings.Contains(ids(got), "handmade") {
		t.Fatalf("by name: %s %v", ids(got), refs)
	}
	if got, _ = RoutesOfCluster(all, "uid-b"); len(got) != 1 {
		t.Fatalf("by UID: %s", ids(got))
	}
	if got, refs = RoutesOfCluster(all, "beta"); len(got) != 2 || len(refs) != 2 {
		t.Fatalf("a name shared by two clusters must show both: %s %v", ids(got), refs)
	}
	if got, _ = RoutesOfCluster(all, "nobody"); len(got) != 0 {
		t.Fatalf("unknown cluster selected %s", ids(got))
	}

	cases := []struct {
		name       string
		live, keep map[string]bool
		want       int
		clusters   int
	}{
		{"all live", map[string]bool{"alpha": true, "beta": true}, nil, 0, 0},
		{"beta gone", map[string]bool{"alpha": true}, nil, 2, 2},
		{"nothing live, alpha kept by name", nil, map[string]bool{"alpha": true}, 2, 2},
		{"nothing live, one beta kept by UID", nil, map[string]bool{"uid-b": true}, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, refs := OrphanRoutes(all, tc.live, tc.keep)
			if len(got) != tc.want || len(refs) != tc.clusters {
				t.Fatalf("got %d routes of %v, want %d of %d clusters", len(got), refs, tc.want, tc.clusters)
			}
			for _, r := range got {
				if r.ID == "handmade" || r.ID == "cp" {
					t.Fatalf("selected a route without t1route's tags: %s", r.ID)
				}
			}
		})
	}
	if c := Clusters(all); len(c) != 3 || c[podroute.ClusterRef{UID: "uid-a", Name: "alpha"}] != 2 {
		t.Fatalf("clusters = %v", c)
	}
}
