package podroute

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/t1route/t1route/nsx"
)

// claimant is a node created minutes after a fixed time, claiming cidrs.
func claimant(name string, minutes int, cidrs ...string) Node {
	return Node{Name: name, UID: "uid-" + name, PodCIDRs: cidrs, InternalIPs: []string{"198.51.100.10", "fd00:198:51::10"},
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(minutes) * time.Minute)}
}

// No node takes another's traffic: a pod CIDR equal to, inside or around
// one routed to another node gets no route, the first claim keeps it (the
// node holding the route, then the oldest node), and the node left without
// says which node holds what.
func TestDesiredSettlesOverlappingClaims(t *testing.T) {
	victim := claimant("victim", 0, "100.96.1.0/24")
	cases := []struct {
		name    string
		nodes   []Node
		holders map[string]string // network -> node
		want    map[string]string // network -> node
		// problems are node/reason/holder named in the message.
		problems []string
	}{
		{"an equal pod CIDR", []Node{victim, claimant("attacker", 5, "100.96.1.0/24")}, nil,
			map[string]string{"100.96.1.0/24": "victim"}, []string{"attacker/DuplicatePodCIDR/victim"}},
		{"an equal pod CIDR of a node whose name sorts first", []Node{victim, claimant("a-attacker", 5, "100.96.1.0/24")}, nil,
			map[string]string{"100.96.1.0/24": "victim"}, []string{"a-attacker/DuplicatePodCIDR/victim"}},
		{"a longer prefix inside", []Node{victim, claimant("attacker", 5, "100.96.1.128/25")}, nil,
			map[string]string{"100.96.1.0/24": "victim"}, []string{"attacker/OverlappingPodCIDR/victim"}},
		{"a host route inside", []Node{victim, claimant("attacker", 5, "100.96.1.7/32")}, nil,
			map[string]string{"100.96.1.0/24": "victim"}, []string{"attacker/OverlappingPodCIDR/victim"}},
		{"a shorter prefix around", []Node{victim, claimant("attacker", 5, "100.96.0.0/23")}, nil,
			map[string]string{"100.96.1.0/24": "victim"}, []string{"attacker/OverlappingPodCIDR/victim"}},
		{"the whole cluster CIDR", []Node{victim, claimant("b", 1, "100.96.2.0/24"), claimant("attacker", 5, "100.96.0.0/11")}, nil,
			map[string]string{"100.96.1.0/24": "victim", "100.96.2.0/24": "b"}, []string{"attacker/OverlappingPodCIDR/victim"}},
		{"a dual-stack attacker, each family on its own", []Node{claimant("victim", 0, "100.96.1.0/24", "fd00:100:96:1::/64"),
			claimant("attacker", 5, "100.96.1.0/25", "fd00:100:96:2::/64")}, nil,
			map[string]string{"100.96.1.0/24": "victim", "fd00:100:96:1::/64": "victim", "fd00:100:96:2::/64": "attacker"},
			[]string{"attacker/OverlappingPodCIDR/victim"}},
		{"two disjoint halves of an unrouted range", []Node{claimant("lo", 5, "100.96.1.0/25"), claimant("hi", 6, "100.96.1.128/25")}, nil,
			map[string]string{"100.96.1.0/25": "lo", "100.96.1.128/25": "hi"}, nil},
		{"nothing held: the oldest node wins", []Node{claimant("young", 5, "100.96.1.0/24"), claimant("old", 1, "100.96.1.0/24")}, nil,
			map[string]string{"100.96.1.0/24": "old"}, []string{"young/DuplicatePodCIDR/old"}},
		{"nothing held, same age: the lowest UID wins", []Node{claimant("x", 1, "100.96.1.0/24"), claimant("w", 1, "100.96.1.0/24")}, nil,
			map[string]string{"100.96.1.0/24": "w"}, []string{"x/DuplicatePodCIDR/w"}},
		{"nothing held: an old container beats younger nodes inside it", []Node{claimant("big", 1, "100.96.0.0/22"), claimant("s1", 2, "100.96.1.0/24"), claimant("s2", 3, "100.96.2.0/24")}, nil,
			map[string]string{"100.96.0.0/22": "big"}, []string{"s1/OverlappingPodCIDR/big", "s2/OverlappingPodCIDR/big"}},
		{"the holder keeps its route against an older node", []Node{claimant("holder", 9, "100.96.1.0/24"), claimant("old", 1, "100.96.1.0/24")},
			map[string]string{"100.96.1.0/24": "holder"}, map[string]string{"100.96.1.0/24": "holder"}, []string{"old/DuplicatePodCIDR/holder"}},
		{"the holder keeps its route against an older container", []Node{claimant("holder", 9, "100.96.1.0/24"), claimant("old", 1, "100.96.0.0/16")},
			map[string]string{"100.96.1.0/24": "holder"}, map[string]string{"100.96.1.0/24": "holder"}, []string{"old/OverlappingPodCIDR/holder"}},
		{"a route held under another node's name is not held", []Node{claimant("young", 9, "100.96.1.0/24"), claimant("old", 1, "100.96.1.0/24")},
			map[string]string{"100.96.1.0/24": "gone"}, map[string]string{"100.96.1.0/24": "old"}, []string{"young/DuplicatePodCIDR/old"}},
		{"overlapping routes an older t1route left: the oldest holder keeps its own", []Node{victim, claimant("attacker", 5, "100.96.1.0/25")},
			map[string]string{"100.96.1.0/24": "victim", "100.96.1.0/25": "attacker"}, map[string]string{"100.96.1.0/24": "victim"},
			[]string{"attacker/OverlappingPodCIDR/victim"}},
		{"overlapping pod CIDRs of one node", []Node{claimant("self", 1, "100.96.1.0/24", "100.96.1.0/25")}, nil,
			map[string]string{"100.96.1.0/24": "self"}, []string{"self/OverlappingPodCIDR/self"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			holders := map[string]string{}
			for network, node := range tc.holders {
				holders[us.RouteID(network)] = node
			}
			routes, problems := DesiredHeld(us, dual, tc.nodes, holders)
			got := map[string]string{}
			for _, r := range routes {
				got[r.Network] = NodeOf(r)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("routes = %v, want %v", got, tc.want)
			}
			var gotProblems []string
			for _, p := range problems {
				holder := "?"
				for _, n := range tc.nodes {
					if p.Node != n.Name && strings.Contains(p.Message, "node "+n.Name+"'s pod CIDR") {
						holder = n.Name
					}
				}
				if p.Node == holder || strings.Contains(p.Message, "another of this node's pod CIDRs") {
					holder = p.Node
				}
				gotProblems = append(gotProblems, p.Node+"/"+p.Reason+"/"+holder)
			}
			if !slices.Equal(gotProblems, tc.problems) {
				t.Fatalf("problems = %v, want %v\n%v", gotProblems, tc.problems, problems)
			}
			// However the nodes are listed.
			reversed := slices.Clone(tc.nodes)
			slices.Reverse(reversed)
			again, againProblems := DesiredHeld(us, dual, reversed, holders)
			if !reflect.DeepEqual(again, routes) || !reflect.DeepEqual(againProblems, problems) {
				t.Fatalf("the order of the nodes changes the result: %v %v", again, againProblems)
			}
		})
	}
}

// The trie finds the holder a prefix overlaps, and every claim overlapping
// a prefix, as a scan of all claims does.
func TestClaimTrieMatchesAScan(t *testing.T) {
	var claims []*claim
	for i, s := range []string{"100.96.0.0/16", "100.96.1.0/24", "100.96.1.0/24", "100.96.1.128/25", "100.96.2.0/24",
		"100.96.3.0/26", "100.96.3.192/26", "100.97.0.0/16", "0.0.0.0/1", "fd00:100:96::/48", "fd00:100:96:1::/64", "fd00:100:96:1::/64"} {
		claims = append(claims, &claim{prefix: netip.MustParsePrefix(s), node: fmt.Sprint(i)})
	}
	tr := newClaimTrie()
	for _, c := range claims {
		tr.add(c)
	}
	accepted := map[*claim]bool{claims[1]: true, claims[4]: true, claims[6]: true, claims[7]: true, claims[10]: true}
	for c := range accepted {
		tr.accept(c)
	}
	tr.remove(claims[2])
	claims = slices.Delete(claims, 2, 3)
	probes := []string{"100.96.0.0/16", "100.96.1.0/24", "100.96.1.64/26", "100.96.0.0/22", "100.96.3.0/24", "100.96.3.128/25",
		"100.98.0.0/16", "64.0.0.0/2", "0.0.0.0/0", "fd00:100:96::/48", "fd00:100:96:1:1::/80", "fd00::/8", "::/0"}
	for _, s := range probes {
		p := netip.MustParsePrefix(s)
		var want *claim
		var wantOverlap []string
		for _, c := range claims {
			if !p.Overlaps(c.prefix) {
				continue
			}
			wantOverlap = append(wantOverlap, c.node)
			if !accepted[c] {
				continue
			}
			// The holder containing p, else the lowest inside it.
			if c.prefix.Bits() <= p.Bits() || want == nil || (want.prefix.Bits() > p.Bits() && c.prefix.Addr().Less(want.prefix.Addr())) {
				want = c
			}
		}
		if got := tr.blocker(p); got != want {
			t.Errorf("blocker(%s) = %v, want %v", p, got, want)
		}
		var gotOverlap []string
		tr.overlapping(p, func(c *claim) { gotOverlap = append(gotOverlap, c.node) })
		slices.Sort(gotOverlap)
		slices.Sort(wantOverlap)
		if !slices.Equal(gotOverlap, wantOverlap) {
			t.Errorf("overlapping(%s) = %v, want %v", p, gotOverlap, wantOverlap)
		}
	}
	for _, c := range claims {
		tr.remove(c)
	}
	if tr.roots[0] != nil || tr.roots[1] != nil {
		t.Error("the trie keeps nodes after every claim is removed")
	}
}

// A node refused for another's pod CIDR is told who holds it, and told
// again when the holder changes: a new event, and its condition patched
// although only the message differs.
func TestRefusedNodeIsToldTheCurrentHolder(t *testing.T) {
	kube := fake.NewSimpleClientset()
	ctx := context.Background()
	for i, name := range []string{"holder", "next", "last"} {
		n := cacheNode(name, "uid-"+name, "1", "100.96.1.0/24", fmt.Sprintf("198.51.100.%d", i+1))
		aged(n, i)
		if _, err := kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	events := record.NewFakeRecorder(100)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4}, kube, fnsx, events)
	lastSays := func(holder string) {
		t.Helper()
		if err := c.reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		drainConditions(ctx, c)
		n, _ := kube.CoreV1().Nodes().Get(ctx, "last", metav1.GetOptions{})
		if len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Status != corev1.ConditionTrue || !strings.Contains(n.Status.Conditions[0].Message, "node "+holder+"'s") {
			t.Fatalf("last's condition %+v, want True naming %s", n.Status.Conditions, holder)
		}
		found := false
		for len(events.Events) > 0 {
			ev := <-events.Events
			found = found || strings.Contains(ev, ReasonDuplicatePodCID) && strings.Contains(ev, "node "+holder+"'s")
		}
		if !found {
			t.Fatalf("no event tells last that %s holds its pod CIDR", holder)
		}
	}
	lastSays("holder")
	if err := kube.CoreV1().Nodes().Delete(ctx, "holder", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the informer without holder", func() bool { _, err := c.nodes.Get("holder"); return err != nil })
	lastSays("next")
}
