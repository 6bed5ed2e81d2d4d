package podroute

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/t1route/t1route/nsx"
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// safeRoute is the invariant: a route's network is never a default route
// and always inside a cluster CIDR that CheckClusterCIDR accepts.
func safeRoute(network string, clusterCIDRs []netip.Prefix) error {
	p, err := netip.ParsePrefix(network)
	if err != nil || p.Bits() == 0 {
		return fmt.Errorf("route for %q", network)
	}
	for _, c := range clusterCIDRs {
		if CheckClusterCIDR(c, true) == nil && within(p, []netip.Prefix{c}) {
			return nil
		}
	}
	return fmt.Errorf("route for %s, outside every usable cluster CIDR of %v", network, clusterCIDRs)
}

// hostile are cluster CIDRs and node pod CIDRs that configuration checks
// should have refused, or that nodes should never carry.
var hostile = []struct {
	name         string
	clusterCIDRs []netip.Prefix
	podCIDRs     []string
	want         map[string]bool // networks routed
	reason       string          // of the problems reported for the rest
}{
	{"default route in a default-route cluster", prefixes("0.0.0.0/0", "::/0"), []string{"0.0.0.0/0", "::/0"}, nil, ReasonRefusedClusterCIDR},
	{"anything in a default-route cluster", prefixes("0.0.0.0/0"), []string{"0.0.0.0/1", "100.96.1.0/24"}, nil, ReasonRefusedClusterCIDR},
	{"default route in a good cluster", prefixes("100.96.0.0/11", "fd00:100:96::/48"), []string{"0.0.0.0/0", "::/0"}, nil, ReasonRefusedClusterCIDR},
	{"loopback cluster", prefixes("127.0.0.0/8"), []string{"127.0.0.0/24"}, nil, ReasonRefusedClusterCIDR},
	{"link-local and multicast clusters", prefixes("169.254.0.0/16", "ff00::/8"), []string{"169.254.1.0/24", "ff02::/64"}, nil, ReasonRefusedClusterCIDR},
	{"IPv4-mapped cluster", prefixes("::ffff:100.96.0.0/107"), []string{"::ffff:100.96.1.0/120", "100.96.1.0/24"}, nil, ""},
	{"outside the cluster", prefixes("100.96.0.0/11"), []string{"100.128.0.0/24", "203.0.113.0/24", "100.64.0.0/10"}, nil, ReasonOutsideCluster},
	{"a good cluster beside a refused one", prefixes("0.0.0.0/0", "100.96.0.0/11"), []string{"100.96.1.0/24", "198.51.100.0/24"}, map[string]bool{"100.96.1.0/24": true}, ReasonRefusedClusterCIDR},
	{"a short cluster the parser allowed", prefixes("16.0.0.0/4"), []string{"16.1.0.0/24"}, map[string]bool{"16.1.0.0/24": true}, ""},
}

// TestDesiredNeverRoutesOutsideTheCluster: whatever the configuration and
// node data, Desired yields no route for a default route or outside a
// usable cluster CIDR, and says why for each pod CIDR it leaves out.
func TestDesiredNeverRoutesOutsideTheCluster(t *testing.T) {
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			nodes := make([]Node, len(h.podCIDRs))
			for i, cidr := range h.podCIDRs {
				nodes[i] = Node{Name: fmt.Sprintf("n%d", i), PodCIDRs: []string{cidr}, InternalIPs: []string{fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("2001:db8::%d", i+1)}}
			}
			routes, problems := Desired(us, h.clusterCIDRs, nodes)
			got := map[string]bool{}
			for _, r := range routes {
				got[r.Network] = true
				if err := safeRoute(r.Network, h.clusterCIDRs); err != nil {
					t.Error(err)
				}
			}
			if len(got) != len(h.want) {
				t.Errorf("routes for %v, want %v", got, h.want)
			}
			for n := range h.want {
				if !got[n] {
					t.Errorf("no route for %s", n)
				}
			}
			if len(routes)+len(problems) != len(h.podCIDRs) {
				t.Errorf("%d routes and %d problems for %d pod CIDRs: some left out without a word", len(routes), len(problems), len(h.podCIDRs))
			}
			for _, p := range problems {
				if h.reason != "" && p.Reason != h.reason && p.Reason != ReasonOutsideCluster {
					t.Errorf("problem %+v, want reason %s", p, h.reason)
				}
			}
		})
	}
}

// TestControllerNeverWritesAnUnsafeRoute runs the controller itself on the
// hostile inputs against a fake NSX: every route it writes passes safeRoute.
func TestControllerNeverWritesAnUnsafeRoute(t *testing.T) {
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			kube := fake.NewSimpleClientset()
			for i, cidr := range h.podCIDRs {
				n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}, Spec: corev1.NodeSpec{PodCIDRs: []string{cidr}},
					Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
						{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.51.100.%d", i+1)},
						{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("2001:db8::%d", i+1)}}}}
				if _, err := kube.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			fnsx := &fakeNSX{routes: map[string]nsx.Route{}}
			factory := informers.NewSharedInformerFactory(kube, 0)
			c, err := New(Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: h.clusterCIDRs, Window: time.Millisecond},
				kube, factory.Core().V1().Nodes(), fnsx, record.NewFakeRecorder(100), nil, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			factory.Start(ctx.Done())
			go c.Run(ctx)
			for deadline := time.Now().Add(10 * time.Second); !c.Ready(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no reconcile pass completed")
				}
			}
			fnsx.mu.Lock()
			defer fnsx.mu.Unlock()
			for _, r := range fnsx.routes {
				if err := safeRoute(r.Network, h.clusterCIDRs); err != nil {
					t.Errorf("the controller wrote a %v", err)
				}
			}
			if len(fnsx.routes) != len(h.want) {
				t.Errorf("the controller wrote %d routes, want %d", len(fnsx.routes), len(h.want))
			}
		})
	}
}
