package podroute

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/nsx"
)

// cacheNode is a Node as the informer holds it.
func cacheNode(name, uid, rv, cidr string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid), ResourceVersion: rv}}
	if cidr != "" {
		n.Spec.PodCIDRs = []string{cidr}
	}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

// cluster is the informer's nodes by name.
type cluster map[string]*corev1.Node

func (c cluster) objs() []*corev1.Node { return slices.Collect(maps.Values(c)) }

// aged is n created minutes after a fixed time (claims of older nodes win).
func aged(n *corev1.Node, minutes int) *corev1.Node {
	n.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(minutes) * time.Minute))
	return n
}

// The cache gives what DesiredHeld gives from all nodes after every change,
// the previous pass's routes as what nodes hold, and every route that
// differs from the previous pass's is among those it says may differ (the
// scope of the next diff).
func TestNodeCacheMatchesDesired(t *testing.T) {
	a := cacheNode("a", "uid-a", "1", "100.96.1.0/24", "198.51.100.11")
	b := cacheNode("b", "uid-b", "1", "100.96.2.0/24", "198.51.100.12")
	c := cacheNode("c", "uid-c", "1", "100.96.3.0/24", "198.51.100.13")
	steps := []struct {
		name string
		// change edits the cluster; want* are node names.
		change func(cluster)
		full   bool
		// forget: the full update's Tier-1 holds no route (first start).
		forget                bool
		recomputed, removed   []string
		all                   bool // every route may have changed
		problems              []string
		wantRoutesOfNodeNamed map[string]string // network -> node
	}{
		{name: "start", change: func(cl cluster) { cl["a"], cl["b"], cl["c"] = a, b, c }, full: true, all: true,
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "nothing changed", change: func(cluster) {},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "new object, same fields (a heartbeat or condition patch)", change: func(cl cluster) {
			cl["a"] = cacheNode("a", "uid-a", "2", "100.96.1.0/24", "198.51.100.11")
		}, wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "readdressed node", change: func(cl cluster) {
			cl["b"] = cacheNode("b", "uid-b", "2", "100.96.2.0/24", "198.51.100.99")
		}, recomputed: []string{"b"}, wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "readdressed node with an unchanged resourceVersion", change: func(cl cluster) {
			cl["b"] = cacheNode("b", "uid-b", "2", "100.96.2.0/24", "198.51.100.98")
		}, recomputed: []string{"b"}, wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "deleted node", change: func(cl cluster) { delete(cl, "c") }, removed: []string{"c"},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b"}},
		{name: "added node", change: func(cl cluster) { cl["c"] = c }, recomputed: []string{"c"},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "node re-created under its name, same fields", change: func(cl cluster) {
			cl["c"] = cacheNode("c", "uid-c2", "9", "100.96.3.0/24", "198.51.100.13")
		}, recomputed: []string{"c"}, wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "a second node claims a pod CIDR", change: func(cl cluster) {
			cl["z"] = cacheNode("z", "uid-z", "1", "100.96.1.0/24", "198.51.100.26")
		}, recomputed: []string{"z"}, problems: []string{"z/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "an unrelated change keeps the claim settled", change: func(cl cluster) {
			cl["b"] = cacheNode("b", "uid-b", "3", "100.96.2.0/24", "198.51.100.12")
		}, recomputed: []string{"b"}, problems: []string{"z/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "the holder readdressed keeps its route", change: func(cl cluster) {
			cl["a"] = cacheNode("a", "uid-a", "3", "100.96.1.0/24", "198.51.100.111")
		}, recomputed: []string{"a"}, problems: []string{"z/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "a", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "the first claimant leaves: the other gets the route", change: func(cl cluster) { delete(cl, "a") }, removed: []string{"a"},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "b", "100.96.3.0/24": "c"}},
		{name: "two nodes swap pod CIDRs in one pass", change: func(cl cluster) {
			cl["b"] = cacheNode("b", "uid-b", "4", "100.96.3.0/24", "198.51.100.12")
			cl["c"] = cacheNode("c", "uid-c2", "10", "100.96.2.0/24", "198.51.100.13")
		}, recomputed: []string{"b", "c"},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "a node's pod CIDR outside the cluster", change: func(cl cluster) {
			cl["d"] = cacheNode("d", "uid-d", "1", "10.0.0.0/24", "198.51.100.14")
		}, recomputed: []string{"d"}, problems: []string{"d/" + ReasonOutsideCluster},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "its problem goes with it", change: func(cl cluster) { delete(cl, "d") }, removed: []string{"d"},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "a full update recomputes everything", change: func(cl cluster) {}, full: true, all: true,
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},

		// Route theft: a newcomer overlapping a routed pod CIDR gets nothing.
		{name: "a pod CIDR inside another node's", change: func(cl cluster) {
			cl["e"] = aged(cacheNode("e", "uid-e", "1", "100.96.3.128/25", "198.51.100.15"), 30)
		}, recomputed: []string{"e"}, problems: []string{"e/" + ReasonOverlappingPodCIDR},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "a pod CIDR containing other nodes'", change: func(cl cluster) {
			cl["f"] = cacheNode("f", "uid-f", "1", "100.96.0.0/22", "198.51.100.16")
		}, recomputed: []string{"f"}, problems: []string{"e/" + ReasonOverlappingPodCIDR, "f/" + ReasonOverlappingPodCIDR},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "a pod CIDR equal to the cluster CIDR", change: func(cl cluster) {
			cl["g"] = cacheNode("g", "uid-g", "1", "100.96.0.0/11", "198.51.100.17")
		}, recomputed: []string{"g"}, problems: []string{"e/" + ReasonOverlappingPodCIDR, "f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "an older node claiming a routed pod CIDR gets nothing", change: func(cl cluster) {
			cl["h"] = aged(cacheNode("h", "uid-h", "1", "100.96.2.0/24", "198.51.100.18"), -1000)
		}, recomputed: []string{"h"}, problems: []string{"e/" + ReasonOverlappingPodCIDR, "f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR, "h/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "a full update keeps the holders", change: func(cl cluster) {}, full: true, all: true,
			problems:              []string{"e/" + ReasonOverlappingPodCIDR, "f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR, "h/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "two more claimants of a routed pod CIDR", change: func(cl cluster) {
			cl["p"] = aged(cacheNode("p", "uid-p", "1", "100.96.3.0/24", "198.51.100.19"), 20)
			cl["q"] = aged(cacheNode("q", "uid-q", "1", "100.96.3.0/24", "198.51.100.20"), 10)
		}, recomputed: []string{"p", "q"}, problems: []string{"e/" + ReasonOverlappingPodCIDR, "f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR,
			"h/" + ReasonDuplicatePodCID, "p/" + ReasonDuplicatePodCID, "q/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "b"}},
		{name: "the holder leaves: the oldest claimant gets its pod CIDR", change: func(cl cluster) { delete(cl, "b") }, removed: []string{"b"},
			problems: []string{"e/" + ReasonOverlappingPodCIDR, "f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR,
				"h/" + ReasonDuplicatePodCID, "p/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.0/24": "q"}},
		{name: "the holder leaves: the pod CIDR inside it goes to its claimant", change: func(cl cluster) { delete(cl, "q"); delete(cl, "p") }, removed: []string{"p", "q"},
			problems:              []string{"f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR, "h/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.128/25": "e"}},
		{name: "the contained claimant is readdressed, keeping its route", change: func(cl cluster) {
			cl["e"] = aged(cacheNode("e", "uid-e", "2", "100.96.3.128/25", "198.51.100.115"), 30)
		}, recomputed: []string{"e"}, problems: []string{"f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR, "h/" + ReasonDuplicatePodCID},
			wantRoutesOfNodeNamed: map[string]string{"100.96.1.0/24": "z", "100.96.2.0/24": "c", "100.96.3.128/25": "e"}},
		{name: "all small holders leave: the containing claim gets the route", change: func(cl cluster) { delete(cl, "z"); delete(cl, "c"); delete(cl, "e"); delete(cl, "h") },
			removed: []string{"c", "e", "h", "z"}, problems: []string{"g/" + ReasonOverlappingPodCIDR},
			wantRoutesOfNodeNamed: map[string]string{"100.96.0.0/22": "f"}},
		{name: "a first start (the Tier-1 holds nothing) settles by age", change: func(cl cluster) {
			cl["f"] = aged(cacheNode("f", "uid-f", "1", "100.96.0.0/22", "198.51.100.16"), 50)
			cl["g"] = aged(cacheNode("g", "uid-g", "1", "100.96.0.0/11", "198.51.100.17"), 60)
			cl["old"] = aged(cacheNode("old", "uid-old", "1", "100.96.2.0/23", "198.51.100.21"), 40)
		}, full: true, forget: true, all: true, problems: []string{"f/" + ReasonOverlappingPodCIDR, "g/" + ReasonOverlappingPodCIDR},
			wantRoutesOfNodeNamed: map[string]string{"100.96.2.0/23": "old"}},
	}
	nc := newNodeCache(newRouteRules(us, v4))
	cl := cluster{}
	var previous map[string]nsx.Route
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change(cl)
			holders := Holders(us, previous)
			if st.forget {
				holders = nil
			}
			res := nc.update(cl.objs(), st.full, holders)
			var nodes []Node
			for _, n := range cl {
				nodes = append(nodes, FromNode(n))
			}
			want, wantProblems := DesiredHeld(us, v4, nodes, holders)
			if !reflect.DeepEqual(res.desired, want) {
				t.Fatalf("desired = %v\nDesired gives %v", res.desired, want)
			}
			got := map[string]string{}
			for _, r := range res.desired {
				got[r.Network] = NodeOf(r)
			}
			if !reflect.DeepEqual(got, st.wantRoutesOfNodeNamed) {
				t.Fatalf("routes = %v, want %v", got, st.wantRoutesOfNodeNamed)
			}
			if !reflect.DeepEqual(res.problems, wantProblems) {
				t.Fatalf("problems = %v\nDesired gives %v", res.problems, wantProblems)
			}
			var names []string
			for _, p := range res.problems {
				names = append(names, p.Node+"/"+p.Reason)
			}
			if !slices.Equal(names, st.problems) {
				t.Fatalf("problems = %v, want %v", names, st.problems)
			}
			slices.Sort(res.recomputed)
			slices.Sort(res.removed)
			if !slices.Equal(res.recomputed, st.recomputed) || !slices.Equal(res.removed, st.removed) || res.all != st.all {
				t.Fatalf("recomputed %v removed %v all %v, want %v %v %v", res.recomputed, res.removed, res.all, st.recomputed, st.removed, st.all)
			}
			if !res.all { // every route that changed is in scope
				for id := range mergedKeys(previous, res.desired) {
					if !reflect.DeepEqual(previous[id], res.desired[id]) && !slices.Contains(res.touched, id) {
						t.Fatalf("route %s changed but is not among the touched %v", id, res.touched)
					}
				}
			}
			previous = maps.Clone(res.desired) // the cache reuses its map
		})
	}
}

// The cache and DesiredHeld agree through random changes of a cluster whose
// nodes claim overlapping pod CIDRs (equal, inside, around), with random
// ages, deletions, re-creations, readdressing and full updates; no two
// routes ever overlap, and a route held stays with its holder while the
// holder keeps its pod CIDR.
func TestNodeCacheMatchesDesiredUnderRandomClaims(t *testing.T) {
	// Pod CIDRs from /21 to /26 in 100.96.0.0/21, so claims overlap often.
	cidr := func(r *rand.Rand) string {
		bits := 21 + r.IntN(6)
		addr := netip.AddrFrom4([4]byte{100, 96, byte(r.IntN(8)), byte(r.IntN(4) * 64)})
		return netip.PrefixFrom(addr, bits).Masked().String()
	}
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 1))
		nc := newNodeCache(newRouteRules(us, v4))
		cl := cluster{}
		var previous map[string]nsx.Route
		uid := 0
		for step := range 60 {
			for range 1 + r.IntN(3) {
				name := fmt.Sprintf("n%d", r.IntN(12))
				switch old := cl[name]; {
				case old != nil && r.IntN(4) == 0:
					delete(cl, name)
				case old != nil && r.IntN(3) == 0: // readdressed
					n := old.DeepCopy()
					n.Status.Addresses[0].Address = fmt.Sprintf("198.51.100.%d", 1+r.IntN(200))
					cl[name] = n
				default: // added, or re-created with another pod CIDR
					uid++
					cl[name] = aged(cacheNode(name, fmt.Sprintf("uid-%04d", uid), "1", cidr(r), fmt.Sprintf("198.51.100.%d", 1+r.IntN(200))), r.IntN(5))
				}
			}
			full := r.IntN(10) == 0
			holders := Holders(us, previous)
			injected := full && r.IntN(2) == 0
			if injected {
				// The Tier-1 as an older t1route left it: overlapping routes,
				// duplicates given to another node.
				for name, n := range cl {
					if r.IntN(3) == 0 {
						holders[us.RouteID(n.Spec.PodCIDRs[0])] = name
					}
				}
			}
			res := nc.update(cl.objs(), full, holders)
			var nodes []Node
			for _, n := range cl {
				nodes = append(nodes, FromNode(n))
			}
			want, wantProblems := DesiredHeld(us, v4, nodes, holders)
			if !reflect.DeepEqual(res.desired, want) {
				t.Fatalf("seed %d step %d: desired = %v\nDesiredHeld gives %v", seed, step, res.desired, want)
			}
			if !reflect.DeepEqual(res.problems, wantProblems) {
				t.Fatalf("seed %d step %d: problems = %v\nDesiredHeld gives %v", seed, step, res.problems, wantProblems)
			}
			var routed []netip.Prefix
			for _, rt := range res.desired {
				p := netip.MustParsePrefix(rt.Network)
				for _, q := range routed {
					if p.Overlaps(q) {
						t.Fatalf("seed %d step %d: routes for %s and %s overlap", seed, step, p, q)
					}
				}
				routed = append(routed, p)
			}
			for id, was := range previous {
				if n := cl[NodeOf(was)]; !injected && n != nil && slices.Contains(n.Spec.PodCIDRs, was.Network) {
					if now, ok := res.desired[id]; !ok || NodeOf(now) != NodeOf(was) {
						t.Fatalf("seed %d step %d: %s moved from %s, which still claims it", seed, step, was.Network, NodeOf(was))
					}
				}
			}
			if !res.all {
				for id := range mergedKeys(previous, res.desired) {
					if !reflect.DeepEqual(previous[id], res.desired[id]) && !slices.Contains(res.touched, id) {
						t.Fatalf("seed %d step %d: route %s changed but is not among the touched", seed, step, id)
					}
				}
			}
			previous = maps.Clone(res.desired)
		}
	}
}

func mergedKeys(a, b map[string]nsx.Route) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Passes of node changes (scoped diffs, the node cache) leave the Tier-1 as
// a full pass would: a changed, a deleted, a readdressed node with an
// unchanged resourceVersion, an unchanged one, and a refused route retried.
func TestNodeChangePassesKeepTheTier1Right(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
	inf := factory.Core().V1().Nodes()
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	c, err := New(Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4}, nil, inf, fnsx, nil, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	store := inf.Informer().GetIndexer()
	for i := range 5 {
		if err := store.Add(cacheNode(fmt.Sprintf("n%d", i), fmt.Sprintf("uid-%d", i), "1", fmt.Sprintf("100.96.%d.0/24", i), fmt.Sprintf("198.51.100.%d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	steps := []struct {
		name   string
		change func() error
	}{
		{"start", func() error { return nil }},
		{"changed node", func() error { return store.Update(cacheNode("n1", "uid-1", "2", "100.96.1.0/24", "198.51.100.101")) }},
		{"deleted node", func() error { return store.Delete(cacheNode("n2", "uid-2", "1", "", "")) }},
		{"readdressed node, unchanged resourceVersion", func() error {
			return store.Update(cacheNode("n3", "uid-3", "1", "100.96.3.0/24", "198.51.100.103"))
		}},
		{"unchanged node", func() error { return store.Update(cacheNode("n4", "uid-4", "1", "100.96.4.0/24", "198.51.100.5")) }},
		{"refused route of a new node", func() error {
			fnsx.mu.Lock()
			fnsx.refuse["100.96.9.0/24"] = true
			fnsx.mu.Unlock()
			return store.Add(cacheNode("n9", "uid-9", "1", "100.96.9.0/24", "198.51.100.9"))
		}},
		{"another change retries it, now accepted", func() error {
			fnsx.mu.Lock()
			fnsx.refuse = map[string]bool{}
			fnsx.mu.Unlock()
			return store.Update(cacheNode("n0", "uid-0", "2", "100.96.0.0/24", "198.51.100.100"))
		}},
	}
	for k, st := range steps {
		if err := st.change(); err != nil {
			t.Fatal(err)
		}
		if err := c.reconcile(ctx); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if k > 0 && fnsx.lists != 1 {
			t.Fatalf("%s: NSX listed %d times: a node change's pass must not list", st.name, fnsx.lists)
		}
		objs, _ := c.nodes.List(labels.Everything())
		var nodes []Node
		for _, n := range objs {
			nodes = append(nodes, FromNode(n))
		}
		want, _ := Desired(us, v4, nodes)
		fnsx.mu.Lock()
		got := maps.Clone(fnsx.routes)
		fnsx.mu.Unlock()
		if st.name == "refused route of a new node" {
			delete(want, us.RouteID("100.96.9.0/24"))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the Tier-1 holds %v\nwant %v", st.name, got, want)
		}
		if c.actual.Owned() != len(got) {
			t.Fatalf("%s: %d routes counted as owned, the Tier-1 holds %d", st.name, c.actual.Owned(), len(got))
		}
	}
}
