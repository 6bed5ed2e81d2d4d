package podroute

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

func TestCheckRoutes(t *testing.T) {
	id := Identity{UID: "u1", Name: "c1"}
	cidrs := []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}
	nodes := []Node{
		{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}, InternalIPs: []string{"198.51.100.11"}},
		{Name: "b", PodCIDRs: []string{"100.96.2.0/24"}, InternalIPs: []string{"198.51.100.12"}},
	}
	want, _ := Desired(id, cidrs, nodes)
	good := func(node string) nsx.Route {
		for _, r := range want {
			if NodeOf(r) == node {
				return r
			}
		}
		t.Fatalf("no route for %s", node)
		return nsx.Route{}
	}
	wrongHop := good("b")
	wrongHop.NextHops = []nsx.NextHop{{IP: "198.51.100.99"}}
	foreign := good("b")
	foreign.Tags = nil // same ID but not ours: must not count

	cases := []struct {
		name   string
		nodes  []Node
		actual []nsx.Route
		want   map[string]string // node -> problem substring ("" = pass)
	}{
		{"all present", nodes, []nsx.Route{good("a"), good("b")}, map[string]string{"a": "", "b": ""}},
		{"one missing", nodes, []nsx.Route{good("a")}, map[string]string{"a": "", "b": "missing"}},
		{"wrong next hop", nodes, []nsx.Route{good("a"), wrongHop}, map[string]string{"a": "", "b": "next hop is [198.51.100.99]"}},
		{"foreign route does not count", nodes, []nsx.Route{good("a"), foreign}, map[string]string{"a": "", "b": "missing"}},
		{"node without address", []Node{{Name: "c", PodCIDRs: []string{"100.96.3.0/24"}}}, nil, map[string]string{"c": "no InternalIP"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckRoutes(id, cidrs, tc.nodes, tc.actual)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d verdicts, want %d: %+v", len(got), len(tc.want), got)
			}
			for _, c := range got {
				w, ok := tc.want[c.Node]
				if !ok {
					t.Fatalf("unexpected verdict for %s", c.Node)
				}
				if (w == "") != (c.Problem == "") || !strings.Contains(c.Problem, w) {
					t.Errorf("node %s: problem %q, want %q", c.Node, c.Problem, w)
				}
			}
		})
	}
}
