package podroute

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

func TestAdoptions(t *testing.T) {
	id := Identity{UID: "uid-a", Name: "alpha"}
	desired, _ := Desired(id, []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}, []Node{
		{Name: "n0", PodCIDRs: []string{"100.96.0.0/24"}, InternalIPs: []string{"198.51.100.10"}},
		{Name: "n1", PodCIDRs: []string{"100.96.1.0/24"}, InternalIPs: []string{"198.51.100.11"}}})
	var desiredList []nsx.Route
	for _, r := range desired {
		desiredList = append(desiredList, r)
	}
	cp := func(id, network, cluster string) nsx.Route {
		return nsx.Route{ID: id, Network: network, NextHops: []nsx.NextHop{{IP: "198.51.100.10"}},
			Tags: []nsx.Tag{{Scope: ScopeCloudProviderCluster, Tag: cluster}}}
	}
	cases := []struct {
		name   string
		actual []nsx.Route
		want   []string // replaced IDs
	}{
		{"cloud provider route for a wanted network is adopted", []nsx.Route{cp("cp0", "100.96.0.0/24", "alpha")}, []string{"cp0"}},
		{"another cluster's is not", []nsx.Route{cp("cp0", "100.96.0.0/24", "beta")}, nil},
		{"a network t1route does not want is left alone", []nsx.Route{cp("cp9", "100.96.9.0/24", "alpha")}, nil},
		{"untagged routes are not", []nsx.Route{{ID: "x", Network: "100.96.0.0/24"}}, nil},
		{"t1route's own routes are not", desiredList, nil},
		{"both networks", []nsx.Route{cp("cp1", "100.96.1.0/24", "alpha"), cp("cp0", "100.96.0.0/24", "alpha")}, []string{"cp0", "cp1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Adoptions(id, desired, tc.actual)
			var replaced []string
			for _, a := range got {
				replaced = append(replaced, a.Replaces.ID)
				if a.Route.Network != a.Replaces.Network || !id.Owns(a.Route) {
					t.Fatalf("bad pair %+v", a)
				}
			}
			if strings.Join(replaced, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("replaced %v, want %v", replaced, tc.want)
			}
		})
	}
}
