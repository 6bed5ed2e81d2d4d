package podroute

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/nsx"
)

// benchNode is node i of a large cluster: a /27 of 100.64.0.0/11 via an
// address in 100.96.0.0/12 (ip picks which of its addresses).
func benchNode(i, ip int) *corev1.Node {
	pod := netip.AddrFrom4([4]byte{100, 64 + byte(i>>11), byte(i >> 3), byte(i&7) << 5})
	addr := netip.AddrFrom4([4]byte{100, 96 + byte(ip>>16&15), byte(ip >> 8), byte(ip)})
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%06d", i), ResourceVersion: fmt.Sprint(ip)},
		Spec:   corev1.NodeSpec{PodCIDRs: []string{netip.PrefixFrom(pod, 27).String()}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr.String()}}}}
}

// BenchmarkNodeChange is one pass after one node's address changed, on a
// converged cluster of 10,000 nodes: the controller's per-change cost
// (allocations and CPU), NSX and the API server left out (fakes).
// The overlapping variant adds 100 nodes claiming pod CIDRs others hold
// (one the whole cluster CIDR, the rest duplicates and halves), all refused:
// finding overlaps must keep a change cheap.
func BenchmarkNodeChange(b *testing.B) {
	for _, nodes := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) { benchNodeChange(b, nodes, false) })
	}
	b.Run("nodes=50000/overlapping", func(b *testing.B) { benchNodeChange(b, 50000, true) })
}

func benchNodeChange(b *testing.B, nodes int, overlapping bool) {
	factory := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
	inf := factory.Core().V1().Nodes()
	cidrs := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/11")}
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	c, err := New(Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: cidrs}, nil, inf, fnsx, nil, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	store := inf.Informer().GetIndexer()
	for i := range nodes {
		if err := store.Add(benchNode(i, i+1)); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := c.reconcile(ctx); err != nil { // the nodes hold their routes
		b.Fatal(err)
	}
	var attackers int
	if overlapping {
		for i := range 100 {
			n := benchNode(i*397%nodes, 1<<20+i)
			n.Name = fmt.Sprintf("attacker-%03d", i)
			switch {
			case i == 0:
				n.Spec.PodCIDRs = []string{"100.64.0.0/11"}
			case i%2 == 1: // the lower half of another node's pod CIDR
				n.Spec.PodCIDRs = []string{netip.PrefixFrom(netip.MustParsePrefix(n.Spec.PodCIDRs[0]).Addr(), 28).String()}
			}
			if err := store.Add(n); err != nil {
				b.Fatal(err)
			}
			attackers++
		}
		if err := c.reconcile(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for c.condQueue.Len() > 0 { // no API server: forget what the first pass queued
		n, _ := c.condQueue.Get()
		c.condQueue.Forget(n)
		c.condQueue.Done(n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for k := range b.N {
		i := k * 7919 % nodes
		if err := store.Update(benchNode(i, nodes+k+1)); err != nil {
			b.Fatal(err)
		}
		if err := c.reconcile(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(fnsx.routes) != nodes {
		b.Fatalf("%d routes on the Tier-1, want %d", len(fnsx.routes), nodes)
	}
	if p := c.cache.collectProblems(); len(p) != attackers {
		b.Fatalf("%d problems, want one per attacker (%d)", len(p), attackers)
	}
}
