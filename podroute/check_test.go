package podroute

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

// checkFixture is a cluster of two nodes, a and b, with a podCIDR and an address each.
func checkFixture() (Identity, []netip.Prefix, []Node) {
	return Identity{UID: "u1", Name: "c1"}, []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}, []Node{
		{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}, InternalIPs: []string{"198.51.100.11"}},
		{Name: "b", PodCIDRs: []string{"100.96.2.0/24"}, InternalIPs: []string{"198.51.100.12"}},
	}
}

func TestCheckRoutes(t *testing.T) {
	id, cidrs, nodes := checkFixture()
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

// checkNSX is a stateful fake of what Check reads: a forwarding table, a
// route list and per-route realized states, counting each read.
type checkNSX struct {
	fib         []nsx.ForwardingEntry
	fibErr      error
	routes      []nsx.Route
	states      map[string]string // route ID -> realized state when asked one by one
	lists       int
	fibReads    int
	askedFibNil bool
	asked       []string // route IDs asked one by one
}

func (f *checkNSX) Installed(ctx context.Context, _ nsx.RouterPath) (*nsx.InstalledRoutes, error) {
	f.fibReads++
	if f.fibErr != nil {
		return nil, f.fibErr
	}
	return nsx.NewInstalledRoutes(f.fib), ctx.Err()
}

func (f *checkNSX) ListRoutes(ctx context.Context, _ nsx.RouterPath) ([]nsx.Route, error) {
	f.lists++
	return f.routes, ctx.Err()
}

func (f *checkNSX) RealizeRoutesWith(_ context.Context, _ nsx.RouterPath, routes []nsx.Route, installed *nsx.InstalledRoutes) ([]nsx.RouteRealization, error) {
	f.askedFibNil = installed == nil
	out := make([]nsx.RouteRealization, len(routes))
	for i, r := range routes {
		if installed.Holds(r) {
			out[i].State = nsx.StateRealized
			continue
		}
		f.asked = append(f.asked, r.ID)
		out[i].State = f.states[r.ID]
	}
	return out, nil
}

func TestCheckReadsTheForwardingTableFirst(t *testing.T) {
	id, cidrs, nodes := checkFixture()
	want, _ := Desired(id, cidrs, nodes)
	var routes []nsx.Route
	ids := map[string]string{}
	for _, r := range want {
		routes = append(routes, r)
		ids[NodeOf(r)] = r.ID
	}
	entry := func(network, hop string) nsx.ForwardingEntry {
		return nsx.ForwardingEntry{Network: network, NextHop: hop, RouteType: "t1s", EdgeNode: "edge-1"}
	}
	both := []nsx.ForwardingEntry{entry("100.96.1.0/24", "198.51.100.11"), entry("100.96.2.0/24", "198.51.100.12")}
	onlyA := both[:1]
	cases := []struct {
		name      string
		nodes     []Node
		nsx       *checkNSX
		want      map[string]string // node -> "realized", a realized state, or a problem substring
		lists     int
		asked     []string
		askAllFib bool // per-route questions were asked with no forwarding table
	}{
		{name: "every route installed: the route list is not read", nodes: nodes,
			nsx:  &checkNSX{fib: both, routes: routes},
			want: map[string]string{"a": nsx.StateRealized, "b": nsx.StateRealized}},
		{name: "installed through another next hop: the list explains it", nodes: nodes,
			nsx:   &checkNSX{fib: []nsx.ForwardingEntry{both[0], entry("100.96.2.0/24", "198.51.100.99")}, routes: routes, states: map[string]string{ids["b"]: nsx.StateUnrealized}},
			want:  map[string]string{"a": nsx.StateRealized, "b": nsx.StateUnrealized},
			lists: 1, asked: []string{ids["b"]}},
		{name: "configured, not installed yet: only that route is asked", nodes: nodes,
			nsx:   &checkNSX{fib: onlyA, routes: routes, states: map[string]string{ids["b"]: nsx.StateUnrealized}},
			want:  map[string]string{"a": nsx.StateRealized, "b": nsx.StateUnrealized},
			lists: 1, asked: []string{ids["b"]}},
		{name: "missing on the Tier-1", nodes: nodes,
			nsx:   &checkNSX{fib: onlyA, routes: routes[:0:0]},
			want:  map[string]string{"a": "missing", "b": "missing"},
			lists: 1},
		{name: "forwarding table unreadable: every route is asked", nodes: nodes,
			nsx:   &checkNSX{fibErr: errors.New("edge down"), routes: routes, states: map[string]string{ids["a"]: nsx.StateRealized, ids["b"]: nsx.StateError}},
			want:  map[string]string{"a": nsx.StateRealized, "b": nsx.StateError},
			lists: 1, asked: []string{ids["a"], ids["b"]}, askAllFib: true},
		{name: "a node without an address is a verdict without reading the list", nodes: append(nodes[:2:2], Node{Name: "c", PodCIDRs: []string{"100.96.3.0/24"}}),
			nsx:  &checkNSX{fib: both, routes: routes},
			want: map[string]string{"a": nsx.StateRealized, "b": nsx.StateRealized, "c": "no InternalIP"}},
		{name: "no route needed: the list is read (nothing to shortcut)", nodes: nil,
			nsx: &checkNSX{fib: both}, want: map[string]string{}, lists: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(context.Background(), tc.nsx, nsx.Tier1Path("t1"), id, cidrs, tc.nodes)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d verdicts, want %d: %+v", len(got), len(tc.want), got)
			}
			for _, v := range got {
				w := tc.want[v.Node]
				switch {
				case v.Problem != "":
					if !strings.Contains(v.Problem, w) || w == "" {
						t.Errorf("node %s: problem %q, want %q", v.Node, v.Problem, w)
					}
				case v.Realization.State != w:
					t.Errorf("node %s: state %q, want %q", v.Node, v.Realization.State, w)
				}
			}
			if tc.nsx.fibReads != 1 || tc.nsx.lists != tc.lists {
				t.Errorf("forwarding table read %d times (want 1), route list %d (want %d)", tc.nsx.fibReads, tc.nsx.lists, tc.lists)
			}
			if strings.Join(tc.nsx.asked, ",") != strings.Join(tc.asked, ",") {
				t.Errorf("asked one by one: %v, want %v", tc.nsx.asked, tc.asked)
			}
			if tc.lists > 0 && len(tc.asked) > 0 && tc.nsx.askedFibNil != tc.askAllFib {
				t.Errorf("per-route questions without the forwarding table: %t, want %t", tc.nsx.askedFibNil, tc.askAllFib)
			}
		})
	}
}

func TestCheckStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &checkNSX{fibErr: context.Canceled}
	if _, err := Check(ctx, f, nsx.Tier1Path("t1"), Identity{UID: "u"}, nil, nil); !errors.Is(err, context.Canceled) || f.lists != 0 {
		t.Fatalf("err %v after %d lists; want context.Canceled and no list", err, f.lists)
	}
}
