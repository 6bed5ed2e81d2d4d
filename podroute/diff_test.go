package podroute

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

var (
	us    = Identity{UID: "11111111-aaaa-4bbb-8ccc-000000000001", Name: "prod"}
	twin  = Identity{UID: "22222222-aaaa-4bbb-8ccc-000000000002", Name: "prod"} // same name, another cluster
	v4    = []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}
	dual  = []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11"), netip.MustParsePrefix("fd00:100:96::/48")}
	nodeA = Node{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}, InternalIPs: []string{"198.51.100.11"}}
	nodeB = Node{Name: "b", PodCIDRs: []string{"100.96.2.0/24"}, InternalIPs: []string{"198.51.100.12"}}
)

func route(id Identity, node, cidr, hop string) nsx.Route {
	d, _ := Desired(id, dual, []Node{{Name: node, PodCIDRs: []string{cidr}, InternalIPs: []string{hop}}})
	for _, r := range d {
		return r
	}
	panic("no route for " + cidr)
}

func TestRouteIDIsDeterministicAndSafe(t *testing.T) {
	for cidr, want := range map[string]string{
		"100.96.1.0/24":      "t1route-" + us.UID + "-100.96.1.0_24",
		"fd00:100:96:1::/64": "t1route-" + us.UID + "-fd00-100-96-1--_64",
	} {
		got := us.RouteID(cidr)
		if got != want {
			t.Errorf("RouteID(%s) = %s, want %s", cidr, got, want)
		}
		if strings.Trim(got, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			t.Errorf("RouteID(%s) = %s has characters outside [A-Za-z0-9._-]", cidr, got)
		}
	}
	if us.RouteID("100.96.1.0/24") == twin.RouteID("100.96.1.0/24") {
		t.Error("two clusters of one name share a route ID")
	}
}

func TestDesired(t *testing.T) {
	cases := []struct {
		name     string
		cidrs    []netip.Prefix
		nodes    []Node
		want     map[string]string // network -> next hop
		problems []string          // node/reason
	}{
		{"one route per node", v4, []Node{nodeA, nodeB}, map[string]string{"100.96.1.0/24": "198.51.100.11", "100.96.2.0/24": "198.51.100.12"}, nil},
		{"InternalIP before ExternalIP", v4, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}, ExternalIPs: []string{"203.0.113.1"}, InternalIPs: []string{"198.51.100.11"}}},
			map[string]string{"100.96.1.0/24": "198.51.100.11"}, nil},
		{"ExternalIP when no InternalIP", v4, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}, ExternalIPs: []string{"203.0.113.1"}}},
			map[string]string{"100.96.1.0/24": "203.0.113.1"}, nil},
		{"next hop of the same family", dual, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24", "fd00:100:96:1::/64"}, InternalIPs: []string{"2001:db8::11", "198.51.100.11"}}},
			map[string]string{"100.96.1.0/24": "198.51.100.11", "fd00:100:96:1::/64": "2001:db8::11"}, nil},
		{"no address of the family", dual, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24", "fd00:100:96:1::/64"}, InternalIPs: []string{"198.51.100.11"}}},
			map[string]string{"100.96.1.0/24": "198.51.100.11"}, []string{"a/" + ReasonNoNodeAddress}},
		{"no addresses at all", v4, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}}}, map[string]string{}, []string{"a/" + ReasonNoNodeAddress}},
		{"outside CLUSTER_CIDR", v4, []Node{{Name: "a", PodCIDRs: []string{"10.0.1.0/24"}, InternalIPs: []string{"198.51.100.11"}}}, map[string]string{}, []string{"a/" + ReasonOutsideCluster}},
		{"wider than CLUSTER_CIDR", v4, []Node{{Name: "a", PodCIDRs: []string{"100.64.0.0/10"}, InternalIPs: []string{"198.51.100.11"}}}, map[string]string{}, []string{"a/" + ReasonOutsideCluster}},
		{"IPv6 pod CIDR in a v4-only cluster", v4, []Node{{Name: "a", PodCIDRs: []string{"fd00:100:96:1::/64"}, InternalIPs: []string{"2001:db8::1"}}}, map[string]string{}, []string{"a/" + ReasonOutsideCluster}},
		{"invalid pod CIDR", v4, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.1/24", "banana"}, InternalIPs: []string{"198.51.100.11"}}}, map[string]string{},
			[]string{"a/" + ReasonInvalidPodCIDR, "a/" + ReasonInvalidPodCIDR}},
		{"no pod CIDR yet", v4, []Node{{Name: "a", InternalIPs: []string{"198.51.100.11"}}}, map[string]string{}, nil},
		{"duplicate pod CIDR of nodes of one age goes to the first by name", v4, []Node{{Name: "z", PodCIDRs: []string{"100.96.1.0/24"}, InternalIPs: []string{"198.51.100.99"}}, nodeA},
			map[string]string{"100.96.1.0/24": "198.51.100.11"}, []string{"z/" + ReasonDuplicatePodCID}},
		{"IPv4-mapped IPv6 address is IPv4", dual, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24", "fd00:100:96:1::/64"}, InternalIPs: []string{"::ffff:198.51.100.11"}}},
			map[string]string{"100.96.1.0/24": "198.51.100.11"}, []string{"a/" + ReasonNoNodeAddress}},
		{"garbage address skipped", v4, []Node{{Name: "a", PodCIDRs: []string{"100.96.1.0/24"}, InternalIPs: []string{"not-an-ip", "0.0.0.0", "198.51.100.11"}}},
			map[string]string{"100.96.1.0/24": "198.51.100.11"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			routes, problems := Desired(us, tc.cidrs, tc.nodes)
			got := map[string]string{}
			for rid, r := range routes {
				if rid != us.RouteID(r.Network) || !us.Owns(r) || len(r.NextHops) != 1 || NodeOf(r) == "" {
					t.Fatalf("malformed route %+v", r)
				}
				got[r.Network] = r.NextHops[0].IP
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("routes = %v, want %v", got, tc.want)
			}
			var gotProblems []string
			for _, p := range problems {
				gotProblems = append(gotProblems, p.Node+"/"+p.Reason)
				if p.Message == "" {
					t.Fatal("problem without a message")
				}
			}
			if !reflect.DeepEqual(gotProblems, tc.problems) {
				t.Fatalf("problems = %v, want %v", gotProblems, tc.problems)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	a := route(us, "a", "100.96.1.0/24", "198.51.100.11")
	b := route(us, "b", "100.96.2.0/24", "198.51.100.12")
	aMoved := route(us, "a", "100.96.1.0/24", "198.51.100.99")
	twinA := route(twin, "a", "100.96.1.0/24", "198.51.100.11")
	foreign := nsx.Route{ID: "default-route", Network: "0.0.0.0/0", NextHops: []nsx.NextHop{{IP: "198.51.100.1"}}}
	foreignOnOurID := nsx.Route{ID: a.ID, Network: "100.96.1.0/24", NextHops: []nsx.NextHop{{IP: "198.51.100.1"}}}
	withDefaultDistance := a
	withDefaultDistance.NextHops = []nsx.NextHop{{IP: "198.51.100.11", AdminDistance: 1}}
	reorderedTags := a
	reorderedTags.Tags = []nsx.Tag{a.Tags[3], a.Tags[2], a.Tags[1], a.Tags[0]}
	lostTag := a
	lostTag.Tags = a.Tags[:3]
	// As many tags, but the node tag twice and the cluster name lost.
	doubledTag := a
	doubledTag.Tags = []nsx.Tag{a.Tags[0], a.Tags[1], a.Tags[3], a.Tags[3]}
	desired := func(rs ...nsx.Route) map[string]nsx.Route {
		m := map[string]nsx.Route{}
		for _, r := range rs {
			m[r.ID] = r
		}
		return m
	}
	ids := func(rs []nsx.Route) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	cases := []struct {
		name              string
		desired           map[string]nsx.Route
		actual            []nsx.Route
		upserts, deletes  []string
		conflicts, drifts int
	}{
		{"create missing", desired(a, b), nil, []string{a.ID, b.ID}, nil, 0, 0},
		{"steady state writes nothing", desired(a, b), []nsx.Route{b, a}, nil, nil, 0, 0},
		{"delete routes of gone nodes", desired(a), []nsx.Route{a, b}, nil, []string{b.ID}, 0, 0},
		{"next hop changed", desired(aMoved), []nsx.Route{a}, []string{a.ID}, nil, 0, 1},
		{"out-of-band edit repaired", desired(a), []nsx.Route{aMoved}, []string{a.ID}, nil, 0, 1},
		{"lost tag repaired", desired(a), []nsx.Route{lostTag}, []string{a.ID}, nil, 0, 1},
		{"admin distance 1 equals default", desired(a), []nsx.Route{withDefaultDistance}, nil, nil, 0, 0},
		{"tag order does not matter", desired(a), []nsx.Route{reorderedTags}, nil, nil, 0, 0},
		{"a tag twice for one lost is repaired", desired(a), []nsx.Route{doubledTag}, []string{a.ID}, nil, 0, 1},
		{"foreign routes never touched", desired(), []nsx.Route{foreign}, nil, nil, 0, 0},
		{"another cluster of the same name never touched", desired(), []nsx.Route{twinA}, nil, nil, 0, 0},
		{"our ID held by a foreign route: conflict, left alone", desired(a), []nsx.Route{foreignOnOurID}, nil, nil, 1, 0},
		{"everything at once", desired(aMoved), []nsx.Route{a, b, foreign, twinA}, []string{a.ID}, []string{b.ID}, 0, 1},
		{"nothing desired, nothing there", desired(), nil, nil, nil, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Diff(us, tc.desired, routesByID(tc.actual))
			if got := ids(c.Upserts); !reflect.DeepEqual(got, tc.upserts) {
				t.Errorf("upserts = %v, want %v", got, tc.upserts)
			}
			if !reflect.DeepEqual(c.Deletes, tc.deletes) {
				t.Errorf("deletes = %v, want %v", c.Deletes, tc.deletes)
			}
			if len(c.Conflicts) != tc.conflicts || len(c.Drift) != tc.drifts {
				t.Errorf("conflicts %d drifts %d (%v), want %d and %d", len(c.Conflicts), len(c.Drift), c.Drift, tc.conflicts, tc.drifts)
			}
			for _, d := range c.Deletes {
				for _, r := range tc.actual {
					if r.ID == d && !us.Owns(r) {
						t.Fatalf("would delete a route not ours: %+v", r)
					}
				}
			}
		})
	}
}
